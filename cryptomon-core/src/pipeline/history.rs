//! History: each closed UTC day's samples, written once to
//! `history/date=YYYY-MM-DD/samples.parquet` as the window slides past it.
//!
//! A transform closes a day when its window's latest tick moves past the day's end. The day is
//! written from the window before it is trimmed to 24 h, which holds the whole day: the state
//! the run stood on was written during that day (or before it), and the run listed every
//! partition since; a rebuild read the day's whole partition. A run that deferred snapshots to
//! the next one (its deadline came first) writes no day, since one could be incomplete, and
//! reports it missed: `cryptomon history repair` writes it from `raw/`.
//!
//! Writes are create-if-absent: a day once written is never rewritten by a transform, and a
//! failed write is reported, never fails the transform.

use bytes::Bytes;
use futures::StreamExt;
use polars::prelude::{ParquetReader, SerReader};

use super::transform::gather::{Decoded, Input};
use crate::engine::WindowBuilder;
use crate::engine::history::{DAY_SECS, day_start, day_table, to_parquet};
use crate::engine::{WINDOW_MINUTES, Window};
use crate::error::{Error, Result};
use crate::keys::{BACKFILL_PREFIX, RAW_PREFIX, history_key};
use crate::model::Tick;
use crate::store::{Store, StoreExt};

/// The UTC days (each day's first second) closed by a run whose window moves from `prior`
/// (the state's `as_of`) to `as_of`: from the day of `prior` on, since the state's window holds
/// that day from its start and the run lists every partition after it. A rebuild (`prior` is
/// `None`) read whole date partitions from the one of `as_of` − 24 h on.
pub(crate) fn closed_days(prior: Option<Tick>, as_of: Tick) -> Vec<Tick> {
    let today = day_start(as_of).unix();
    let first = match prior {
        Some(prior) => day_start(prior),
        None => day_start(as_of.add_secs(-i64::from(WINDOW_MINUTES) * 60)),
    };
    (first.unix()..today)
        .step_by(DAY_SECS as usize)
        .map(Tick::from_unix)
        .collect()
}

/// Which of `days` the store holds already: one listing of each day's partition.
pub(crate) async fn stored_days(store: &dyn Store, days: &[Tick]) -> Result<Vec<Tick>> {
    let mut stored = Vec::new();
    for &day in days {
        let key = history_key(&day.date());
        let partition = &key[..key.rfind('/').map_or(0, |i| i + 1)];
        if store.list(partition).await?.contains(&key) {
            stored.push(day);
        }
    }
    Ok(stored)
}

/// One closed day, encoded for the store.
#[derive(Debug)]
pub(crate) struct EncodedDay {
    pub(crate) day: Tick,
    pub(crate) rows: usize,
    pub(crate) parquet: Vec<u8>,
}

/// Encodes each of `days` from `window` (not yet trimmed to 24 h); a day without a sample is
/// left out.
pub(crate) fn encode_days(window: &Window, days: &[Tick]) -> Result<Vec<EncodedDay>> {
    let mut encoded = Vec::new();
    for &day in days {
        let mut table = day_table(window, day)?;
        if table.height() == 0 {
            continue;
        }
        encoded.push(EncodedDay {
            day,
            rows: table.height(),
            parquet: to_parquet(&mut table)?,
        });
    }
    Ok(encoded)
}

/// What became of one closed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryDay {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// What happened to it.
    pub outcome: HistoryOutcome,
}

/// What a run did with a closed day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOutcome {
    /// Written, with this many rows.
    Written {
        /// Rows written.
        rows: usize,
    },
    /// Already in the store (written by an earlier run or a repair): left as it is.
    Present,
    /// The write failed; the day needs `cryptomon history repair`.
    Failed(String),
    /// Not written, for the reason given; the day needs `cryptomon history repair`.
    Missed(String),
}

/// Writes each encoded day, create-if-absent, and reports every closed day: those `stored`
/// already, those written, and those `missed`.
pub(crate) async fn write_days(
    store: &dyn Store,
    stored: &[Tick],
    days: Vec<EncodedDay>,
    missed: &[(Tick, String)],
) -> Vec<HistoryDay> {
    let mut out: Vec<HistoryDay> = stored
        .iter()
        .map(|day| HistoryDay {
            date: day.date(),
            outcome: HistoryOutcome::Present,
        })
        .collect();
    for day in days {
        let key = history_key(&day.day.date());
        let outcome = match store.put_if_absent(&key, Bytes::from(day.parquet)).await {
            Ok(true) => {
                tracing::info!(%key, rows = day.rows, "history day written");
                HistoryOutcome::Written { rows: day.rows }
            }
            Ok(false) => HistoryOutcome::Present,
            Err(e) => {
                tracing::error!(%key, error = %e, "history day not written: run `cryptomon history repair`");
                HistoryOutcome::Failed(e.to_string())
            }
        };
        out.push(HistoryDay {
            date: day.day.date(),
            outcome,
        });
    }
    for (day, why) in missed {
        tracing::warn!(date = %day.date(), reason = %why, "history day not written: run `cryptomon history repair`");
        out.push(HistoryDay {
            date: day.date(),
            outcome: HistoryOutcome::Missed(why.clone()),
        });
    }
    out
}

impl std::fmt::Display for HistoryDay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let repair = |f: &mut std::fmt::Formatter<'_>, why: &str| {
            write!(
                f,
                "history {}: NOT written ({why}): run `cryptomon history repair --date {}`",
                self.date, self.date
            )
        };
        match &self.outcome {
            HistoryOutcome::Written { rows } => {
                write!(f, "history {}: written, {rows} rows", self.date)
            }
            HistoryOutcome::Present => {
                write!(f, "history {}: already stored, left as it is", self.date)
            }
            HistoryOutcome::Failed(why) | HistoryOutcome::Missed(why) => repair(f, why),
        }
    }
}

/// What [`repair_history`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRepair {
    /// The day, `YYYY-MM-DD`.
    pub date: String,
    /// Snapshots read from `raw/`.
    pub snapshots: usize,
    /// Backfilled hours read from `backfill/`.
    pub backfilled_hours: usize,
    /// Rows written.
    pub rows: usize,
    /// The rows and size in bytes of the day it replaced, if there was one.
    pub replaced: Option<(usize, usize)>,
    /// Snapshots that could not be used, with why.
    pub skipped: Vec<(String, String)>,
}

/// Writes the history of the UTC day `date` (`YYYY-MM-DD`) from every snapshot of that day
/// under `raw/` and every backfilled hour under `backfill/`, replacing the stored day if there is one (and saying what it held). The one
/// way a closed day is ever rewritten.
pub async fn repair_history(store: &dyn Store, date: &str) -> Result<HistoryRepair> {
    let day = Tick::parse(&format!("{date}T00:00:00Z"))
        .ok()
        .filter(|d| d.date() == date)
        .ok_or_else(|| Error::Config(format!("{date:?} is not a date of the form YYYY-MM-DD")))?;
    // The day's snapshots and backfilled hours, as a transform takes them in: a snapshot's
    // sample wins a minute both hold.
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for prefix in [RAW_PREFIX, BACKFILL_PREFIX] {
        for source in store.list_prefixes(prefix).await? {
            for key in store.list(&format!("{source}date={date}/")).await? {
                match Input::parse(&key) {
                    Some(input) => keys.push((key, input)),
                    None => skipped.push((key, "not a snapshot or backfill key".into())),
                }
            }
        }
    }
    let mut builder = WindowBuilder::new();
    let (mut snapshots, mut backfilled_hours) = (0, 0);
    let bodies = futures::stream::iter(keys)
        .map(|(key, input)| async move {
            let got = store.get(&key).await;
            (key, input, got)
        })
        .buffered(16);
    futures::pin_mut!(bodies);
    while let Some((key, input, got)) = bodies.next().await {
        let Some(object) = got? else { continue };
        match Decoded::of(&key, &input, &object.body) {
            Ok(decoded) => {
                decoded.push_into(&mut builder)?;
                if decoded.is_backfill() {
                    backfilled_hours += 1;
                } else {
                    snapshots += 1;
                }
            }
            Err(why) => skipped.push((key, why)),
        }
    }
    let window = super::blocking(move || builder.build()).await?;
    let encoded = encode_days(&window, &[day])?;
    let Some(encoded) = encoded.into_iter().next() else {
        return Err(Error::NoData {
            prefix: format!(
                "{RAW_PREFIX}source=*/date={date}/ and {BACKFILL_PREFIX}source=*/date={date}/"
            ),
        });
    };
    let key = history_key(date);
    let replaced = match store.get(&key).await? {
        Some(old) => {
            // The footer says how many rows; an unreadable day counts as none.
            let rows = ParquetReader::new(std::io::Cursor::new(old.body.as_ref()))
                .num_rows()
                .unwrap_or(0);
            Some((rows, old.body.len()))
        }
        None => None,
    };
    store.put(&key, Bytes::from(encoded.parquet)).await?;
    Ok(HistoryRepair {
        date: date.to_owned(),
        snapshots,
        backfilled_hours,
        rows: encoded.rows,
        replaced,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Tick {
        Tick::parse(s).unwrap()
    }

    #[test]
    fn a_run_past_midnight_closes_the_day_its_state_stood_in() {
        let days = closed_days(Some(at("2026-12-06T23:59:00Z")), at("2026-12-07T00:00:00Z"));
        assert_eq!(days, vec![at("2026-12-06T00:00:00Z")]);
        // Within a day: nothing closes.
        assert!(
            closed_days(Some(at("2026-12-07T10:00:00Z")), at("2026-12-07T10:01:00Z")).is_empty()
        );
    }

    #[test]
    fn a_run_after_days_stopped_closes_each_day_since() {
        // Stopped on the 3rd at noon, back on the 7th: the 3rd is whole in the state's window,
        // and the partitions of the 4th to the 6th are listed whole.
        let days = closed_days(Some(at("2026-12-03T12:00:00Z")), at("2026-12-07T06:00:00Z"));
        let want: Vec<_> = (3..=6)
            .map(|d| at(&format!("2026-12-0{d}T00:00:00Z")))
            .collect();
        assert_eq!(days, want);
    }

    #[test]
    fn a_rebuild_closes_the_day_whose_partition_it_read() {
        assert_eq!(
            closed_days(None, at("2026-12-07T06:00:00Z")),
            vec![at("2026-12-06T00:00:00Z")]
        );
        assert_eq!(
            closed_days(None, at("2026-12-07T00:00:00Z")),
            vec![at("2026-12-06T00:00:00Z")]
        );
        // At a day's last minute, the day before is still read whole.
        assert_eq!(
            closed_days(None, at("2026-12-07T23:59:00Z")),
            vec![at("2026-12-06T00:00:00Z")]
        );
    }
}
