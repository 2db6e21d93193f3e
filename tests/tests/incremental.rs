//! The incremental transform gives exactly what a full rebuild gives, whatever arrives in
//! whatever order: gaps, late snapshots, duplicate collections and corrupt objects, and runs
//! told of their new keys (a hand-off) or not, with hand-offs lost or repeated.

use bytes::Bytes;
use chrono::TimeZone;
use cryptomon_core::keys::{SUMMARY_KEY, raw_key};
use std::sync::Arc;

use cryptomon_core::pipeline::{self, TransformCache, TransformMode, TransformOptions};
use cryptomon_core::{Pair, PolarsAggregator, Quote, Snapshot, SourceName, Store, StoreExt, Tick};
use cryptomon_mock::MemoryStore;
use cryptomon_mock::faulty::{Fault, FaultyStore, Op as FaultOp};
use proptest::prelude::*;

const T0: i64 = 1_796_040_000;

#[derive(Debug, Clone)]
enum Op {
    /// Time moves on by this many minutes and these sources collect.
    Collect {
        advance: i64,
        sources: Vec<usize>,
        price: f64,
    },
    /// A snapshot for a tick this many minutes before the latest arrives late.
    Late {
        back: i64,
        source: usize,
        price: f64,
    },
    /// The latest tick is collected again (a retried collector).
    Duplicate { source: usize },
    /// A corrupt object lands in the current partition.
    Corrupt { source: usize },
    /// A transform runs, in a process that keeps its state between runs (a warm cache).
    Transform,
    /// A transform runs in another process (no cache): the warm one's state is stale after it.
    TransformElsewhere,
    /// A warm transform runs told of the keys collected since the last hand-off (not of late or
    /// corrupt objects), and of the previous hand-off's again when `repeat`.
    TransformTold { repeat: bool },
    /// The keys collected since the last hand-off are handed to no one (a failed transform).
    HandoffLost,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..400, prop::collection::vec(0usize..3, 1..3), 1.0f64..1000.0)
            .prop_map(|(advance, sources, price)| Op::Collect { advance, sources, price }),
        1 => (1i64..1500, 0usize..3, 1.0f64..1000.0)
            .prop_map(|(back, source, price)| Op::Late { back, source, price }),
        1 => (0usize..3).prop_map(|source| Op::Duplicate { source }),
        1 => (0usize..3).prop_map(|source| Op::Corrupt { source }),
        2 => Just(Op::Transform),
        1 => Just(Op::TransformElsewhere),
        3 => any::<bool>().prop_map(|repeat| Op::TransformTold { repeat }),
        1 => Just(Op::HandoffLost),
    ]
}

fn source(i: usize) -> SourceName {
    SourceName::new(["alpha", "beta", "gamma"][i]).unwrap()
}

fn snapshot(source: usize, tick: Tick, price: f64) -> Bytes {
    let quotes = ["BTC-USD", "ETH-USD"]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut q = Quote::new(Pair::new(p).unwrap(), price * (1.0 + i as f64));
            q.volume_24h = (source != 2).then_some(price * 3.0 + i as f64);
            q
        })
        .collect();
    let collected = chrono::Utc.timestamp_opt(tick.unix() + 1, 0).unwrap();
    Bytes::from(
        Snapshot::new(
            source_name(source),
            tick,
            collected,
            quotes,
            serde_json::json!({}),
        )
        .to_json(),
    )
}

fn source_name(i: usize) -> SourceName {
    source(i)
}

async fn summary_of(store: &dyn Store) -> serde_json::Value {
    serde_json::from_slice(&store.get(SUMMARY_KEY).await.unwrap().unwrap().body).unwrap()
}

/// An incremental transform in a process that keeps `cache` between runs.
async fn warm_transform(
    store: &dyn Store,
    cache: &Arc<TransformCache>,
) -> cryptomon_core::Result<pipeline::TransformReport> {
    let options = TransformOptions {
        cache: Some(cache.clone()),
        ..TransformOptions::default()
    };
    pipeline::transform(store, &PolarsAggregator::default(), &options).await
}

/// A warm transform told of `keys`, listing once `reconcile_every` of ticks has passed.
async fn told_transform(
    store: &dyn Store,
    cache: &Arc<TransformCache>,
    keys: Vec<String>,
    reconcile_every: std::time::Duration,
) -> cryptomon_core::Result<pipeline::TransformReport> {
    let options = TransformOptions {
        cache: Some(cache.clone()),
        handoff: Some(keys),
        reconcile_every,
        ..TransformOptions::default()
    };
    pipeline::transform(store, &PolarsAggregator::default(), &options).await
}

async fn run(ops: Vec<Op>, reconcile_minutes: u64) -> Result<(), TestCaseError> {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    let cache = Arc::new(TransformCache::new());
    let reconcile_every = std::time::Duration::from_secs(reconcile_minutes * 60);
    let mut minute = 0i64;
    let mut corrupt = 0;
    // Keys collected since the last hand-off, and the last hand-off's.
    let (mut pending, mut handed) = (Vec::new(), Vec::new());
    // Whether an object landed further in the past than a reconciliation looks (an upload
    // into the past, which only a listing of the whole window finds).
    let mut into_the_past = false;
    for op in ops {
        let tick = |m: i64| Tick::from_unix(T0 + m * 60);
        match op {
            Op::Collect {
                advance,
                sources,
                price,
            } => {
                minute += advance;
                for s in sources {
                    let key = raw_key(&source(s), tick(minute));
                    store
                        .put_if_absent(&key, snapshot(s, tick(minute), price))
                        .await
                        .unwrap();
                    pending.push(key);
                }
            }
            Op::Late {
                back,
                source: s,
                price,
            } => {
                let m = minute - back;
                into_the_past |= back * 60 > pipeline::RECONCILE_OVERLAP.as_secs() as i64;
                store
                    .put_if_absent(&raw_key(&source(s), tick(m)), snapshot(s, tick(m), price))
                    .await
                    .unwrap();
            }
            Op::Duplicate { source: s } => {
                let key = raw_key(&source(s), tick(minute));
                store
                    .put_if_absent(&key, snapshot(s, tick(minute), 1.0))
                    .await
                    .unwrap();
                pending.push(key);
            }
            Op::Corrupt { source: s } => {
                corrupt += 1;
                let key = format!(
                    "raw/source={}/date={}/{}.json",
                    source(s),
                    tick(minute).date(),
                    tick(minute).add_secs(corrupt).compact()
                );
                store.insert_raw(
                    &key,
                    "{\"schema\": \"cryptomon.snapshot/v1\", \"quotes\": [",
                );
            }
            // An empty store has nothing to transform yet: errors are ignored.
            Op::Transform => {
                let _ = warm_transform(&store, &cache).await;
            }
            Op::TransformElsewhere => {
                let _ =
                    pipeline::transform(&store, &aggregator, &TransformOptions::default()).await;
            }
            Op::TransformTold { repeat } => {
                let mut keys = std::mem::take(&mut pending);
                if repeat {
                    keys.extend(handed.iter().cloned());
                }
                let _ = told_transform(&store, &cache, keys.clone(), reconcile_every).await;
                handed = keys;
            }
            Op::HandoffLost => pending.clear(),
        }
    }
    // The last run reconciles: from its last mark when nothing landed before it, over the
    // whole window otherwise.
    let last = if into_the_past {
        warm_transform(&store, &cache).await
    } else {
        told_transform(&store, &cache, pending, std::time::Duration::ZERO).await
    };
    if last.is_err() {
        return Ok(()); // nothing was collected
    }
    let incremental = summary_of(&store).await;
    let incremental_window = pipeline::read_window(&store).await.unwrap().unwrap();
    let full = pipeline::transform(&store, &aggregator, &TransformOptions::full())
        .await
        .unwrap();
    prop_assert_eq!(full.mode, TransformMode::Full);
    let rebuilt = summary_of(&store).await;
    prop_assert_eq!(&incremental, &rebuilt);
    let rebuilt_window = pipeline::read_window(&store).await.unwrap().unwrap();
    prop_assert_eq!(incremental_window.series(), rebuilt_window.series());
    prop_assert!(
        incremental_window
            .frame()
            .equals_missing(rebuilt_window.frame())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_equals_full(
        ops in prop::collection::vec(op(), 1..40),
        reconcile_minutes in 1u64..240,
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(ops, reconcile_minutes))?;
    }
}

/// Hours of one-minute ticks of two sources: a tick writes the summary and the state's head
/// only, a new base goes to the other slot when the rows taken in since the last one pass 1/24
/// of the window (once an hour over a full day), and a reader that holds the base gets the same
/// window as one that reads everything.
#[tokio::test]
async fn a_tick_writes_the_head_and_the_base_is_rewritten_about_hourly() {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    let mut compactions = Vec::new();
    let mut slots_written: std::collections::BTreeSet<&str> = Default::default();
    let mut reader = None;
    for m in 0..400 {
        let tick = Tick::from_unix(T0 + m * 60);
        for s in 0..2 {
            let body = snapshot(s, tick, 100.0 + (m % 17) as f64);
            store.put(&raw_key(&source(s), tick), body).await.unwrap();
        }
        let report = pipeline::transform(&store, &aggregator, &TransformOptions::default())
            .await
            .unwrap();
        assert_eq!(report.new_objects, 2, "minute {m}");
        assert_eq!(
            report.writes,
            2 + usize::from(report.compacted),
            "minute {m}"
        );
        if report.compacted {
            compactions.push(m);
            slots_written.extend(
                pipeline::BASE_KEYS
                    .iter()
                    .copied()
                    .filter(|k| store.keys().contains(&(*k).to_owned())),
            );
        } else if m > 0 {
            // Head and base, then the two new snapshots.
            assert_eq!(report.read, 4, "minute {m}");
        }
        if m % 97 == 0 || report.compacted {
            // A reader refreshing each time: it keeps the base it holds unless a new one came.
            let state = pipeline::load_window(&store, reader.as_ref())
                .await
                .unwrap()
                .unwrap();
            let fresh = pipeline::read_window(&store).await.unwrap().unwrap();
            assert!(
                state.window.frame().equals_missing(fresh.frame()),
                "minute {m}"
            );
            assert_eq!(state.window.series(), fresh.series());
            reader = Some(state);
        }
    }
    assert_eq!(compactions[0], 0, "the first run has no base to stand on");
    // After a base at minute a, the next is the first minute b whose delta (ticks a+1..=b, 4
    // rows each) is more than 1/24 of the window (b+1 ticks, at most a day): over a full day,
    // once an hour.
    for w in compactions.windows(2) {
        let (a, b) = (w[0], w[1]);
        let outgrown = |b: i64| (b - a) * 24 > (b + 1).min(24 * 60);
        assert!(
            outgrown(b) && !outgrown(b - 1),
            "{a} then {b}: {compactions:?}"
        );
    }
    assert!(compactions.len() > 30, "{compactions:?}");
    assert_eq!(
        slots_written.len(),
        2,
        "bases alternate between the two slots"
    );
}

/// A process that keeps its state between runs (the server's schedule, a warm Lambda) reads only
/// the head's version and the new snapshots each tick, and writes what a cold run writes: the
/// same summary and the same window, bases included, tick after tick.
#[tokio::test]
async fn a_warm_transform_reads_only_new_snapshots_and_writes_what_a_cold_one_does() {
    let (warm_store, cold_store) = (MemoryStore::new(), MemoryStore::new());
    let aggregator = PolarsAggregator::default();
    let cache = Arc::new(TransformCache::new());
    for m in 0..150 {
        let tick = Tick::from_unix(T0 + m * 60);
        for s in 0..2 {
            let body = snapshot(s, tick, 100.0 + (m % 17) as f64);
            warm_store
                .put(&raw_key(&source(s), tick), body.clone())
                .await
                .unwrap();
            cold_store
                .put(&raw_key(&source(s), tick), body)
                .await
                .unwrap();
        }
        let warm = warm_transform(&warm_store, &cache).await.unwrap();
        let cold = pipeline::transform(&cold_store, &aggregator, &TransformOptions::default())
            .await
            .unwrap();
        assert_eq!(warm.warm, m > 0, "minute {m}");
        assert!(!cold.warm);
        assert_eq!(warm.compacted, cold.compacted, "minute {m}");
        assert_eq!(warm.writes, cold.writes, "minute {m}");
        if m > 0 {
            // The head's version (a conditional read that transfers nothing), the 2 snapshots.
            assert_eq!(warm.read, 3, "minute {m}");
            // Head, base, the 2 snapshots.
            assert_eq!(cold.read, 4, "minute {m}");
        }
        assert_eq!(
            summary_of(&warm_store).await,
            summary_of(&cold_store).await,
            "minute {m}"
        );
        let (w, c) = (
            pipeline::read_window(&warm_store).await.unwrap().unwrap(),
            pipeline::read_window(&cold_store).await.unwrap().unwrap(),
        );
        assert_eq!(w.series(), c.series(), "minute {m}");
        assert!(w.frame().equals_missing(c.frame()), "minute {m}");
    }

    // Nothing new: the cache still holds the state, and the run reads only the two versions.
    let idle = warm_transform(&warm_store, &cache).await.unwrap();
    assert!(idle.warm);
    assert_eq!((idle.read, idle.writes), (2, 0));
    assert!(cache.is_warm());
}

/// A run that fails leaves the cache empty, and the next run reads the store as a cold one would:
/// a cache never outlives a write it did not see succeed.
#[tokio::test]
async fn a_failed_run_empties_the_cache() {
    let store = FaultyStore::new(MemoryStore::new());
    let cache = Arc::new(TransformCache::new());
    for m in 0..4 {
        let tick = Tick::from_unix(T0 + m * 60);
        store
            .put(&raw_key(&source(0), tick), snapshot(0, tick, 100.0))
            .await
            .unwrap();
        if m == 3 {
            store.add_fault(Fault::key_prefix(SUMMARY_KEY).on(FaultOp::Put));
            assert!(warm_transform(&store, &cache).await.is_err());
            assert!(
                !cache.is_warm(),
                "a failed run must not leave a state behind"
            );
            store.clear_faults();
        }
        let report = warm_transform(&store, &cache).await.unwrap();
        assert_eq!(report.warm, m > 0 && m != 3, "minute {m}");
        assert_eq!(report.new_objects, 1, "minute {m}");
        assert!(cache.is_warm());
    }
}

/// A head whose base was replaced (two transforms compacting at once) is never paired with
/// the wrong base: readers refuse it, and the next transform rebuilds from raw.
#[tokio::test]
async fn a_head_whose_base_was_replaced_is_refused_and_rebuilt() {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    for m in 0..5 {
        let tick = Tick::from_unix(T0 + m * 60);
        store
            .put(
                &raw_key(&source(0), tick),
                snapshot(0, tick, 100.0 + m as f64),
            )
            .await
            .unwrap();
        pipeline::transform(&store, &aggregator, &TransformOptions::default())
            .await
            .unwrap();
    }
    let before = summary_of(&store).await;
    // Another run's base lands in the slot the head names.
    let named = pipeline::BASE_KEYS
        .iter()
        .find(|k| store.keys().contains(&(**k).to_owned()))
        .unwrap();
    let other = cryptomon_core::Window::empty()
        .unwrap()
        .to_parquet(Some("another".into()))
        .unwrap();
    store.put(named, Bytes::from(other)).await.unwrap();
    let err = pipeline::read_window(&store).await.unwrap_err();
    assert!(err.to_string().contains("rewritten since"), "{err}");
    let report = pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!(report.mode, TransformMode::Full);
    assert!(
        report
            .rebuild_reason
            .as_deref()
            .unwrap()
            .contains("rewritten since"),
        "{:?}",
        report.rebuild_reason
    );
    assert_eq!(summary_of(&store).await["series"], before["series"]);
    assert!(pipeline::read_window(&store).await.unwrap().is_some());
}

/// A base the store fails to read is not a reason to rebuild from raw (that would read every
/// snapshot of the window): the transform fails, the stored aggregates stay, and the next run
/// with the store healthy goes on incrementally.
#[tokio::test]
async fn a_base_the_store_fails_to_read_fails_the_run_instead_of_rebuilding() {
    use cryptomon_mock::{Fault, FaultyStore, Op};
    let store = FaultyStore::new(MemoryStore::new());
    let aggregator = PolarsAggregator::default();
    for m in 0..3 {
        let tick = Tick::from_unix(T0 + m * 60);
        store
            .put(
                &raw_key(&source(0), tick),
                snapshot(0, tick, 100.0 + m as f64),
            )
            .await
            .unwrap();
        if m < 2 {
            pipeline::transform(&store, &aggregator, &TransformOptions::default())
                .await
                .unwrap();
        }
    }
    let before = summary_of(&store).await;
    store.add_fault(Fault::key_prefix("aggregates/window.v1.base-").on(Op::Get));
    let err = pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("window.v1.base-"), "{err}");
    assert!(
        pipeline::read_window(&store).await.is_err(),
        "the reader fails the same way"
    );
    assert_eq!(summary_of(&store).await, before, "nothing written");
    store.clear_faults();
    let report = pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!(report.mode, TransformMode::Incremental);
    assert_eq!(report.new_objects, 1);
}
