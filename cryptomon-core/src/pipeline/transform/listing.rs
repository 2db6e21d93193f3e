//! Finding the keys a run may take in: the keys it was told of (the collector's hand-off), and,
//! when a reconciliation is due, the keys listed from the store.
//!
//! A run told of the new keys lists nothing: that is the steady state, one tick after another.
//! It lists when it cannot trust what it was told to be everything:
//!
//! - with no state to stand on, everything under `raw/` and `backfill/` (a rebuild);
//! - with no hand-off (a standalone `cryptomon transform`, a manual run), and in a run that
//!   closes a UTC day (whose history is written once, so must be whole), every date partition
//!   the window can still touch, as a transform always has;
//! - with a hand-off, once [`TransformOptions::reconcile_every`] of ticks has passed since the
//!   last listing (or none is recorded): a *reconciliation*, which lists each source's snapshot
//!   partitions only from the mark the last listing left (less [`RECONCILE_OVERLAP`], for
//!   writers that finish late), with S3's `StartAfter`, and the backfill partitions whole (a
//!   backfill writes into the past, and holds a few dozen keys a day).
//!
//! What a reconciliation finds: keys of a missed or failed hand-off, a retried collection, a
//! backfill, a manual upload of a recent tick. What only a rebuild finds: a snapshot dated
//! before the last mark less the overlap and written after that listing (an upload into the
//! past); `cryptomon transform --full` takes it in.
//!
//! [`TransformOptions::reconcile_every`]: super::TransformOptions::reconcile_every

use std::collections::BTreeSet;
use std::time::Duration;

use super::super::state::{self, Manifest};
use super::report::Io;
use crate::engine::WINDOW_MINUTES;
use crate::error::Result;
use crate::keys::{BACKFILL_PREFIX, RAW_PREFIX, raw_partition};
use crate::model::{SourceName, Tick};
use crate::store::Store;

/// How far before the last listing's mark a reconciliation starts: a snapshot written up to
/// this late after its tick is still found.
pub const RECONCILE_OVERLAP: Duration = Duration::from_secs(600);

/// How a run finds its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// Only the keys it was told of.
    Told,
    /// A reconciliation: snapshot partitions from `start` to `until` (the latest tick it was
    /// told of), backfill partitions of the window of `as_of`.
    Since {
        start: Tick,
        until: Tick,
        as_of: Tick,
    },
    /// Every partition the window of `as_of` can touch.
    Window(Tick),
    /// Everything (a rebuild).
    Everything,
}

impl Scope {
    /// The scope of a run: `has_prior` when it stands on a state, `told` the latest tick among
    /// the keys it was told of (`None` with no hand-off; `Some(None)` for a hand-off naming no
    /// key of the contract).
    pub(super) fn of(
        has_prior: bool,
        manifest: &Manifest,
        told: Option<Option<Tick>>,
        reconcile_every: Duration,
    ) -> Scope {
        let (true, Some(as_of)) = (has_prior, manifest.as_of) else {
            return Scope::Everything;
        };
        let (Some(told), Some(mark)) = (told, manifest.reconciled_at) else {
            return Scope::Window(as_of);
        };
        let latest = told.map_or(as_of, |t| t.max(as_of));
        if latest.date() != as_of.date() {
            // This run closes a day, and history writes a day once: it must hold every snapshot
            // of it, so the run lists the whole window first.
            return Scope::Window(as_of);
        }
        let due = reconcile_every.is_zero()
            || latest.unix() - mark.unix() >= reconcile_every.as_secs() as i64;
        if !due {
            return Scope::Told;
        }
        let start = mark.add_secs(-(RECONCILE_OVERLAP.as_secs() as i64));
        if start.date() < window_first_date(as_of) {
            // Listing from before the window would find nothing the window partitions do not.
            return Scope::Window(as_of);
        }
        Scope::Since {
            start,
            until: latest,
            as_of,
        }
    }

    /// Whether this run lists (and so leaves a new mark).
    pub(super) fn lists(self) -> bool {
        self != Scope::Told
    }

    /// The keys in scope, listed.
    pub(super) async fn list(self, store: &dyn Store, io: &mut Io) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        match self {
            Scope::Told => {}
            Scope::Everything => {
                for prefix in [RAW_PREFIX, BACKFILL_PREFIX] {
                    keys.extend(list_all(store, prefix, io).await?);
                }
            }
            Scope::Window(as_of) => {
                for prefix in [RAW_PREFIX, BACKFILL_PREFIX] {
                    keys.extend(list_window_partitions(store, prefix, as_of, io).await?);
                }
            }
            Scope::Since {
                start,
                until,
                as_of,
            } => {
                keys.extend(list_snapshots_since(store, start, until, io).await?);
                keys.extend(list_window_partitions(store, BACKFILL_PREFIX, as_of, io).await?);
            }
        }
        Ok(keys)
    }
}

/// The first date partition that can hold a sample of the window ending at `as_of`.
pub(crate) fn window_first_date(as_of: Tick) -> String {
    as_of.add_secs(-i64::from(WINDOW_MINUTES) * 60).date()
}

/// Every key under `prefix`.
async fn list_all(store: &dyn Store, prefix: &str, io: &mut Io) -> Result<Vec<String>> {
    let keys = store.list(prefix).await?;
    io.lists += 1;
    io.listed += keys.len();
    Ok(keys)
}

/// Every source's snapshot keys dated from `start` to `until`: the sources listed, then each
/// one's date partitions from `start`'s, the first of them from `start`'s key on.
async fn list_snapshots_since(
    store: &dyn Store,
    start: Tick,
    until: Tick,
    io: &mut Io,
) -> Result<Vec<String>> {
    let sources = store.list_prefixes(RAW_PREFIX).await?;
    io.lists += 1;
    let mut dates = vec![start.date()];
    let mut day = start;
    while day.date() < until.date() {
        day = day.add_secs(86_400);
        dates.push(day.date());
    }
    let mut keys = Vec::new();
    for source in sources.iter().filter_map(|s| source_of(s)) {
        for (i, date) in dates.iter().enumerate() {
            let partition = raw_partition(&source, date);
            let listed = if i == 0 {
                // A key's name is its tick: `…/20261127T225000Z.json` sorts after this.
                let from = format!("{partition}{}", start.compact());
                store.list_after(&partition, &from).await?
            } else {
                store.list(&partition).await?
            };
            io.lists += 1;
            io.listed += listed.len();
            keys.extend(listed);
        }
    }
    Ok(keys)
}

/// The source of a `raw/source=S/` prefix.
fn source_of(prefix: &str) -> Option<SourceName> {
    let name = prefix
        .strip_prefix(RAW_PREFIX)?
        .strip_prefix("source=")?
        .strip_suffix('/')?;
    SourceName::new(name).ok()
}

/// The keys of every source's date partitions under `prefix` from the window's first date on:
/// what can hold new or late objects of the window after `as_of`.
async fn list_window_partitions(
    store: &dyn Store,
    prefix: &str,
    as_of: Tick,
    io: &mut Io,
) -> Result<Vec<String>> {
    let first_date = window_first_date(as_of);
    let sources = store.list_prefixes(prefix).await?;
    io.lists += 1;
    let mut partitions = BTreeSet::new();
    for source in &sources {
        if !source.starts_with(&format!("{prefix}source=")) {
            continue;
        }
        for date in store.list_prefixes(source).await? {
            if state::partition_date(&date).is_some_and(|d| d >= first_date.as_str()) {
                partitions.insert(date);
            }
        }
        io.lists += 1;
    }
    let mut keys = Vec::new();
    for partition in partitions {
        let listed = store.list(&partition).await?;
        io.lists += 1;
        io.listed += listed.len();
        keys.extend(listed);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(as_of: &str, reconciled: Option<&str>) -> Manifest {
        Manifest {
            as_of: Some(Tick::parse(as_of).unwrap()),
            reconciled_at: reconciled.map(|t| Tick::parse(t).unwrap()),
            ..Manifest::new()
        }
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn a_run_lists_only_when_it_cannot_trust_its_hand_off() {
        let t = |s: &str| Some(Some(Tick::parse(s).unwrap()));
        let m = manifest("2026-11-27T12:00:00Z", Some("2026-11-27T11:30:00Z"));
        // Told of a tick within the hour of the mark: nothing listed.
        assert_eq!(
            Scope::of(true, &m, t("2026-11-27T12:01:00Z"), HOUR),
            Scope::Told
        );
        // An hour on: a reconciliation from the mark less the overlap.
        assert_eq!(
            Scope::of(true, &m, t("2026-11-27T12:30:00Z"), HOUR),
            Scope::Since {
                start: Tick::parse("2026-11-27T11:20:00Z").unwrap(),
                until: Tick::parse("2026-11-27T12:30:00Z").unwrap(),
                as_of: Tick::parse("2026-11-27T12:00:00Z").unwrap(),
            }
        );
        // No hand-off, no mark, no state, a mark before the window.
        let window = Scope::Window(Tick::parse("2026-11-27T12:00:00Z").unwrap());
        assert_eq!(Scope::of(true, &m, None, HOUR), window);
        let unmarked = manifest("2026-11-27T12:00:00Z", None);
        assert_eq!(
            Scope::of(true, &unmarked, t("2026-11-27T12:01:00Z"), HOUR),
            window
        );
        assert_eq!(
            Scope::of(false, &m, t("2026-11-27T12:01:00Z"), HOUR),
            Scope::Everything
        );
        let old = manifest("2026-11-27T12:00:00Z", Some("2026-11-25T12:00:00Z"));
        assert_eq!(
            Scope::of(true, &old, t("2026-11-27T12:01:00Z"), HOUR),
            window
        );
        // A run that closes a day lists the whole window, due or not.
        assert_eq!(
            Scope::of(
                true,
                &m,
                t("2026-11-28T00:00:00Z"),
                Duration::from_secs(86_400)
            ),
            window
        );
        // A hand-off naming no key of the contract still counts as told.
        assert_eq!(Scope::of(true, &m, Some(None), HOUR), Scope::Told);
    }

    #[test]
    fn sources_are_read_from_their_prefixes() {
        assert_eq!(
            source_of("raw/source=kraken/").map(|s| s.to_string()),
            Some("kraken".into())
        );
        assert_eq!(source_of("raw/elsewhere/"), None);
    }
}
