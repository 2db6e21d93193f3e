//! S3 tests against a moto server on loopback.
//!
//! The endpoint comes from `CRYPTOMON_TEST_S3_ENDPOINT` (`eval "$(scripts/moto.sh start)"` sets
//! it). Without it a test is skipped, except under `CI=true`, where a silently skipped S3 suite
//! would hide a broken setup, so it fails instead.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use cryptomon_core::{S3Location, S3Store};

/// The variable naming the moto endpoint (`http://127.0.0.1:PORT`).
pub const ENDPOINT_VAR: &str = "CRYPTOMON_TEST_S3_ENDPOINT";

const HOW_TO_RUN: &str = "start moto with `pip install 'moto[server]'` and \
    `eval \"$(scripts/moto.sh start)\"` (or `python3 scripts/moto_server.py 5000 &` and \
    `export CRYPTOMON_TEST_S3_ENDPOINT=http://127.0.0.1:5000`), then run the tests again";

/// The moto endpoint; `None` when the test should be skipped (a line says so on stderr).
///
/// # Panics
///
/// Under `CI=true` when the variable is unset: CI must run these tests.
pub fn endpoint(test: &str) -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(e) if !e.trim().is_empty() => Some(e.trim().trim_end_matches('/').to_owned()),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: {ENDPOINT_VAR} is not set under CI=true; {HOW_TO_RUN}")
        }
        _ => {
            eprintln!("{test}: skipped, {ENDPOINT_VAR} is not set; to run it, {HOW_TO_RUN}");
            None
        }
    }
}

/// The moto endpoint ([`endpoint`]), or a `return` from the calling test when there is none:
/// skips the test, or fails it under CI.
#[macro_export]
macro_rules! moto_endpoint {
    ($test:expr) => {
        match $crate::moto::endpoint($test) {
            Some(endpoint) => endpoint,
            None => return,
        }
    };
}

/// Credentials moto accepts (it accepts any).
pub fn credentials() -> Credentials {
    Credentials::new(
        "cryptomon-test",
        "cryptomon-test",
        None,
        None,
        "cryptomon-tests",
    )
}

/// An SDK config for `endpoint` with fixed test credentials and region, the way
/// `AWS_ENDPOINT_URL`, `AWS_REGION` and `AWS_ACCESS_KEY_ID` would set it.
pub async fn sdk_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(credentials())
        .load()
        .await
}

/// A bucket name no other test uses: tests share one moto server and run in parallel.
pub fn unique_bucket(hint: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let hint: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "cm-{}-{}-{}-{nanos:x}",
        hint.trim_matches('-'),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new, empty bucket on `endpoint` and a store at `s3://bucket/prefix` in it.
pub async fn fresh_store(endpoint: &str, hint: &str, prefix: &str) -> S3Store {
    let bucket = unique_bucket(hint);
    let config = sdk_config(endpoint).await;
    let store = S3Store::from_sdk_config(&config, S3Location::new(&bucket, prefix).unwrap());
    store
        .client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot create bucket {bucket} on {endpoint}: {e:?}"));
    store
}

/// Another store in the same bucket, at another prefix.
pub async fn store_at(endpoint: &str, bucket: &str, prefix: &str) -> S3Store {
    let config = sdk_config(endpoint).await;
    S3Store::from_sdk_config(&config, S3Location::new(bucket, prefix).unwrap())
}
