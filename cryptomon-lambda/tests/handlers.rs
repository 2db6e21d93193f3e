//! The handlers driven with real Lambda event JSON (`tests/events/`) over a `MemoryStore`.

mod common;

use std::sync::Arc;

use common::{event, failing, invoke, market, seeded_store};
use cryptomon_core::{Store, StoreExt, Tick, pipeline};
use cryptomon_lambda::{Collector, HandlerError, Transformer, TransformerOutput};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::json;

fn collector<S: Store + 'static>(
    store: &Arc<S>,
    sources: Vec<cryptomon_core::DynSource>,
) -> Collector {
    Collector::new(store.clone(), sources, 60)
}

fn assert_non_retryable(err: &HandlerError, needle: &str) {
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
    assert!(err.message().contains(needle), "{needle:?} not in {err}");
}

#[tokio::test]
async fn collector_takes_a_scheduled_event_and_is_idempotent() {
    let store = Arc::new(MemoryStore::new());
    let c = collector(&store, vec![market("alpha"), market("beta")]);
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
    let c = collector(&store, vec![market("alpha")]);
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
    let c = collector(&store, vec![market("alpha")]);
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
    let c = collector(&store, vec![market("alpha")])
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
    let c = collector(&store, vec![market("alpha"), failing("beta", true)]);
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
            vec![failing("beta", retryable), failing("gamma", false)],
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

/// A throttled summary write fails the transform as retryable and leaves readers the previous
/// summary. Regression test for a bug found on the `s3` branch: the retry then found nothing new
/// and kept the stale summary. The transform now writes the summary first and checks, on a run
/// with nothing new, that the summary is the one written with the state.
#[tokio::test]
async fn a_retried_transform_after_a_throttled_summary_write_brings_it_up_to_date() {
    let store = Arc::new(FaultyStore::new(
        Arc::try_unwrap(seeded_store().await).unwrap(),
    ));
    let t = Transformer::new(store.clone(), None);
    t.handle(invoke(json!({}))).await.unwrap();
    let previous = pipeline::read_summary(store.inner())
        .await
        .unwrap()
        .unwrap();

    // A new tick arrives, then S3 throttles the summary write.
    collector(&store, vec![market("alpha")])
        .handle(invoke(json!({"tick": "2026-11-27T23:49:00Z"})))
        .await
        .unwrap();
    store.add_fault(Fault::key_prefix("aggregates/summary").on(Op::Put));
    let err = t.handle(invoke(json!({}))).await.unwrap_err();
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(err.message().contains("aggregates/summary"), "{err}");
    let still = pipeline::read_summary(store.inner())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        still.as_of, previous.as_of,
        "readers still get the previous summary"
    );

    // The state machine's retry then succeeds.
    store.clear_faults();
    t.handle(invoke(json!({}))).await.unwrap();
    let now = pipeline::read_summary(store.inner())
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
