//! The window: the deduplicated samples of every series, held in a polars `DataFrame`.

use std::collections::HashMap;
use std::io::Cursor;

use polars::prelude::*;

use super::merge;
use super::pushed::{self, SeriesRows};
use crate::error::{Error, Result};
use crate::model::{PRICE_RANGE, Pair, Snapshot, SourceName, Tick};

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

type FastHash = foldhash::fast::FixedState;

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

/// Collects samples, then builds a [`Window`] in one merge.
#[derive(Debug, Default)]
pub struct WindowBuilder {
    /// Series ids by source, then pair: looked up by `&str`, so a sample costs no allocation.
    /// Two lookups a sample on a full transform's hot path, hence the quick hasher (the keys are
    /// the store's own sources and pairs, checked against the contract).
    ids: HashMap<SourceName, HashMap<Pair, u32, FastHash>, FastHash>,
    keys: Vec<SeriesKey>,
    /// Whole windows taken in, merged column-wise at `build`.
    windows: Vec<Window>,
    /// The samples pushed, by series id.
    pushed: Vec<SeriesRows>,
    /// Room to make for each series of a source on its first sample (see
    /// [`WindowBuilder::reserve_per_series`]).
    room: HashMap<SourceName, usize, FastHash>,
    /// The series of each source's last snapshot pushed by [`WindowBuilder::push_samples`], in
    /// its order.
    last_pairs: HashMap<SourceName, Vec<u32>, FastHash>,
}

impl WindowBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes room for `rows` samples in each series of `source` (its series seen so far, and
    /// each one first seen later), so a builder filled with a known number of samples grows
    /// once instead of doubling (and holding both copies at each doubling). A transform knows
    /// how many snapshots of each source it reads: that many samples a series.
    pub fn reserve_per_series(&mut self, source: &SourceName, rows: usize) {
        if let Some(pairs) = self.ids.get(source.as_str()) {
            for &id in pairs.values() {
                self.pushed[id as usize].reserve(rows);
            }
        }
        self.room.insert(source.clone(), rows);
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
        let id = self.id(source, pair);
        self.pushed[id as usize].push(tick.unix(), collected_at_ms, price, volume);
    }

    /// Adds the samples of one snapshot: `samples` are (pair, price, volume), each pair given as
    /// text and checked only the first time it is seen.
    ///
    /// One source's snapshots list their pairs in the same order, so a sample's series is first
    /// looked for at its position in the source's last snapshot (one text comparison); only a
    /// pair not found there is hashed, which keeps this single-threaded step off the profile
    /// of a day's rebuild.
    pub fn push_samples<'a>(
        &mut self,
        source: &SourceName,
        tick: Tick,
        collected_at_ms: i64,
        samples: impl IntoIterator<Item = (&'a str, f64, Option<f64>)>,
    ) -> Result<()> {
        let tick = tick.unix();
        let mut last = match self.last_pairs.get_mut(source.as_str()) {
            Some(ids) => std::mem::take(ids),
            None => Vec::new(),
        };
        let mut n = 0;
        let mut pushed = Ok(());
        for (pair, price, volume) in samples {
            let id = match last.get(n) {
                Some(&id) if self.keys[id as usize].pair.as_str() == pair => id,
                _ => match self.id_of_str(source, pair) {
                    Ok(id) => id,
                    Err(e) => {
                        pushed = Err(e);
                        break;
                    }
                },
            };
            match last.get_mut(n) {
                Some(slot) => *slot = id,
                None => last.push(id),
            }
            n += 1;
            self.pushed[id as usize].push(tick, collected_at_ms, price, volume);
        }
        last.truncate(n);
        match self.last_pairs.get_mut(source.as_str()) {
            Some(ids) => *ids = last,
            None => {
                self.last_pairs.insert(source.clone(), last);
            }
        }
        pushed
    }

    /// The id of `pair` (text, checked if new) of `source`.
    fn id_of_str(&mut self, source: &SourceName, pair: &str) -> Result<u32> {
        let known = self
            .ids
            .get(source.as_str())
            .and_then(|pairs| pairs.get(pair))
            .copied();
        match known {
            Some(id) => Ok(id),
            None => Ok(self.id(source, &Pair::new(pair)?)),
        }
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

    /// Adds every sample of an existing window (to merge new snapshots into a state). The
    /// window's columns are merged whole at [`WindowBuilder::build`], not row by row; the
    /// largest window taken in is merged into in place when no one else holds its columns (a
    /// window passed here and dropped by the caller), so pass ownership where you can.
    pub fn push_window(&mut self, window: Window) -> Result<()> {
        if window.is_empty() {
            // Nothing to merge (a head just after a new base): left out, a window merged with
            // it alone is that window as it is, not a copy of it.
            return Ok(());
        }
        for key in &window.series {
            self.id(&key.source, &key.pair);
        }
        self.windows.push(window);
        Ok(())
    }

    fn id(&mut self, source: &SourceName, pair: &Pair) -> u32 {
        let next = self.keys.len() as u32;
        let pairs = match self.ids.get_mut(source.as_str()) {
            Some(p) => p,
            None => self.ids.entry(source.clone()).or_default(),
        };
        if let Some(&id) = pairs.get(pair.as_str()) {
            return id;
        }
        pairs.insert(pair.clone(), next);
        self.keys.push(SeriesKey::new(source.clone(), pair.clone()));
        let mut rows = SeriesRows::default();
        if let Some(&room) = self.room.get(source.as_str()) {
            rows.reserve(room);
        }
        self.pushed.push(rows);
        next
    }

    /// Sorts, deduplicates (the later `collected_at` wins; on a tie, the sample added last) and
    /// returns the window.
    ///
    /// Each window taken in is one sorted run already; the pushed samples are sorted into one
    /// more; the runs are merged in one linear pass (see `merge`), so merging a tick into a
    /// day's window costs a pass over the window, not a sort.
    pub fn build(self) -> Result<Window> {
        self.build_inner(None)
    }

    /// [`WindowBuilder::build`], keeping only the last `minutes` before the latest tick: the
    /// samples with ticks in (latest − `minutes`, latest]. The same as building, then
    /// [`Window::trimmed`], without a second copy of the frame.
    pub fn build_last(self, minutes: u32) -> Result<Window> {
        self.build_inner(Some(minutes))
    }

    fn build_inner(self, minutes: Option<u32>) -> Result<Window> {
        // Number series in (pair, source) order.
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_by(|&a, &b| self.keys[a as usize].cmp(&self.keys[b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        // The window's bounds: rows after `from` are kept, `from` set by the latest tick.
        let latest = self
            .windows
            .iter()
            .filter_map(|w| w.index.ticks.map(|(_, max)| max))
            .chain(self.pushed.iter().filter_map(SeriesRows::latest))
            .max();
        let from = match (minutes, latest) {
            (Some(m), Some(latest)) => latest - i64::from(m) * 60,
            _ => i64::MIN,
        };
        if let [window] = self.windows.as_slice()
            && self.pushed.iter().all(SeriesRows::is_empty)
            && window.index.ticks.is_none_or(|(min, _)| min > from)
        {
            // One window and nothing to add or trim: it is the result as it is (its series are
            // the builder's, in the same order), without a copy.
            return Ok(self.windows.into_iter().next().expect("one window"));
        }
        // The window's own ids, translated to this builder's numbering: a subset of series in
        // (pair, source) order keeps its order, so a window's run stays sorted.
        let table = |window: &Window| -> Vec<u32> {
            window
                .series
                .iter()
                .map(|k| remap[self.ids[k.source.as_str()][k.pair.as_str()] as usize])
                .collect()
        };
        // The merge makes the new window in one run's own columns (the host): the largest
        // window's, given up to it (taken as they are when no one else holds them), or with no
        // window the pushed rows'. The other windows lend theirs; pushed rows come last (the
        // newest: they win a tie).
        let mut windows = self.windows;
        let pushed = (!self.pushed.iter().all(SeriesRows::is_empty))
            .then(|| pushed::into_host(&self.pushed, &order, from));
        let largest = (0..windows.len()).max_by_key(|&w| windows[w].len());
        let (host, at, runs) = match largest {
            Some(at) => {
                let window = windows.remove(at);
                let renumber = table(&window);
                let host = window.into_host(&renumber)?;
                let mut runs = Vec::with_capacity(windows.len() + 1);
                for window in &windows {
                    runs.push(window.run(&table(window))?);
                }
                runs.extend(pushed.as_ref().map(merge::Host::run));
                (host, at, runs)
            }
            None => (pushed.unwrap_or_default(), 0, Vec::new()),
        };
        let frame = merge::merge(host, at, runs, from)?;
        let series: Vec<SeriesKey> = order
            .iter()
            .map(|&old| self.keys[old as usize].clone())
            .collect();
        Window::from_parts(series, frame)
    }
}

impl Window {
    /// The window's rows as a run for [`merge::merge`], its series renumbered by `table`.
    fn run(&self, table: &[u32]) -> Result<merge::Run<'_>> {
        fn slice<'a, T: PolarsNumericType>(
            ca: &'a ChunkedArray<T>,
        ) -> std::borrow::Cow<'a, [T::Native]> {
            match ca.cont_slice() {
                Ok(s) => s.into(),
                Err(_) => ca.into_no_null_iter().collect::<Vec<_>>().into(),
            }
        }
        let volume = self.frame.column(cols::VOLUME)?.f64()?;
        let volume = match volume.chunks().len() {
            1 => merge::Volumes::Array(volume.downcast_as_array()),
            _ => merge::Volumes::Values {
                values: volume.iter().map(|v| v.unwrap_or(0.0)).collect(),
                valid: volume.iter().map(|v| v.is_some()).collect(),
            },
        };
        let sid = self.frame.column(cols::SID)?.u32()?;
        // Most often the window's numbering is the builder's (a tick merges into the window it
        // read): its column is borrowed, not renumbered into a copy.
        let identity = table.iter().enumerate().all(|(i, &s)| i as u32 == s);
        let sid = match sid.cont_slice() {
            Ok(slice) if identity => slice.into(),
            _ => sid
                .into_no_null_iter()
                .map(|s| table[s as usize])
                .collect::<Vec<_>>()
                .into(),
        };
        Ok(merge::Run {
            sid,
            tick: slice(self.frame.column(cols::TICK)?.i64()?),
            collected: slice(self.frame.column(cols::COLLECTED_AT)?.i64()?),
            price: slice(self.frame.column(cols::PRICE)?.f64()?),
            volume,
        })
    }

    /// The window's columns, owned, for [`merge::merge`] to make the merged window in, its
    /// series renumbered by `table`: taken as they are when this window was their only holder,
    /// copied otherwise.
    fn into_host(self, table: &[u32]) -> Result<merge::Host> {
        /// A column's values, and which are set (empty when all are).
        fn owned<T: PolarsNumericType>(
            frame: &mut DataFrame,
            name: &str,
        ) -> Result<(Vec<T::Native>, Vec<bool>)> {
            let column = frame.drop_in_place(name)?;
            if column.dtype() != &T::get_static_dtype() {
                return Err(Error::Engine(format!(
                    "window column {name} is {}, not {}",
                    column.dtype(),
                    T::get_static_dtype()
                )));
            }
            let mut ca = column.take_materialized_series().take_inner::<T>();
            // One chunk already in a window (see `canonical`): then this does nothing.
            ca.rechunk_mut();
            let Some(array) = ca.downcast_into_iter().next() else {
                return Ok((Vec::new(), Vec::new()));
            };
            let (_, values, validity) = array.into_inner();
            // The buffer itself when this was its only holder, a copy otherwise.
            let values = values.into_mut().right_or_else(|shared| shared.to_vec());
            let valid = match validity {
                Some(v) if v.unset_bits() > 0 => v.iter().collect(),
                _ => Vec::new(),
            };
            Ok((values, valid))
        }
        let mut frame = self.frame;
        let (mut sid, _) = owned::<UInt32Type>(&mut frame, cols::SID)?;
        if !table.iter().enumerate().all(|(i, &s)| i as u32 == s) {
            for s in &mut sid {
                *s = table[*s as usize];
            }
        }
        let (tick, _) = owned::<Int64Type>(&mut frame, cols::TICK)?;
        let (collected, _) = owned::<Int64Type>(&mut frame, cols::COLLECTED_AT)?;
        let (price, _) = owned::<Float64Type>(&mut frame, cols::PRICE)?;
        let (volume, valid) = owned::<Float64Type>(&mut frame, cols::VOLUME)?;
        Ok(merge::Host {
            sid,
            tick,
            collected,
            price,
            volume,
            valid,
        })
    }

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
        let mut frame = DataFrame::new(
            df.height(),
            vec![
                column(cols::SID, DataType::UInt32)?,
                column(cols::TICK, DataType::Int64)?,
                column(cols::COLLECTED_AT, DataType::Int64)?,
                column(cols::PRICE, DataType::Float64)?,
                column(cols::VOLUME, DataType::Float64)?,
            ],
        )?;
        for name in [cols::SID, cols::TICK, cols::COLLECTED_AT, cols::PRICE] {
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

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_796_040_000;

    /// Two series over 3 hours, the second starting late; minute 100 of the first collected
    /// twice (the later collection must win).
    fn builder() -> WindowBuilder {
        let (a, b) = (
            SourceName::new("kraken").unwrap(),
            SourceName::new("coinbase").unwrap(),
        );
        let pair = Pair::new("BTC-USD").unwrap();
        let mut w = WindowBuilder::new();
        for m in 0..180 {
            let t = Tick::from_unix(T0 + m * 60);
            w.push(&a, &pair, t, m * 1000, 100.0 + m as f64, Some(1.0));
            if m >= 150 {
                w.push(&b, &pair, t, m * 1000, 200.0 + m as f64, None);
            }
        }
        w.push(
            &a,
            &pair,
            Tick::from_unix(T0 + 100 * 60),
            999_999,
            7.0,
            None,
        );
        w
    }

    /// A window given up to a builder is merged into in place: its columns become the new
    /// window's, with no copy of the day (when they need not grow: growing may move them).
    #[test]
    fn a_window_given_up_is_merged_into_in_place_and_a_shared_one_is_not_touched() {
        let prices = |w: &Window| {
            w.frame()
                .column(cols::PRICE)
                .unwrap()
                .f64()
                .unwrap()
                .clone()
        };
        let price_at = |w: &Window| prices(w).cont_slice().unwrap().as_ptr();
        let price_values = |w: &Window| prices(w).into_no_null_iter().collect::<Vec<f64>>();
        // One new tick for one series, and the first hour trimmed: fewer rows than before.
        let merge_into = |w: Window| {
            let mut b = WindowBuilder::new();
            b.push_window(w).unwrap();
            let tick = Tick::from_unix(T0 + 180 * 60);
            b.push(
                &SourceName::new("kraken").unwrap(),
                &Pair::new("BTC-USD").unwrap(),
                tick,
                0,
                7.0,
                None,
            );
            b.build_last(120).unwrap()
        };
        let given = builder().build().unwrap();
        let (rows, at) = (given.len(), price_at(&given));
        let merged = merge_into(given);
        assert!(merged.len() < rows);
        assert_eq!(
            price_at(&merged),
            at,
            "merged in the given window's columns"
        );

        let kept = builder().build().unwrap();
        let before = price_values(&kept);
        let merged = merge_into(kept.clone());
        assert_ne!(price_at(&merged), price_at(&kept));
        // With an empty window (a head just after a new base), the window itself, uncopied.
        let mut b = WindowBuilder::new();
        b.push_window(kept.clone()).unwrap();
        b.push_window(Window::empty().unwrap()).unwrap();
        assert_eq!(price_at(&b.build().unwrap()), price_at(&kept));
        let after = price_values(&kept);
        assert_eq!(before, after, "a window someone holds is left as it was");
        assert_eq!(merged.len(), merge_into(builder().build().unwrap()).len());
    }

    /// Snapshots whose pairs come in the last one's order, in another order, with a pair more
    /// and one fewer: the same window as pushing each sample on its own; a malformed pair is an
    /// error that names it.
    #[test]
    fn samples_pushed_a_snapshot_at_a_time_are_the_samples_pushed_one_by_one() {
        let (kraken, coinbase) = (
            SourceName::new("kraken").unwrap(),
            SourceName::new("coinbase").unwrap(),
        );
        let snapshots: Vec<(&SourceName, i64, Vec<&str>)> = vec![
            (&kraken, 0, vec!["BTC-USD", "ETH-USD", "SOL-USD"]),
            (&coinbase, 0, vec!["ETH-USD", "BTC-USD"]),
            (&kraken, 1, vec!["BTC-USD", "ETH-USD", "SOL-USD"]),
            (&kraken, 2, vec!["ETH-USD", "BTC-USD", "SOL-USD", "ADA-USD"]),
            (&coinbase, 1, vec!["ETH-USD", "BTC-USD"]),
            (&kraken, 3, vec!["BTC-USD", "SOL-USD"]),
            (&kraken, 4, vec!["BTC-USD", "SOL-USD", "ETH-USD"]),
        ];
        let (mut at_once, mut one_by_one) = (WindowBuilder::new(), WindowBuilder::new());
        for (n, (source, minute, pairs)) in snapshots.iter().enumerate() {
            let tick = Tick::from_unix(T0 + minute * 60);
            let samples: Vec<(&str, f64, Option<f64>)> = pairs
                .iter()
                .enumerate()
                .map(|(i, &p)| (p, (n * 10 + i + 1) as f64, (i % 2 == 0).then_some(i as f64)))
                .collect();
            at_once
                .push_samples(source, tick, 7, samples.iter().copied())
                .unwrap();
            for (pair, price, volume) in samples {
                one_by_one.push(source, &Pair::new(pair).unwrap(), tick, 7, price, volume);
            }
        }
        let (a, b) = (at_once.build().unwrap(), one_by_one.build().unwrap());
        assert_eq!(a.series(), b.series());
        assert!(a.frame().equals_missing(b.frame()));
        assert_eq!(a.len(), 19);

        let mut bad = WindowBuilder::new();
        let err = bad
            .push_samples(
                &kraken,
                Tick::from_unix(T0),
                7,
                [("BTC-USD", 1.0, None), ("BTCUSD", 2.0, None)],
            )
            .unwrap_err();
        assert!(err.to_string().contains("BTCUSD"), "{err}");
    }

    #[test]
    fn build_last_is_build_then_trim() {
        let latest = Tick::from_unix(T0 + 179 * 60);
        let full = builder().build().unwrap();
        assert_eq!(full.len(), 180 + 30);
        let trimmed = full.trimmed(latest, 60).unwrap();
        let last = builder().build_last(60).unwrap();
        assert_eq!(last.series(), trimmed.series());
        assert!(last.frame().equals_missing(trimmed.frame()));
        assert_eq!(last.len(), 60 + 30);
        // Only the last 20 minutes: the late series' first 10 minutes are gone too.
        let short = builder().build_last(20).unwrap();
        assert_eq!(short.len(), 40);
    }

    #[test]
    fn the_later_collection_of_a_tick_wins_and_rows_are_sorted() {
        let w = builder().build().unwrap();
        // (pair, source) order: coinbase before kraken.
        assert_eq!(w.series()[0].source.as_str(), "coinbase");
        let kraken = w
            .frame()
            .filter(&w.frame().column(cols::SID).unwrap().u32().unwrap().equal(1))
            .unwrap();
        let price = kraken.column(cols::PRICE).unwrap().f64().unwrap();
        assert_eq!(price.get(100), Some(7.0));
        let merged = {
            let mut b = WindowBuilder::new();
            b.push_window(w.clone()).unwrap();
            let pair = Pair::new("BTC-USD").unwrap();
            let kraken = SourceName::new("kraken").unwrap();
            // An older collection of minute 5 loses; a newer one of minute 6 wins; a new tick.
            b.push(&kraken, &pair, Tick::from_unix(T0 + 5 * 60), 0, 1.0, None);
            b.push(
                &kraken,
                &pair,
                Tick::from_unix(T0 + 6 * 60),
                1_000_000,
                2.0,
                None,
            );
            b.push(
                &kraken,
                &pair,
                Tick::from_unix(T0 + 180 * 60),
                180_000,
                3.0,
                None,
            );
            b.build().unwrap()
        };
        let kraken = merged
            .frame()
            .filter(
                &merged
                    .frame()
                    .column(cols::SID)
                    .unwrap()
                    .u32()
                    .unwrap()
                    .equal(1),
            )
            .unwrap();
        let price = kraken.column(cols::PRICE).unwrap().f64().unwrap();
        assert_eq!(
            (price.get(5), price.get(6), price.get(180)),
            (Some(105.0), Some(2.0), Some(3.0))
        );
        assert_eq!(kraken.height(), 181);
    }

    /// A stored window is checked row by row: out of order, a row twice, or a series the table
    /// does not name, it is refused (and the state rebuilt from raw).
    #[test]
    fn a_stored_window_out_of_order_or_range_is_refused() {
        let window = builder().build().unwrap();
        let stored = |series: &[SeriesKey], frame: DataFrame| {
            let w = Window {
                series: series.to_vec(),
                frame,
                index: Default::default(),
            };
            Window::from_parquet(&w.to_parquet(None).unwrap()).map(|(w, _)| w.len())
        };
        assert_eq!(
            stored(&window.series, window.frame.clone()).unwrap(),
            window.len()
        );
        let twice = window.frame.slice(0, 1).vstack(&window.frame).unwrap();
        let swapped = window
            .frame
            .slice(1, 1)
            .vstack(&window.frame.slice(0, 1))
            .unwrap()
            .vstack(&window.frame.slice(2, window.len()))
            .unwrap();
        for (what, series, frame) in [
            ("reversed", &window.series[..], window.frame.reverse()),
            ("a row twice", &window.series[..], twice),
            ("two rows swapped", &window.series[..], swapped),
            (
                "a series missing",
                &window.series[..1],
                window.frame.clone(),
            ),
        ] {
            let err = stored(series, frame).unwrap_err().to_string();
            assert!(
                err.contains("out of order or out of range"),
                "{what}: {err}"
            );
        }
    }

    /// A stored window with prices an older writer took (finite and positive, outside the
    /// accepted range) loses those rows, and a series left with none; the others stand
    /// (issue 20).
    #[test]
    fn a_stored_window_with_extreme_prices_loses_those_rows_only() {
        let (kraken, coinbase) = (
            SourceName::new("kraken").unwrap(),
            SourceName::new("coinbase").unwrap(),
        );
        let (btc, dust) = (
            Pair::new("BTC-USD").unwrap(),
            Pair::new("DUST-USD").unwrap(),
        );
        let mut b = WindowBuilder::new();
        for m in 0..10 {
            let t = Tick::from_unix(T0 + m * 60);
            b.push(&kraken, &btc, t, 0, 100.0 + m as f64, None);
            // A bad print at minute 3.
            let price = if m == 3 { 1e300 } else { 200.0 };
            b.push(&coinbase, &btc, t, 0, price, None);
            b.push(&kraken, &dust, t, 0, 1e-320, None);
        }
        let bytes = b.build().unwrap().to_parquet(None).unwrap();
        let (read, _) = Window::from_parquet(&bytes).unwrap();
        let names: Vec<String> = read
            .series()
            .iter()
            .map(|k| format!("{}:{}", k.source, k.pair))
            .collect();
        assert_eq!(names, ["coinbase:BTC-USD", "kraken:BTC-USD"]);
        assert_eq!(read.offsets(), &[0, 9, 19]);
    }

    /// Malformed files on which polars panics (a footer in polars-parquet, a bitmap in
    /// polars-arrow) are an error, not a panic (found by the `window_state` fuzz target; the
    /// inputs are in `fuzz/regressions/window_state/`).
    #[test]
    fn fuzz_window_state_malformed_file_is_an_error_not_a_panic() {
        let inputs: [&[u8]; 2] = [
            include_bytes!(
                "../../../fuzz/regressions/window_state/crash-a09df59592beafc27d3ff77df83bdd47143d1b05"
            ),
            include_bytes!(
                "../../../fuzz/regressions/window_state/crash-9b4280481c52da77779f63e764eb10139b045d9a"
            ),
        ];
        for input in inputs {
            let err = Window::from_parquet(input).unwrap_err().to_string();
            assert!(err.contains("window state"), "{err}");
        }
    }

    /// A window and an empty one (a head right after a new base) read back as written: rows,
    /// series, metadata, and the index derived from them.
    #[test]
    fn parquet_round_trips_a_window_and_an_empty_one() {
        for window in [builder().build().unwrap(), Window::empty().unwrap()] {
            let bytes = window.to_parquet(Some("meta".into())).unwrap();
            let (read, meta) = Window::from_parquet(&bytes).unwrap();
            assert_eq!(meta.as_deref(), Some("meta"));
            assert_eq!(read.series(), window.series());
            assert!(read.frame().equals_missing(window.frame()));
            assert_eq!(read.offsets(), window.offsets());
            assert_eq!(read.latest_tick().unwrap(), window.latest_tick().unwrap());
            assert_eq!(read.index.ticks, window.index.ticks);
        }
        let window = builder().build().unwrap();
        // Two series: kraken over 3 h, coinbase over the last 30 min.
        assert_eq!(window.offsets(), &[0, 30, 210]);
        assert_eq!(window.index.ticks, Some((T0, T0 + 179 * 60)));
    }
}
