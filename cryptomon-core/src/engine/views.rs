//! Views computed from the window on request: a series' candles and a metric's points.

use polars::prelude::*;

use super::window::{Window, cols};
use crate::error::{Error, Result};
use crate::model::{
    CANDLES_SCHEMA, Candle, CandleInterval, Candles, Measure, Pair, Point, SourceName, Tick,
};

fn series_frame(window: &Window, source: &SourceName, pair: &Pair) -> Result<LazyFrame> {
    let sid = window
        .sid(source, pair)
        .ok_or_else(|| Error::UnknownSeries {
            source_name: source.to_string(),
            pair: pair.to_string(),
        })?;
    Ok(window
        .frame()
        .clone()
        .lazy()
        .filter(col(cols::SID).eq(lit(sid))))
}

/// The candle view of one series: [t, t + interval) with t a multiple of the interval since the
/// epoch; only non-empty candles, oldest first.
pub fn candles(
    window: &Window,
    source: &SourceName,
    pair: &Pair,
    interval: CandleInterval,
) -> Result<Candles> {
    let secs = interval.secs();
    let t = col(cols::TICK);
    // Floor division, so a bucket is right for ticks before the epoch too.
    let bucket = (t.clone() - ((t % lit(secs)) + lit(secs)) % lit(secs)).alias("t");
    let price = col(cols::PRICE);
    let df = series_frame(window, source, pair)?
        .group_by_stable([bucket])
        .agg([
            price.clone().first().alias("o"),
            price.clone().max().alias("h"),
            price.clone().min().alias("l"),
            price.last().alias("c"),
            len().alias("n"),
        ])
        .collect()?;
    let t = df.column("t")?.i64()?;
    let (o, h, l, c) = (
        df.column("o")?.f64()?,
        df.column("h")?.f64()?,
        df.column("l")?.f64()?,
        df.column("c")?.f64()?,
    );
    let n = df
        .column("n")?
        .as_materialized_series()
        .cast(&DataType::UInt32)?;
    let n = n.u32()?;
    let mut out = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        if let (Some(t), Some(o), Some(h), Some(l), Some(c), Some(n)) =
            (t.get(i), o.get(i), h.get(i), l.get(i), c.get(i), n.get(i))
        {
            out.push(Candle {
                t: Tick::from_unix(t),
                o,
                h,
                l,
                c,
                n,
            });
        }
    }
    Ok(Candles {
        schema: CANDLES_SCHEMA.to_owned(),
        source: source.clone(),
        pair: pair.clone(),
        interval,
        candles: out,
    })
}

/// A metric's points in tick order; samples without a value (a `null` volume) are left out.
pub fn points(
    window: &Window,
    source: &SourceName,
    pair: &Pair,
    measure: Measure,
) -> Result<Vec<Point>> {
    let column = match measure {
        Measure::Price => cols::PRICE,
        Measure::Volume => cols::VOLUME,
    };
    let df = series_frame(window, source, pair)?
        .select([col(cols::TICK), col(column)])
        .collect()?;
    let (t, v) = (df.column(cols::TICK)?.i64()?, df.column(column)?.f64()?);
    Ok((0..df.height())
        .filter_map(|i| {
            Some(Point {
                t: Tick::from_unix(t.get(i)?),
                v: v.get(i)?,
            })
        })
        .collect())
}
