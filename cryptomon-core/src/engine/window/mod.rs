//! The window: the deduplicated samples of every series, held in a polars `DataFrame`, and how
//! it is built ([`WindowBuilder`]), merged and stored (Parquet).

mod builder;
mod merge;
mod parquet;
#[cfg(test)]
mod tests;

use polars::prelude::*;

pub use builder::WindowBuilder;

use crate::error::{Error, Result};
use crate::model::{Pair, SourceName, Tick};

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
/// The Parquet key-value entry that names the series: `[[source, pair], ...]` by `sid`.
const SERIES_KEY: &str = "cryptomon.series";

/// Column names of the window frame.
pub(crate) mod cols {
    pub(crate) const SID: &str = "sid";
    pub(crate) const TICK: &str = "tick";
    pub(crate) const COLLECTED_AT: &str = "collected_at";
    pub(crate) const PRICE: &str = "price";
    pub(crate) const VOLUME: &str = "volume";
    /// Whether a sample came from a backfill (an exchange's candles) rather than a snapshot.
    pub(crate) const BACKFILL: &str = "backfill";
}

/// The samples of every series, deduplicated and sorted: the input of every metric.
///
/// The frame has one row per (series, tick) with columns `sid` (u32, the index of the series in
/// [`Window::series`]), `tick` (i64 seconds), `collected_at` (i64 ms), `price` (f64) and
/// `volume` (f64, nullable) and `backfill` (bool: the sample came from an exchange's candles,
/// not a snapshot), sorted by (`sid`, `tick`). Series are numbered in (pair, source)
/// order so every per-series result comes out in the summary's order.
#[derive(Debug, Clone)]
pub struct Window {
    series: Vec<SeriesKey>,
    frame: DataFrame,
    /// Derived from the frame once, when the window is made: a tick asked for these several
    /// times (the merge, the trim, the metrics, the alerts), each a pass over the day's rows.
    index: std::sync::Arc<Index>,
}

/// What [`Window`] derives from its frame once.
#[derive(Debug, Default)]
struct Index {
    /// Row offsets of each series: `offsets[sid]..offsets[sid + 1]`.
    offsets: Vec<usize>,
    /// The lowest and highest tick; `None` when empty.
    ticks: Option<(i64, i64)>,
}

/// A column's values as one slice: the window keeps one chunk per column (see
/// `Window::canonical`) and no nulls in the columns read this way.
fn contiguous<T: PolarsNumericType>(ca: &ChunkedArray<T>) -> Result<&[T::Native]> {
    ca.cont_slice()
        .map_err(|e| Error::Engine(format!("window column {}: {e}", ca.name())))
}

/// Where each series' rows start in `sid` (sorted, as in every window), and where the last
/// ends: `offsets[s]..offsets[s + 1]` are series `s`'s rows. By bisection, not a pass over the
/// rows.
fn series_offsets(sid: &[u32], series: usize) -> Vec<usize> {
    debug_assert!(sid.is_sorted());
    (0..=series as u32)
        .map(|s| sid.partition_point(|&x| x < s))
        .collect()
}

impl Window {
    fn from_parts(series: Vec<SeriesKey>, frame: DataFrame) -> Result<Self> {
        let window = Window {
            series,
            frame,
            index: Default::default(),
        }
        .drop_unused_series()?;
        window.canonical().indexed()
    }

    /// The window with its [`Index`] computed.
    fn indexed(mut self) -> Result<Self> {
        // Rows are sorted by `sid` (every way a window is made sorts or checks them): a
        // series' rows end where the next `sid` starts, found by bisection, not by a pass.
        let sid = contiguous(self.frame.column(cols::SID)?.u32()?)?;
        let offsets = series_offsets(sid, self.series.len());
        // Sorted by `tick` within each series, too: the bounds are among the series' first
        // and last rows (polars' min and max over every row were a fifth of a tick's merge).
        let tick = contiguous(self.frame.column(cols::TICK)?.i64()?)?;
        let ticks = offsets
            .windows(2)
            .filter(|w: &&[usize]| w[1] > w[0])
            .map(|w| (tick[w[0]], tick[w[1] - 1]))
            .reduce(|(lo, hi), (first, last)| (lo.min(first), hi.max(last)));
        self.index = std::sync::Arc::new(Index { offsets, ticks });
        Ok(self)
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
        Ok(self.index.ticks.map(|(_, max)| Tick::from_unix(max)))
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
        let tick = self.frame.column(cols::TICK)?.i64()?;
        if self
            .index
            .ticks
            .is_none_or(|(min, max)| min > from && max <= as_of.unix())
        {
            // Nothing to drop (the aggregator trims a window the pipeline has trimmed).
            return Ok(self.clone());
        }
        let mask: BooleanChunked = tick
            .into_no_null_iter()
            .map(|t| t > from && t <= as_of.unix())
            .collect_ca(cols::TICK.into());
        let frame = self.frame.filter(&mask)?;
        Window::from_parts(self.series.clone(), frame)
    }

    /// Renumbers series so that every one has at least one sample.
    fn drop_unused_series(self) -> Result<Window> {
        let sid = self.frame.column(cols::SID)?.u32()?;
        let used: Vec<bool> = match sid.cont_slice() {
            // Sorted (see `indexed`): by bisection, not a pass.
            Ok(slice) => series_offsets(slice, self.series.len())
                .windows(2)
                .map(|rows| rows[1] > rows[0])
                .collect(),
            // Not one chunk yet (a filtered frame): a pass.
            Err(_) => {
                let mut used = vec![false; self.series.len()];
                for s in sid.into_no_null_iter() {
                    used[s as usize] = true;
                }
                used
            }
        };
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
        Ok(Window {
            series,
            frame,
            index: self.index,
        })
    }

    /// The rows of series `sid` (from the window's index).
    pub(crate) fn rows(&self, sid: u32) -> Result<std::ops::Range<usize>> {
        let offsets = &self.index.offsets;
        let sid = sid as usize;
        match (offsets.get(sid), offsets.get(sid + 1)) {
            (Some(&start), Some(&end)) => Ok(start..end),
            _ => Err(Error::Engine(format!("no series {sid} in the window"))),
        }
    }

    /// Row offsets of each series in the frame: `offsets[sid]..offsets[sid + 1]`.
    pub(crate) fn offsets(&self) -> &[usize] {
        &self.index.offsets
    }
}
