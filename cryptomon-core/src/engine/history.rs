//! History days: a window's samples of one UTC day as a plain table, for Parquet files any
//! query engine reads without this program (see `docs/data-contract.md`, History).

use polars::prelude::*;

use super::Window;
use crate::error::Result;
use crate::model::{Point, Tick};

/// The history table's columns, in order.
pub const HISTORY_COLUMNS: [&str; 7] = [
    "source",
    "pair",
    "tick",
    "price",
    "volume",
    "origin",
    "collected_at",
];

/// Seconds in a UTC day.
pub const DAY_SECS: i64 = 86_400;

/// The start of the UTC day holding `tick`.
pub fn day_start(tick: Tick) -> Tick {
    Tick::from_unix(tick.unix() - tick.unix().rem_euclid(DAY_SECS))
}

/// The samples of `window` whose ticks fall in the UTC day starting at `day`, as the history
/// table: one row per (source, pair, tick), sorted by source, pair and tick; times as UTC
/// timestamps in milliseconds; `origin` says `snapshot` or `backfill`.
pub fn day_table(window: &Window, day: Tick) -> Result<DataFrame> {
    let (from, to) = (day.unix(), day.unix() + DAY_SECS);
    let frame = window.frame();
    let tick = frame.column(super::window::cols::TICK)?.i64()?;
    let collected = frame.column(super::window::cols::COLLECTED_AT)?.i64()?;
    let price = frame.column(super::window::cols::PRICE)?.f64()?;
    let volume = frame.column(super::window::cols::VOLUME)?.f64()?;
    let backfill = frame.column(super::window::cols::BACKFILL)?.bool()?;
    // Series by source, then pair: the window's own order is (pair, source).
    let mut order: Vec<usize> = (0..window.series().len()).collect();
    order.sort_by_key(|&s| (&window.series()[s].source, &window.series()[s].pair));
    let mut rows: Vec<usize> = Vec::new();
    let mut keys: Vec<usize> = Vec::new();
    for sid in order {
        for row in window.rows(sid as u32)? {
            let t = tick.get(row).unwrap_or(i64::MIN);
            if (from..to).contains(&t) {
                rows.push(row);
                keys.push(sid);
            }
        }
    }
    let series = window.series();
    let sources: StringChunked = keys
        .iter()
        .map(|&s| Some(series[s].source.as_str()))
        .collect();
    let pairs: StringChunked = keys
        .iter()
        .map(|&s| Some(series[s].pair.as_str()))
        .collect();
    let ms = |name: &str, v: Vec<i64>| -> Column {
        Int64Chunked::from_vec(name.into(), v)
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_column()
    };
    let ticks = rows
        .iter()
        .map(|&r| tick.get(r).unwrap_or(0) * 1000)
        .collect();
    let collected_at = rows
        .iter()
        .map(|&r| collected.get(r).unwrap_or(0))
        .collect();
    let prices: Float64Chunked = rows.iter().map(|&r| price.get(r)).collect();
    let volumes: Float64Chunked = rows.iter().map(|&r| volume.get(r)).collect();
    let origin: StringChunked = rows
        .iter()
        .map(|&r| {
            Some(if backfill.get(r) == Some(true) {
                "backfill"
            } else {
                "snapshot"
            })
        })
        .collect();
    let [
        source,
        pair,
        tick_name,
        price_name,
        volume_name,
        origin_name,
        collected_name,
    ] = HISTORY_COLUMNS;
    Ok(DataFrame::new(
        rows.len(),
        vec![
            sources.with_name(source.into()).into_column(),
            pairs.with_name(pair.into()).into_column(),
            ms(tick_name, ticks),
            prices.with_name(price_name.into()).into_column(),
            volumes.with_name(volume_name.into()).into_column(),
            origin.with_name(origin_name.into()).into_column(),
            ms(collected_name, collected_at),
        ],
    )?)
}

/// A history table as Parquet: zstd, statistics kept (engines prune row groups by them).
pub fn to_parquet(table: &mut DataFrame) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(table)?;
    Ok(buf)
}

/// One series' samples of a stored history day (`parquet`, as [`to_parquet`] writes it): its
/// price points in tick order, `None` if the day holds no such series.
///
/// The file is sorted by source and pair, so the series is found by binary search over those
/// two columns alone, and only its rows of `tick` and `price` are decoded (a slice, so the
/// reader skips the other row groups). Any malformed file, including one that makes the
/// Parquet reader panic, is an error.
pub fn read_series(parquet: &[u8], source: &str, pair: &str) -> Result<Option<Vec<Point>>> {
    let read = || -> Result<Option<Vec<Point>>> {
        let reader = |columns: &[&str]| {
            ParquetReader::new(std::io::Cursor::new(parquet))
                .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        };
        let keys = reader(&["source", "pair"]).finish()?;
        let sources = keys.column("source")?.str()?.rechunk();
        let pairs = keys.column("pair")?.str()?.rechunk();
        let key = |i: usize| (sources.get(i).unwrap_or(""), pairs.get(i).unwrap_or(""));
        let n = keys.height();
        let start = partition_point(n, |i| key(i) < (source, pair));
        let end = start + partition_point(n - start, |i| key(start + i) <= (source, pair));
        if start == end {
            return Ok(None);
        }
        let rows = reader(&["tick", "price"])
            .with_slice(Some((start, end - start)))
            .finish()?;
        let ticks = rows.column("tick")?.cast(&DataType::Int64)?;
        let ticks = ticks.i64()?;
        let prices = rows.column("price")?.f64()?;
        Ok(Some(
            ticks
                .iter()
                .zip(prices.iter())
                .filter_map(|(t, v)| {
                    Some(Point {
                        t: Tick::from_unix(t?.div_euclid(1000)),
                        v: v?,
                    })
                })
                .collect(),
        ))
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(crate::error::Error::Engine(
            "history day: the Parquet reader failed on a malformed file".into(),
        ))
    })
}

/// The first index in `0..n` where `pred` is false, for a `pred` true on a prefix.
fn partition_point(n: usize, pred: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if pred(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::WindowBuilder;
    use crate::model::{Pair, SourceName};

    #[test]
    fn one_series_is_read_back_from_a_day_of_many() {
        let day = Tick::parse("2026-12-06T00:00:00Z").unwrap();
        let mut b = WindowBuilder::new();
        for source in ["alpha", "beta"] {
            for pair in ["BTC-USD", "ETH-USD", "SOL-USD"] {
                let (s, p) = (SourceName::new(source).unwrap(), Pair::new(pair).unwrap());
                for m in 0..30 {
                    let price = m as f64 + if source == "beta" { 0.5 } else { 0.0 };
                    b.push(&s, &p, day.add_secs(m * 60), 0, price, None);
                }
            }
        }
        let mut table = day_table(&b.build().unwrap(), day).unwrap();
        let parquet = to_parquet(&mut table).unwrap();
        let got = read_series(&parquet, "beta", "ETH-USD").unwrap().unwrap();
        assert_eq!(got.len(), 30);
        assert_eq!(got[0].t, day);
        assert_eq!(got[29].v, 29.5);
        assert!(read_series(&parquet, "beta", "DOGE-USD").unwrap().is_none());
        assert!(read_series(&parquet, "gamma", "BTC-USD").unwrap().is_none());
        assert!(read_series(b"PAR1 not parquet PAR1", "beta", "ETH-USD").is_err());
    }
}
