//! The [`Store`] conformance suite: every backend's tests run [`run_conformance`], which checks the
//! whole `# Contract` of [`Store`] through the trait alone.
//!
//! It is backend-agnostic and fast (well under a second on memory, a few seconds on a local
//! disk): each check writes under its own fresh prefix (`conformance/{run}/{check}/`), so the
//! suite can run against a shared bucket, in parallel with itself. The trait has no delete, so
//! what it writes stays behind: point it at a scratch prefix or bucket.
//!
//! Each check is also a public function, to run one alone or skip one a backend cannot honour
//! (none should). A failure panics with the store and the key involved, like `assert!`.
//!
//! ```
//! use cryptomon_mock::{MemoryStore, conformance};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! conformance::run_conformance(&MemoryStore::new()).await;
//! # });
//! ```

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use cryptomon_core::{Error, Fetch, Object, PutMode, Store, StoreExt, Version};
use futures::future::join_all;
use futures::{StreamExt, TryStreamExt, stream};

/// Keys [`list_many`] writes: above the 1,000 a single S3 `ListObjectsV2` page returns.
pub const MANY_KEYS: usize = 1_100;
/// Size of the body [`large_body`] round-trips.
pub const LARGE_BODY: usize = 5 * 1024 * 1024;
/// Concurrent tasks of the compare-and-swap races.
pub const RACERS: usize = 8;
/// Writes in flight at once in [`list_many`]: fast, yet polite to a remote server.
const PUT_CONCURRENCY: usize = 64;

/// Runs every check of the suite, one after the other.
///
/// # Panics
///
/// On the first check the store fails, naming the store, the check and the key.
pub async fn run_conformance(store: &dyn Store) {
    get_missing(store).await;
    put_get_round_trip(store).await;
    overwrite(store).await;
    create_if_absent(store).await;
    conditional_update(store).await;
    get_if_none_match(store).await;
    list_prefixes(store).await;
    list_many(store).await;
    list_directories(store).await;
    invalid_keys(store).await;
    concurrent_create(store).await;
    concurrent_update(store).await;
    atomic_overwrite(store).await;
    large_body(store).await;
}

/// A prefix no other check, run or process uses: `conformance/{run}/{name}/`.
pub fn unique_prefix(name: &str) -> String {
    static RUN: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let run = RUN.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{nanos:x}-{:x}", std::process::id())
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("conformance/{run}-{n}/{name}/")
}

/// A missing key reads as `None` / [`Fetch::Missing`], with or without a version to compare,
/// and so do a key that is only a prefix of stored keys and a key below a stored object.
pub async fn get_missing(store: &dyn Store) {
    let p = unique_prefix("get_missing");
    let missing = format!("{p}missing.json");
    assert!(get(store, &missing).await.is_none(), "{store}: {missing}");
    let fetch = store
        .get_opts(&missing, Some(&Version("v".into())))
        .await
        .unwrap_or_else(|e| panic!("{store}: get_opts {missing}: {e}"));
    assert!(matches!(fetch, Fetch::Missing), "{store}: {fetch:?}");

    put(store, &format!("{p}dir/object.json"), "x").await;
    for key in [format!("{p}dir"), format!("{p}dir/object.json/below")] {
        assert!(
            get(store, &key).await.is_none(),
            "{store}: {key} is no object"
        );
    }
}

/// What is put is what is got, byte for byte, with the version the put returned; keys with
/// spaces, `=`, `+`, `%` and non-ASCII letters, deep keys and empty bodies included.
pub async fn put_get_round_trip(store: &dyn Store) {
    let p = unique_prefix("round_trip");
    let cases: [(&str, &[u8]); 5] = [
        ("plain.json", b"{\"a\":1}"),
        (
            "raw/source=demo/date=2026-11-27/20261127T120000Z.json",
            b"{}",
        ),
        ("deep/a/b/c/d/e/f.bin", &[0, 1, 2, 255, 254, b'\n', b'\r']),
        ("odd/a b=c+d%20\u{e9}~!'().json", b"odd"),
        ("empty.bin", b""),
    ];
    for (name, body) in cases {
        let key = format!("{p}{name}");
        let version = put(store, &key, Bytes::copy_from_slice(body)).await;
        let object = get(store, &key)
            .await
            .unwrap_or_else(|| panic!("{store}: {key} missing after put"));
        assert_eq!(&object.body[..], body, "{store}: body of {key}");
        assert_eq!(object.version, version, "{store}: version of {key}");
    }
}

/// A plain put replaces the object and gives it a new version.
pub async fn overwrite(store: &dyn Store) {
    let key = format!("{}key.json", unique_prefix("overwrite"));
    let v1 = put(store, &key, "one").await;
    let v2 = put(store, &key, "two, longer").await;
    assert_ne!(
        v1, v2,
        "{store}: an overwrite must change the version of {key}"
    );
    let object = get(store, &key).await.expect("object after overwrite");
    assert_eq!(&object.body[..], b"two, longer", "{store}: {key}");
    assert_eq!(object.version, v2, "{store}: {key}");
}

/// [`PutMode::Create`] writes a new key and refuses an existing one with
/// [`Error::AlreadyExists`], leaving the object as it was; `put_if_absent` is `true` then
/// `false`.
pub async fn create_if_absent(store: &dyn Store) {
    let p = unique_prefix("create");
    let key = format!("{p}created.json");
    let v = store
        .put_opts(&key, Bytes::from_static(b"first"), PutMode::Create)
        .await
        .unwrap_or_else(|e| panic!("{store}: create {key}: {e}"));
    let err = store
        .put_opts(&key, Bytes::from_static(b"second"), PutMode::Create)
        .await
        .expect_err("a second create must fail");
    assert!(
        matches!(&err, Error::AlreadyExists { key: k } if *k == key),
        "{store}: second create of {key}: {err}"
    );
    let object = get(store, &key).await.expect("created object");
    assert_eq!((&object.body[..], &object.version), (&b"first"[..], &v));

    let key = format!("{p}if_absent.json");
    assert!(put_if_absent(store, &key, "first").await, "{store}: {key}");
    assert!(
        !put_if_absent(store, &key, "second").await,
        "{store}: {key}"
    );
    let object = get(store, &key).await.expect("object put if absent");
    assert_eq!(&object.body[..], b"first", "{store}: {key} changed");
}

/// [`PutMode::Update`] replaces an object only if it still has the version given; a stale
/// version, or a missing object, fails with [`Error::Precondition`] and changes nothing.
pub async fn conditional_update(store: &dyn Store) {
    let p = unique_prefix("update");
    let key = format!("{p}state.json");
    let v1 = put(store, &key, "one").await;
    let v2 = update(store, &key, "two", &v1)
        .await
        .unwrap_or_else(|e| panic!("{store}: update {key} with its current version: {e}"));
    let object = get(store, &key).await.expect("updated object");
    assert_eq!((&object.body[..], &object.version), (&b"two"[..], &v2));

    let err = update(store, &key, "three", &v1)
        .await
        .expect_err("an update with a stale version must fail");
    assert!(
        matches!(&err, Error::Precondition { key: k } if *k == key),
        "{store}: stale update of {key}: {err}"
    );
    let object = get(store, &key)
        .await
        .expect("object after a refused update");
    assert_eq!(&object.body[..], b"two", "{store}: {key} changed");

    update(store, &key, "three", &v2)
        .await
        .unwrap_or_else(|e| panic!("{store}: update {key} again: {e}"));

    let missing = format!("{p}missing.json");
    let err = update(store, &missing, "x", &v1)
        .await
        .expect_err("updating a missing object must fail");
    assert!(matches!(err, Error::Precondition { .. }), "{store}: {err}");
    assert!(get(store, &missing).await.is_none(), "{store}: {missing}");
}

/// `get_opts` with the object's current version answers [`Fetch::NotModified`]; with an older
/// one it answers the current object.
pub async fn get_if_none_match(store: &dyn Store) {
    let key = format!("{}cached.json", unique_prefix("if_none_match"));
    let v1 = put(store, &key, "one").await;
    assert!(
        matches!(get_opts(store, &key, &v1).await, Fetch::NotModified),
        "{store}: {key} with its current version"
    );
    let v2 = put(store, &key, "two").await;
    match get_opts(store, &key, &v1).await {
        Fetch::Found(o) => assert_eq!((&o.body[..], &o.version), (&b"two"[..], &v2)),
        other => panic!("{store}: {key} with an old version: {other:?}"),
    }
    assert!(
        matches!(get_opts(store, &key, &v2).await, Fetch::NotModified),
        "{store}: {key} with its new version"
    );
}

/// `list` returns exactly the keys under a prefix, sorted by bytes: whole-segment prefixes,
/// prefixes ending mid-segment (`raw/source=k`), an exact key, prefixes with nothing under
/// them, and never a key of the backend's own bookkeeping (conditional writes have run in the
/// same directories).
pub async fn list_prefixes(store: &dyn Store) {
    let p = unique_prefix("list");
    let names = [
        "raw/source=kraken/date=2026-11-27/20261127T120000Z.json",
        "raw/source=kraken/date=2026-11-28/20261128T000000Z.json",
        "raw/source=kucoin/date=2026-11-27/20261127T120000Z.json",
        "raw/source=binance/date=2026-11-27/20261127T120000Z.json",
        "aggregates/summary.json",
        "aggregates/window.v1.parquet",
        // Byte order, not directory order: '-' < '.' < '/'.
        "order/a/x",
        "order/a-b",
        "order/a.json",
    ];
    for name in names {
        let key = format!("{p}{name}");
        // Conditional writes, so backends that lock or stage beside the object do so here.
        assert!(put_if_absent(store, &key, name).await, "{store}: {key}");
    }
    let v = put(store, &format!("{p}aggregates/summary.json"), "{}").await;
    update(store, &format!("{p}aggregates/summary.json"), "{ }", &v)
        .await
        .unwrap_or_else(|e| panic!("{store}: update in {p}: {e}"));

    let under = |rel: &str| -> Vec<String> {
        let mut keys: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(rel))
            .map(|n| format!("{p}{n}"))
            .collect();
        keys.sort();
        keys
    };
    for rel in [
        "",
        "raw/",
        "raw/source=k",
        "raw/source=kraken/",
        "raw/source=kraken/date=2026-11-27/20261127T120000Z.json",
        "raw/source=kraken/date=2026-11-27/2026",
        "aggregates/",
        "aggregates/window",
        "order/a",
        "order/a/",
        "nothing/",
        "nothing",
        "aggregates/summary.json/",
    ] {
        let prefix = format!("{p}{rel}");
        assert_eq!(
            list(store, &prefix).await,
            under(rel),
            "{store}: list {prefix:?}"
        );
    }
    assert_eq!(
        under("order/"),
        [
            format!("{p}order/a-b"),
            format!("{p}order/a.json"),
            format!("{p}order/a/x")
        ]
    );
}

/// More keys than a page of S3's listing ([`MANY_KEYS`]), written concurrently, are all listed,
/// and `list_after` lists those after a given key.
pub async fn list_many(store: &dyn Store) {
    let p = unique_prefix("list_many");
    let keys: Vec<String> = (0..MANY_KEYS).map(|i| format!("{p}k/{i:05}")).collect();
    stream::iter(&keys)
        .map(|key| async move {
            store
                .put(key, Bytes::from_static(b"."))
                .await
                .map_err(|e| format!("{store}: put {key}: {e}"))
        })
        .buffer_unordered(PUT_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let listed = list(store, &p).await;
    assert_eq!(listed.len(), MANY_KEYS, "{store}: list {p}");
    assert_eq!(listed, keys, "{store}: list {p}");
    assert_eq!(list(store, &format!("{p}k/00")).await.len(), 1000);
    assert_eq!(list(store, &format!("{p}k/01")).await.len(), 100);
    // `list_after` starts past a key, listed or not, and runs on over the page boundary.
    let prefix = p.as_str();
    let after = |start: String| async move {
        store
            .list_after(prefix, &start)
            .await
            .unwrap_or_else(|e| panic!("{store}: list_after {start:?}: {e}"))
    };
    assert_eq!(after(keys[10].clone()).await, keys[11..], "{store}");
    assert_eq!(after(format!("{p}k/00999x")).await, keys[1000..], "{store}");
    assert_eq!(
        after(format!("{p}l")).await,
        Vec::<String>::new(),
        "{store}"
    );
}

/// `list_prefixes` returns the distinct "directories" one level under a prefix, each ending in
/// `/`, sorted: never an object's key, never the backend's bookkeeping, nothing for a prefix
/// with nothing under it.
pub async fn list_directories(store: &dyn Store) {
    let p = unique_prefix("list_prefixes");
    for name in [
        "raw/source=kraken/date=2026-11-27/20261127T120000Z.json",
        "raw/source=kraken/date=2026-11-28/20261128T000000Z.json",
        "raw/source=kucoin/date=2026-11-27/20261127T120000Z.json",
        "raw/source=binance/date=2026-11-27/20261127T120000Z.json",
        "raw/loose.json",
        "raw/source=binance.json",
    ] {
        let key = format!("{p}{name}");
        assert!(put_if_absent(store, &key, name).await, "{store}: {key}");
    }
    let dirs = |prefix: &str, rels: &[&str]| -> (String, Vec<String>) {
        (
            format!("{p}{prefix}"),
            rels.iter().map(|r| format!("{p}{prefix}{r}")).collect(),
        )
    };
    for (prefix, expected) in [
        dirs("", &["raw/"]),
        dirs(
            "raw/",
            &["source=binance/", "source=kraken/", "source=kucoin/"],
        ),
        dirs(
            "raw/source=kraken/",
            &["date=2026-11-27/", "date=2026-11-28/"],
        ),
        dirs("raw/source=kraken/date=2026-11-27/", &[]),
        dirs("raw/loose.json/", &[]),
        dirs("nothing/", &[]),
    ] {
        let got = store
            .list_prefixes(&prefix)
            .await
            .unwrap_or_else(|e| panic!("{store}: list_prefixes {prefix:?}: {e}"));
        assert_eq!(got, expected, "{store}: list_prefixes {prefix:?}");
    }
}

/// Keys that break the rules of [`cryptomon_core::keys::validate_key`] are refused with
/// [`Error::InvalidKey`] by every operation, and nothing is written.
pub async fn invalid_keys(store: &dyn Store) {
    let p = unique_prefix("invalid");
    let keys = [
        String::new(),
        "/abs".into(),
        "/abs/x.json".into(),
        "../x".into(),
        format!("{p}../x"),
        format!("{p}a/../../x"),
        format!("{p}./x"),
        format!("{p}a//b"),
        format!("{p}a\\b"),
        format!("{p}a\nb"),
        format!("{p}a\0b"),
        format!("{p}a\tb"),
        format!("{p}a\u{7f}b"),
        format!("{p}dir/"),
        format!("{p}{}", "k".repeat(1100)),
    ];
    for key in &keys {
        let refused = |what: &str, r: Result<(), Error>| match r {
            Err(Error::InvalidKey { .. }) => {}
            Err(e) => panic!("{store}: {what} {key:?}: expected InvalidKey, got {e}"),
            Ok(()) => panic!("{store}: {what} {key:?} accepted"),
        };
        refused("get", store.get_opts(key, None).await.map(drop));
        for mode in [
            PutMode::Overwrite,
            PutMode::Create,
            PutMode::Update(Version("v".into())),
        ] {
            let r = store.put_opts(key, Bytes::from_static(b"x"), mode).await;
            refused("put", r.map(drop));
        }
    }
    for prefix in [
        "/abs".into(),
        "../".into(),
        format!("{p}../"),
        format!("{p}a//"),
        format!("{p}a\\"),
        format!("{p}\n"),
    ] {
        match store.list(&prefix).await {
            Err(Error::InvalidKey { .. }) => {}
            other => panic!("{store}: list {prefix:?}: expected InvalidKey, got {other:?}"),
        }
    }
    assert_eq!(list(store, &p).await, Vec::<String>::new(), "{store}: {p}");
}

/// [`RACERS`] concurrent creates of one key: exactly one wins, and the object is its body.
pub async fn concurrent_create(store: &dyn Store) {
    let p = unique_prefix("race_create");
    for round in 0..4 {
        let key = format!("{p}{round}.json");
        let outcomes = join_all((0..RACERS).map(|i| {
            let key = &key;
            async move {
                let body = Bytes::from(format!("racer {i}"));
                (i, store.put_if_absent(key, body).await)
            }
        }))
        .await;
        let winners: Vec<usize> = outcomes
            .iter()
            .filter_map(|(i, r)| match r {
                Ok(true) => Some(*i),
                Ok(false) => None,
                Err(e) => panic!("{store}: racing create of {key}: {e}"),
            })
            .collect();
        assert_eq!(winners.len(), 1, "{store}: winners of {key}: {winners:?}");
        let object = get(store, &key).await.expect("raced object");
        assert_eq!(
            object.body,
            Bytes::from(format!("racer {}", winners[0])),
            "{store}: {key} holds a loser's body"
        );
    }
}

/// [`RACERS`] concurrent updates from one version: exactly one wins, the others fail with
/// [`Error::Precondition`].
pub async fn concurrent_update(store: &dyn Store) {
    let p = unique_prefix("race_update");
    for round in 0..4 {
        let key = format!("{p}{round}.json");
        let v0 = put(store, &key, "start").await;
        let outcomes = join_all((0..RACERS).map(|i| {
            let (key, v0) = (&key, &v0);
            async move { (i, update(store, key, format!("racer {i}"), v0).await) }
        }))
        .await;
        let mut winners = Vec::new();
        for (i, r) in outcomes {
            match r {
                Ok(_) => winners.push(i),
                Err(Error::Precondition { .. }) => {}
                Err(e) => panic!("{store}: racing update of {key}: {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "{store}: winners of {key}: {winners:?}");
        let object = get(store, &key).await.expect("raced object");
        assert_eq!(object.body, Bytes::from(format!("racer {}", winners[0])));
    }
}

/// Readers racing overwriters of one key see one whole body or another, never a mix or a
/// partial one.
pub async fn atomic_overwrite(store: &dyn Store) {
    const SIZE: usize = 256 * 1024;
    let key = format!("{}contended.bin", unique_prefix("atomic"));
    let bodies: Vec<Bytes> = (0..4u8)
        .map(|i| Bytes::from(vec![b'a' + i; SIZE]))
        .collect();
    put(store, &key, bodies[0].clone()).await;
    let writers = join_all((0..3).map(|round| {
        let (key, bodies) = (&key, &bodies);
        async move {
            for body in bodies.iter().skip(1 + round % 3) {
                put(store, key, body.clone()).await;
            }
        }
    }));
    let readers = join_all((0..4).map(|_| {
        let (key, bodies) = (&key, &bodies);
        async move {
            for _ in 0..6 {
                let object = get(store, key).await.expect("contended object");
                assert!(
                    bodies.contains(&object.body),
                    "{store}: torn read of {key}: {} bytes starting {:?}",
                    object.body.len(),
                    object.body.first()
                );
            }
        }
    }));
    futures::join!(writers, readers);
}

/// A [`LARGE_BODY`] object round-trips intact, by plain put and by create.
pub async fn large_body(store: &dyn Store) {
    let p = unique_prefix("large");
    // A cheap pseudo-random pattern: a transposed or truncated chunk cannot go unnoticed.
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let body: Bytes = (0..LARGE_BODY)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 56) as u8
        })
        .collect::<Vec<u8>>()
        .into();
    let key = format!("{p}large.bin");
    let v = put(store, &key, body.clone()).await;
    let object = get(store, &key).await.expect("large object");
    assert!(object.body == body, "{store}: {key} came back altered");
    assert!(matches!(
        get_opts(store, &key, &v).await,
        Fetch::NotModified
    ));
    let created = format!("{p}created.bin");
    assert!(put_if_absent(store, &created, body.clone()).await);
    let object = get(store, &created).await.expect("large created object");
    assert!(object.body == body, "{store}: {created} came back altered");
}

async fn get(store: &dyn Store, key: &str) -> Option<Object> {
    store
        .get(key)
        .await
        .unwrap_or_else(|e| panic!("{store}: get {key}: {e}"))
}

async fn get_opts(store: &dyn Store, key: &str, version: &Version) -> Fetch {
    store
        .get_opts(key, Some(version))
        .await
        .unwrap_or_else(|e| panic!("{store}: get_opts {key}: {e}"))
}

async fn put(store: &dyn Store, key: &str, body: impl Into<Bytes>) -> Version {
    store
        .put(key, body.into())
        .await
        .unwrap_or_else(|e| panic!("{store}: put {key}: {e}"))
}

async fn put_if_absent(store: &dyn Store, key: &str, body: impl Into<Bytes>) -> bool {
    store
        .put_if_absent(key, body.into())
        .await
        .unwrap_or_else(|e| panic!("{store}: put_if_absent {key}: {e}"))
}

async fn update(
    store: &dyn Store,
    key: &str,
    body: impl Into<Bytes>,
    version: &Version,
) -> Result<Version, Error> {
    store
        .put_opts(key, body.into(), PutMode::Update(version.clone()))
        .await
}

async fn list(store: &dyn Store, prefix: &str) -> Vec<String> {
    let keys = store
        .list(prefix)
        .await
        .unwrap_or_else(|e| panic!("{store}: list {prefix:?}: {e}"));
    let unique: BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        unique.len(),
        keys.len(),
        "{store}: list {prefix:?} repeats keys"
    );
    keys
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::future::Future;
    use std::panic::AssertUnwindSafe;

    use async_trait::async_trait;
    use futures::FutureExt;

    use super::*;
    use crate::MemoryStore;

    /// Ways a backend can get the contract wrong.
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Flaw {
        CreateOverwrites,
        UpdateIgnoresVersion,
        ListUnsorted,
        ListTruncatesAt1000,
        NoKeyValidation,
        NeverNotModified,
    }

    /// A memory store with one flaw: the suite must catch each.
    #[derive(Debug)]
    struct Flawed(MemoryStore, Flaw);

    impl fmt::Display for Flawed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "store with {:?}", self.1)
        }
    }

    #[async_trait]
    impl Store for Flawed {
        async fn get_opts(
            &self,
            key: &str,
            if_none_match: Option<&Version>,
        ) -> Result<Fetch, Error> {
            if self.1 == Flaw::NoKeyValidation && cryptomon_core::keys::validate_key(key).is_err() {
                return Ok(Fetch::Missing);
            }
            let inm = if self.1 == Flaw::NeverNotModified {
                None
            } else {
                if_none_match
            };
            self.0.get_opts(key, inm).await
        }

        async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version, Error> {
            let mode = match (self.1, mode) {
                (Flaw::CreateOverwrites, PutMode::Create)
                | (Flaw::UpdateIgnoresVersion, PutMode::Update(_)) => PutMode::Overwrite,
                (_, mode) => mode,
            };
            self.0.put_opts(key, body, mode).await
        }

        async fn list(&self, prefix: &str) -> Result<Vec<String>, Error> {
            let mut keys = self.0.list(prefix).await?;
            match self.1 {
                Flaw::ListUnsorted => keys.reverse(),
                Flaw::ListTruncatesAt1000 => keys.truncate(1000),
                _ => {}
            }
            Ok(keys)
        }
    }

    async fn fails(check: impl Future<Output = ()>) -> bool {
        AssertUnwindSafe(check).catch_unwind().await.is_err()
    }

    #[tokio::test]
    async fn the_suite_catches_each_flaw() {
        let store = |flaw| Flawed(MemoryStore::new(), flaw);
        let s = store(Flaw::CreateOverwrites);
        assert!(fails(create_if_absent(&s)).await);
        let s = store(Flaw::UpdateIgnoresVersion);
        assert!(fails(conditional_update(&s)).await);
        assert!(fails(concurrent_update(&s)).await);
        let s = store(Flaw::ListUnsorted);
        assert!(fails(list_prefixes(&s)).await);
        let s = store(Flaw::ListTruncatesAt1000);
        assert!(fails(list_many(&s)).await);
        let s = store(Flaw::NoKeyValidation);
        assert!(fails(invalid_keys(&s)).await);
        let s = store(Flaw::NeverNotModified);
        assert!(fails(get_if_none_match(&s)).await);
        // ...and passes the checks a flaw does not touch.
        get_missing(&store(Flaw::ListUnsorted)).await;
    }

    #[test]
    fn prefixes_are_unique_and_valid() {
        let (a, b) = (unique_prefix("x"), unique_prefix("x"));
        assert_ne!(a, b);
        cryptomon_core::keys::validate_prefix(&a).unwrap();
    }
}
