//! The incremental transform gives exactly what a full rebuild gives, whatever arrives in
//! whatever order: gaps, late snapshots, duplicate collections and corrupt objects.

use bytes::Bytes;
use chrono::TimeZone;
use cryptomon_core::keys::{SUMMARY_KEY, raw_key};
use cryptomon_core::pipeline::{self, TransformMode};
use cryptomon_core::{Pair, PolarsAggregator, Quote, Snapshot, SourceName, Store, StoreExt, Tick};
use cryptomon_mock::MemoryStore;
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
    /// A transform runs.
    Transform,
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

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    let mut minute = 0i64;
    let mut corrupt = 0;
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
                    store
                        .put_if_absent(
                            &raw_key(&source(s), tick(minute)),
                            snapshot(s, tick(minute), price),
                        )
                        .await
                        .unwrap();
                }
            }
            Op::Late {
                back,
                source: s,
                price,
            } => {
                let m = minute - back;
                store
                    .put_if_absent(&raw_key(&source(s), tick(m)), snapshot(s, tick(m), price))
                    .await
                    .unwrap();
            }
            Op::Duplicate { source: s } => {
                store
                    .put_if_absent(
                        &raw_key(&source(s), tick(minute)),
                        snapshot(s, tick(minute), 1.0),
                    )
                    .await
                    .unwrap();
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
            Op::Transform => {
                // An empty store has nothing to transform yet.
                let _ = pipeline::transform(&store, &aggregator).await;
            }
        }
    }
    if pipeline::transform(&store, &aggregator).await.is_err() {
        return Ok(()); // nothing was collected
    }
    let incremental = summary_of(&store).await;
    let incremental_window = pipeline::read_window(&store).await.unwrap().unwrap();
    let full = pipeline::transform_with(&store, &aggregator, TransformMode::Full)
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
    fn incremental_equals_full(ops in prop::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(run(ops))?;
    }
}
