//! Property tests of the metric engine's invariants over random markets.

use cryptomon_core::{
    Aggregator, CandleInterval, Pair, PolarsAggregator, SeriesSummary, SourceName, Tick,
    WindowBuilder, engine,
};
use proptest::prelude::*;

const T0: i64 = 1_796_040_000;

/// A random series: (minute offset gaps, prices, volumes).
fn series() -> impl Strategy<Value = Vec<(i64, f64, Option<f64>)>> {
    prop::collection::vec(
        (
            1i64..4,
            0.0001f64..100_000.0,
            prop::option::weighted(0.8, 0.0f64..1e9),
        ),
        1..200,
    )
    .prop_map(|steps| {
        let mut minute = 0;
        steps
            .into_iter()
            .map(|(gap, p, v)| {
                minute += gap;
                (minute, p, v)
            })
            .collect()
    })
}

fn market() -> impl Strategy<Value = Vec<Vec<(i64, f64, Option<f64>)>>> {
    prop::collection::vec(series(), 1..6)
}

fn build(market: &[Vec<(i64, f64, Option<f64>)>]) -> (cryptomon_core::Window, Tick) {
    let mut b = WindowBuilder::new();
    let mut last = 0;
    for (i, s) in market.iter().enumerate() {
        let source = SourceName::new(&format!("src{i}")).unwrap();
        let pair = Pair::new("BTC-USD").unwrap();
        for &(m, p, v) in s {
            b.push(&source, &pair, Tick::from_unix(T0 + m * 60), 0, p, v);
            last = last.max(m);
        }
    }
    (b.build().unwrap(), Tick::from_unix(T0 + last * 60))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn low_mean_high_and_ranks(market in market()) {
        let (window, as_of) = build(&market);
        let summary = PolarsAggregator::default().aggregate(&window, as_of).unwrap();
        prop_assert_eq!(summary.series.len(), market.len());
        for s in &summary.series {
            let slack = 1e-12 * s.high.abs();
            prop_assert!(s.low <= s.mean + slack && s.mean <= s.high + slack, "{:?}", s);
            prop_assert!(s.low <= s.first && s.first <= s.high);
            prop_assert!(s.max_drawdown_pct >= 0.0 && s.max_drawdown_pct < 100.0);
            prop_assert!(s.gaps >= 0);
            if let Some(rsi) = s.rsi_14 {
                prop_assert!((0.0..=100.0).contains(&rsi));
            }
            for rank in [s.price_rank, s.volume_rank, s.volatility_rank].into_iter().flatten() {
                prop_assert!(rank > 0.0 && rank <= 1.0, "rank {}", rank);
            }
            prop_assert_eq!(s.volatility_rank.is_some(), s.volatility_pct.is_some());
        }
        // The series with the largest std, or volatility, ranks 1.
        let ranks: [fn(&SeriesSummary) -> Option<f64>; 2] = [|s| s.price_rank, |s| s.volatility_rank];
        for rank in ranks {
            let top = summary.series.iter().filter_map(rank).fold(0.0, f64::max);
            if summary.series.iter().any(|s| rank(s).is_some()) {
                prop_assert_eq!(top, 1.0);
            }
        }
        // A volatility rank is the share of volatilities at most this one's.
        let volatilities: Vec<f64> = summary.series.iter().filter_map(|s| s.volatility_pct).collect();
        for s in &summary.series {
            if let (Some(v), Some(rank)) = (s.volatility_pct, s.volatility_rank) {
                let at_most = volatilities.iter().filter(|&&w| w <= v).count();
                prop_assert_eq!(rank, at_most as f64 / volatilities.len() as f64);
            }
        }
    }

    #[test]
    fn candle_counts_sum_to_samples(market in market()) {
        let (window, as_of) = build(&market);
        let summary = PolarsAggregator::default().aggregate(&window, as_of).unwrap();
        for s in &summary.series {
            for interval in CandleInterval::ALL {
                let c = engine::candles(&window, &s.source, &s.pair, interval).unwrap();
                let n: u32 = c.candles.iter().map(|c| c.n).sum();
                prop_assert_eq!(n, s.samples);
                for pair in c.candles.windows(2) {
                    prop_assert!(pair[0].t < pair[1].t);
                }
                for candle in &c.candles {
                    prop_assert_eq!(candle.t.unix() % interval.secs(), 0);
                    prop_assert!(candle.l <= candle.o && candle.o <= candle.h);
                    prop_assert!(candle.l <= candle.c && candle.c <= candle.h);
                }
            }
        }
    }

    #[test]
    fn window_state_round_trips(market in market()) {
        let (window, _) = build(&market);
        let (back, meta) =
            cryptomon_core::Window::from_parquet(&window.to_parquet(Some("m".into())).unwrap()).unwrap();
        prop_assert_eq!(meta.as_deref(), Some("m"));
        prop_assert_eq!(back.series(), window.series());
        prop_assert!(back.frame().equals_missing(window.frame()));
    }
}
