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
