//! Metrics of one series over the window (every field of the contract's table but the ranks).
//!
//! The window keeps each series' samples contiguous and in tick order, so every metric is a
//! pass over a slice of the frame's columns: no per-group expression evaluation, no copies.
//! At 300 series x 1,440 samples that is a few milliseconds; the recursions (EMA, RSI, the
//! running peak) are sequential by definition and would not vectorise anyway.

use polars::prelude::*;
use rayon::prelude::*;

use super::window::{Window, cols};
use crate::error::{Error, Result};
use crate::model::{SeriesSummary, Tick};

/// Minutes in a year: scales one-minute volatility to an annual figure.
const MINUTES_PER_YEAR: f64 = 525_600.0;
/// The RSI period.
const RSI_PERIOD: usize = 14;
/// The moving averages' length.
const MA_LEN: usize = 60;

/// The window's columns as slices (the window is one chunk per column by construction).
pub(crate) struct Columns<'a> {
    pub(crate) tick: &'a [i64],
    pub(crate) price: &'a [f64],
    pub(crate) volume: &'a Float64Chunked,
}

impl<'a> Columns<'a> {
    pub(crate) fn of(window: &'a Window) -> Result<Self> {
        let frame = window.frame();
        let contiguous =
            |e: PolarsError| Error::Engine(format!("window column not contiguous: {e}"));
        Ok(Columns {
            tick: frame
                .column(cols::TICK)?
                .i64()?
                .cont_slice()
                .map_err(contiguous)?,
            price: frame
                .column(cols::PRICE)?
                .f64()?
                .cont_slice()
                .map_err(contiguous)?,
            volume: frame.column(cols::VOLUME)?.f64()?,
        })
    }

    /// The non-null volumes of rows `range`: borrowed from the column when it has no null (the
    /// usual case), so a series' metrics copy nothing.
    pub(crate) fn volumes(&self, range: std::ops::Range<usize>) -> std::borrow::Cow<'a, [f64]> {
        if self.volume.null_count() == 0
            && let Ok(values) = self.volume.cont_slice()
        {
            return values[range].into();
        }
        self.volume
            .slice(range.start as i64, range.len())
            .iter()
            .flatten()
            .collect::<Vec<_>>()
            .into()
    }
}

/// Computes every series' metrics, in the window's (pair, source) order. Ranks are left `None`.
///
/// Series are independent, so rayon computes them on every core; each is computed by the same
/// code whatever the split, so the result does not depend on the threads.
pub(crate) fn series_metrics(window: &Window) -> Result<Vec<SeriesSummary>> {
    if window.is_empty() {
        return Ok(Vec::new());
    }
    let columns = Columns::of(window)?;
    let offsets = window.offsets();
    (0..window.series().len())
        .into_par_iter()
        // A series is a few microseconds of work: handed out in batches, not one by one.
        .with_min_len(16)
        .map(|sid| one_series(window, &columns, sid, offsets[sid]..offsets[sid + 1]))
        .collect()
}

/// The metrics of series `sid`, whose samples are rows `range`.
fn one_series(
    window: &Window,
    columns: &Columns<'_>,
    sid: usize,
    range: std::ops::Range<usize>,
) -> Result<SeriesSummary> {
    let key = &window.series()[sid];
    let (ticks, prices) = (&columns.tick[range.clone()], &columns.price[range.clone()]);
    let (Some(&first), Some(&last)) = (prices.first(), prices.last()) else {
        return Err(Error::Engine(format!("series {sid} has no sample")));
    };
    let (t1, tn) = (ticks[0], ticks[ticks.len() - 1]);
    let n = prices.len();
    let (low, high) = prices
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &p| {
            (lo.min(p), hi.max(p))
        });
    // Log returns, only where the previous sample is exactly one minute earlier.
    let returns: Vec<f64> = (1..n)
        .filter(|&i| ticks[i] - ticks[i - 1] == 60)
        .map(|i| (prices[i] / prices[i - 1]).ln())
        .collect();
    let volumes = columns.volumes(range);
    Ok(SeriesSummary {
        source: key.source.clone(),
        pair: key.pair.clone(),
        samples: n as u32,
        first,
        last,
        last_tick: Tick::from_unix(tn),
        change_pct: (last / first - 1.0) * 100.0,
        high,
        low,
        mean: mean(prices),
        volatility_pct: finite(sample_std(&returns).map(|sd| sd * MINUTES_PER_YEAR.sqrt() * 100.0)),
        max_drawdown_pct: max_drawdown(prices) * 100.0,
        rsi_14: finite(rsi(prices)),
        sma_60: finite((n >= MA_LEN).then(|| mean(&prices[n - MA_LEN..]))),
        ema_60: ema(prices, 2.0 / (MA_LEN as f64 + 1.0)),
        gaps: (tn - t1) / 60 + 1 - n as i64,
        price_std: finite(sample_std(prices)),
        volume_last: volumes.last().copied(),
        volume_std: finite(sample_std(&volumes)),
        price_rank: None,
        volume_rank: None,
        volatility_rank: None,
    })
}

/// `value` if it is a finite number: the contract's optional metrics are a number or `null`.
fn finite(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}

/// The mean (`NaN` for no value; callers pass at least one).
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// The sample standard deviation (n − 1), two-pass; `None` with fewer than 2 values.
fn sample_std(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let m = mean(values);
    let ss: f64 = values.iter().map(|v| (v - m) * (v - m)).sum();
    Some((ss / (values.len() - 1) as f64).sqrt())
}

/// max over i of (max(p1..pi) − pi) / max(p1..pi).
///
/// Under one peak the drawdown is largest at the lowest price (subtraction and division by a
/// positive peak both round monotonically), so there is one division per peak, not per sample,
/// and the result is the same to the last bit.
fn max_drawdown(prices: &[f64]) -> f64 {
    let Some(&first) = prices.first() else {
        return 0.0;
    };
    let (mut peak, mut low) = (first, first);
    let mut worst = 0.0f64;
    for &p in &prices[1..] {
        if p > peak {
            worst = worst.max((peak - low) / peak);
            (peak, low) = (p, p);
        } else {
            low = low.min(p);
        }
    }
    worst.max((peak - low) / peak)
}

/// e1 = p1, ei = ei−1 + alpha (pi − ei−1); the value at pn.
fn ema(prices: &[f64], alpha: f64) -> f64 {
    let mut e = prices[0];
    for &p in &prices[1..] {
        e += alpha * (p - e);
    }
    e
}

/// Wilder's RSI over consecutive prices: the first average gain and loss are the plain means of
/// the first 14 changes, then avg = (avg × 13 + x) / 14. `None` with fewer than 15 prices.
pub(crate) fn rsi(prices: &[f64]) -> Option<f64> {
    if prices.len() < RSI_PERIOD + 1 {
        return None;
    }
    let period = RSI_PERIOD as f64;
    const KEEP: f64 = (RSI_PERIOD as f64 - 1.0) / RSI_PERIOD as f64;
    const TAKE: f64 = 1.0 / RSI_PERIOD as f64;
    let changes = prices.windows(2).map(|w| w[1] - w[0]);
    let (mut gain, mut loss) = (0.0, 0.0);
    for (i, d) in changes.enumerate() {
        let (g, l) = (d.max(0.0), (-d).max(0.0));
        if i < RSI_PERIOD {
            gain += g;
            loss += l;
            if i == RSI_PERIOD - 1 {
                gain /= period;
                loss /= period;
            }
        } else {
            // avg = (avg × 13 + x) / 14, as avg × (13/14) + x × (1/14): the same to within a
            // rounding, and two dependent divisions a sample were a quarter of the metrics' time.
            gain = gain * KEEP + g * TAKE;
            loss = loss * KEEP + l * TAKE;
        }
    }
    Some(if loss == 0.0 {
        if gain == 0.0 { 50.0 } else { 100.0 }
    } else {
        100.0 - 100.0 / (1.0 + gain / loss)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Aggregator, PolarsAggregator, WindowBuilder};
    use crate::model::{Pair, SeriesSummary, SourceName, Summary};

    const T0: i64 = 1_796_040_000; // 2026-11-30T00:00:00Z, a whole hour

    /// Builds a window from (source, pair, minute, price, volume) rows and summarises it as of
    /// the given minute.
    fn summarise(rows: &[(&str, &str, i64, f64, Option<f64>)], as_of_minute: i64) -> Summary {
        let mut b = WindowBuilder::new();
        for &(s, p, m, price, volume) in rows {
            b.push(
                &SourceName::new(s).unwrap(),
                &Pair::new(p).unwrap(),
                Tick::from_unix(T0 + m * 60),
                0,
                price,
                volume,
            );
        }
        PolarsAggregator::default()
            .aggregate(&b.build().unwrap(), Tick::from_unix(T0 + as_of_minute * 60))
            .unwrap()
    }

    fn one_series(prices: &[(i64, f64)]) -> SeriesSummary {
        let rows: Vec<_> = prices
            .iter()
            .map(|&(m, p)| ("kraken", "BTC-USD", m, p, Some(1.0)))
            .collect();
        let last = prices.last().unwrap().0;
        summarise(&rows, last).series.remove(0)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    /// However many threads compute them, the metrics are the same, in the same order.
    #[test]
    fn metrics_do_not_depend_on_the_threads() {
        let mut b = WindowBuilder::new();
        let source = SourceName::new("kraken").unwrap();
        for series in 0..37 {
            let pair = Pair::new(&format!("A{series}-USD")).unwrap();
            // Series of unequal lengths, so the runs differ in series.
            for m in 0..(20 + 13 * series) {
                let price = 100.0 + f64::from(series) + (f64::from(m) * 0.7).sin();
                b.push(
                    &source,
                    &pair,
                    Tick::from_unix(T0 + i64::from(m) * 60),
                    0,
                    price,
                    None,
                );
            }
        }
        let window = b.build().unwrap();
        let on = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| series_metrics(&window).unwrap())
        };
        let one = on(1);
        assert_eq!(one.len(), 37);
        for threads in [2, 3, 8] {
            assert_eq!(on(threads), one, "{threads} threads");
        }
    }

    /// A window built from unchecked values (an embedder's, bypassing validation) still gives
    /// a summary of finite numbers: a series whose metrics overflow is left out, an optional
    /// metric that overflows is `None` (issue 20).
    #[test]
    fn unchecked_extreme_prices_give_no_non_finite_metric() {
        let summary = summarise(
            &[
                ("kraken", "BTC-USD", 0, 90_000.0, Some(10.0)),
                ("kraken", "BTC-USD", 1, 90_100.0, Some(11.0)),
                ("kraken", "DUST-USD", 0, 1e-320, Some(1.0)),
                ("kraken", "DUST-USD", 1, 1.0, Some(1.0)),
                ("kraken", "HUGE-USD", 0, 1e300, Some(1e300)),
                ("kraken", "HUGE-USD", 1, -1e300, Some(-1e300)),
            ],
            1,
        );
        let pairs: Vec<&str> = summary.series.iter().map(|s| s.pair.as_str()).collect();
        // DUST's change is infinite: left out. HUGE's std overflows: `None`, the rest stands.
        assert_eq!(pairs, ["BTC-USD", "HUGE-USD"]);
        assert_eq!(summary.series[1].price_std, None);
        assert_eq!(summary.series[1].volume_std, None);
        assert!(
            summary
                .series
                .iter()
                .all(|s| s.non_finite_field().is_none())
        );
        let json = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back, summary);
    }

    #[test]
    fn one_sample() {
        let s = one_series(&[(0, 100.0)]);
        assert_eq!(s.samples, 1);
        assert_eq!(
            (s.first, s.last, s.high, s.low, s.mean),
            (100.0, 100.0, 100.0, 100.0, 100.0)
        );
        assert_eq!(s.change_pct, 0.0);
        assert_eq!(s.volatility_pct, None);
        assert_eq!(s.price_std, None);
        assert_eq!(s.rsi_14, None);
        assert_eq!(s.sma_60, None);
        assert_eq!(s.ema_60, 100.0);
        assert_eq!(s.gaps, 0);
        assert_eq!(s.max_drawdown_pct, 0.0);
        assert_eq!(s.volume_std, None);
        assert_eq!(s.price_rank, None);
    }

    #[test]
    fn gaps_and_returns_only_across_whole_minutes() {
        // Minutes 0, 1, 2, then 5, 6: two missing slots; returns only 0-1, 1-2, 5-6.
        let s = one_series(&[(0, 100.0), (1, 101.0), (2, 100.0), (5, 150.0), (6, 151.0)]);
        assert_eq!(s.gaps, 2);
        let r = [
            (101.0f64 / 100.0).ln(),
            (100.0f64 / 101.0).ln(),
            (151.0f64 / 150.0).ln(),
        ];
        let mean = r.iter().sum::<f64>() / 3.0;
        let sd = (r.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let want = sd * 525_600f64.sqrt() * 100.0;
        assert!(
            close(s.volatility_pct.unwrap(), want),
            "{:?} {want}",
            s.volatility_pct
        );
    }

    #[test]
    fn one_return_is_not_enough_for_volatility() {
        let s = one_series(&[(0, 100.0), (1, 101.0), (3, 102.0)]);
        assert_eq!(s.volatility_pct, None);
        assert!(s.price_std.is_some());
    }

    #[test]
    fn equal_prices() {
        let prices: Vec<_> = (0..70).map(|m| (m, 42.0)).collect();
        let s = one_series(&prices);
        assert_eq!(s.price_std, Some(0.0));
        assert_eq!(s.volatility_pct, Some(0.0));
        assert_eq!(s.rsi_14, Some(50.0));
        assert_eq!(s.max_drawdown_pct, 0.0);
        assert_eq!(s.sma_60, Some(42.0));
        assert!(close(s.ema_60, 42.0));
        assert_eq!(s.change_pct, 0.0);
    }

    #[test]
    fn rsi_with_no_losses_is_100() {
        let prices: Vec<_> = (0..20).map(|m| (m, 100.0 + m as f64)).collect();
        assert_eq!(one_series(&prices).rsi_14, Some(100.0));
    }

    #[test]
    fn rsi_needs_15_samples_and_follows_wilder() {
        let fourteen: Vec<_> = (0..14).map(|m| (m, 100.0 + m as f64)).collect();
        assert_eq!(one_series(&fourteen).rsi_14, None);
        // 14 changes of +1 then one of -2: gain 13/14, loss 2/14 after smoothing.
        let mut p: Vec<f64> = (0..15).map(|m| 100.0 + m as f64).collect();
        p.push(p[14] - 2.0);
        let (gain, loss) = ((1.0 * 13.0) / 14.0, 2.0 / 14.0);
        let want = 100.0 - 100.0 / (1.0 + gain / loss);
        assert!(close(rsi(&p).unwrap(), want));
    }

    /// One division per peak gives the per-sample definition's value to the last bit.
    #[test]
    fn drawdown_per_peak_equals_the_per_sample_definition() {
        use proptest::prelude::*;
        fn per_sample(prices: &[f64]) -> f64 {
            let (mut peak, mut worst) = (f64::NEG_INFINITY, 0.0f64);
            for &p in prices {
                peak = peak.max(p);
                worst = worst.max((peak - p) / peak);
            }
            worst
        }
        let prices = prop::collection::vec(
            prop_oneof![1e-9..1e-3f64, 0.5..2.0f64, 1e4..1e6f64, Just(1.0)],
            1..300,
        );
        proptest!(|(prices in prices)| {
            prop_assert_eq!(max_drawdown(&prices).to_bits(), per_sample(&prices).to_bits());
        });
    }

    #[test]
    fn drawdown_from_the_running_peak() {
        let s = one_series(&[(0, 100.0), (1, 120.0), (2, 90.0), (3, 130.0), (4, 117.0)]);
        assert!(close(s.max_drawdown_pct, 25.0)); // 120 -> 90
    }

    #[test]
    fn ema_and_sma() {
        let prices: Vec<(i64, f64)> = (0..61).map(|m| (m, m as f64 + 1.0)).collect();
        let s = one_series(&prices);
        let alpha = 2.0 / 61.0;
        let mut e = 1.0;
        for &(_, p) in &prices[1..] {
            e += alpha * (p - e);
        }
        assert!(close(s.ema_60, e));
        // The last 60 of 1..=61 are 2..=61.
        assert!(close(s.sma_60.unwrap(), 31.5));
    }

    #[test]
    fn all_volumes_null() {
        let rows: Vec<_> = (0..5)
            .map(|m| ("coingecko", "BTC-USD", m, 100.0 + m as f64, None))
            .collect();
        let s = &summarise(&rows, 4).series[0];
        assert_eq!(s.volume_last, None);
        assert_eq!(s.volume_std, None);
        assert_eq!(s.volume_rank, None);
        assert!(s.price_rank.is_some());
    }

    #[test]
    fn volume_last_is_the_last_non_null() {
        let rows = [
            ("kraken", "BTC-USD", 0, 1.0, Some(10.0)),
            ("kraken", "BTC-USD", 1, 1.0, Some(30.0)),
            ("kraken", "BTC-USD", 2, 1.0, None),
        ];
        let s = &summarise(&rows, 2).series[0];
        assert_eq!(s.volume_last, Some(30.0));
        assert!(close(s.volume_std.unwrap(), 200f64.sqrt()));
    }

    #[test]
    fn a_series_that_stopped_before_as_of() {
        let rows = [
            ("coinbase", "BTC-USD", 0, 100.0, None),
            ("coinbase", "BTC-USD", 1, 101.0, None),
            ("kraken", "BTC-USD", 0, 100.5, None),
            ("kraken", "BTC-USD", 1, 100.7, None),
            ("kraken", "BTC-USD", 2, 100.9, None),
        ];
        let summary = summarise(&rows, 2);
        let coinbase = &summary.series[0];
        assert_eq!(coinbase.source.as_str(), "coinbase");
        assert_eq!(coinbase.last_tick, Tick::from_unix(T0 + 60));
        // Only one source quotes BTC-USD at as_of: no spread.
        assert!(summary.spreads.is_empty());
    }

    #[test]
    fn samples_outside_the_window_are_left_out() {
        // as_of is minute 1440: minute 0 is exactly 24 h before and so outside (T - 24 h, T].
        let rows = [
            ("kraken", "ETH-USD", 0, 50.0, None),
            ("kraken", "BTC-USD", 0, 100.0, None),
            ("kraken", "BTC-USD", 1, 100.0, None),
            ("kraken", "BTC-USD", 1440, 110.0, None),
        ];
        let summary = summarise(&rows, 1440);
        assert_eq!(
            summary.series.len(),
            1,
            "ETH-USD has no sample in the window"
        );
        assert_eq!(summary.series[0].samples, 2);
        assert_eq!(summary.series[0].first, 100.0);
    }

    #[test]
    fn ties_in_rank_and_sort_order() {
        // Two series with the same price std share the higher rank.
        let mut rows = Vec::new();
        for (s, p, scale) in [
            ("kraken", "BTC-USD", 1.0),
            ("binance", "BTC-USD", 1.0),
            ("kraken", "ETH-USD", 2.0),
        ] {
            for m in 0..3 {
                rows.push((s, p, m, 100.0 + scale * m as f64, None));
            }
        }
        let summary = summarise(&rows, 2);
        let order: Vec<_> = summary
            .series
            .iter()
            .map(|s| format!("{}:{}", s.source, s.pair))
            .collect();
        assert_eq!(
            order,
            ["binance:BTC-USD", "kraken:BTC-USD", "kraken:ETH-USD"]
        );
        let ranks: Vec<_> = summary.series.iter().map(|s| s.price_rank).collect();
        assert_eq!(ranks, [Some(2.0 / 3.0), Some(2.0 / 3.0), Some(1.0)]);
    }

    #[test]
    fn later_collection_wins_a_duplicate_tick() {
        let (s, p) = (
            SourceName::new("kraken").unwrap(),
            Pair::new("BTC-USD").unwrap(),
        );
        let mut b = WindowBuilder::new();
        b.push(&s, &p, Tick::from_unix(T0), 2_000, 200.0, None);
        b.push(&s, &p, Tick::from_unix(T0), 1_000, 100.0, None);
        let summary = PolarsAggregator::default()
            .aggregate(&b.build().unwrap(), Tick::from_unix(T0))
            .unwrap();
        assert_eq!(summary.series[0].samples, 1);
        assert_eq!(summary.series[0].last, 200.0);
    }

    #[test]
    fn spreads_and_alerts() {
        let mut rows = Vec::new();
        for m in 0..61 {
            let spike = if m == 60 { 4.0 } else { 1.0 };
            rows.push(("kraken", "BTC-USD", m, 100.0, Some(10.0 * spike)));
            rows.push(("binance", "BTC-USD", m, 101.0, Some(10.0)));
        }
        let summary = summarise(&rows, 60);
        let spread = &summary.spreads[0];
        assert_eq!(
            (spread.min_source.as_str(), spread.max_source.as_str()),
            ("kraken", "binance")
        );
        assert!(close(spread.spread_bps, 100.0));
        assert_eq!(summary.alerts.len(), 1);
        let alert = &summary.alerts[0];
        assert_eq!(alert.source.as_str(), "kraken");
        assert_eq!(alert.measure, crate::model::Measure::Volume);
        assert!(close(alert.ratio, 4.0) && close(alert.mean_1h, 10.0));
    }

    #[test]
    fn no_alert_without_an_hour_of_history() {
        let rows = [("kraken", "BTC-USD", 0, 100.0, Some(10.0))];
        assert!(summarise(&rows, 0).alerts.is_empty());
    }
}
