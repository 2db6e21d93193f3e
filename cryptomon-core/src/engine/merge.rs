//! The merge behind [`super::WindowBuilder::build`]: sorted runs of rows (the windows taken in,
//! and the pushed samples as `super::pushed` sorts them) merged into one window in a single
//! linear pass, in the columns of one of them (see [`merge`]).
//!
//! A tick's work is a merge, not a sort: the day's window is one sorted run already, the new
//! samples are a few hundred rows, and merging them moves stretches of the window's rows within
//! its own columns instead of sorting 432,000 row indices again.

use polars::datatypes::StaticArray;
use polars::prelude::*;

use super::window::cols;
use crate::error::Result;

/// A column of nullable volumes: a window's Arrow array, or the pushed values.
///
/// Values and validity are kept apart, as Arrow does, not as `Option<f64>`: that doubled the
/// bytes a tick's merge writes, and every fresh page costs a fault.
pub(super) enum Volumes<'a> {
    Array(&'a <Float64Type as PolarsDataType>::Array),
    /// The values (anything where unset), and which are set: empty when all are.
    Values {
        values: std::borrow::Cow<'a, [f64]>,
        valid: std::borrow::Cow<'a, [bool]>,
    },
}

impl Volumes<'_> {
    pub(super) fn values(&self) -> &[f64] {
        match self {
            Volumes::Array(a) => a.values().as_slice(),
            Volumes::Values { values, .. } => values,
        }
    }

    /// Whether some value may be unset.
    fn has_nulls(&self) -> bool {
        match self {
            Volumes::Array(a) => a.validity().is_some_and(|v| v.unset_bits() > 0),
            Volumes::Values { valid, .. } => !valid.is_empty(),
        }
    }

    pub(super) fn is_valid(&self, row: usize) -> bool {
        match self {
            Volumes::Array(a) => a.get(row).is_some(),
            Volumes::Values { valid, .. } => valid.get(row).copied().unwrap_or(true),
        }
    }
}

/// Rows sorted by (`sid`, `tick`) with no two alike, `sid` in the builder's final numbering.
pub(super) struct Run<'a> {
    pub(super) sid: std::borrow::Cow<'a, [u32]>,
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

/// Rows merged from this many on are placed on two threads: below it, a thread's start costs
/// more than it saves.
pub(super) const PARALLEL_ROWS: usize = 1 << 16;

/// Merges `host` and `runs` into one frame sorted by (`sid`, `tick`), one row per (`sid`,
/// `tick`): the latest `collected_at`, and of equals the row of the last run, the host counting
/// as the run at position `at` among `runs`; only rows with ticks after `from`.
///
/// The frame is made in the host's own columns (a tick's day-long window, or a rebuild's
/// pushed rows), not in fresh ones: a tick's merge adds a few hundred rows to a day's and drops
/// as many, and moving rows within columns it already has touches no fresh memory.
///
/// Rows are placed in stretches: the run with the smallest head gives every row up to the
/// next run's head at once, so merging a few new rows into a day's window moves a few hundred
/// slices, and only keys found in two runs are compared one by one.
pub(super) fn merge(mut host: Host, at: usize, runs: Vec<Run<'_>>, from: i64) -> Result<DataFrame> {
    let plan = {
        let own = host.run();
        let mut all: Vec<&Run<'_>> = runs.iter().collect();
        all.insert(at, &own);
        plan(&all, from)
    };
    let (mut moves, mut fills) = (Vec::new(), Vec::new());
    let mut to = 0;
    for Stretch { run, rows } in plan {
        let len = rows.len();
        match run.cmp(&at) {
            std::cmp::Ordering::Equal => moves.push(Move {
                from: rows.start,
                to,
                len,
            }),
            // The other runs, numbered as in `runs`, which does not hold the host.
            std::cmp::Ordering::Less => fills.push(Fill { run, rows, to }),
            std::cmp::Ordering::Greater => fills.push(Fill {
                run: run - 1,
                rows,
                to,
            }),
        }
        to += len;
    }
    let rows = to;
    let nulls = !host.valid.is_empty() || runs.iter().any(|r| r.volume.has_nulls());
    if nulls && host.valid.is_empty() {
        host.valid = vec![true; host.sid.len()];
    }
    let (moves, fills, runs) = (&moves, &fills, &runs);
    let Host {
        sid,
        tick,
        collected,
        price,
        volume,
        valid,
    } = &mut host;
    both(
        rows >= PARALLEL_ROWS,
        || {
            place(sid, rows, moves, fills, |out, r, at| {
                out.copy_from_slice(&runs[r].sid[at])
            });
            place(tick, rows, moves, fills, |out, r, at| {
                out.copy_from_slice(&runs[r].tick[at])
            });
            place(collected, rows, moves, fills, |out, r, at| {
                out.copy_from_slice(&runs[r].collected[at])
            });
        },
        || {
            place(price, rows, moves, fills, |out, r, at| {
                out.copy_from_slice(&runs[r].price[at])
            });
            place(volume, rows, moves, fills, |out, r, at| {
                out.copy_from_slice(&runs[r].volume.values()[at])
            });
            if nulls {
                place(valid, rows, moves, fills, |out, r, at| {
                    for (o, i) in out.iter_mut().zip(at) {
                        *o = runs[r].volume.is_valid(i);
                    }
                });
            }
        },
    );
    into_frame(host, rows)
}

/// `a()` and `b()`, `b` on a thread of its own when `parallel` (a panic in it is this thread's).
pub(super) fn both<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if !parallel {
        return (a(), b());
    }
    std::thread::scope(|scope| {
        let b = scope.spawn(b);
        let a = a();
        let b = b
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (a, b)
    })
}

/// Rows of one run that go to the merged frame together.
struct Stretch {
    run: usize,
    rows: std::ops::Range<usize>,
}

/// The stretches the merge places, in order (see [`merge`]).
fn plan(runs: &[&Run<'_>], from: i64) -> Vec<Stretch> {
    let mut plan = Vec::new();
    let mut push = |run: usize, rows: std::ops::Range<usize>| {
        if !rows.is_empty() {
            plan.push(Stretch { run, rows });
        }
    };
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
                push(q, row..row + 1);
            }
            continue;
        }
        // Every row of this run before the next run's head, in stretches between the rows that
        // fall before the window.
        let mut start = pos[r];
        let mut end = start;
        while end < run.len() && next.is_none_or(|n| run.key(end) < n) {
            if run.tick[end] <= from {
                push(r, start..end);
                start = end + 1;
            }
            end += 1;
        }
        push(r, start..end);
        pos[r] = end;
    }
    plan
}

/// A run's columns owned: the merge's host, then the merged frame's columns.
#[derive(Debug, Default)]
pub(super) struct Host {
    pub(super) sid: Vec<u32>,
    pub(super) tick: Vec<i64>,
    pub(super) collected: Vec<i64>,
    pub(super) price: Vec<f64>,
    pub(super) volume: Vec<f64>,
    /// Which volumes are set; empty while all are (the usual case: no bytes spent on it).
    pub(super) valid: Vec<bool>,
}

impl Host {
    /// Its rows as a run, borrowed.
    pub(super) fn run(&self) -> Run<'_> {
        Run {
            sid: self.sid.as_slice().into(),
            tick: self.tick.as_slice().into(),
            collected: self.collected.as_slice().into(),
            price: self.price.as_slice().into(),
            volume: Volumes::Values {
                values: self.volume.as_slice().into(),
                valid: self.valid.as_slice().into(),
            },
        }
    }
}

/// A stretch of the host's own rows: where it is and where it goes.
struct Move {
    from: usize,
    to: usize,
    len: usize,
}

/// A stretch of another run's rows, and where it goes.
struct Fill {
    run: usize,
    rows: std::ops::Range<usize>,
    to: usize,
}

/// Makes `column` (a host's) the merged frame's: `rows` long, the host's own rows moved to where
/// the merge puts them, the others' written by `fill(destination, run, rows)`.
///
/// The moves are ordered so that none writes over rows still to be moved: first every stretch
/// that moves towards the start, first to last, then every one that moves towards the end,
/// last to first. Stretches keep their order in the merged frame and do not overlap there, so a
/// stretch moving towards the start lands below its own old place and above every earlier
/// stretch's new one: it can only cover earlier stretches' old rows, which have moved already,
/// and a later stretch moving towards the end only rows of later ones, which have too (and the
/// two directions cannot meet: a stretch moving up ends below where the next one lands, which a
/// stretch moving down is at or below). The other runs' rows go last, into the gaps.
fn place<T: Copy + Default>(
    column: &mut Vec<T>,
    rows: usize,
    moves: &[Move],
    fills: &[Fill],
    fill: impl Fn(&mut [T], usize, std::ops::Range<usize>),
) {
    if rows > column.len() {
        // Exactly: a day's window grows by a row or so a tick, and doubling would double it.
        column.reserve_exact(rows - column.len());
        column.resize(rows, T::default());
    }
    for m in moves.iter().filter(|m| m.to < m.from) {
        column.copy_within(m.from..m.from + m.len, m.to);
    }
    for m in moves.iter().rev().filter(|m| m.to > m.from) {
        column.copy_within(m.from..m.from + m.len, m.to);
    }
    for f in fills {
        fill(
            &mut column[f.to..f.to + f.rows.len()],
            f.run,
            f.rows.clone(),
        );
    }
    column.truncate(rows);
    if column.capacity() > 2 * rows {
        // Most of the window left it (a long gap in the data): give the room back.
        column.shrink_to_fit();
    }
}

fn into_frame(columns: Host, rows: usize) -> Result<DataFrame> {
    let Host {
        sid,
        tick,
        collected,
        price,
        volume,
        valid,
    } = columns;
    debug_assert!([tick.len(), collected.len(), price.len(), volume.len()] == [rows; 4]);
    let validity = (!valid.is_empty()).then(|| valid.into_iter().collect());
    let volume = Float64Chunked::from_vec_validity(cols::VOLUME.into(), volume, validity);
    Ok(DataFrame::new(
        rows,
        vec![
            UInt32Chunked::from_vec(cols::SID.into(), sid).into_column(),
            Int64Chunked::from_vec(cols::TICK.into(), tick).into_column(),
            Int64Chunked::from_vec(cols::COLLECTED_AT.into(), collected).into_column(),
            Float64Chunked::from_vec(cols::PRICE.into(), price).into_column(),
            volume.into_column(),
        ],
    )?)
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
            volume: Volumes::Values {
                values: rows.iter().map(|r| r.3 * 10.0).collect(),
                valid: Default::default(),
            },
        }
    }

    /// Rows (sid, tick, collected, price) as a host, its volumes as in [`run`].
    fn host(rows: &[(u32, i64, i64, f64)]) -> Host {
        Host {
            sid: rows.iter().map(|r| r.0).collect(),
            tick: rows.iter().map(|r| r.1).collect(),
            collected: rows.iter().map(|r| r.2).collect(),
            price: rows.iter().map(|r| r.3).collect(),
            volume: rows.iter().map(|r| r.3 * 10.0).collect(),
            valid: Vec::new(),
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
            let frame = merge(host(base), 0, vec![run(delta), run(last)], from).unwrap();
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

    /// Random runs (rows dropped from, added to and shared with the host, trimmed or not), any
    /// of them the host: its rows move both ways, and the frame is still what the slow way
    /// gives.
    #[test]
    fn merging_in_a_hosts_columns_gives_what_the_slow_way_does() {
        use proptest::prelude::*;
        // A run: for each (sid, tick) of a small grid, whether it has a row and its collection.
        let run_rows = prop::collection::vec(prop::option::weighted(0.6, 0i64..3), 6 * 8);
        let runs = prop::collection::vec(run_rows, 1..4);
        proptest!(|(runs in runs, from in prop::option::of(-1i64..8), at in 0usize..4)| {
            let runs: Vec<Vec<(u32, i64, i64, f64)>> = runs
                .iter()
                .enumerate()
                .map(|(r, cells)| {
                    cells
                        .iter()
                        .enumerate()
                        .filter_map(|(i, c)| {
                            let (sid, tick) = ((i / 8) as u32, (i % 8) as i64 * 60);
                            c.map(|c| (sid, tick, c, (r * 100 + i) as f64 + 1.0))
                        })
                        .collect()
                })
                .collect();
            let from = from.map_or(i64::MIN, |m| m * 60);
            let at = at % runs.len();
            let others = (0..runs.len()).filter(|&r| r != at).map(|r| run(&runs[r])).collect();
            let frame = merge(host(&runs[at]), at, others, from).unwrap();
            let column = |name: &str| frame.column(name).unwrap().clone();
            let sid: Vec<u32> = column("sid").u32().unwrap().into_no_null_iter().collect();
            let tick: Vec<i64> = column("tick").i64().unwrap().into_no_null_iter().collect();
            let price: Vec<f64> = column("price").f64().unwrap().into_no_null_iter().collect();
            let volume: Vec<f64> = column("volume").f64().unwrap().into_no_null_iter().collect();
            let got: Vec<(u32, i64, f64)> =
                (0..sid.len()).map(|i| (sid[i], tick[i], price[i])).collect();
            let runs: Vec<&[(u32, i64, i64, f64)]> = runs.iter().map(Vec::as_slice).collect();
            prop_assert_eq!(got, naive(&runs, from));
            prop_assert!(volume.iter().zip(&price).all(|(v, p)| *v == p * 10.0));
        });
    }

    /// Enough rows for the copy on two threads (`PARALLEL_ROWS`), with late and newer rows,
    /// nulls and trimming: the same frame as the slow way.
    #[test]
    fn a_large_merge_on_two_threads_gives_what_the_slow_way_does() {
        let mut base = Vec::new();
        for s in 0..50u32 {
            for t in 0..1500i64 {
                base.push((s, t * 60, 0, 1.0 + f64::from(s) + t as f64));
            }
        }
        // Newer collections of every 7th row, late rows between, new ticks at the end.
        let mut delta = Vec::new();
        for s in (0..50u32).step_by(3) {
            for t in (0..1560i64).step_by(7) {
                delta.push((s, t * 60 + if t % 2 == 0 { 0 } else { 30 }, 1, -(t as f64)));
            }
        }
        assert!(base.len() + delta.len() >= PARALLEL_ROWS);
        let from = 90 * 60;
        let mut delta_run = run(&delta);
        // Some volumes unset, in the second run only.
        if let Volumes::Values { valid, .. } = &mut delta_run.volume {
            *valid = (0..delta.len()).map(|i| i % 5 != 0).collect();
        }
        let frame = merge(host(&base), 0, vec![delta_run], from).unwrap();
        let column = |name: &str| frame.column(name).unwrap().clone();
        let sid: Vec<u32> = column("sid").u32().unwrap().into_no_null_iter().collect();
        let tick: Vec<i64> = column("tick").i64().unwrap().into_no_null_iter().collect();
        let price: Vec<f64> = column("price").f64().unwrap().into_no_null_iter().collect();
        let got: Vec<(u32, i64, f64)> = (0..sid.len())
            .map(|i| (sid[i], tick[i], price[i]))
            .collect();
        assert_eq!(got, naive(&[&base, &delta], from));
        // A row's volume is unset exactly when it came from the delta with validity off.
        let unset: std::collections::BTreeSet<(u32, i64)> = delta
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 5 == 0)
            .map(|(_, r)| (r.0, r.1))
            .collect();
        let volume = column("volume");
        let volume = volume.f64().unwrap();
        for (i, v) in volume.iter().enumerate() {
            let from_delta_unset = price[i] <= 0.0 && unset.contains(&(sid[i], tick[i]));
            assert_eq!(v.is_none(), from_delta_unset, "row {i}: {:?}", got[i]);
        }
    }
}
