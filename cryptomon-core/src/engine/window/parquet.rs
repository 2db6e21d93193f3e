//! The window as Parquet: the state's columns as they are, the series table as key-value
//! metadata, and every stored byte checked on the way back.

use std::io::Cursor;

use polars::prelude::*;

use super::{METADATA_KEY, SERIES_KEY, SeriesKey, Window, cols, contiguous};
use crate::error::{Error, Result};
use crate::model::{PRICE_RANGE, Pair, SourceName};

impl Window {
    /// The window as Parquet: the frame's columns as they are, and the series table (and
    /// `metadata`, if given) as key-value entries of the file.
    pub fn to_parquet(&self, metadata: Option<String>) -> Result<Vec<u8>> {
        let series: Vec<[&str; 2]> = self
            .series
            .iter()
            .map(|k| [k.source.as_str(), k.pair.as_str()])
            .collect();
        let series = serde_json::to_string(&series)
            .map_err(|e| Error::Engine(format!("series table: {e}")))?;
        let mut kv = vec![(SERIES_KEY.to_owned(), series)];
        if let Some(m) = metadata {
            kv.push((METADATA_KEY.to_owned(), m));
        }
        let mut frame = self.frame.clone();
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            // LZ4: the state is read and written every tick, so speed beats the last few %.
            .with_compression(ParquetCompression::Lz4Raw)
            // One row group of the whole frame: below polars' default group size, a frame goes
            // through its regrouping of small chunks, which first builds polars' 8 MB zero
            // buffer, a cost a one-shot tick would pay on every write.
            .with_row_group_size(Some(frame.height().max(1)))
            // No min, max or null counts per column: the state is this program's own and is
            // always read whole, so statistics would only cost encoding time.
            .with_statistics(StatisticsOptions::empty())
            .with_key_value_metadata(Some(KeyValueMetadata::from_static(kv)))
            .finish(&mut frame)?;
        Ok(buf)
    }

    /// Reads a window written by [`Window::to_parquet`], and its metadata entry. The bytes come
    /// from a store, so everything is checked: valid names in (pair, source) order, every `sid`
    /// in range, rows sorted by (`sid`, `tick`) without duplicates. A row whose price is outside
    /// [`PRICE_RANGE`] is left out (and logged with its series), not the whole window.
    pub fn from_parquet(bytes: &[u8]) -> Result<(Window, Option<String>)> {
        let bad = |what: String| Error::Engine(format!("window state: {what}"));
        let (df, metadata, table) = read_parquet(bytes)?;
        let table = table.ok_or_else(|| bad("no series table".into()))?;
        let table: Vec<[String; 2]> =
            serde_json::from_str(&table).map_err(|e| bad(format!("series table: {e}")))?;
        let mut series = Vec::with_capacity(table.len());
        for [source, pair] in &table {
            let key = SeriesKey::new(SourceName::new(source)?, Pair::new(pair)?);
            if series.last().is_some_and(|last| *last >= key) {
                return Err(bad(format!("series {source}:{pair} out of order")));
            }
            series.push(key);
        }
        for name in [
            cols::SID,
            cols::TICK,
            cols::COLLECTED_AT,
            cols::PRICE,
            cols::VOLUME,
        ] {
            df.column(name)?;
        }
        if df.height() == 0 {
            // No rows (a head right after a new base): polars reads such columns as scalars,
            // and casting one would first build polars' shared 8 MB buffer of zeros; an empty
            // window is all there is.
            return Ok((Window::empty()?, metadata));
        }
        // A column of the right type already (every window this code writes) is taken as it
        // is, not cast, which could make a series of a scalar column as above.
        let column = |name: &str, dtype: DataType| -> Result<Column> {
            let c = df.column(name)?;
            Ok(if *c.dtype() == dtype {
                c.clone()
            } else {
                c.cast(&dtype)?
            })
        };
        // A state written before backfills holds snapshots' samples only.
        let backfill = match df.column(cols::BACKFILL) {
            Ok(_) => column(cols::BACKFILL, DataType::Boolean)?,
            Err(_) => BooleanChunked::full(cols::BACKFILL.into(), false, df.height()).into_column(),
        };
        let mut frame = DataFrame::new(
            df.height(),
            vec![
                column(cols::SID, DataType::UInt32)?,
                column(cols::TICK, DataType::Int64)?,
                column(cols::COLLECTED_AT, DataType::Int64)?,
                column(cols::PRICE, DataType::Float64)?,
                column(cols::VOLUME, DataType::Float64)?,
                backfill,
            ],
        )?;
        for name in [
            cols::SID,
            cols::TICK,
            cols::COLLECTED_AT,
            cols::PRICE,
            cols::BACKFILL,
        ] {
            if frame.column(name)?.null_count() > 0 {
                return Err(bad(format!("null in column {name}")));
            }
        }
        // One chunk per column (as the window keeps them anyway), so the checks below run over
        // plain slices: a cold tick checks a day of rows.
        frame.rechunk_mut();
        let sid = contiguous(frame.column(cols::SID)?.u32()?)?;
        let tick = contiguous(frame.column(cols::TICK)?.i64()?)?;
        // Each row against the one before it, counted without an early exit so that the loop
        // vectorizes; the offending row is looked for only when there is one.
        let in_order =
            |i: usize| sid[i] > sid[i - 1] || (sid[i] == sid[i - 1] && tick[i] > tick[i - 1]);
        let disorder = (1..sid.len())
            .map(|i| usize::from(!in_order(i)))
            .sum::<usize>();
        let last = sid.iter().copied().max().unwrap_or(0);
        if disorder > 0 || last as usize >= series.len() {
            let at = (1..sid.len())
                .find(|&i| !in_order(i))
                .or_else(|| sid.iter().position(|&s| s as usize >= series.len()))
                .unwrap_or(0);
            return Err(bad(format!(
                "rows out of order or out of range at sid {}, tick {}",
                sid[at], tick[at]
            )));
        }
        let price = contiguous(frame.column(cols::PRICE)?.f64()?)?;
        // A sum of flags, not `any`: without an early exit the loop vectorizes, and a stored
        // window is almost always valid, so an exit would save nothing.
        let bad_prices = price
            .iter()
            .map(|&p| usize::from(!PRICE_RANGE.contains(&p)))
            .sum::<usize>();
        if bad_prices > 0 {
            // Rows a writer that broke the contract left (an older one took any positive
            // price): their series lose those rows, the rest of the window stands.
            let keep: BooleanChunked = price
                .iter()
                .map(|p| PRICE_RANGE.contains(p))
                .collect_ca(PlSmallStr::from_static("keep"));
            let mut hit: Vec<u32> = sid
                .iter()
                .zip(price)
                .filter(|(_, p)| !PRICE_RANGE.contains(p))
                .map(|(&s, _)| s)
                .collect();
            hit.dedup();
            for s in hit {
                let key = &series[s as usize];
                tracing::warn!(
                    source = %key.source,
                    pair = %key.pair,
                    "window state: rows with a price outside the accepted range left out"
                );
            }
            frame = frame.filter(&keep)?;
            if frame.height() == 0 {
                return Ok((Window::empty()?, metadata));
            }
            frame.rechunk_mut();
        }
        Ok((Window::from_parts(series, frame)?, metadata))
    }
}

/// Reads a Parquet file's frame and its two key-value entries (the window's metadata, the series
/// table).
///
/// polars-parquet 0.55 panics on some malformed footers (`expect("thrift bool field")`, found
/// by the `window_state` fuzz target) instead of returning an error. A stored state is outside
/// input, so such a panic is caught here and becomes the error that makes the transform rebuild
/// the window from raw, rather than a process that fails every tick.
fn read_parquet(bytes: &[u8]) -> Result<(DataFrame, Option<String>, Option<String>)> {
    let read = || -> Result<(DataFrame, Option<String>, Option<String>)> {
        let mut reader = ParquetReader::new(Cursor::new(bytes));
        let (metadata, table) = {
            let md = reader.get_metadata()?;
            let entry = |key: &str| {
                md.key_value_metadata()
                    .as_ref()
                    .and_then(|kv| kv.iter().find(|e| e.key == key))
                    .and_then(|e| e.value.clone())
            };
            (entry(METADATA_KEY), entry(SERIES_KEY))
        };
        Ok((reader.finish()?, metadata, table))
    };
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)).unwrap_or_else(|_| {
        Err(Error::Engine(
            "window state: the Parquet reader failed on a malformed file".into(),
        ))
    })
}
