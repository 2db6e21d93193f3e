//! Views computed from the window on request: a series' candles and a metric's points.
//!
//! A series' samples are one contiguous, tick-ordered run of rows, found by binary search on
//! the sorted `sid` column; each view is one pass over it.

use super::series::Columns;
use super::window::Window;
use crate::error::{Error, Result};
use crate::model::{
    CANDLES_SCHEMA, Candle, CandleInterval, Candles, Measure, Pair, Point, SourceName, Tick,
};

fn series_rows(
    window: &Window,
    source: &SourceName,
    pair: &Pair,
) -> Result<std::ops::Range<usize>> {
    let sid = window
        .sid(source, pair)
        .ok_or_else(|| Error::UnknownSeries {
            source_name: source.to_string(),
            pair: pair.to_string(),
        })?;
    window.rows(sid)
}

/// The candle view of one series: [t, t + interval) with t a multiple of the interval since the
/// epoch; only non-empty candles, oldest first.
pub fn candles(
    window: &Window,
    source: &SourceName,
    pair: &Pair,
    interval: CandleInterval,
) -> Result<Candles> {
    let rows = series_rows(window, source, pair)?;
    let columns = Columns::of(window)?;
    let (ticks, prices) = (&columns.tick[rows.clone()], &columns.price[rows]);
    Ok(Candles {
        schema: CANDLES_SCHEMA.to_owned(),
        source: source.clone(),
        pair: pair.clone(),
        interval,
        candles: bucket(ticks.iter().copied().zip(prices.iter().copied()), interval),
        skipped_days: Vec::new(),
    })
}

/// Candles of `(unix seconds, price)` samples in tick order: [t, t + interval) with t a multiple
/// of the interval since the epoch; only non-empty candles, oldest first.
pub fn bucket(
    samples: impl IntoIterator<Item = (i64, f64)>,
    interval: CandleInterval,
) -> Vec<Candle> {
    let secs = interval.secs();
    let mut out: Vec<Candle> = Vec::new();
    for (t, p) in samples {
        // Floor division, so a bucket is right for ticks before the epoch too.
        let start = t.div_euclid(secs) * secs;
        match out.last_mut() {
            Some(c) if c.t.unix() == start => {
                c.h = c.h.max(p);
                c.l = c.l.min(p);
                c.c = p;
                c.n += 1;
            }
            _ => out.push(Candle {
                t: Tick::from_unix(start),
                o: p,
                h: p,
                l: p,
                c: p,
                n: 1,
            }),
        }
    }
    out
}

/// A metric's points in tick order; samples without a value (a `null` volume) are left out.
pub fn points(
    window: &Window,
    source: &SourceName,
    pair: &Pair,
    measure: Measure,
) -> Result<Vec<Point>> {
    let rows = series_rows(window, source, pair)?;
    let columns = Columns::of(window)?;
    let ticks = &columns.tick[rows.clone()];
    Ok(match measure {
        Measure::Price => ticks
            .iter()
            .zip(&columns.price[rows])
            .map(|(&t, &v)| Point {
                t: Tick::from_unix(t),
                v,
            })
            .collect(),
        Measure::Volume => ticks
            .iter()
            .zip(columns.volume.slice(rows.start as i64, rows.len()).iter())
            .filter_map(|(&t, v)| {
                Some(Point {
                    t: Tick::from_unix(t),
                    v: v?,
                })
            })
            .collect(),
    })
}
