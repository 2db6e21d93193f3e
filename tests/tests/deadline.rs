//! A transform with a deadline (a Lambda invocation's, less the time to finish) stops reading
//! new snapshots when it comes, writes what it has, and leaves the rest in the store for the
//! next run: nothing is lost, and the run after ends where one unhurried run would; also when
//! the run was told of the snapshots (the collector's hand-off) and the next one is not.

use std::time::Duration;

use bytes::Bytes;
use chrono::TimeZone;
use cryptomon_core::keys::raw_key;
use cryptomon_core::pipeline::{self, TransformMode, TransformOptions};
use cryptomon_core::{Pair, PolarsAggregator, Quote, Snapshot, SourceName, Store, StoreExt, Tick};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};

const T0: i64 = 1_796_040_000;
const MINUTES: i64 = 120;
/// How long each read of a snapshot takes: slow enough that the reads cannot all finish by the
/// deadline below.
const READ_DELAY: Duration = Duration::from_millis(40);

async fn put_snapshot(store: &MemoryStore, source: &str, minute: i64) {
    let source = SourceName::new(source).unwrap();
    let tick = Tick::from_unix(T0 + minute * 60);
    let quote = Quote::new(Pair::new("BTC-USD").unwrap(), 100.0 + (minute % 7) as f64);
    let at = chrono::Utc.timestamp_opt(tick.unix(), 0).unwrap();
    let snapshot = Snapshot::new(source.clone(), tick, at, vec![quote], serde_json::json!({}));
    store
        .put(&raw_key(&source, tick), Bytes::from(snapshot.to_json()))
        .await
        .unwrap();
}

fn options(deadline: Option<tokio::time::Instant>) -> TransformOptions {
    TransformOptions {
        now: Some(Tick::from_unix(T0 + MINUTES * 60)),
        deadline,
        ..TransformOptions::default()
    }
}

/// `options`, told of `keys` and trusting hand-offs for a day: it lists only if it must.
fn told(deadline: Option<tokio::time::Instant>, keys: Vec<String>) -> TransformOptions {
    TransformOptions {
        handoff: Some(keys),
        reconcile_every: Duration::from_secs(86_400),
        ..options(deadline)
    }
}

async fn summary(store: &dyn Store) -> serde_json::Value {
    let body = store
        .get("aggregates/summary.json")
        .await
        .unwrap()
        .unwrap()
        .body;
    let mut summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
    summary.as_object_mut().unwrap().remove("generated_at");
    summary
}

#[tokio::test]
async fn a_run_that_meets_its_deadline_leaves_the_rest_for_the_next() {
    meets_its_deadline(false).await;
}

/// The hurried run was told of the backlog; the next is told of nothing new, so only a listing
/// can find what was left: the deferral makes it list.
#[tokio::test]
async fn a_told_run_that_meets_its_deadline_makes_the_next_list() {
    meets_its_deadline(true).await;
}

async fn meets_its_deadline(handed_off: bool) {
    let store = FaultyStore::new(MemoryStore::new())
        .with_fault(Fault::key_prefix("raw/").on(Op::Get).slowed_by(READ_DELAY));
    let memory = store.inner();
    put_snapshot(memory, "alpha", 0).await;
    let aggregator = PolarsAggregator::default();
    let first = pipeline::transform(&store, &aggregator, &options(None))
        .await
        .unwrap();
    assert_eq!((first.new_objects, first.deferred), (1, 0));

    // Two hours of two sources arrive at once (a backlog after an outage).
    for minute in 1..MINUTES {
        for source in ["alpha", "beta"] {
            put_snapshot(memory, source, minute).await;
        }
    }
    let backlog = usize::try_from(2 * (MINUTES - 1)).unwrap();
    let deadline = tokio::time::Instant::now() + READ_DELAY * 3;
    let (hurried_options, next_options) = if handed_off {
        let keys: Vec<String> = memory
            .list("raw/")
            .await
            .unwrap()
            .into_iter()
            .filter(|k| !k.ends_with(&format!("{}.json", Tick::from_unix(T0).compact())))
            .collect();
        assert_eq!(keys.len(), backlog);
        (told(Some(deadline), keys), told(None, Vec::new()))
    } else {
        (options(Some(deadline)), options(None))
    };
    let hurried = pipeline::transform(&store, &aggregator, &hurried_options)
        .await
        .unwrap();
    assert_eq!(hurried.reconciled, !handed_off);
    assert!(
        hurried.deferred > 0 && hurried.new_objects + hurried.deferred == backlog,
        "read {} and deferred {} of {backlog}",
        hurried.new_objects,
        hurried.deferred
    );
    assert!(hurried.writes > 0, "what was read is written");

    let next = pipeline::transform(&store, &aggregator, &next_options)
        .await
        .unwrap();
    assert!(next.reconciled);
    assert_eq!(
        (next.new_objects, next.deferred),
        (hurried.deferred, 0),
        "the next run takes in exactly what was left"
    );

    // The same snapshots transformed in full by a run with no deadline.
    let full = MemoryStore::new();
    for key in memory.list("raw/").await.unwrap() {
        let body = memory.get(&key).await.unwrap().unwrap().body;
        full.put(&key, body).await.unwrap();
    }
    let options_full = TransformOptions {
        mode: TransformMode::Full,
        ..options(None)
    };
    pipeline::transform(&full, &aggregator, &options_full)
        .await
        .unwrap();
    assert_eq!(summary(memory).await, summary(&full).await);
}
