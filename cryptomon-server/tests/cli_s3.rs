//! The CLI on S3: `collect --once --demo` then `transform` with `--store s3://bucket/prefix` on a
//! moto server (`CRYPTOMON_TEST_S3_ENDPOINT`, started by `scripts/test.sh` or
//! `eval "$(scripts/moto.sh start)"`) give the same aggregates as on a directory.

use std::path::Path;
use std::process::{Command, Output};

use cryptomon_core::StoreExt;
use cryptomon_core::keys::SUMMARY_KEY;
use cryptomon_tests::moto;

fn cryptomon(endpoint: &str, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "cryptomon-test")
        .env("AWS_SECRET_ACCESS_KEY", "cryptomon-test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `as_of` line `collect` and `transform` agree on: the tick collected.
fn tick_of(collect: &Output) -> String {
    String::from_utf8_lossy(&collect.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("collect: tick "))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_default()
        .to_owned()
}

fn candles(endpoint: &str, store: &str) -> serde_json::Value {
    let out = cryptomon(
        endpoint,
        &[
            "candles",
            "--store",
            store,
            "--source",
            "demo",
            "--pair",
            "BTC-USD",
            "--interval",
            "1m",
        ],
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_and_transform_on_s3_match_a_directory() {
    let Some(endpoint) = moto::endpoint("collect_and_transform_on_s3_match_a_directory") else {
        return;
    };
    let store = moto::fresh_store(&endpoint, "cli", "p").await;
    let s3 = format!("s3://{}/p", store.location().bucket());
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("d");
    let local = local.to_str().unwrap();

    // The same minute on both stores (the demo market is a function of the tick); a minute
    // boundary passing in between is retried.
    let mut matched = false;
    for _ in 0..3 {
        let a = cryptomon(&endpoint, &["collect", "--once", "--demo", "--store", &s3]);
        let b = cryptomon(
            &endpoint,
            &["collect", "--once", "--demo", "--store", local],
        );
        if tick_of(&a) == tick_of(&b) && !tick_of(&a).is_empty() {
            matched = true;
            break;
        }
    }
    assert!(matched, "could not collect the same tick on both stores");
    let t1 = cryptomon(&endpoint, &["transform", "--store", &s3]);
    let t2 = cryptomon(&endpoint, &["transform", "--store", local]);
    let first = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(first(&t1), first(&t2), "the transforms' reports differ");

    // The stored summaries: the same JSON values.
    let summary = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap();
    let on_s3 = store
        .get(SUMMARY_KEY)
        .await
        .unwrap()
        .expect("a summary on S3");
    let on_dir = std::fs::read(Path::new(local).join(SUMMARY_KEY)).unwrap();
    assert_eq!(summary(&on_s3.body), summary(&on_dir));
    assert!(!summary(&on_dir)["series"].as_array().unwrap().is_empty());
    // And a view read back from each store's window state.
    assert_eq!(candles(&endpoint, &s3), candles(&endpoint, local));
}
