//! Metrics of one series over the window (every field of the contract's table but the ranks).

use polars::prelude::*;

use super::window::{Window, cols};
use crate::error::{Error, Result};
use crate::model::{SeriesSummary, Tick};

/// Minutes in a year: scales one-minute volatility to an annual figure.
const MINUTES_PER_YEAR: f64 = 525_600.0;
/// The RSI period.
const RSI_PERIOD: usize = 14;
/// The moving averages' length.
const MA_LEN: usize = 60;

/// Computes every series' metrics, in the window's (pair, source) order. Ranks are left `None`.
pub(crate) fn series_metrics(window: &Window) -> Result<Vec<SeriesSummary>> {
    if window.is_empty() {
        return Ok(Vec::new());
    }
    let price = col(cols::PRICE);
    let tick = col(cols::TICK);
    let peak = price.clone().cum_max(false);
    // Log returns, kept only where the previous sample is exactly one minute earlier.
    let one_minute_returns = (price.clone() / price.clone().shift(lit(1)))
        .log(lit(std::f64::consts::E))
        .filter((tick.clone() - tick.clone().shift(lit(1))).eq(lit(60i64)));
    let ema = price.clone().ewm_mean(EWMOptions {
        alpha: 2.0 / (MA_LEN as f64 + 1.0),
        adjust: false,
        bias: false,
        min_periods: 1,
        ignore_nulls: true,
    });
    let agg = window
        .frame()
        .clone()
        .lazy()
        .group_by_stable([col(cols::SID)])
        .agg([
            len().alias("samples"),
            price.clone().first().alias("first"),
            price.clone().last().alias("last"),
            tick.clone().first().alias("first_tick"),
            tick.clone().last().alias("last_tick"),
            price.clone().max().alias("high"),
            price.clone().min().alias("low"),
            price.clone().mean().alias("mean"),
            price.clone().std(1).alias("price_std"),
            one_minute_returns.clone().std(1).alias("return_std"),
            one_minute_returns.count().alias("returns"),
            ((peak.clone() - price.clone()) / peak)
                .max()
                .alias("drawdown"),
            ema.last().alias("ema"),
            price.clone().tail(Some(MA_LEN)).mean().alias("sma"),
            col(cols::VOLUME).last_non_null().alias("volume_last"),
            col(cols::VOLUME).std(1).alias("volume_std"),
            col(cols::VOLUME).count().alias("volumes"),
        ])
        .collect()?;

    let f64s = |name: &str| -> Result<Float64Chunked> {
        Ok(agg
            .column(name)?
            .as_materialized_series()
            .cast(&DataType::Float64)?
            .f64()?
            .clone())
    };
    let i64s = |name: &str| -> Result<Int64Chunked> {
        Ok(agg
            .column(name)?
            .as_materialized_series()
            .cast(&DataType::Int64)?
            .i64()?
            .clone())
    };
    let sid = agg.column(cols::SID)?.u32()?.clone();
    let samples = i64s("samples")?;
    let (first, last, high, low, mean) = (
        f64s("first")?,
        f64s("last")?,
        f64s("high")?,
        f64s("low")?,
        f64s("mean")?,
    );
    let (first_tick, last_tick) = (i64s("first_tick")?, i64s("last_tick")?);
    let (price_std, return_std, returns) =
        (f64s("price_std")?, f64s("return_std")?, i64s("returns")?);
    let (drawdown, ema, sma) = (f64s("drawdown")?, f64s("ema")?, f64s("sma")?);
    let (volume_last, volume_std, volumes) =
        (f64s("volume_last")?, f64s("volume_std")?, i64s("volumes")?);

    // RSI is a recursion over consecutive samples: run it on each series' contiguous slice.
    let offsets = window.offsets()?;
    let prices = window.frame().column(cols::PRICE)?.f64()?;
    let prices = prices
        .cont_slice()
        .map_err(|e| Error::Engine(format!("price column is not contiguous: {e}")))?;

    let missing = |what: &str, i: usize| Error::Engine(format!("no {what} for group {i}"));
    let mut out = Vec::with_capacity(agg.height());
    for i in 0..agg.height() {
        let s = sid.get(i).ok_or_else(|| missing("sid", i))? as usize;
        let key = &window.series()[s];
        let n = samples.get(i).ok_or_else(|| missing("samples", i))?;
        let first_p = first.get(i).ok_or_else(|| missing("first", i))?;
        let last_p = last.get(i).ok_or_else(|| missing("last", i))?;
        let t1 = first_tick.get(i).ok_or_else(|| missing("first_tick", i))?;
        let tn = last_tick.get(i).ok_or_else(|| missing("last_tick", i))?;
        let enough = |count: Option<i64>, min: i64| count.is_some_and(|c| c >= min);
        out.push(SeriesSummary {
            source: key.source.clone(),
            pair: key.pair.clone(),
            samples: n as u32,
            first: first_p,
            last: last_p,
            last_tick: Tick::from_unix(tn),
            change_pct: (last_p / first_p - 1.0) * 100.0,
            high: high.get(i).ok_or_else(|| missing("high", i))?,
            low: low.get(i).ok_or_else(|| missing("low", i))?,
            mean: mean.get(i).ok_or_else(|| missing("mean", i))?,
            volatility_pct: return_std
                .get(i)
                .filter(|_| enough(returns.get(i), 2))
                .map(|sd| sd * MINUTES_PER_YEAR.sqrt() * 100.0),
            max_drawdown_pct: drawdown.get(i).unwrap_or(0.0) * 100.0,
            rsi_14: rsi(&prices[offsets[s]..offsets[s + 1]]),
            sma_60: sma.get(i).filter(|_| n >= MA_LEN as i64),
            ema_60: ema.get(i).ok_or_else(|| missing("ema", i))?,
            gaps: (tn - t1) / 60 + 1 - n,
            price_std: price_std.get(i).filter(|_| n >= 2),
            volume_last: volume_last.get(i),
            volume_std: volume_std.get(i).filter(|_| enough(volumes.get(i), 2)),
            price_rank: None,
            volume_rank: None,
        });
    }
    Ok(out)
}

/// Wilder's RSI over consecutive prices: the first average gain and loss are the plain means of
/// the first 14 changes, then avg = (avg × 13 + x) / 14. `None` with fewer than 15 prices.
pub(crate) fn rsi(prices: &[f64]) -> Option<f64> {
    if prices.len() < RSI_PERIOD + 1 {
        return None;
    }
    let period = RSI_PERIOD as f64;
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
            gain = (gain * (period - 1.0) + g) / period;
            loss = (loss * (period - 1.0) + l) / period;
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
