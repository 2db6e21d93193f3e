//! Fault injection with `cryptomon-mock`'s failing wrappers: a store failing on each call of
//! `collect` and `transform` in turn, a crash after the k-th write, and sources that fail,
//! hang or answer garbage. After each: no raw snapshot lost or corrupted, the aggregates either
//! the previous or the new ones (never a mix), and the next clean run recovers.

use cryptomon_core::pipeline::TransformOptions;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cryptomon_core::keys::SUMMARY_KEY;
use cryptomon_core::pipeline::{self, TransformMode};
use cryptomon_core::{PolarsAggregator, Source, SourceName, Store, StoreExt, Tick};
use cryptomon_mock::{
    Fault, FaultySource, FaultyStore, MemoryStore, Op, SourceFault, SyntheticSource,
};

type Objects = BTreeMap<String, Bytes>;

fn t(m: i64) -> Tick {
    Tick::parse("2026-11-27T12:00:00Z")
        .unwrap()
        .add_secs(60 * m)
}

fn market() -> Vec<SyntheticSource> {
    ["binance", "kraken"]
        .iter()
        .enumerate()
        .map(|(i, n)| SyntheticSource::new(SourceName::new(n).unwrap(), 4, 7 + i as u64))
        .collect()
}

async fn dump(store: &MemoryStore) -> Objects {
    let mut out = Objects::new();
    for key in store.keys() {
        out.insert(key.clone(), store.get(&key).await.unwrap().unwrap().body);
    }
    out
}

async fn load(objects: &Objects) -> MemoryStore {
    let store = MemoryStore::new();
    for (k, v) in objects {
        store.put(k, v.clone()).await.unwrap();
    }
    store
}

fn raw(objects: &Objects) -> Objects {
    objects
        .iter()
        .filter(|(k, _)| k.starts_with("raw/"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The summary and the window state, decoded (the state's bytes may differ run to run only in
/// encoding, never in content).
async fn aggregates(store: &dyn Store) -> (Option<serde_json::Value>, Option<usize>) {
    let summary = store
        .get(SUMMARY_KEY)
        .await
        .unwrap()
        .map(|o| serde_json::from_slice(&o.body).expect("a stored summary is whole JSON"));
    let window = pipeline::read_window(store).await.unwrap().map(|w| w.len());
    (summary, window)
}

async fn transform(store: &dyn Store) -> cryptomon_core::Result<pipeline::TransformReport> {
    pipeline::transform(
        store,
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
}

/// A store with 30 ticks of two sources, transformed, then one more tick collected: the state
/// "before" the transform under test, and what a clean transform makes of it.
async fn before_and_after() -> (Objects, (Option<serde_json::Value>, Option<usize>)) {
    let store = MemoryStore::new();
    let sources = market();
    for m in 0..30 {
        for s in &sources {
            pipeline::collect(s, &store, t(m)).await.unwrap();
        }
    }
    transform(&store).await.unwrap();
    for s in &sources {
        pipeline::collect(s, &store, t(30)).await.unwrap();
    }
    let before = dump(&store).await;
    transform(&store).await.unwrap();
    let after = aggregates(&store).await;
    (before, after)
}

#[tokio::test]
async fn a_store_failing_on_each_call_of_a_transform_loses_nothing_and_recovers() {
    let (before, after) = before_and_after().await;
    let previous = aggregates(&load(&before).await).await;
    assert_ne!(previous.0, after.0, "the new tick changes the summary");

    // How many store calls a clean transform makes.
    let probe = FaultyStore::new(load(&before).await);
    transform(&probe).await.unwrap();
    let calls = probe.counters().calls();
    assert!(calls >= 5, "{calls}");

    for (n, retryable) in (1..=calls).flat_map(|n| [(n, true), (n, false)]) {
        let store = FaultyStore::new(load(&before).await)
            .with_fault(Fault::nth_call(n).retryable(retryable));
        let result = transform(&store).await;
        let now = aggregates(store.inner()).await;
        // Never a mix: the summary and state are the previous ones or the new ones. (A state
        // written without its summary is allowed: the summary is derived from it, and the next
        // run rewrites it, checked below.)
        assert!(
            now.0 == previous.0 || now.0 == after.0,
            "call {n}: a partial summary"
        );
        assert!(
            now.1 == previous.1 || now.1 == after.1,
            "call {n}: a partial state"
        );
        if result.is_ok() {
            assert_eq!(now, after, "call {n}: Ok but not the new aggregates");
        }
        assert_eq!(
            raw(&dump(store.inner()).await),
            raw(&before),
            "call {n}: raw snapshots changed"
        );
        // The next run, with the store healthy again, ends where a clean run does.
        store.clear_faults();
        transform(&store).await.unwrap();
        assert_eq!(
            aggregates(store.inner()).await,
            after,
            "call {n}: no recovery"
        );
    }
}

#[tokio::test]
async fn a_crash_after_each_write_of_a_transform_recovers() {
    let (before, after) = before_and_after().await;
    let previous = aggregates(&load(&before).await).await;
    for k in 0..3 {
        let store = FaultyStore::new(load(&before).await).with_fault(Fault::crash_after_writes(k));
        let result = transform(&store).await;
        let now = aggregates(store.inner()).await;
        assert!(now.0 == previous.0 || now.0 == after.0, "crash after {k}");
        assert!(now.1 == previous.1 || now.1 == after.1, "crash after {k}");
        if k < 2 {
            assert!(result.is_err(), "crash after {k} writes must surface");
        }
        store.clear_faults();
        transform(&store).await.unwrap();
        assert_eq!(aggregates(store.inner()).await, after, "crash after {k}");
    }
}

#[tokio::test]
async fn a_store_failing_on_each_call_of_collect_writes_whole_snapshots_or_none() {
    let source = &market()[0];
    for op in [Op::Get, Op::Put, Op::List] {
        for lose_response in [false, true] {
            let mut fault = Fault::nth_call(1).on(op);
            if lose_response {
                fault = fault.lose_response();
            }
            let store = FaultyStore::new(MemoryStore::new()).with_fault(fault);
            let first = pipeline::collect(source, &store, t(0)).await;
            let keys = store.inner().keys();
            // Either nothing, or the whole snapshot (a write whose answer was lost).
            for key in &keys {
                let body = store.inner().get(key).await.unwrap().unwrap().body;
                let snapshot: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(snapshot["tick"], "2026-11-27T12:00:00Z");
            }
            assert!(keys.len() <= 1, "{op:?}: {keys:?}");
            // The retry of the tick stores it exactly once.
            store.clear_faults();
            let again = pipeline::collect(source, &store, t(0)).await.unwrap();
            assert_eq!(store.inner().keys().len(), 1, "{op:?}");
            if first.is_ok() {
                assert!(!again.written, "{op:?}: written twice");
            }
        }
    }
}

#[tokio::test]
async fn sources_that_fail_hang_or_answer_garbage_store_nothing_bad() {
    let store = MemoryStore::new();
    let base = || SyntheticSource::new(SourceName::new("kraken").unwrap(), 4, 1);
    let cases: Vec<(&str, SourceFault)> = vec![
        ("fails", SourceFault::Fail { retryable: true }),
        ("NaN price", SourceFault::NanPrice),
        ("duplicate pair", SourceFault::DuplicatePair),
        ("no quotes", SourceFault::NoQuotes),
    ];
    for (what, fault) in cases {
        let source = FaultySource::new(base()).always(fault);
        let err = pipeline::collect(&source, &store, t(0)).await.unwrap_err();
        assert!(!err.to_string().is_empty(), "{what}");
        assert!(store.is_empty(), "{what}: something was stored");
    }
    // A hung source is cut off at the time limit and stores nothing; the others of the tick
    // are not held back.
    let hung: Arc<dyn Source> =
        Arc::new(FaultySource::new(base()).always(SourceFault::Delay(Duration::from_secs(3600))));
    let fine: Arc<dyn Source> = Arc::new(SyntheticSource::new(
        SourceName::new("binance").unwrap(),
        4,
        2,
    ));
    let results =
        pipeline::collect_all_within(&[fine, hung], &store, t(1), Duration::from_millis(300)).await;
    assert!(results[0].1.is_ok());
    let err = results[1].1.as_ref().unwrap_err();
    assert!(
        err.is_retryable() && err.to_string().contains("no answer within"),
        "{err}"
    );
    let keys = store.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains("source=binance"));
    // The next tick with the source answering again is collected normally.
    pipeline::collect(&base(), &store, t(2)).await.unwrap();
    transform(&store).await.unwrap();
}

/// A conditional write whose answer was lost comes back refused on the SDK's retry (412). The
/// transform reads the key back, finds its own bytes, and takes the write as done: it neither
/// runs again nor skips the tick's alert rules (issue 20).
#[tokio::test]
async fn a_lost_answer_to_a_conditional_write_is_taken_as_the_transforms_own() {
    use cryptomon_core::keys::WINDOW_KEY;
    use cryptomon_core::pipeline::Alerting;
    use cryptomon_tests::alert_rules::{SPIKE, rules};

    let alerting = Alerting::new(rules(SPIKE), vec![]);
    for key in [WINDOW_KEY, SUMMARY_KEY] {
        let store = FaultyStore::new(MemoryStore::new());
        for (k, body) in cryptomon_tests::golden::golden_objects() {
            store.inner().put(&k, Bytes::from(body)).await.unwrap();
        }
        store.add_fault(
            Fault::key_prefix(key)
                .on(Op::Put)
                .lose_response()
                .as_conflict(),
        );
        let report = pipeline::transform(
            &store,
            &PolarsAggregator::default(),
            &alerting.options(TransformMode::Incremental),
        )
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(report.attempts, 1, "{key}: not run again");
        assert_eq!(report.alert_error, None, "{key}");
        assert_eq!(
            report.alert_events.len(),
            2,
            "{key}: the golden data's two volume spikes fire at this tick"
        );
        // What was written is what a clean run writes.
        let clean = MemoryStore::new();
        for (k, body) in cryptomon_tests::golden::golden_objects() {
            clean.put(&k, Bytes::from(body)).await.unwrap();
        }
        pipeline::transform(
            &clean,
            &PolarsAggregator::default(),
            &TransformOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            aggregates(store.inner()).await,
            aggregates(&clean).await,
            "{key}"
        );
    }
}
