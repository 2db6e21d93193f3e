//! A synthetic market through the real pipelines: backfilled history, a transform, and the
//! metrics the contract defines come out plausible, with spreads and alerts to show.

use cryptomon_core::pipeline::TransformOptions;
use cryptomon_core::pipeline::read_summary;
use cryptomon_core::{Measure, PolarsAggregator, Source, SourceName, Tick, collect, transform};
use cryptomon_mock::{MemoryStore, SyntheticSource, backfill};

fn sources() -> Vec<SyntheticSource> {
    ["binance", "coinbase", "kraken"]
        .map(|name| {
            SyntheticSource::new(SourceName::new(name).unwrap(), 12, 42)
                .with_null_probability(0.0)
                .with_volume_spikes(0.0, 5.0)
        })
        .into()
}

/// The first tick at or after `from` where the demo market has a volume spike.
fn first_spike(source: &SyntheticSource, from: Tick) -> (usize, Tick) {
    (0..10_000)
        .map(|i| from.add_secs(60 * i))
        .find_map(|t| {
            (0..source.pairs().len())
                .find(|&p| source.is_spike(p, t))
                .map(|p| (p, t))
        })
        .expect("a spike within a week at 1 % per pair and tick")
}

// Multi-threaded: the transform runs polars on a blocking thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfilled_market_transforms_into_plausible_metrics() {
    let store = MemoryStore::new();
    let demo = SyntheticSource::demo();
    let (pair, as_of) = first_spike(&demo, Tick::parse("2026-11-27T12:00:00Z").unwrap());

    // Three quiet exchanges of one market, and the spiky demo source, over two hours.
    for source in sources() {
        assert_eq!(backfill(&source, &store, as_of, 120).await.unwrap(), 120);
    }
    assert_eq!(backfill(&demo, &store, as_of, 120).await.unwrap(), 120);

    transform(
        &store,
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    let summary = read_summary(&store).await.unwrap().expect("a summary");
    assert_eq!(summary.as_of, as_of);
    assert_eq!(summary.series.len(), 4 * 12);

    for s in &summary.series {
        assert_eq!((s.samples, s.gaps), (120, 0), "{}:{}", s.source, s.pair);
        assert!(
            s.change_pct.abs() < 10.0,
            "{}:{} {}",
            s.source,
            s.pair,
            s.change_pct
        );
        let vol = s.volatility_pct.expect("volatility of 120 samples");
        assert!(
            (10.0..300.0).contains(&vol),
            "{}:{} volatility {vol}",
            s.source,
            s.pair
        );
    }
    // One market quoted by four sources: spreads of a few basis points.
    assert_eq!(summary.spreads.len(), 12);
    for s in &summary.spreads {
        assert_eq!(s.sources, 4);
        assert!(
            s.spread_bps > 0.0 && s.spread_bps < 20.0,
            "{} {}",
            s.pair,
            s.spread_bps
        );
    }
    // The spike at `as_of` is the (only kind of) alert.
    let spiked = &demo.pairs()[pair];
    assert!(!summary.alerts.is_empty());
    for a in &summary.alerts {
        assert_eq!(
            (a.source.as_str(), a.measure),
            ("demo", Measure::Volume),
            "{a:?}"
        );
        assert!(a.ratio > 3.0, "{a:?}");
    }
    assert!(
        summary.alerts.iter().any(|a| &a.pair == spiked),
        "{spiked} not alerted"
    );
}

#[tokio::test]
async fn live_collection_continues_the_backfill() {
    let store = MemoryStore::new();
    let source = SyntheticSource::demo();
    let now = Tick::parse("2026-11-27T12:00:00Z").unwrap();
    backfill(&source, &store, now, 30).await.unwrap();
    // A fresh process collecting the next tick sees the market where the history left it.
    let live = SyntheticSource::demo();
    let next = now.add_secs(60);
    assert!(collect(&live, &store, next).await.unwrap().written);
    let before = source.fetch(now).await.unwrap().quotes;
    let after = live.fetch(next).await.unwrap().quotes;
    for (b, a) in before.iter().zip(&after) {
        let bps = (a.price / b.price - 1.0).abs() * 1e4;
        assert!(bps < 100.0, "{} jumped {bps} bps in a minute", a.pair);
    }
}
