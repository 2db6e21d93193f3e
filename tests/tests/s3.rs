//! `S3Store` on the wire: against a moto S3 server on loopback (`CRYPTOMON_TEST_S3_ENDPOINT`,
//! see `cryptomon_tests::moto`), and against a fake endpoint for the errors moto will not
//! produce (denied access, throttling).

use cryptomon_core::pipeline::TransformOptions;
use std::sync::Arc;

use bytes::Bytes;
use cryptomon_core::{
    Error, Fetch, FsStore, PolarsAggregator, PutMode, S3Location, S3Store, Source, SourceName,
    Store, StoreExt, Tick, Version, pipeline,
};
use cryptomon_mock::SyntheticSource;
use cryptomon_tests::fake_s3::FakeS3;
use cryptomon_tests::{moto, moto_endpoint};

fn body(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

#[tokio::test]
async fn s3_get_put_and_versions_on_moto() {
    let endpoint = moto_endpoint!("s3_get_put_and_versions_on_moto");
    let store = moto::fresh_store(&endpoint, "getput", "data/v1").await;
    assert_eq!(
        store.to_string(),
        format!("s3://{}/data/v1", store.location().bucket())
    );

    assert!(store.get("raw/a.json").await.unwrap().is_none());
    let v1 = store.put("raw/a.json", body("one")).await.unwrap();
    let got = store.get("raw/a.json").await.unwrap().unwrap();
    assert_eq!(got.body, body("one"));
    assert_eq!(got.version, v1);

    // The key is relative to the prefix inside the bucket.
    let head = store
        .client()
        .head_object()
        .bucket(store.location().bucket())
        .key("data/v1/raw/a.json")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(3));
    assert_eq!(head.content_type(), Some("application/json"));

    // If-None-Match: a 304 answers NotModified; a stale version gets the body.
    assert!(matches!(
        store.get_opts("raw/a.json", Some(&v1)).await.unwrap(),
        Fetch::NotModified
    ));
    let v2 = store.put("raw/a.json", body("two")).await.unwrap();
    assert_ne!(v1, v2);
    match store.get_opts("raw/a.json", Some(&v1)).await.unwrap() {
        Fetch::Found(o) => {
            assert_eq!(o.body, body("two"));
            assert_eq!(o.version, v2);
        }
        other => panic!("expected the new body, got {other:?}"),
    }
    assert!(matches!(
        store.get_opts("raw/missing.json", Some(&v1)).await.unwrap(),
        Fetch::Missing
    ));

    // Keys that could not be stored anywhere are refused before any request.
    for key in ["", "../x", "a//b", "/abs"] {
        assert!(
            matches!(store.get(key).await, Err(Error::InvalidKey { .. })),
            "{key:?}"
        );
        assert!(
            matches!(
                store.put(key, body("x")).await,
                Err(Error::InvalidKey { .. })
            ),
            "{key:?}"
        );
    }
}

#[tokio::test]
async fn s3_conditional_writes_on_moto() {
    let endpoint = moto_endpoint!("s3_conditional_writes_on_moto");
    let store = moto::fresh_store(&endpoint, "conditional", "").await;

    // Create = If-None-Match: *.
    assert!(
        store
            .put_if_absent("raw/t.json", body("first"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_if_absent("raw/t.json", body("second"))
            .await
            .unwrap()
    );
    let err = store
        .put_opts("raw/t.json", body("third"), PutMode::Create)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::AlreadyExists { ref key } if key == "raw/t.json"),
        "{err}"
    );
    let current = store.get("raw/t.json").await.unwrap().unwrap();
    assert_eq!(
        current.body,
        body("first"),
        "a refused create changes nothing"
    );

    // Update = If-Match: the version read.
    let v2 = store
        .put_opts(
            "raw/t.json",
            body("updated"),
            PutMode::Update(current.version.clone()),
        )
        .await
        .unwrap();
    let err = store
        .put_opts(
            "raw/t.json",
            body("stale writer"),
            PutMode::Update(current.version.clone()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Precondition { .. }), "{err}");
    assert!(
        err.is_retryable(),
        "a lost race is retried after a fresh read"
    );
    let now = store.get("raw/t.json").await.unwrap().unwrap();
    assert_eq!((now.body, now.version), (body("updated"), v2));

    // Update of a key that is not there: the version expected is not there either.
    let err = store
        .put_opts(
            "raw/none.json",
            body("x"),
            PutMode::Update(Version("\"nope\"".into())),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Precondition { .. }), "{err}");
    assert!(store.get("raw/none.json").await.unwrap().is_none());
}

#[tokio::test]
async fn s3_concurrent_creates_have_one_winner_on_moto() {
    let endpoint = moto_endpoint!("s3_concurrent_creates_have_one_winner_on_moto");
    let store = Arc::new(moto::fresh_store(&endpoint, "race", "p").await);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .put_if_absent("raw/race.json", body(&format!("writer {i}")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap());
    }
    assert_eq!(winners, 1);
}

#[tokio::test]
async fn s3_list_paginates_past_1000_keys_on_moto() {
    let endpoint = moto_endpoint!("s3_list_paginates_past_1000_keys_on_moto");
    let store = Arc::new(moto::fresh_store(&endpoint, "paging", "deep/prefix").await);
    // 1,203 keys: two full pages of S3's 1,000-key maximum would hide a missing second request.
    let mut want: Vec<String> = (0..1203)
        .map(|i| format!("raw/source=s{}/k{i:05}.json", i % 3))
        .collect();
    let writes = futures_like_buffered(&want, Arc::clone(&store)).await;
    assert_eq!(writes, want.len());
    // A key beside the prefix and one of another store in the bucket are not listed.
    store.put("rawish.json", body("x")).await.unwrap();
    let other = moto::store_at(&endpoint, store.location().bucket(), "deep").await;
    other.put("raw/outside.json", body("x")).await.unwrap();

    want.sort();
    let listed = store.list("raw/").await.unwrap();
    assert_eq!(listed.len(), 1203);
    assert_eq!(listed, want, "complete and sorted");

    let s1: Vec<String> = want
        .iter()
        .filter(|k| k.starts_with("raw/source=s1/"))
        .cloned()
        .collect();
    assert_eq!(store.list("raw/source=s1/").await.unwrap(), s1);
    assert_eq!(store.list("").await.unwrap().len(), 1204);
    assert!(store.list("nothing/").await.unwrap().is_empty());
}

/// Writes every key (body = key) with 32 requests in flight; returns how many were written.
async fn futures_like_buffered(keys: &[String], store: Arc<S3Store>) -> usize {
    let mut written = 0;
    for chunk in keys.chunks(32) {
        let tasks: Vec<_> = chunk
            .iter()
            .map(|k| {
                let (store, k) = (Arc::clone(&store), k.clone());
                tokio::spawn(async move { store.put(&k, Bytes::from(k.clone())).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
            written += 1;
        }
    }
    written
}

#[tokio::test]
async fn s3_prefixes_isolate_stores_in_one_bucket_on_moto() {
    let endpoint = moto_endpoint!("s3_prefixes_isolate_stores_in_one_bucket_on_moto");
    let a = moto::fresh_store(&endpoint, "isolate", "a").await;
    let b = moto::store_at(&endpoint, a.location().bucket(), "b").await;
    a.put("raw/x.json", body("from a")).await.unwrap();
    assert!(b.get("raw/x.json").await.unwrap().is_none());
    assert!(b.list("").await.unwrap().is_empty());
    assert_eq!(a.list("").await.unwrap(), ["raw/x.json"]);
}

#[tokio::test]
async fn s3_missing_bucket_is_a_clear_permanent_error_on_moto() {
    let endpoint = moto_endpoint!("s3_missing_bucket_is_a_clear_permanent_error_on_moto");
    let bucket = moto::unique_bucket("never-created");
    let store = moto::store_at(&endpoint, &bucket, "p").await;
    let errors = [
        (
            "get",
            store.get("raw/a.json").await.map(|_| ()).unwrap_err(),
        ),
        (
            "put",
            store
                .put("raw/a.json", body("x"))
                .await
                .map(|_| ())
                .unwrap_err(),
        ),
        ("list", store.list("raw/").await.map(|_| ()).unwrap_err()),
    ];
    for (op, err) in errors {
        let message = err.to_string();
        assert!(!err.is_retryable(), "{op}: {message}");
        assert!(message.contains("NoSuchBucket"), "{op}: {message}");
        assert!(
            message.contains(&format!("s3://{bucket}/p/raw/")),
            "{op}: {message}"
        );
        assert!(message.contains(&format!("store {op}")), "{op}: {message}");
    }
}

/// A store on a fake endpoint that answers every request with `status` and `code`; the SDK's
/// retries are off so the answer reaches the store unchanged and the test is quick.
async fn store_on_fake(fake: &FakeS3) -> S3Store {
    fake.store("s3://market-data/prod").await
}

#[tokio::test]
async fn s3_denied_access_is_permanent_and_names_the_permission() {
    let fake = FakeS3::start(403, "AccessDenied").await;
    let store = store_on_fake(&fake).await;
    let err = store.get("aggregates/summary.json").await.unwrap_err();
    let message = err.to_string();
    assert!(!err.is_retryable(), "{message}");
    for needle in [
        "store get of \"aggregates/summary.json\"",
        "s3://market-data/prod/aggregates/summary.json",
        "AccessDenied (HTTP 403)",
        "s3:GetObject",
        "missing key when the caller may not s3:ListBucket",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message}");
    }
    let err = store.put("raw/a.json", body("x")).await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("s3:PutObject"), "{err}");
    let err = store.list("raw/").await.unwrap_err();
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("s3:ListBucket"), "{err}");
}

#[tokio::test]
async fn s3_throttling_and_server_errors_are_retryable() {
    for (status, code) in [
        (503, "SlowDown"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ] {
        let fake = FakeS3::start(status, code).await;
        let store = store_on_fake(&fake).await;
        for err in [
            store.get("raw/a.json").await.map(|_| ()).unwrap_err(),
            store
                .put("raw/a.json", body("x"))
                .await
                .map(|_| ())
                .unwrap_err(),
            store.list("raw/").await.map(|_| ()).unwrap_err(),
        ] {
            let message = err.to_string();
            assert!(err.is_retryable(), "{status} {code}: {message}");
            assert!(message.contains(code), "{message}");
            assert!(message.contains("s3://market-data/prod/raw/"), "{message}");
        }
    }
}

#[tokio::test]
async fn s3_unreachable_endpoint_is_retryable() {
    // A port that was just free: nothing listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(moto::credentials())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let store = S3Store::from_sdk_config(&config, S3Location::parse("s3://b-1/p").unwrap());
    let err = store.get("raw/a.json").await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("s3://b-1/p/raw/a.json"), "{err}");
}

/// Two deterministic markets of three pairs each, with volumes and no gaps.
fn tick_sources() -> Vec<Arc<dyn Source>> {
    ["alpha", "beta"]
        .into_iter()
        .map(|name| {
            let market = SyntheticSource::new(SourceName::new(name).unwrap(), 3, 7);
            Arc::new(market.with_null_probability(0.0)) as Arc<dyn Source>
        })
        .collect()
}

/// Collects `ticks` minutes then transforms; returns the summary's bytes.
async fn collect_and_transform(store: &dyn Store, ticks: i64) -> Vec<u8> {
    let start = Tick::parse("2026-11-27T22:00:00Z").unwrap();
    let sources = tick_sources();
    for m in 0..ticks {
        for (name, result) in pipeline::collect_all(&sources, store, start.add_secs(m * 60)).await {
            let report = result.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(report.written);
        }
    }
    let report = pipeline::transform(
        store,
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.series, 6);
    assert_eq!(report.samples, 6 * ticks as usize);
    store
        .get("aggregates/summary.json")
        .await
        .unwrap()
        .unwrap()
        .body
        .to_vec()
}

#[tokio::test]
async fn s3_collect_and_transform_match_a_directory_on_moto() {
    let endpoint = moto_endpoint!("s3_collect_and_transform_match_a_directory_on_moto");
    let s3 = moto::fresh_store(&endpoint, "pipeline", "cm").await;
    let dir = tempfile::tempdir().unwrap();
    let fs = FsStore::open(dir.path()).unwrap();

    let on_s3 = collect_and_transform(&s3, 75).await;
    let on_dir = collect_and_transform(&fs, 75).await;
    assert_eq!(
        String::from_utf8(on_s3).unwrap(),
        String::from_utf8(on_dir).unwrap(),
        "the same snapshots give the same summary on S3 and on a directory"
    );
    assert_eq!(s3.list("").await.unwrap(), fs.list("").await.unwrap());

    // A repeated collection of a stored tick writes nothing.
    let tick = Tick::parse("2026-11-27T22:10:00Z").unwrap();
    let report = pipeline::collect(tick_sources()[0].as_ref(), &s3, tick)
        .await
        .unwrap();
    assert!(!report.written);

    // The window state reads back the same from both.
    let (w_s3, w_fs) = (
        pipeline::read_window(&s3).await.unwrap().unwrap(),
        pipeline::read_window(&fs).await.unwrap().unwrap(),
    );
    assert_eq!(w_s3.len(), w_fs.len());
    assert_eq!(w_s3.series(), w_fs.series());
}

#[tokio::test]
async fn s3_store_passes_the_conformance_suite_on_moto() {
    let endpoint = moto_endpoint!("s3_store_passes_the_conformance_suite_on_moto");
    let store = moto::fresh_store(&endpoint, "conformance", "suite").await;
    cryptomon_mock::run_conformance(&store).await;
    // And at the root of a bucket, with no prefix.
    let root = moto::fresh_store(&endpoint, "conformance-root", "").await;
    cryptomon_mock::run_conformance(&root).await;
}
