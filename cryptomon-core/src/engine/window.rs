//! The window: the deduplicated samples of every series, held in a polars `DataFrame`.

use std::collections::HashMap;
use std::io::Cursor;

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::model::{Pair, Snapshot, SourceName, Tick};

/// One series: a (source, pair). Ordered by (pair, source), the summary's order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesKey {
    /// The pair.
    pub pair: Pair,
    /// The source.
    pub source: SourceName,
}

impl SeriesKey {
    /// A series key.
    pub fn new(source: SourceName, pair: Pair) -> Self {
        SeriesKey { pair, source }
    }
}

/// The Parquet key-value entry that carries the pipeline's metadata.
const METADATA_KEY: &str = "cryptomon.window";

/// Column names of the window frame.
pub(crate) mod cols {
    pub(crate) const SID: &str = "sid";
    pub(crate) const TICK: &str = "tick";
    pub(crate) const COLLECTED_AT: &str = "collected_at";
    pub(crate) const PRICE: &str = "price";
    pub(crate) const VOLUME: &str = "volume";
    pub(crate) const SOURCE: &str = "source";
    pub(crate) const PAIR: &str = "pair";
}

/// The samples of every series, deduplicated and sorted: the input of every metric.
///
/// The frame has one row per (series, tick) with columns `sid` (u32, the index of the series in
/// [`Window::series`]), `tick` (i64 seconds), `collected_at` (i64 ms), `price` (f64) and
/// `volume` (f64, nullable), sorted by (`sid`, `tick`). Series are numbered in (pair, source)
/// order so every per-series result comes out in the summary's order.
#[derive(Debug, Clone)]
pub struct Window {
    series: Vec<SeriesKey>,
    frame: DataFrame,
}

/// Collects samples, then builds a [`Window`] in one sort.
#[derive(Debug, Default)]
pub struct WindowBuilder {
    ids: HashMap<SeriesKey, u32>,
    keys: Vec<SeriesKey>,
    sid: Vec<u32>,
    tick: Vec<i64>,
    collected_at: Vec<i64>,
    price: Vec<f64>,
    volume: Vec<Option<f64>>,
}

impl WindowBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample.
    pub fn push(
        &mut self,
        source: &SourceName,
        pair: &Pair,
        tick: Tick,
        collected_at_ms: i64,
        price: f64,
        volume: Option<f64>,
    ) {
        let key = SeriesKey::new(source.clone(), pair.clone());
        let next = self.keys.len() as u32;
        let id = *self.ids.entry(key).or_insert_with_key(|k| {
            self.keys.push(k.clone());
            next
        });
        self.sid.push(id);
        self.tick.push(tick.unix());
        self.collected_at.push(collected_at_ms);
        self.price.push(price);
        self.volume.push(volume);
    }

    /// Adds every quote of a snapshot.
    pub fn push_snapshot(&mut self, snapshot: &Snapshot) {
        let collected = snapshot.collected_at.timestamp_millis();
        for q in &snapshot.quotes {
            self.push(
                &snapshot.source,
                &q.pair,
                snapshot.tick,
                collected,
                q.price,
                q.volume_24h,
            );
        }
    }

    /// Adds every sample of an existing window (to merge new snapshots into a state).
    pub fn push_window(&mut self, window: &Window) -> Result<()> {
        let f = &window.frame;
        let sid = f.column(cols::SID)?.u32()?;
        let tick = f.column(cols::TICK)?.i64()?;
        let collected = f.column(cols::COLLECTED_AT)?.i64()?;
        let price = f.column(cols::PRICE)?.f64()?;
        let volume = f.column(cols::VOLUME)?.f64()?;
        for i in 0..f.height() {
            let (Some(s), Some(t), Some(c), Some(p)) =
                (sid.get(i), tick.get(i), collected.get(i), price.get(i))
            else {
                return Err(Error::Engine(
                    "window frame holds a null key or price".into(),
                ));
            };
            let key = &window.series[s as usize];
            self.push(
                &key.source,
                &key.pair,
                Tick::from_unix(t),
                c,
                p,
                volume.get(i),
            );
        }
        Ok(())
    }

    /// Sorts, deduplicates (the later `collected_at` wins) and returns the window.
    pub fn build(self) -> Result<Window> {
        // Number series in (pair, source) order.
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_by(|&a, &b| self.keys[a as usize].cmp(&self.keys[b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        let series: Vec<SeriesKey> = order
            .iter()
            .map(|&old| self.keys[old as usize].clone())
            .collect();
        let sid: Vec<u32> = self.sid.iter().map(|&s| remap[s as usize]).collect();
        let frame = df!(
            cols::SID => sid,
            cols::TICK => self.tick,
            cols::COLLECTED_AT => self.collected_at,
            cols::PRICE => self.price,
            cols::VOLUME => self.volume,
        )?;
        let frame = frame
            .lazy()
            .sort_by_exprs(
                [col(cols::SID), col(cols::TICK), col(cols::COLLECTED_AT)],
                SortMultipleOptions::default().with_maintain_order(true),
            )
            .unique_stable(
                Some(cols([cols::SID, cols::TICK])),
                UniqueKeepStrategy::Last,
            )
            .collect()?;
        Window::from_parts(series, frame)
    }
}

impl Window {
    fn from_parts(series: Vec<SeriesKey>, frame: DataFrame) -> Result<Self> {
        let window = Window { series, frame }.drop_unused_series()?;
        Ok(window.canonical())
    }

    /// One chunk per column and the `sid` column flagged sorted (it is, by construction), so
    /// polars takes the same code path, and rounds the same way, however the window was built:
    /// an incremental run and a full rebuild must agree to the last bit.
    fn canonical(mut self) -> Self {
        self.frame.rechunk_mut();
        if let Ok(sid) = self.frame.column(cols::SID) {
            let mut sid = sid.as_materialized_series().clone();
            sid.set_sorted_flag(polars::series::IsSorted::Ascending);
            // Replacing a column by one of the same name and length cannot fail.
            let _ = self.frame.with_column(sid.into_column());
        }
        self
    }

    /// An empty window.
    pub fn empty() -> Result<Self> {
        WindowBuilder::new().build()
    }

    /// The series, indexed by `sid`, in (pair, source) order.
    pub fn series(&self) -> &[SeriesKey] {
        &self.series
    }

    /// The frame (see the type's docs for its columns).
    pub fn frame(&self) -> &DataFrame {
        &self.frame
    }

    /// Rows in the frame.
    pub fn len(&self) -> usize {
        self.frame.height()
    }

    /// Whether the window holds no sample.
    pub fn is_empty(&self) -> bool {
        self.frame.height() == 0
    }

    /// The latest tick of any sample.
    pub fn latest_tick(&self) -> Result<Option<Tick>> {
        Ok(self
            .frame
            .column(cols::TICK)?
            .i64()?
            .max()
            .map(Tick::from_unix))
    }

    /// The index of a series.
    pub fn sid(&self, source: &SourceName, pair: &Pair) -> Option<u32> {
        self.series
            .binary_search(&SeriesKey::new(source.clone(), pair.clone()))
            .ok()
            .map(|i| i as u32)
    }

    /// Keeps the samples with ticks in (`as_of` − `minutes`, `as_of`] and the series that
    /// still have one.
    pub fn trimmed(&self, as_of: Tick, minutes: u32) -> Result<Window> {
        let from = as_of.unix() - i64::from(minutes) * 60;
        let frame = self
            .frame
            .clone()
            .lazy()
            .filter(
                col(cols::TICK)
                    .gt(lit(from))
                    .and(col(cols::TICK).lt_eq(lit(as_of.unix()))),
            )
            .collect()?;
        Window::from_parts(self.series.clone(), frame)
    }

    /// Renumbers series so that every one has at least one sample.
    fn drop_unused_series(self) -> Result<Window> {
        let sid = self.frame.column(cols::SID)?.u32()?;
        let mut used = vec![false; self.series.len()];
        for s in sid.into_no_null_iter() {
            used[s as usize] = true;
        }
        if used.iter().all(|&u| u) {
            return Ok(self);
        }
        let mut remap = vec![u32::MAX; used.len()];
        let mut series = Vec::new();
        for (old, key) in self.series.into_iter().enumerate() {
            if used[old] {
                remap[old] = series.len() as u32;
                series.push(key);
            }
        }
        let new_sid: UInt32Chunked = sid
            .into_no_null_iter()
            .map(|s| remap[s as usize])
            .collect_ca(cols::SID.into());
        let mut frame = self.frame;
        frame.with_column(new_sid.into_column())?;
        Ok(Window { series, frame })
    }

    /// Row offsets of each series in the frame: `offsets[sid]..offsets[sid + 1]`.
    pub(crate) fn offsets(&self) -> Result<Vec<usize>> {
        let sid = self.frame.column(cols::SID)?.u32()?;
        let mut offsets = vec![0usize; self.series.len() + 1];
        for s in sid.into_no_null_iter() {
            offsets[s as usize + 1] += 1;
        }
        for i in 1..offsets.len() {
            offsets[i] += offsets[i - 1];
        }
        Ok(offsets)
    }

    /// The window as Parquet, with the series spelled out so outside tools (DuckDB, Athena) can
    /// read it. `metadata`, if given, is stored as the file's `cryptomon.window` key-value entry.
    pub fn to_parquet(&self, metadata: Option<String>) -> Result<Vec<u8>> {
        let sid = self.frame.column(cols::SID)?.u32()?;
        let source: StringChunked = sid
            .into_no_null_iter()
            .map(|s| Some(self.series[s as usize].source.as_str()))
            .collect_ca(cols::SOURCE.into());
        let pair: StringChunked = sid
            .into_no_null_iter()
            .map(|s| Some(self.series[s as usize].pair.as_str()))
            .collect_ca(cols::PAIR.into());
        let mut out = DataFrame::new(
            self.frame.height(),
            vec![
                source.into_column(),
                pair.into_column(),
                self.frame.column(cols::TICK)?.clone(),
                self.frame.column(cols::COLLECTED_AT)?.clone(),
                self.frame.column(cols::PRICE)?.clone(),
                self.frame.column(cols::VOLUME)?.clone(),
            ],
        )?;
        let kv =
            metadata.map(|m| KeyValueMetadata::from_static(vec![(METADATA_KEY.to_owned(), m)]));
        let mut buf = Vec::new();
        ParquetWriter::new(&mut buf)
            // LZ4: the state is read and written every tick, so speed beats the last few %.
            .with_compression(ParquetCompression::Lz4Raw)
            .with_key_value_metadata(kv)
            .finish(&mut out)?;
        Ok(buf)
    }

    /// Reads a window written by [`Window::to_parquet`], and its metadata entry. The bytes come
    /// from a store, so the layout is checked: rows sorted by (pair, source, tick) without
    /// duplicates, valid names, finite positive prices.
    pub fn from_parquet(bytes: &[u8]) -> Result<(Window, Option<String>)> {
        let mut reader = ParquetReader::new(Cursor::new(bytes));
        let metadata = reader
            .get_metadata()?
            .key_value_metadata()
            .as_ref()
            .and_then(|kv| kv.iter().find(|e| e.key == METADATA_KEY))
            .and_then(|e| e.value.clone());
        let df = reader.finish()?;
        let bad = |what: String| Error::Engine(format!("window state: {what}"));
        // A new series starts wherever the (pair, source) changes from the row before.
        let starts = df
            .clone()
            .lazy()
            .select([(col(cols::PAIR)
                .neq_missing(col(cols::PAIR).shift(lit(1)))
                .or(col(cols::SOURCE).neq_missing(col(cols::SOURCE).shift(lit(1)))))
            .alias("start")])
            .collect()?;
        let starts = starts.column("start")?.bool()?.clone();
        let (source, pair) = (
            df.column(cols::SOURCE)?
                .as_materialized_series()
                .str()?
                .clone(),
            df.column(cols::PAIR)?
                .as_materialized_series()
                .str()?
                .clone(),
        );
        let tick = df.column(cols::TICK)?.i64()?;
        let price = df.column(cols::PRICE)?.f64()?;
        if tick.null_count() > 0
            || price.null_count() > 0
            || df.column(cols::COLLECTED_AT)?.null_count() > 0
        {
            return Err(bad("null tick, price or collection time".into()));
        }
        if price
            .into_no_null_iter()
            .any(|p| !p.is_finite() || p <= 0.0)
        {
            return Err(bad("a price is not finite and positive".into()));
        }
        let mut series: Vec<SeriesKey> = Vec::new();
        let mut sid = Vec::with_capacity(df.height());
        let mut prev_tick = i64::MIN;
        let starts = starts.rechunk();
        for (i, t) in tick.into_no_null_iter().enumerate() {
            let start = starts.get(i).unwrap_or(true);
            if start {
                let (Some(s), Some(p)) = (source.get(i), pair.get(i)) else {
                    return Err(bad(format!("row {i} has no source or pair")));
                };
                let key = SeriesKey::new(SourceName::new(s)?, Pair::new(p)?);
                if series.last().is_some_and(|last| *last >= key) {
                    return Err(bad(format!("series {s}:{p} out of order")));
                }
                series.push(key);
            } else if t <= prev_tick {
                return Err(bad(format!("row {i}: ticks not increasing")));
            }
            prev_tick = t;
            sid.push(series.len() as u32 - 1);
        }
        let frame = DataFrame::new(
            df.height(),
            vec![
                UInt32Chunked::from_vec(cols::SID.into(), sid).into_column(),
                df.column(cols::TICK)?.clone(),
                df.column(cols::COLLECTED_AT)?.clone(),
                df.column(cols::PRICE)?.clone(),
                df.column(cols::VOLUME)?.cast(&DataType::Float64)?,
            ],
        )?;
        Ok((Window::from_parts(series, frame)?, metadata))
    }
}
