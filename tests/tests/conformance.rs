//! Every `Store` of the workspace passes the conformance suite of `cryptomon_mock::conformance`.
//!
//! An S3 store adds its own test here, pointed at a server by an environment variable.

use std::path::Path;

use bytes::Bytes;
use cryptomon_core::{Error, FsStore, Store, StoreExt};
use cryptomon_mock::{FaultyStore, MemoryStore, conformance, run_conformance};
use futures::future::join_all;

// Multi-threaded, so the races of the suite really run in parallel on the file store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_store_conforms() {
    run_conformance(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path().join("store")).unwrap();
    run_conformance(&store).await;
    assert_nothing_escaped(dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_faulty_store_without_faults_is_transparent() {
    let store = FaultyStore::new(MemoryStore::new());
    run_conformance(&store).await;
    let counters = store.counters();
    assert!(
        counters.writes > conformance::MANY_KEYS as u64,
        "{counters:?}"
    );
    assert!(
        counters.bytes_read >= 2 * conformance::LARGE_BODY as u64,
        "{counters:?}"
    );
    assert_eq!(counters.injected, 0);
}

/// Two file stores on one directory are two processes' views of it: the compare-and-swaps must
/// hold across them, not only within one `FsStore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fs_store_creates_are_exclusive_across_instances() {
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<FsStore> = (0..8)
        .map(|_| FsStore::create(dir.path()).unwrap())
        .collect();
    for round in 0..8 {
        let key = format!("race/{round}.json");
        let wins = join_all(stores.iter().enumerate().map(|(i, s)| {
            let key = key.clone();
            async move {
                s.put_if_absent(&key, Bytes::from(format!("{i}")))
                    .await
                    .unwrap()
            }
        }))
        .await;
        assert_eq!(wins.iter().filter(|&&w| w).count(), 1, "{key}: {wins:?}");
    }
}

/// A file store hides its bookkeeping files from `list`, so keys that would collide with them
/// are refused rather than silently unlistable.
#[tokio::test]
async fn fs_store_refuses_its_own_reserved_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    store
        .put_if_absent("a/b.json", Bytes::from_static(b"{}"))
        .await
        .unwrap();
    for key in [
        "a/.cryptomon-lock-b.json",
        ".cryptomon-x",
        "a/.cryptomon-tmp/b.json",
    ] {
        let err = store.put(key, Bytes::from_static(b"x")).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{key}: {err}");
        let err = store.get(key).await.unwrap_err();
        assert!(matches!(err, Error::InvalidKey { .. }), "{key}: {err}");
    }
    assert_eq!(store.list("").await.unwrap(), ["a/b.json"]);
}

/// Keys such as `../x` must not have created anything beside the store's root.
fn assert_nothing_escaped(parent: &Path) {
    let entries: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, ["store"], "files outside the store root");
}
