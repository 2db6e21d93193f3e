//! The merge behind [`super::WindowBuilder::build`]: sorted runs of rows (the windows taken in,
//! and the pushed samples once sorted) merged into one window in a single linear pass.
//!
//! A tick's work is a merge, not a sort: the day's window is one sorted run already, the new
//! samples are a few hundred rows, and merging them costs one pass over the window (a gather of
//! five columns) instead of sorting 432,000 row indices again.

use polars::datatypes::StaticArray;
use polars::prelude::*;

use super::window::cols;
use crate::error::Result;

/// A column of nullable volumes: a window's Arrow array, or the pushed values.
pub(super) enum Volumes<'a> {
    Array(&'a <Float64Type as PolarsDataType>::Array),
    Values(Vec<Option<f64>>),
}

/// Rows sorted by (`sid`, `tick`) with no two alike, `sid` in the builder's final numbering.
pub(super) struct Run<'a> {
    pub(super) sid: Vec<u32>,
    pub(super) tick: std::borrow::Cow<'a, [i64]>,
    pub(super) collected: std::borrow::Cow<'a, [i64]>,
    pub(super) price: std::borrow::Cow<'a, [f64]>,
    pub(super) volume: Volumes<'a>,
}

impl Run<'_> {
    fn len(&self) -> usize {
        self.sid.len()
    }

    fn key(&self, row: usize) -> (u32, i64) {
        (self.sid[row], self.tick[row])
    }
}

/// Samples in the order they were pushed, any order, possibly several of one (series, tick).
pub(super) struct Pushed {
    pub(super) sid: Vec<u32>,
    pub(super) tick: Vec<i64>,
    pub(super) collected: Vec<i64>,
    pub(super) price: Vec<f64>,
    pub(super) volume: Vec<Option<f64>>,
}

impl Pushed {
    /// Sorts by (`sid`, `tick`) and keeps one sample of each: the latest `collected_at`, and of
    /// equals the one pushed last; with `from`, only samples with ticks after it.
    ///
    /// Memory matters here (a full rebuild pushes a day of every series): the order is sorted
    /// as 4-byte row numbers, and each column is gathered, then its unsorted copy freed, before
    /// the next.
    pub(super) fn into_run<'a>(mut self, from: i64) -> Run<'a> {
        let mut order: Vec<u32> = (0..self.sid.len() as u32)
            .filter(|&r| self.tick[r as usize] > from)
            .collect();
        // The row number makes every key distinct, so an unstable sort is deterministic.
        order.sort_unstable_by_key(|&r| {
            let r = r as usize;
            (self.sid[r], self.tick[r], self.collected[r], r)
        });
        // Keep the last row of each (sid, tick): the latest collection, pushed last.
        let same = |a: u32, b: u32| {
            let (a, b) = (a as usize, b as usize);
            self.sid[a] == self.sid[b] && self.tick[a] == self.tick[b]
        };
        let mut keep = Vec::with_capacity(order.len());
        for (i, &r) in order.iter().enumerate() {
            if order.get(i + 1).is_none_or(|&n| !same(r, n)) {
                keep.push(r as usize);
            }
        }
        drop(order);
        fn gather<T: Copy>(column: &mut Vec<T>, keep: &[usize]) -> Vec<T> {
            let old = std::mem::take(column);
            keep.iter().map(|&r| old[r]).collect()
        }
        let sid = gather(&mut self.sid, &keep);
        let tick = gather(&mut self.tick, &keep);
        let collected = gather(&mut self.collected, &keep);
        let price = gather(&mut self.price, &keep);
        let volume = gather(&mut self.volume, &keep);
        Run {
            sid,
            tick: tick.into(),
            collected: collected.into(),
            price: price.into(),
            volume: Volumes::Values(volume),
        }
    }
}

/// Merges `runs` into one frame sorted by (`sid`, `tick`), one row per (`sid`, `tick`): the
/// latest `collected_at`, and of equals the row of the last run; only rows with ticks after
/// `from`.
///
/// Rows are copied in stretches: the run with the smallest head gives every row up to the
/// next run's head in one copy, so merging a few new rows into a day's window copies a few
/// hundred slices, and only keys found in two runs are compared one by one.
pub(super) fn merge(runs: Vec<Run<'_>>, from: i64) -> Result<DataFrame> {
    if let [run] = runs.as_slice()
        && run.tick.iter().all(|&t| t > from)
    {
        // One run, nothing to trim (a full rebuild): its columns are the frame, no copy.
        let run = runs.into_iter().next().expect("one run");
        return Columns {
            sid: run.sid,
            tick: run.tick.into_owned(),
            collected: run.collected.into_owned(),
            price: run.price.into_owned(),
            volume: match run.volume {
                Volumes::Values(v) => v,
                Volumes::Array(a) => a.iter().map(|v| v.copied()).collect(),
            },
        }
        .into_frame();
    }
    let runs = runs.as_slice();
    let capacity = runs.iter().map(Run::len).sum();
    let mut out = Columns::with_capacity(capacity);
    let mut pos = vec![0usize; runs.len()];
    loop {
        // The run with the smallest head, and the smallest head of the others.
        let mut first: Option<(usize, (u32, i64))> = None;
        let mut next: Option<(u32, i64)> = None;
        for (r, run) in runs.iter().enumerate() {
            if pos[r] >= run.len() {
                continue;
            }
            let key = run.key(pos[r]);
            match first {
                Some((_, k)) if key >= k => next = Some(next.map_or(key, |n| n.min(key))),
                _ => {
                    if let Some((_, k)) = first {
                        next = Some(next.map_or(k, |n| n.min(k)));
                    }
                    first = Some((r, key));
                }
            }
        }
        let Some((r, key)) = first else { break };
        let run = &runs[r];
        if next == Some(key) {
            // The same (sid, tick) in several runs: the latest collection wins, the last run on
            // a tie; every run holding it moves on.
            let mut winner: Option<(usize, usize)> = None;
            for (q, other) in runs.iter().enumerate() {
                let at = pos[q];
                if at < other.len() && other.key(at) == key {
                    let better =
                        winner.is_none_or(|(w, row)| other.collected[at] >= runs[w].collected[row]);
                    if better {
                        winner = Some((q, at));
                    }
                    pos[q] += 1;
                }
            }
            if let Some((q, row)) = winner.filter(|_| key.1 > from) {
                out.extend(&runs[q], row..row + 1);
            }
            continue;
        }
        // Every row of this run before the next run's head, in stretches between the rows that
        // fall before the window.
        let mut start = pos[r];
        let mut end = start;
        while end < run.len() && next.is_none_or(|n| run.key(end) < n) {
            if run.tick[end] <= from {
                out.extend(run, start..end);
                start = end + 1;
            }
            end += 1;
        }
        out.extend(run, start..end);
        pos[r] = end;
    }
    out.into_frame()
}

/// The merged columns, filled a stretch of rows at a time.
struct Columns {
    sid: Vec<u32>,
    tick: Vec<i64>,
    collected: Vec<i64>,
    price: Vec<f64>,
    volume: Vec<Option<f64>>,
}

impl Columns {
    fn with_capacity(n: usize) -> Self {
        Columns {
            sid: Vec::with_capacity(n),
            tick: Vec::with_capacity(n),
            collected: Vec::with_capacity(n),
            price: Vec::with_capacity(n),
            volume: Vec::with_capacity(n),
        }
    }

    fn extend(&mut self, run: &Run<'_>, rows: std::ops::Range<usize>) {
        if rows.is_empty() {
            return;
        }
        self.sid.extend_from_slice(&run.sid[rows.clone()]);
        self.tick.extend_from_slice(&run.tick[rows.clone()]);
        self.collected
            .extend_from_slice(&run.collected[rows.clone()]);
        self.price.extend_from_slice(&run.price[rows.clone()]);
        match &run.volume {
            Volumes::Array(a) => self.volume.extend(rows.map(|i| a.get(i))),
            Volumes::Values(v) => self.volume.extend_from_slice(&v[rows]),
        }
    }

    fn into_frame(self) -> Result<DataFrame> {
        Ok(df!(
            cols::SID => self.sid,
            cols::TICK => self.tick,
            cols::COLLECTED_AT => self.collected,
            cols::PRICE => self.price,
            cols::VOLUME => self.volume,
        )?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Rows (sid, tick, collected, price) as a run.
    fn run(rows: &[(u32, i64, i64, f64)]) -> Run<'static> {
        Run {
            sid: rows.iter().map(|r| r.0).collect(),
            tick: rows.iter().map(|r| r.1).collect(),
            collected: rows.iter().map(|r| r.2).collect(),
            price: rows.iter().map(|r| r.3).collect(),
            volume: Volumes::Values(rows.iter().map(|r| Some(r.3 * 10.0)).collect()),
        }
    }

    /// What the merge must give, the slow way: every row in a map, later runs and later
    /// collections replacing earlier ones.
    fn naive(runs: &[&[(u32, i64, i64, f64)]], from: i64) -> Vec<(u32, i64, f64)> {
        let mut map: BTreeMap<(u32, i64), (i64, f64)> = BTreeMap::new();
        for rows in runs {
            for &(s, t, c, p) in *rows {
                let e = map.entry((s, t)).or_insert((c, p));
                if c >= e.0 {
                    *e = (c, p);
                }
            }
        }
        map.into_iter()
            .filter(|((_, t), _)| *t > from)
            .map(|((s, t), (_, p))| (s, t, p))
            .collect()
    }

    #[test]
    fn merges_stretches_resolves_shared_keys_and_trims() {
        let base: &[(u32, i64, i64, f64)] = &[
            (0, 0, 0, 1.0),
            (0, 60, 0, 2.0),
            (0, 120, 0, 3.0),
            (1, 0, 0, 4.0),
            (1, 60, 0, 5.0),
            (2, 60, 0, 6.0),
        ];
        // A newer collection of (0, 60), an older one of (1, 60), new ticks, a new series.
        let delta: &[(u32, i64, i64, f64)] = &[
            (0, 60, 5, 7.0),
            (0, 180, 5, 8.0),
            (1, 60, -1, 9.0),
            (3, 0, 5, 10.0),
        ];
        // The same collection time as the delta's (0, 180): the last run wins the tie.
        let last: &[(u32, i64, i64, f64)] = &[(0, 180, 5, 11.0), (2, 0, 5, 12.0)];
        for (minutes, from) in [(None, i64::MIN), (Some(2), 60)] {
            let runs = vec![run(base), run(delta), run(last)];
            let frame = merge(runs, from).unwrap();
            let sid: Vec<u32> = frame
                .column("sid")
                .unwrap()
                .u32()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let tick: Vec<i64> = frame
                .column("tick")
                .unwrap()
                .i64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let price: Vec<f64> = frame
                .column("price")
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let volume: Vec<f64> = frame
                .column("volume")
                .unwrap()
                .f64()
                .unwrap()
                .into_no_null_iter()
                .collect();
            let got: Vec<(u32, i64, f64)> = (0..sid.len())
                .map(|i| (sid[i], tick[i], price[i]))
                .collect();
            assert_eq!(
                got,
                naive(&[base, delta, last], from),
                "minutes {minutes:?}"
            );
            assert!(volume.iter().zip(&price).all(|(v, p)| *v == p * 10.0));
        }
    }
}
