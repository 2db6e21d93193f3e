//! Samples pushed into a [`super::WindowBuilder`], kept by series as they arrive, and turned
//! into one sorted run for the merge.
//!
//! A full rebuild pushes a day of every series, a snapshot at a time: by source, then tick, then
//! pair, where the window wants them by series, then tick. Kept in flat columns in push order,
//! they had to be sorted by series (a counting sort of 4-byte row numbers, on one core) and
//! every column gathered through the order: three passes over the day and two copies of it.
//! Kept by series, each series' rows are already in tick order (snapshots are pushed in the
//! order the store lists them, each source's in tick order), and the run is one sequential
//! copy. A series whose rows did come out of order (a late snapshot) is sorted on its own.

use super::merge::{self, Host};

/// One pushed sample of a series.
#[derive(Debug, Clone, Copy)]
struct Row {
    tick: i64,
    collected: i64,
    price: f64,
    /// Anything where unset (see [`SeriesRows::valid`]).
    volume: f64,
}

/// The samples pushed for one series, in push order.
#[derive(Debug, Default)]
pub(super) struct SeriesRows {
    rows: Vec<Row>,
    /// Which volumes are set; empty while all are (the usual case: no bytes spent on it).
    valid: Vec<bool>,
    /// Whether some row's (tick, collected) is below the row's before it: then the rows are
    /// sorted before they are used.
    out_of_order: bool,
    /// Whether some row has the tick of the row before it: then one of them is kept.
    repeats: bool,
}

impl SeriesRows {
    /// Whether nothing was pushed.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Makes room for `additional` more rows.
    pub(super) fn reserve(&mut self, additional: usize) {
        self.rows.reserve(additional);
    }

    /// Adds one sample.
    pub(super) fn push(&mut self, tick: i64, collected: i64, price: f64, volume: Option<f64>) {
        if let Some(last) = self.rows.last() {
            match tick.cmp(&last.tick) {
                std::cmp::Ordering::Less => self.out_of_order = true,
                std::cmp::Ordering::Equal => {
                    self.repeats = true;
                    self.out_of_order |= collected < last.collected;
                }
                std::cmp::Ordering::Greater => {}
            }
        }
        let volume = match volume {
            Some(v) => {
                if !self.valid.is_empty() {
                    self.valid.push(true);
                }
                v
            }
            None => {
                if self.valid.is_empty() {
                    self.valid.resize(self.rows.len(), true);
                }
                self.valid.push(false);
                0.0
            }
        };
        self.rows.push(Row {
            tick,
            collected,
            price,
            volume,
        });
    }

    /// The latest tick pushed.
    pub(super) fn latest(&self) -> Option<i64> {
        if self.out_of_order {
            self.rows.iter().map(|r| r.tick).max()
        } else {
            self.rows.last().map(|r| r.tick)
        }
    }

    /// The rows the window keeps, in tick order: one per tick (the latest collection, and of
    /// equals the one pushed last), only ticks after `from`.
    fn selection(&self, from: i64) -> Selection {
        let rows = &self.rows;
        if !self.out_of_order && !self.repeats {
            // Sorted and one per tick (nearly always): the rows after `from`, as they are.
            return Selection::Range(rows.partition_point(|r| r.tick <= from)..rows.len());
        }
        let mut order: Vec<u32> = (0..rows.len() as u32)
            .filter(|&i| rows[i as usize].tick > from)
            .collect();
        if self.out_of_order {
            // Stable: of equal (tick, collected), the one pushed last stays last.
            order.sort_by_key(|&i| (rows[i as usize].tick, rows[i as usize].collected));
        }
        let kept = order
            .iter()
            .enumerate()
            .filter(|&(k, &i)| {
                order
                    .get(k + 1)
                    .is_none_or(|&next| rows[next as usize].tick != rows[i as usize].tick)
            })
            .map(|(_, &i)| i)
            .collect();
        Selection::Rows(kept)
    }
}

/// Which of a series' rows the window keeps, in order.
enum Selection {
    Range(std::ops::Range<usize>),
    Rows(Vec<u32>),
}

impl Selection {
    fn len(&self) -> usize {
        match self {
            Selection::Range(r) => r.len(),
            Selection::Rows(rows) => rows.len(),
        }
    }

    /// Appends `value(row)` of every selected row to `out`.
    fn extend<T>(&self, out: &mut Vec<T>, value: impl Fn(usize) -> T) {
        match self {
            Selection::Range(r) => out.extend(r.clone().map(value)),
            Selection::Rows(rows) => out.extend(rows.iter().map(|&i| value(i as usize))),
        }
    }
}

/// The pushed samples as one run's columns: series `order[s]` of `series` becomes series `s`,
/// its rows sorted by tick, one per tick (see [`SeriesRows::selection`]), only ticks after
/// `from`.
///
/// The key columns are written on this thread and the value columns on another when there are
/// enough rows (a full rebuild writes a day of rows here, into fresh pages).
pub(super) fn into_host(series: &[SeriesRows], order: &[u32], from: i64) -> Host {
    let picked: Vec<(u32, &SeriesRows, Selection)> = order
        .iter()
        .enumerate()
        .map(|(new, &old)| {
            let rows = &series[old as usize];
            (new as u32, rows, rows.selection(from))
        })
        .filter(|(_, _, selection)| selection.len() > 0)
        .collect();
    let rows: usize = picked.iter().map(|(_, _, s)| s.len()).sum();
    let keys = || {
        let mut sid = Vec::with_capacity(rows);
        let mut tick = Vec::with_capacity(rows);
        let mut collected = Vec::with_capacity(rows);
        for (s, series, selection) in &picked {
            sid.resize(sid.len() + selection.len(), *s);
            selection.extend(&mut tick, |i| series.rows[i].tick);
            selection.extend(&mut collected, |i| series.rows[i].collected);
        }
        (sid, tick, collected)
    };
    let values = || {
        let mut price = Vec::with_capacity(rows);
        let mut volume = Vec::with_capacity(rows);
        for (_, series, selection) in &picked {
            selection.extend(&mut price, |i| series.rows[i].price);
            selection.extend(&mut volume, |i| series.rows[i].volume);
        }
        let valid = if picked.iter().all(|(_, series, _)| series.valid.is_empty()) {
            Vec::new()
        } else {
            let mut valid = Vec::with_capacity(rows);
            for (_, series, selection) in &picked {
                selection.extend(&mut valid, |i| series.valid.get(i).copied().unwrap_or(true));
            }
            valid
        };
        (price, volume, valid)
    };
    let ((sid, tick, collected), (price, volume, valid)) =
        merge::both(rows >= merge::PARALLEL_ROWS, keys, values);
    Host {
        sid,
        tick,
        collected,
        price,
        volume,
        valid,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Pushed rows enough for the copy on two threads, out of order, with repeated ticks and
    /// unset volumes: one row per tick, the latest collection (the last pushed on a tie), in
    /// the order asked for.
    #[test]
    fn pushed_rows_come_out_sorted_one_per_tick_as_the_slow_way_gives() {
        let mut pushed = Vec::new();
        for t in (0..1500i64).rev() {
            for s in 0..50u32 {
                let (tick, collected) = (t * 60, (t * 7 + i64::from(s)) % 3);
                pushed.push((s, tick, collected, 1.0 + pushed.len() as f64));
                if (t + i64::from(s)) % 11 == 0 {
                    pushed.push((s, tick, collected, 0.5 + pushed.len() as f64));
                }
            }
        }
        let mut series: Vec<SeriesRows> = (0..50).map(|_| SeriesRows::default()).collect();
        for (i, &(s, tick, collected, price)) in pushed.iter().enumerate() {
            let volume = (i % 4 != 0).then_some(i as f64);
            series[s as usize].push(tick, collected, price, volume);
        }
        assert!(pushed.len() >= merge::PARALLEL_ROWS);
        // Series numbered backwards in the run.
        let order: Vec<u32> = (0..50).rev().collect();
        let from = 60 * 60;
        let host = into_host(&series, &order, from);
        let run = host.run();

        let mut slow: BTreeMap<(u32, i64), (i64, usize)> = BTreeMap::new();
        for (i, &(s, tick, collected, _)) in pushed.iter().enumerate() {
            let e = slow.entry((49 - s, tick)).or_insert((collected, i));
            if collected >= e.0 {
                *e = (collected, i);
            }
        }
        let want: Vec<(u32, i64, f64)> = slow
            .into_iter()
            .filter(|((_, t), _)| *t > from)
            .map(|((s, t), (_, i))| (s, t, pushed[i].3))
            .collect();
        let got: Vec<(u32, i64, f64)> = (0..run.sid.len())
            .map(|i| (run.sid[i], run.tick[i], run.price[i]))
            .collect();
        assert_eq!(got, want);
        // Each kept row's volume is its own pushed one (unset for every 4th row pushed).
        for (i, &(_, _, price)) in got.iter().enumerate() {
            let at = (price - if price.fract() == 0.5 { 0.5 } else { 1.0 }) as usize;
            assert_eq!(run.volume.is_valid(i), !at.is_multiple_of(4), "row {i}");
            if !at.is_multiple_of(4) {
                assert_eq!(run.volume.values()[i], at as f64);
            }
        }
    }

    /// Rows in order with nothing repeated are taken as a range; the latest tick is known
    /// without a pass in order, and with one out of it.
    #[test]
    fn rows_in_order_are_a_range_and_the_latest_tick_is_right_either_way() {
        let mut s = SeriesRows::default();
        for t in [60, 120, 180] {
            s.push(t, 0, 1.0, Some(1.0));
        }
        assert!(matches!(s.selection(60), Selection::Range(r) if r == (1..3)));
        assert_eq!(s.latest(), Some(180));
        s.push(30, 0, 1.0, None);
        assert!(matches!(s.selection(i64::MIN), Selection::Rows(ref r) if *r == [3, 0, 1, 2]));
        assert_eq!(s.latest(), Some(180));
    }
}
