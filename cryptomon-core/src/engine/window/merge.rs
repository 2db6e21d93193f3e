//! Merging a builder's inputs into a window's columns: per series, the rows of every window
//! taken in and the samples pushed, one row per tick, the latest collection winning.

use std::ops::Range;

use polars::prelude::*;

use super::cols;
use crate::error::Result;

/// One sample: a row of the merge's inputs and of its output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Sample {
    pub(super) tick: i64,
    pub(super) collected: i64,
    pub(super) price: f64,
    pub(super) volume: Option<f64>,
}

/// A window's rows as the merge reads them, by the builder's series numbering.
pub(super) struct WindowRows<'a> {
    /// The rows of each of the builder's series (empty where the window has none).
    pub(super) by_series: Vec<Range<usize>>,
    pub(super) tick: &'a [i64],
    pub(super) collected: &'a [i64],
    pub(super) price: &'a [f64],
    pub(super) volume: &'a <Float64Type as PolarsDataType>::Array,
}

impl WindowRows<'_> {
    fn sample(&self, row: usize) -> Sample {
        Sample {
            tick: self.tick[row],
            collected: self.collected[row],
            price: self.price[row],
            volume: self.volume.get(row),
        }
    }
}

/// The merged rows, column by column.
#[derive(Debug, Default)]
pub(super) struct Merged {
    sid: Vec<u32>,
    tick: Vec<i64>,
    collected: Vec<i64>,
    price: Vec<f64>,
    volume: Vec<f64>,
    /// Which volumes are set; `None` while all are.
    valid: Option<Vec<bool>>,
}

impl Merged {
    fn with_capacity(rows: usize) -> Self {
        Merged {
            sid: Vec::with_capacity(rows),
            tick: Vec::with_capacity(rows),
            collected: Vec::with_capacity(rows),
            price: Vec::with_capacity(rows),
            volume: Vec::with_capacity(rows),
            valid: None,
        }
    }

    fn push(&mut self, sid: u32, s: Sample) {
        if s.volume.is_none() && self.valid.is_none() {
            self.valid = Some(vec![true; self.sid.len()]);
        }
        if let Some(valid) = &mut self.valid {
            valid.push(s.volume.is_some());
        }
        self.sid.push(sid);
        self.tick.push(s.tick);
        self.collected.push(s.collected);
        self.price.push(s.price);
        self.volume.push(s.volume.unwrap_or(0.0));
    }

    /// The window's frame: columns `sid`, `tick`, `collected_at`, `price`, `volume`.
    pub(super) fn into_frame(self) -> Result<DataFrame> {
        let rows = self.sid.len();
        let validity = self.valid.map(|v| v.into_iter().collect());
        let volume = Float64Chunked::from_vec_validity(cols::VOLUME.into(), self.volume, validity);
        Ok(DataFrame::new(
            rows,
            vec![
                UInt32Chunked::from_vec(cols::SID.into(), self.sid).into_column(),
                Int64Chunked::from_vec(cols::TICK.into(), self.tick).into_column(),
                Int64Chunked::from_vec(cols::COLLECTED_AT.into(), self.collected).into_column(),
                Float64Chunked::from_vec(cols::PRICE.into(), self.price).into_column(),
                volume.into_column(),
            ],
        )?)
    }
}

/// Merges, for each of `series` series, the rows of `windows` and `pushed(sid)` (sorted by
/// tick, then collection), keeping ticks after `from`.
///
/// Of the rows of one (series, tick), the latest `collected_at` wins; on a tie, the row of the
/// later input (the windows in the order given, the pushed samples last, each in push order).
/// Every input is sorted by tick within a series, so each series is one linear pass.
pub(super) fn merge<'p>(
    series: usize,
    windows: &[WindowRows<'_>],
    pushed: impl Fn(usize) -> &'p [Sample],
    from: i64,
) -> Merged {
    let rows = windows.iter().map(|w| w.tick.len()).sum::<usize>()
        + (0..series).map(|s| pushed(s).len()).sum::<usize>();
    let mut out = Merged::with_capacity(rows);
    // Each window's unread rows of the series being merged.
    let mut at: Vec<Range<usize>> = Vec::with_capacity(windows.len());
    for sid in 0..series {
        at.clear();
        at.extend(windows.iter().map(|w| w.by_series[sid].clone()));
        let mut new = pushed(sid);
        loop {
            // The earliest tick at any input's head.
            let next = at
                .iter()
                .zip(windows)
                .filter(|(rows, _)| rows.start < rows.end)
                .map(|(rows, w)| w.tick[rows.start])
                .chain(new.first().map(|s| s.tick))
                .min();
            let Some(tick) = next else { break };
            let mut winner: Option<Sample> = None;
            let mut offer = |s: Sample| {
                if winner.is_none_or(|w| s.collected >= w.collected) {
                    winner = Some(s);
                }
            };
            for (rows, w) in at.iter_mut().zip(windows) {
                if rows.start < rows.end && w.tick[rows.start] == tick {
                    offer(w.sample(rows.start));
                    rows.start += 1;
                }
            }
            while let Some((s, rest)) = new.split_first().filter(|(s, _)| s.tick == tick) {
                offer(*s);
                new = rest;
            }
            if let Some(s) = winner.filter(|_| tick > from) {
                out.push(sid as u32, s);
            }
        }
    }
    out
}
