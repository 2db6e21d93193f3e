//! [`WindowBuilder`]: samples and windows collected, their series numbered, then merged into
//! one [`Window`].

use std::collections::HashMap;

use super::merge::{self, Origin, Sample, WindowRows};
use super::{SeriesKey, Window, cols, contiguous};
use crate::error::Result;
use crate::model::{Pair, Snapshot, SourceName, Tick};

type FastHash = foldhash::fast::FixedState;

/// Collects samples and windows, then builds a [`Window`] in one merge.
#[derive(Debug, Default)]
pub struct WindowBuilder {
    /// Series ids by source, then pair: looked up by `&str`, so a sample costs no allocation.
    /// The quick hasher because a full transform looks up every sample, and the keys are the
    /// store's own, checked against the contract.
    ids: HashMap<SourceName, HashMap<Pair, u32, FastHash>, FastHash>,
    keys: Vec<SeriesKey>,
    /// Whole windows taken in, read at `build`.
    windows: Vec<Window>,
    /// The samples pushed, by series id, in push order.
    pushed: Vec<Vec<Sample>>,
    /// The backfilled samples pushed (an exchange's candles), by series id, in push order.
    backfilled: Vec<Vec<Sample>>,
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

    /// Adds one sample (a NaN volume is taken as none).
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
        self.pushed[id as usize].push(Sample::new(tick.unix(), collected_at_ms, price, volume));
    }

    /// Adds one backfilled sample: a minute taken from an exchange's candles, which a
    /// snapshot's sample of the same (series, tick) always wins over.
    pub fn push_backfill(
        &mut self,
        source: &SourceName,
        pair: &Pair,
        tick: Tick,
        fetched_at_ms: i64,
        price: f64,
        volume: Option<f64>,
    ) {
        let id = self.id(source, pair);
        self.backfilled[id as usize].push(Sample::new(tick.unix(), fetched_at_ms, price, volume));
    }

    /// Adds the samples of one snapshot: `samples` are (pair, price, volume), each pair given as
    /// text and checked only the first time it is seen.
    ///
    /// One source's snapshots list their pairs in the same order, so a sample's series is first
    /// looked for at its position in the source's last snapshot, which costs one comparison
    /// where a lookup costs two hashes.
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
            self.pushed[id as usize].push(Sample::new(tick, collected_at_ms, price, volume));
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

    /// Adds every sample of an existing window (to merge new snapshots into a state). Its rows
    /// are read at [`WindowBuilder::build`] from its own columns, not copied here; of two rows
    /// of the same (series, tick) and collection, a later window's wins, and a pushed sample
    /// wins over any window's.
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

    /// The samples of `origin` pushed for series `id`.
    fn of(&self, origin: Origin, id: u32) -> &[Sample] {
        match origin {
            Origin::Snapshot => &self.pushed[id as usize],
            Origin::Backfill => &self.backfilled[id as usize],
        }
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
        let room = self.room.get(source.as_str()).copied().unwrap_or(0);
        self.pushed.push(Vec::with_capacity(room));
        self.backfilled.push(Vec::new());
        next
    }

    /// The latest tick of any sample or window taken in.
    pub fn latest_tick(&self) -> Option<Tick> {
        let windows = self
            .windows
            .iter()
            .filter_map(|w| w.index.ticks.map(|(_, max)| max));
        let pushed = self
            .pushed
            .iter()
            .chain(&self.backfilled)
            .flatten()
            .map(|s| s.tick);
        windows.chain(pushed).max().map(Tick::from_unix)
    }

    /// Sorts, deduplicates (the later `collected_at` wins; on a tie, the sample added last) and
    /// returns the window.
    pub fn build(self) -> Result<Window> {
        self.build_inner(None)
    }

    /// [`WindowBuilder::build`], keeping only the last `minutes` before the latest tick: the
    /// samples with ticks in (latest − `minutes`, latest]. The same as building, then
    /// [`Window::trimmed`], without a second copy of the frame.
    pub fn build_last(self, minutes: u32) -> Result<Window> {
        self.build_inner(Some(minutes))
    }

    fn build_inner(mut self, minutes: Option<u32>) -> Result<Window> {
        // Number series in (pair, source) order.
        let mut order: Vec<u32> = (0..self.keys.len() as u32).collect();
        order.sort_by(|&a, &b| self.keys[a as usize].cmp(&self.keys[b as usize]));
        let mut remap = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            remap[old as usize] = new as u32;
        }
        // Samples arrive in tick order but for a late snapshot; stable, so of equal ticks and
        // collections the one pushed last stays last.
        for rows in self.pushed.iter_mut().chain(&mut self.backfilled) {
            if !rows.is_sorted_by_key(|s| (s.tick, s.collected)) {
                rows.sort_by_key(|s| (s.tick, s.collected));
            }
        }
        // Rows after `from` are kept, `from` set by the latest tick.
        let latest = self
            .windows
            .iter()
            .filter_map(|w| w.index.ticks.map(|(_, max)| max))
            .chain(
                self.pushed
                    .iter()
                    .chain(&self.backfilled)
                    .filter_map(|rows| rows.last().map(|s| s.tick)),
            )
            .max();
        let from = match (minutes, latest) {
            (Some(m), Some(latest)) => latest - i64::from(m) * 60,
            _ => i64::MIN,
        };
        if let [window] = self.windows.as_slice()
            && self
                .pushed
                .iter()
                .chain(&self.backfilled)
                .all(Vec::is_empty)
            && window.index.ticks.is_none_or(|(min, _)| min > from)
        {
            // One window and nothing to add or trim: its series are the builder's, in the same
            // order, so it is the result as it is.
            return Ok(self.windows.into_iter().next().expect("one window"));
        }
        let plan = {
            let windows = self
                .windows
                .iter()
                .map(|window| {
                    let to_builder = window
                        .series
                        .iter()
                        .map(|k| remap[self.ids[k.source.as_str()][k.pair.as_str()] as usize]);
                    window_rows(window, to_builder, order.len())
                })
                .collect::<Result<Vec<_>>>()?;
            merge::merge(
                order.len(),
                &windows,
                |sid, origin| self.of(origin, order[sid]),
                from,
            )?
        };
        let series: Vec<SeriesKey> = order
            .iter()
            .map(|&old| self.keys[old as usize].clone())
            .collect();
        // The windows' frames are handed over, not borrowed, so each old column can go as
        // soon as its merged one is written.
        let frames = std::mem::take(&mut self.windows)
            .into_iter()
            .map(|w| w.frame)
            .collect();
        let order = &order;
        let frame = plan.into_frame(frames, |sid, origin| self.of(origin, order[sid]))?;
        Window::from_parts(series, frame)
    }
}

/// The rows of `window` as the merge reads them, its series `i` being the builder's series
/// `to_builder[i]` of `series`.
fn window_rows(
    window: &Window,
    to_builder: impl Iterator<Item = u32>,
    series: usize,
) -> Result<WindowRows<'_>> {
    let offsets = window.offsets();
    let mut by_series = vec![0..0; series];
    for (sid, new) in to_builder.enumerate() {
        by_series[new as usize] = offsets[sid]..offsets[sid + 1];
    }
    let frame = window.frame();
    Ok(WindowRows {
        by_series,
        tick: contiguous(frame.column(cols::TICK)?.i64()?)?,
        collected: contiguous(frame.column(cols::COLLECTED_AT)?.i64()?)?,
        backfill: merge::one_chunk(frame.column(cols::BACKFILL)?.bool()?)?,
    })
}
