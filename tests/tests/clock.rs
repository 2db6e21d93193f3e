//! Ticks and clocks: a snapshot dated far in the future is skipped and reported by the
//! transform, never taken in and never deleted, so the window's `as_of` stays within the clock
//! plus its tolerance; a state that took one in before ticks were bounded is rebuilt.

use bytes::Bytes;
use chrono::TimeZone;
use cryptomon_core::keys::raw_key;
use cryptomon_core::pipeline::{self, TransformMode, TransformOptions};
use cryptomon_core::{
    Pair, PolarsAggregator, Quote, Snapshot, SourceName, StoreExt, Tick, TransformReport,
};
use cryptomon_mock::MemoryStore;

const T0: i64 = 1_796_040_000;
const FAR: &str = "2099-12-31T00:00:00Z";

fn snapshot(source: &str, tick: Tick, price: f64) -> (String, Bytes) {
    let source = SourceName::new(source).unwrap();
    let quote = Quote::new(Pair::new("BTC-USD").unwrap(), price);
    let at = chrono::Utc.timestamp_opt(tick.unix(), 0).unwrap();
    let snap = Snapshot::new(source.clone(), tick, at, vec![quote], serde_json::json!({}));
    (raw_key(&source, tick), Bytes::from(snap.to_json()))
}

/// An hour of two sources, and one snapshot of a third dated 2099.
async fn store_with_a_far_future_snapshot() -> (MemoryStore, String, Bytes) {
    let store = MemoryStore::new();
    for m in 0..60 {
        for source in ["alpha", "beta"] {
            let (k, b) = snapshot(source, Tick::from_unix(T0 + m * 60), 100.0 + m as f64);
            store.put(&k, b).await.unwrap();
        }
    }
    let (key, body) = snapshot("gamma", Tick::parse(FAR).unwrap(), 1.0);
    store.put(&key, body.clone()).await.unwrap();
    (store, key, body)
}

async fn run(store: &MemoryStore, now: Tick, mode: TransformMode) -> TransformReport {
    let options = TransformOptions {
        mode,
        now: Some(now),
        ..TransformOptions::default()
    };
    pipeline::transform(store, &PolarsAggregator::default(), &options)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_snapshot_from_the_future_is_skipped_reported_and_kept() {
    let (store, key, body) = store_with_a_far_future_snapshot().await;
    let now = Tick::from_unix(T0 + 59 * 60 + 30);
    for mode in [TransformMode::Full, TransformMode::Incremental] {
        let report = run(&store, now, mode).await;
        assert_eq!(report.as_of, Tick::from_unix(T0 + 59 * 60), "{mode:?}");
        assert_eq!(report.series, 2, "{mode:?}: every real series is served");
        let skipped: Vec<_> = report.skipped.iter().filter(|s| s.key == key).collect();
        assert_eq!(skipped.len(), 1, "{mode:?}: reported at every run");
        assert!(
            skipped[0]
                .reason
                .contains("2099-12-31T00:00:00Z is ahead of the clock"),
            "{}",
            skipped[0].reason
        );
        // Never deleted, never changed.
        assert_eq!(store.get(&key).await.unwrap().unwrap().body, body);
    }
    // Reported again, but not news: an idle run writes nothing.
    let idle = run(&store, now, TransformMode::Incremental).await;
    assert_eq!((idle.new_objects, idle.writes), (0, 0));
    let summary = pipeline::read_summary(&store).await.unwrap().unwrap();
    assert_eq!(summary.as_of, Tick::from_unix(T0 + 59 * 60));

    // Once the clock reaches it, it is taken in like any snapshot.
    let later = run(
        &store,
        Tick::parse(FAR).unwrap(),
        TransformMode::Incremental,
    )
    .await;
    assert_eq!(later.as_of, Tick::parse(FAR).unwrap());
    assert!(later.skipped.is_empty(), "{:?}", later.skipped);
}

/// Within the tolerance (5 minutes by default) a fast collector's snapshot is taken in.
#[tokio::test]
async fn a_tick_within_the_tolerance_is_taken_in() {
    let store = MemoryStore::new();
    let now = Tick::from_unix(T0);
    for (m, source) in [(0, "alpha"), (5, "beta"), (6, "gamma")] {
        let (k, b) = snapshot(source, now.add_secs(m * 60), 100.0);
        store.put(&k, b).await.unwrap();
    }
    let report = run(&store, now, TransformMode::Incremental).await;
    assert_eq!(report.as_of, now.add_secs(5 * 60));
    assert_eq!(report.series, 2);
    assert_eq!(report.skipped.len(), 1);
}

/// A state whose `as_of` is in the future (a transform that took in such a snapshot before
/// ticks were bounded, or a clock that jumped) is rebuilt from what the clock allows, and the
/// summary it wrote is replaced although it is "newer".
#[tokio::test]
async fn a_state_from_the_future_is_rebuilt() {
    let (store, key, _) = store_with_a_far_future_snapshot().await;
    // What an unbounded transform left: the window (and summary) as of 2099.
    let past = run(&store, Tick::parse(FAR).unwrap(), TransformMode::Full).await;
    assert_eq!(past.as_of, Tick::parse(FAR).unwrap());
    assert_eq!(past.series, 1, "every real sample fell out of the window");

    let now = Tick::from_unix(T0 + 60 * 60);
    let report = run(&store, now, TransformMode::Incremental).await;
    let reason = report.rebuild_reason.clone().unwrap_or_default();
    assert!(
        reason.contains("as_of 2099-12-31T00:00:00Z is ahead of the clock"),
        "{reason}"
    );
    assert_eq!(report.as_of, Tick::from_unix(T0 + 59 * 60));
    assert_eq!(report.series, 2);
    assert!(report.skipped.iter().any(|s| s.key == key));
    let summary = pipeline::read_summary(&store).await.unwrap().unwrap();
    assert_eq!(summary.as_of, Tick::from_unix(T0 + 59 * 60));
    assert_eq!(summary.series.len(), 2);
}
