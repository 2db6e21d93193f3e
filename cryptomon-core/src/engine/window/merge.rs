//! Merging a builder's inputs into a window's columns: per series, the rows of every window
//! taken in and the samples pushed, one row per tick, the latest collection winning.
//!
//! The merge first decides which input row each output row comes from (a [`Plan`]), then
//! gathers the columns one at a time, so each input column can be freed as soon as its
//! replacement is written: a tick's merge then holds the old window and one new column at
//! most, not two whole windows.

use std::ops::Range;

use polars::prelude::*;

use super::{cols, contiguous};
use crate::error::{Error, Result};

/// One sample pushed into a builder.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sample {
    pub(super) tick: i64,
    pub(super) collected: i64,
    pub(super) price: f64,
    /// NaN for none: no volume is NaN, and a full transform holds every sample of the day in
    /// this form, a fifth smaller than with an `Option`.
    volume: f64,
}

impl Sample {
    pub(super) fn new(tick: i64, collected: i64, price: f64, volume: Option<f64>) -> Self {
        Sample {
            tick,
            collected,
            price,
            volume: volume.unwrap_or(f64::NAN),
        }
    }

    fn volume(&self) -> Option<f64> {
        Some(self.volume).filter(|v| !v.is_nan())
    }
}

/// The columns the merge decides by, of one window taken in, by the builder's series numbering.
pub(super) struct WindowRows<'a> {
    /// The rows of each of the builder's series (empty where the window has none).
    pub(super) by_series: Vec<Range<usize>>,
    pub(super) tick: &'a [i64],
    pub(super) collected: &'a [i64],
    /// Whether each row is a backfill's.
    pub(super) backfill: &'a <BooleanType as PolarsDataType>::Array,
}

/// Where a sample came from: a collected snapshot, or an exchange's candles (a backfill). A
/// snapshot's sample wins over a backfilled one of the same (series, tick), whatever their
/// collection times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Origin {
    Backfill,
    Snapshot,
}

impl Origin {
    /// The pushed inputs in merge order: of equals, the later wins, so snapshots come last.
    pub(super) const PUSHED: [Origin; 2] = [Origin::Backfill, Origin::Snapshot];

    /// Precedence: a snapshot over a backfill.
    fn rank(self) -> u8 {
        match self {
            Origin::Backfill => 0,
            Origin::Snapshot => 1,
        }
    }

    /// The value of the window's `backfill` column.
    pub(crate) fn is_backfill(self) -> bool {
        self == Origin::Backfill
    }

    fn of_backfill(backfill: bool) -> Origin {
        if backfill {
            Origin::Backfill
        } else {
            Origin::Snapshot
        }
    }
}

/// Which input row each merged row comes from, in the merged order.
///
/// Inputs are numbered as one sequence: every window's rows, in the order given, then every
/// series' pushed samples of each origin of [`Origin::PUSHED`], by series.
#[derive(Debug, Default)]
pub(super) struct Plan {
    /// The series of each merged row: the window's `sid` column.
    pub(super) sid: Vec<u32>,
    /// The input row of each merged row.
    from: Vec<u32>,
    /// Where each window's rows start in the numbering.
    window_start: Vec<u32>,
    /// Where each series' pushed samples of each origin of [`Origin::PUSHED`] start in the
    /// numbering.
    pushed_start: [Vec<u32>; 2],
}

/// Merges, for each of `series` series, the rows of `windows` and the samples pushed,
/// `pushed(sid, origin)` (sorted by tick, then collection), keeping ticks after `from`.
///
/// Of the rows of one (series, tick), a snapshot's wins over a backfill's; then the latest
/// `collected_at`; on a tie, the row of the later input (the windows in the order given, then
/// the pushed samples in the order of [`Origin::PUSHED`], each in push order). Every input is
/// sorted by tick within a series, so each series is one linear pass.
pub(super) fn merge<'p>(
    series: usize,
    windows: &[WindowRows<'_>],
    pushed: impl Fn(usize, Origin) -> &'p [Sample],
    from: i64,
) -> Result<Plan> {
    let mut window_start = Vec::with_capacity(windows.len());
    let mut next = 0usize;
    for w in windows {
        window_start.push(next as u32);
        next += w.tick.len();
    }
    let mut pushed_start: [Vec<u32>; 2] = Default::default();
    for (starts, origin) in pushed_start.iter_mut().zip(Origin::PUSHED) {
        for sid in 0..series {
            starts.push(next as u32);
            next += pushed(sid, origin).len();
        }
    }
    if u32::try_from(next).is_err() {
        return Err(Error::Engine(format!(
            "a merge of {next} rows: more than a window can number"
        )));
    }
    let mut plan = Plan {
        sid: Vec::with_capacity(next),
        from: Vec::with_capacity(next),
        window_start,
        pushed_start,
    };
    // Each window's unread rows of the series being merged, and each origin's unread samples.
    let mut at: Vec<Range<usize>> = Vec::with_capacity(windows.len());
    for sid in 0..series {
        at.clear();
        at.extend(windows.iter().map(|w| w.by_series[sid].clone()));
        let all = Origin::PUSHED.map(|origin| pushed(sid, origin));
        let mut new = all;
        loop {
            // The earliest tick at any input's head.
            let next = at
                .iter()
                .zip(windows)
                .filter(|(rows, _)| rows.start < rows.end)
                .map(|(rows, w)| w.tick[rows.start])
                .chain(new.iter().filter_map(|n| n.first().map(|s| s.tick)))
                .min();
            let Some(tick) = next else { break };
            // The winning input row and its precedence.
            let mut winner: Option<(u32, (u8, i64))> = None;
            let mut offer = |row: u32, origin: Origin, collected: i64| {
                let key = (origin.rank(), collected);
                if winner.is_none_or(|(_, k)| key >= k) {
                    winner = Some((row, key));
                }
            };
            for ((rows, w), start) in at.iter_mut().zip(windows).zip(&plan.window_start) {
                if rows.start < rows.end && w.tick[rows.start] == tick {
                    let origin = Origin::of_backfill(w.backfill.value(rows.start));
                    offer(start + rows.start as u32, origin, w.collected[rows.start]);
                    rows.start += 1;
                }
            }
            for (k, origin) in Origin::PUSHED.into_iter().enumerate() {
                while let Some((s, rest)) = new[k].split_first().filter(|(s, _)| s.tick == tick) {
                    let row = plan.pushed_start[k][sid] + (all[k].len() - new[k].len()) as u32;
                    offer(row, origin, s.collected);
                    new[k] = rest;
                }
            }
            if let Some((row, _)) = winner.filter(|_| tick > from) {
                plan.sid.push(sid as u32);
                plan.from.push(row);
            }
        }
    }
    Ok(plan)
}

impl Plan {
    /// One merged column: each row's value read from the window row or the pushed sample it
    /// comes from. `window[k](r)` reads row `r` of window `k`; `field` reads a pushed sample
    /// of the origin given.
    fn gather<'p, T>(
        &self,
        window: &[impl Fn(usize) -> T],
        pushed: impl Fn(usize, Origin) -> &'p [Sample],
        field: impl Fn(&Sample, Origin) -> T,
    ) -> Vec<T> {
        let first = |k: usize| self.pushed_start[k].first().copied().unwrap_or(u32::MAX);
        let (first_backfill, first_snapshot) = (first(0), first(1));
        self.sid
            .iter()
            .zip(&self.from)
            .map(|(&sid, &row)| {
                let sid = sid as usize;
                if row >= first_snapshot {
                    let i = (row - self.pushed_start[1][sid]) as usize;
                    field(&pushed(sid, Origin::Snapshot)[i], Origin::Snapshot)
                } else if row >= first_backfill {
                    let i = (row - self.pushed_start[0][sid]) as usize;
                    field(&pushed(sid, Origin::Backfill)[i], Origin::Backfill)
                } else {
                    // The last window starting at or before the row: there are one or two.
                    let k = self.window_start.partition_point(|&s| s <= row) - 1;
                    window[k]((row - self.window_start[k]) as usize)
                }
            })
            .collect()
    }

    /// The window's frame: `sid`, then each of the other columns gathered from the inputs,
    /// each taken out of the input `frames` (the windows', in the merge's order) and so freed,
    /// where nothing else holds it, before the next is gathered.
    pub(super) fn into_frame<'p>(
        self,
        mut frames: Vec<DataFrame>,
        pushed: impl Fn(usize, Origin) -> &'p [Sample] + Copy,
    ) -> Result<DataFrame> {
        let rows = self.sid.len();
        let mut take = |name: &str| -> Result<Vec<Column>> {
            frames
                .iter_mut()
                .map(|f| Ok(f.drop_in_place(name)?))
                .collect()
        };
        let taken = take(cols::TICK)?;
        let slices = i64_slices(&taken)?;
        let tick = self.gather(&readers(&slices), pushed, |s, _| s.tick);
        drop(taken);
        let taken = take(cols::COLLECTED_AT)?;
        let slices = i64_slices(&taken)?;
        let collected = self.gather(&readers(&slices), pushed, |s, _| s.collected);
        drop(taken);
        let taken = take(cols::PRICE)?;
        let slices = taken
            .iter()
            .map(|c| contiguous(c.f64()?))
            .collect::<Result<Vec<_>>>()?;
        let price = self.gather(&readers(&slices), pushed, |s, _| s.price);
        drop(taken);
        let taken = take(cols::BACKFILL)?;
        let arrays = taken
            .iter()
            .map(|c| one_chunk(c.bool()?))
            .collect::<Result<Vec<_>>>()?;
        let read = arrays
            .iter()
            .map(|a| move |r: usize| a.value(r))
            .collect::<Vec<_>>();
        let backfill = self.gather(&read, pushed, |_, o| o.is_backfill());
        drop(taken);
        let taken = take(cols::VOLUME)?;
        let arrays = taken
            .iter()
            .map(|c| one_chunk(c.f64()?))
            .collect::<Result<Vec<_>>>()?;
        let values = arrays
            .iter()
            .map(|a| a.values().as_slice())
            .collect::<Vec<_>>();
        let volume = self.gather(&readers(&values), pushed, |s, _| s.volume().unwrap_or(0.0));
        let pushed_null = Origin::PUSHED.into_iter().any(|o| {
            (0..self.pushed_start[0].len())
                .any(|sid| pushed(sid, o).iter().any(|s| s.volume.is_nan()))
        });
        let any_null = pushed_null
            || arrays
                .iter()
                .any(|a| a.validity().is_some_and(|v| v.unset_bits() > 0));
        let valid = any_null.then(|| {
            let set = arrays
                .iter()
                .map(|a| move |r: usize| a.get(r).is_some())
                .collect::<Vec<_>>();
            self.gather(&set, pushed, |s, _| !s.volume.is_nan())
                .into_iter()
                .collect()
        });
        drop(taken);
        let volume = Float64Chunked::from_vec_validity(cols::VOLUME.into(), volume, valid);
        Ok(DataFrame::new(
            rows,
            vec![
                UInt32Chunked::from_vec(cols::SID.into(), self.sid).into_column(),
                Int64Chunked::from_vec(cols::TICK.into(), tick).into_column(),
                Int64Chunked::from_vec(cols::COLLECTED_AT.into(), collected).into_column(),
                Float64Chunked::from_vec(cols::PRICE.into(), price).into_column(),
                volume.into_column(),
                BooleanChunked::from_slice(cols::BACKFILL.into(), &backfill).into_column(),
            ],
        )?)
    }
}

/// A reader of each slice's rows, for [`Plan::gather`].
fn readers<'a, T: Copy>(slices: &[&'a [T]]) -> Vec<impl Fn(usize) -> T + 'a> {
    slices.iter().map(|&s| move |r: usize| s[r]).collect()
}

fn i64_slices(columns: &[Column]) -> Result<Vec<&[i64]>> {
    columns.iter().map(|c| contiguous(c.i64()?)).collect()
}

/// The one chunk of a window's column that is not read as a slice.
pub(super) fn one_chunk<T: PolarsDataType>(column: &ChunkedArray<T>) -> Result<&T::Array> {
    match column.downcast_iter().collect::<Vec<_>>().as_slice() {
        [array] => Ok(*array),
        _ => Err(Error::Engine(format!(
            "window column {} is not one chunk",
            column.name()
        ))),
    }
}
