//! The handlers driven with real Lambda event JSON (`tests/events/`) over a `MemoryStore`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Duration;
use cryptomon_core::{
    DynSource, Error, Fetch, Fetched, Pair, PutMode, Quote, Result, Source, SourceName, Store,
    StoreExt, Tick, Version, pipeline,
};
use cryptomon_lambda::{Collector, HandlerError, Transformer, TransformerOutput};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn invoke(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A market whose prices follow the tick; `failing` makes it fail (retryably or not).
#[derive(Debug)]
struct TestSource {
    name: SourceName,
    failure: Option<bool>,
}

impl TestSource {
    fn ok(name: &str) -> DynSource {
        Arc::new(TestSource {
            name: SourceName::new(name).unwrap(),
            failure: None,
        })
    }

    fn failing(name: &str, retryable: bool) -> DynSource {
        Arc::new(TestSource {
            name: SourceName::new(name).unwrap(),
            failure: Some(retryable),
        })
    }
}

#[async_trait]
impl Source for TestSource {
    fn name(&self) -> &SourceName {
        &self.name
    }

    async fn fetch(&self, tick: Tick) -> Result<Fetched> {
        if let Some(retryable) = self.failure {
            return Err(Error::Source {
                source_name: self.name.to_string(),
                message: "HTTP 503 from the exchange".into(),
                retryable,
            });
        }
        let minute = tick.to_datetime().timestamp() / 60;
        let mut quote = Quote::new(
            Pair::new("BTC-USD").unwrap(),
            90_000.0 + (minute % 11) as f64 * 10.0,
        );
        quote.volume_24h = Some(1000.0);
        Ok(Fetched {
            quotes: vec![quote],
            raw: json!({}),
            fetched_at: tick.to_datetime() + Duration::milliseconds(300),
            problems: Vec::new(),
        })
    }
}

fn collector(store: &Arc<MemoryStore>, sources: Vec<DynSource>) -> Collector {
    Collector::new(store.clone(), sources, 60)
}

fn assert_non_retryable(err: &HandlerError, needle: &str) {
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
    assert!(err.message().contains(needle), "{needle:?} not in {err}");
}

#[tokio::test]
async fn collector_takes_a_scheduled_event_and_is_idempotent() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(
        &store,
        vec![TestSource::ok("alpha"), TestSource::ok("beta")],
    );
    let out = c
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    assert_eq!(out.tick, Tick::parse("2026-11-27T23:48:00Z").unwrap());
    assert_eq!(
        out.keys,
        [
            "raw/source=alpha/date=2026-11-27/20261127T234800Z.json",
            "raw/source=beta/date=2026-11-27/20261127T234800Z.json"
        ]
    );
    assert_eq!(out.written, 2);
    assert_eq!(store.keys(), out.keys);

    // EventBridge delivers at least once: the duplicate writes nothing and says so.
    let again = c
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    assert_eq!((again.keys, again.written), (out.keys, 0));
}

#[tokio::test]
async fn collector_floors_a_step_functions_tick() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(&store, vec![TestSource::ok("alpha")]);
    let out = c
        .handle(invoke(event("stepfunctions-collect.json")))
        .await
        .unwrap();
    assert_eq!(out.tick, Tick::parse("2026-11-27T23:49:00Z").unwrap());
    assert_eq!(
        store.keys(),
        ["raw/source=alpha/date=2026-11-27/20261127T234900Z.json"]
    );
    // The output is what the state machine hands the transformer.
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["tick"], "2026-11-27T23:49:00Z");
    assert_eq!(json["written"], 1);
}

#[tokio::test]
async fn collector_refuses_other_events_as_non_retryable() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(&store, vec![TestSource::ok("alpha")]);
    for (payload, needle) in [
        (event("sqs-message.json"), "\"Records\""),
        (event("apigw-v2-summary.json"), "\"rawPath\""),
        (json!([1, 2]), "got an array"),
        (json!({"tick": 5}), "\"tick\" must be a string"),
        (
            json!({"tick": "yesterday"}),
            "\"yesterday\" is not an RFC 3339 time",
        ),
        (
            json!({"detail-type": "Scheduled Event", "time": "soon"}),
            "malformed scheduled event",
        ),
    ] {
        let err = c.handle(invoke(payload)).await.unwrap_err();
        assert_non_retryable(&err, needle);
        assert!(
            err.message().starts_with("collector: unusable event"),
            "{err}"
        );
    }
    assert!(store.is_empty(), "a refused event writes nothing");
}

/// An event naming a tick far in the future (a forged or skewed invocation) is refused, naming
/// the tick and the tolerance, and writes nothing: that tick would become the window's `as_of`
/// (issue 20). Within the tolerance, the collection goes ahead.
#[tokio::test]
async fn collector_refuses_a_tick_ahead_of_the_clock() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(&store, vec![TestSource::ok("alpha")])
        .with_max_clock_skew(std::time::Duration::from_secs(120));
    let err = c
        .handle(invoke(json!({"tick": "2099-12-31T00:00:00Z"})))
        .await
        .unwrap_err();
    assert_non_retryable(&err, "tick 2099-12-31T00:00:00Z is ");
    assert!(
        err.message().contains("s ahead of the clock") && err.message().contains("at most 120 s"),
        "{err}"
    );
    assert!(store.is_empty(), "a refused event writes nothing");

    let soon = Tick::floor(chrono::Utc::now(), 60).add_secs(60);
    let out = c
        .handle(invoke(json!({"tick": soon.to_string()})))
        .await
        .unwrap();
    assert_eq!((out.tick, out.written), (soon, 1));
}

#[tokio::test]
async fn collector_keeps_what_it_can_and_fails_only_when_nothing_was_collected() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(
        &store,
        vec![TestSource::ok("alpha"), TestSource::failing("beta", true)],
    );
    let out = c
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    assert_eq!(out.written, 1);
    assert_eq!(out.failed.len(), 1);
    assert_eq!(out.failed[0].source.as_str(), "beta");
    assert!(out.failed[0].retryable);

    for (retryable, want) in [(true, "Retryable"), (false, "NonRetryable")] {
        let c = collector(
            &Arc::new(MemoryStore::new()),
            vec![
                TestSource::failing("beta", retryable),
                TestSource::failing("gamma", false),
            ],
        );
        let err = c
            .handle(invoke(event("scheduled-event.json")))
            .await
            .unwrap_err();
        assert!(err.message().contains("every source failed"), "{err}");
        assert!(
            err.message().contains("beta") && err.message().contains("gamma"),
            "{err}"
        );
        // It crosses the Lambda boundary with the class the state machine retries on.
        assert_eq!(Diagnostic::from(err).error_type, want);
    }
}

async fn seeded_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let c = collector(
        &store,
        vec![TestSource::ok("alpha"), TestSource::ok("beta")],
    );
    let t0 = Tick::parse("2026-11-27T23:00:00Z").unwrap();
    for m in 0..=48 {
        let tick = t0.add_secs(m * 60);
        c.handle(invoke(json!({"tick": tick.to_string()})))
            .await
            .unwrap();
    }
    store
}

#[tokio::test]
async fn transformer_runs_after_the_collector() {
    let store = seeded_store().await;
    let t = Transformer::new(store.clone(), None);
    let out = t
        .handle(invoke(event("stepfunctions-transform.json")))
        .await
        .unwrap();
    match out {
        TransformerOutput::Transformed {
            as_of,
            series,
            samples,
            writes,
            ..
        } => {
            assert_eq!(as_of, Tick::parse("2026-11-27T23:48:00Z").unwrap());
            // The first run writes the summary, the window's base and its head.
            assert_eq!((series, samples, writes), (2, 98, 3));
        }
        other => panic!("expected a transform, got {other:?}"),
    }
    let summary = pipeline::read_summary(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.series.len(), 2);
    // `{}` is a manual run.
    assert!(matches!(
        t.handle(invoke(json!({}))).await.unwrap(),
        TransformerOutput::Transformed { .. }
    ));
}

#[tokio::test]
async fn transformer_acts_on_raw_notifications_only() {
    let store = seeded_store().await;
    let t = Transformer::new(
        store.clone(),
        Some(("cryptomon-databucket-example".into(), "prod/".into())),
    );
    let out = t
        .handle(invoke(event("s3-object-created.json")))
        .await
        .unwrap();
    assert!(
        matches!(out, TransformerOutput::Transformed { series: 2, .. }),
        "{out:?}"
    );

    // Its own writes under aggregates/ must not start another transform.
    let before = store.get("aggregates/summary.json").await.unwrap().unwrap();
    let out = t
        .handle(invoke(event("s3-object-created-aggregates.json")))
        .await
        .unwrap();
    match out {
        TransformerOutput::Ignored { reason } => assert!(reason.contains("prod/raw/"), "{reason}"),
        other => panic!("expected the event to be ignored, got {other:?}"),
    }
    let after = store.get("aggregates/summary.json").await.unwrap().unwrap();
    assert_eq!(before.version, after.version, "nothing was written");

    // A store at another prefix of the same bucket ignores this one's snapshots.
    let elsewhere = Transformer::new(
        store.clone(),
        Some(("cryptomon-databucket-example".into(), "staging/".into())),
    );
    assert!(matches!(
        elsewhere
            .handle(invoke(event("s3-object-created.json")))
            .await
            .unwrap(),
        TransformerOutput::Ignored { .. }
    ));
}

#[tokio::test]
async fn transformer_refuses_other_events_and_buckets() {
    let store = seeded_store().await;
    let t = Transformer::new(
        store.clone(),
        Some(("another-bucket".into(), "prod/".into())),
    );
    let err = t
        .handle(invoke(event("s3-object-created.json")))
        .await
        .unwrap_err();
    assert_non_retryable(&err, "\"cryptomon-databucket-example\"");
    for (payload, needle) in [
        (event("sqs-message.json"), "records from \"aws:sqs\""),
        (event("scheduled-event.json"), "\"detail-type\""),
        (json!("transform"), "got a string"),
        (
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            "malformed S3 notification",
        ),
    ] {
        let err = t.handle(invoke(payload)).await.unwrap_err();
        assert_non_retryable(&err, needle);
    }
    assert!(
        store
            .get("aggregates/summary.json")
            .await
            .unwrap()
            .is_none()
    );
}

/// A store whose puts under `aggregates/` fail like a throttled S3 while `fail` is set.
#[derive(Debug)]
struct ThrottledAggregates {
    inner: Arc<MemoryStore>,
    fail: AtomicBool,
}

impl std::fmt::Display for ThrottledAggregates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "throttled {}", self.inner)
    }
}

#[async_trait]
impl Store for ThrottledAggregates {
    async fn get_opts(&self, key: &str, v: Option<&Version>) -> Result<Fetch> {
        self.inner.get_opts(key, v).await
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        if self.fail.load(Ordering::SeqCst) && key.starts_with("aggregates/summary") {
            return Err(Error::Store {
                op: "put",
                key: key.into(),
                retryable: true,
                source: "s3://b/aggregates/summary.json: SlowDown (HTTP 503)".into(),
            });
        }
        self.inner.put_opts(key, body, mode).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }
}

#[tokio::test]
async fn a_throttled_transform_is_retryable_and_keeps_the_previous_summary() {
    let inner = seeded_store().await;
    let store = Arc::new(ThrottledAggregates {
        inner: inner.clone(),
        fail: AtomicBool::new(false),
    });
    let t = Transformer::new(store.clone(), None);
    t.handle(invoke(json!({}))).await.unwrap();
    let previous = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();

    // A new tick arrives, then S3 throttles the summary write.
    collector(&inner, vec![TestSource::ok("alpha")])
        .handle(invoke(json!({"tick": "2026-11-27T23:49:00Z"})))
        .await
        .unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let err = t.handle(invoke(json!({}))).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(err.message().contains("SlowDown"), "{err}");
    let still = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.as_of, previous.as_of,
        "readers still get the previous summary"
    );
}

/// Regression test for a bug found on the `s3` branch: after a failed summary write, the retry
/// found nothing new and kept the stale summary. The transform now writes the summary first and
/// checks, on a run with nothing new, that the summary is the one written with the state.
#[tokio::test]
async fn a_retried_transform_after_a_throttled_summary_write_brings_it_up_to_date() {
    let inner = seeded_store().await;
    let store = Arc::new(ThrottledAggregates {
        inner: inner.clone(),
        fail: AtomicBool::new(false),
    });
    let t = Transformer::new(store.clone(), None);
    t.handle(invoke(json!({}))).await.unwrap();
    let previous = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();

    // A new tick arrives, then S3 throttles the summary write.
    collector(&inner, vec![TestSource::ok("alpha")])
        .handle(invoke(json!({"tick": "2026-11-27T23:49:00Z"})))
        .await
        .unwrap();
    store.fail.store(true, Ordering::SeqCst);
    let err = t.handle(invoke(json!({}))).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(err.message().contains("SlowDown"), "{err}");
    let still = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.as_of, previous.as_of,
        "readers still get the previous summary"
    );

    // The state machine's retry then succeeds.
    store.fail.store(false, Ordering::SeqCst);
    t.handle(invoke(json!({}))).await.unwrap();
    let now = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.as_of, Tick::parse("2026-11-27T23:49:00Z").unwrap());
}

/// How long each snapshot read takes in the deadline test: a slow network.
const SLOW_READ: std::time::Duration = std::time::Duration::from_millis(200);

#[tokio::test]
async fn transformer_writes_what_it_read_by_its_deadline_and_leaves_the_rest() {
    let memory = Arc::try_unwrap(seeded_store().await).unwrap();
    let slow = FaultyStore::new(memory)
        .with_fault(Fault::key_prefix("raw/").on(Op::Get).slowed_by(SLOW_READ));
    let t = Transformer::new(Arc::new(slow), None);
    // The invocation ends just after the transformer's finishing margin: reading must stop
    // almost at once.
    let left = cryptomon_lambda::transformer::FINISH_MARGIN + SLOW_READ;
    let context = cryptomon_lambda::budget::context_ending_in(left);
    let started = std::time::Instant::now();
    let out = t
        .handle(LambdaEvent::new(json!({}), context))
        .await
        .unwrap();
    assert!(started.elapsed() < left, "{:?}", started.elapsed());
    let TransformerOutput::Transformed {
        deferred, writes, ..
    } = out
    else {
        panic!("expected a transform, got {out:?}");
    };
    assert!(
        deferred > 0 && writes > 0,
        "deferred {deferred}, writes {writes}"
    );
    // The next invocation, with time to spare, takes in exactly what was left.
    let out = t.handle(invoke(json!({}))).await.unwrap();
    let TransformerOutput::Transformed {
        deferred: 0,
        samples,
        ..
    } = out
    else {
        panic!("expected a transform with nothing deferred, got {out:?}");
    };
    assert_eq!(samples, 98, "every snapshot is in the window");
}
