//! The transform pipeline: take in new snapshots, aggregate the 24 h window, write state and
//! summary.
//!
//! By default the transform is incremental: it reads the window state and only the raw objects
//! that arrived since it was written, found by listing the date partitions the window can still
//! touch. `TransformMode::Full` (and any missing, unreadable or older-format state) rebuilds the
//! window from raw. Both give the same aggregates.
//!
//! A run, in [`transform`]'s order:
//!
//! - [`load`]: the state to stand on (the cache's, the store's head, or none);
//! - [`gather`]: the new snapshots, listed, read and decoded while the state's base is read;
//! - the merge of the new rows into the window, and the metrics;
//! - [`write`]: the summary, a new base when it is time, then the head;
//! - the alert rules, on the new window;
//! - [`report`]: what the run did.

pub(super) mod gather;
pub(super) mod listing;
mod load;
mod options;
mod report;
mod write;

use std::collections::BTreeMap;
use std::time::Instant;

use self::gather::{Gathered, gather_new};
use self::load::{Loaded, Prior, load_state};
use self::options::Clock;
use self::report::Io;
use self::write::{MAX_ATTEMPTS, NewBase, State, write_aggregates};
use super::blocking;
use super::cache::{CachedState, TransformCache};
use super::history;
use super::state::{self, COMPACT_EVERY, Manifest};
use crate::alerting::RuleKind;
use crate::engine::{Aggregator, WINDOW_MINUTES, Window, WindowBuilder};
use crate::error::{Error, Result};
use crate::keys::{RAW_PREFIX, SUMMARY_KEY};
use crate::model::{SourceName, Summary, Tick};
use crate::store::{Fetch, PutMode, Store, Version};

pub use self::listing::RECONCILE_OVERLAP;
pub use self::options::{
    DEFAULT_MAX_CLOCK_SKEW, DEFAULT_RECONCILE_EVERY, TransformMode, TransformOptions,
};
pub use self::report::{Skipped, TransformReport};

/// Takes in the raw objects the window state has not seen (all of them with
/// [`TransformMode::Full`]), aggregates the window, writes the summary, then the window state,
/// and evaluates the alert rules of `options` on the new window.
///
/// Unreadable objects are skipped and reported once; they never stop the transform, and nor do
/// snapshots dated too far ahead of the clock, which are reported at every run. Each write is
/// atomic, so a reader sees the previous aggregates or the new ones. Both the summary and the
/// state (written last) are written conditionally: when another transform wrote either
/// meanwhile, this one re-reads and runs again, so no snapshot is lost and neither a stale state
/// nor an older summary replaces a newer one. The state records the version of the summary
/// written with it; a run with nothing new checks (with a conditional read that transfers
/// nothing) that the summary still has that version and rewrites it if not, so a failed or raced
/// summary write heals at the next run.
///
/// Writes per run: two, whatever the number of series; none when nothing new arrived and the
/// summary is current. Alert events are stored under `alerts/` and queued for delivery (see
/// [`super::deliver`]); alerting never fails the transform: an error is logged and reported in
/// [`TransformReport::alert_error`].
pub async fn transform(
    store: &dyn Store,
    aggregator: &dyn Aggregator,
    options: &TransformOptions,
) -> Result<TransformReport> {
    let started = Instant::now();
    let mut attempt = 1;
    loop {
        match run_once(store, aggregator, options).await {
            Err(Error::Precondition { key }) if attempt < MAX_ATTEMPTS => {
                tracing::info!(%key, attempt, "another transform wrote the state first; running again");
                attempt += 1;
            }
            Ok(mut report) => {
                report.attempts = attempt;
                report.elapsed = started.elapsed();
                return Ok(report);
            }
            Err(e) => return Err(e),
        }
    }
}

async fn run_once(
    store: &dyn Store,
    aggregator: &dyn Aggregator,
    options: &TransformOptions,
) -> Result<TransformReport> {
    let mode = options.mode;
    let mut io = Io::default();
    let clock = Clock::of(options);
    // Taken out for the run: put back only once this run's writes succeed.
    let warm = options.cache.as_deref().and_then(TransformCache::take);
    let loaded = load_state(store, mode, &mut io, warm, clock).await?;
    let (loaded, gathered) = gather_on(store, loaded, &mut io, clock, options).await?;
    let Gathered {
        builder,
        mut skipped,
        unrecorded,
        new_objects,
        deferred,
        reconciled,
    } = gathered;

    // Objects dated ahead of the clock are reported at every run, but are not news.
    let nothing_new = new_objects == 0 && skipped.is_empty();
    skipped.extend(unrecorded);
    if nothing_new && let (Some(prior), Some(as_of)) = (&loaded.prior, loaded.manifest.as_of) {
        io.read += 1;
        if summary_is_current(store, &loaded.manifest).await? {
            let mut out = TransformReport::new(as_of, mode, io);
            out.skipped = skipped;
            out.warm = loaded.warm;
            out.deferred = deferred;
            out.reconciled = reconciled;
            return unchanged(store, options, &loaded, prior, as_of, out).await;
        }
    }

    // A rebuild closes the day before the window again: when the store has it already, it is
    // neither built whole nor encoded (a day is never rewritten by a transform anyway).
    // The latest tick read, for a rebuild: one pass over its samples, shared with the merge.
    let rebuilt_latest = loaded
        .prior
        .is_none()
        .then(|| builder.latest_tick())
        .flatten();
    let stored_days = match (&loaded.prior, rebuilt_latest) {
        (None, Some(latest)) => {
            let days = history::closed_days(None, latest);
            io.lists += days.len();
            history::stored_days(store, &days).await?
        }
        _ => Vec::new(),
    };
    let Loaded {
        prior,
        manifest,
        version,
        rebuild,
        next_slot,
        warm: was_warm,
    } = loaded;
    let Merged {
        window,
        delta,
        manifest,
        as_of,
        history: closed_days,
        missed,
    } = {
        let stored_days = stored_days.clone();
        blocking(move || {
            merge(
                prior,
                builder,
                manifest,
                deferred,
                &stored_days,
                rebuilt_latest,
            )
        })
        .await?
    };
    // A new base when there is none to stand on, on a full run, and once the delta holds about
    // an hour of the window's rows: each tick then writes only the delta.
    let compact = mode == TransformMode::Full
        || manifest.base.is_none()
        || delta.len() * COMPACT_EVERY > window.len();
    // The metrics and a new base's encoding both read the window and nothing else, so they run
    // on two cores at once.
    let aggregate = {
        let (aggregator, window) = (aggregator.clone_box(), window.clone());
        blocking(move || aggregator.aggregate(&window, as_of))
    };
    let encode_base = async {
        if !compact {
            return Ok(None);
        }
        let (window, rows) = (window.clone(), window.len());
        let generation = state::new_generation(as_of);
        let meta = generation.clone();
        let bytes = blocking(move || window.to_parquet(Some(meta))).await?;
        Ok(Some(NewBase {
            bytes,
            generation,
            rows,
        }))
    };
    let (summary, new_base) = futures::try_join!(aggregate, encode_base)?;
    let put_mode = match version {
        Some(v) => PutMode::Update(v),
        None => PutMode::Create,
    };
    let last = last_snapshots(&manifest);
    let state = State {
        delta,
        new_base,
        next_slot,
    };
    // Before the state: a day's write that fails is reported, and the state moves on.
    let history = history::write_days(store, &stored_days, closed_days, &missed).await;
    let written = write_aggregates(store, state, manifest, put_mode, &summary, clock).await?;
    let mut out = TransformReport::new(
        as_of,
        if rebuild.is_some() {
            TransformMode::Full
        } else {
            mode
        },
        io,
    );
    out.rebuild_reason = rebuild;
    out.new_objects = new_objects;
    out.deferred = deferred;
    out.reconciled = reconciled;
    out.skipped = skipped;
    out.series = summary.series.len();
    out.samples = window.len();
    out.alerts = summary.alerts.len();
    out.writes = written.writes;
    out.compacted = compact;
    out.history = history;
    out.warm = was_warm;
    if let Some(cache) = &options.cache {
        cache.put(CachedState {
            version: written.version,
            manifest: written.manifest,
            window: window.clone(),
            delta: written.delta,
        });
    }
    if !options.alerts.is_empty() {
        alert(store, options, &window, &summary, as_of, &last, &mut out).await;
    }
    Ok(out)
}

/// Gathers what is new while the base `loaded` names is read: the two do not depend on each
/// other, and the base (the largest read, and a Parquet decode) need not wait for the lists and
/// the new snapshots' reads. A base found unusable turns the run into a rebuild, gathered again.
async fn gather_on(
    store: &dyn Store,
    mut loaded: Loaded,
    io: &mut Io,
    clock: Clock,
    options: &TransformOptions,
) -> Result<(Loaded, Gathered)> {
    loop {
        let pending = loaded.unread_base();
        let read_base = async {
            match &pending {
                Some(base) => state::read_base(store, base).await.map(Some),
                None => Ok(None),
            }
        };
        let has_prior = loaded.prior.is_some();
        let gather = gather_new(store, has_prior, &mut loaded.manifest, io, clock, options);
        let (base, gathered) = futures::join!(read_base, gather);
        match base? {
            Some(Ok((window, len))) => {
                io.read += 1;
                io.bytes_read += len;
                if let Some(prior) = &mut loaded.prior {
                    prior.base = Some(window);
                }
            }
            Some(Err(reason)) => {
                loaded = loaded.unusable_base(reason);
                continue;
            }
            None => {}
        }
        return Ok((loaded, gathered?));
    }
}

/// Whether the stored summary is still the one written with the state of `manifest` (a
/// conditional read, which transfers nothing when it is).
async fn summary_is_current(store: &dyn Store, manifest: &Manifest) -> Result<bool> {
    let Some(version) = manifest.summary_version.clone().map(Version) else {
        return Ok(false);
    };
    Ok(matches!(
        store.get_opts(SUMMARY_KEY, Some(&version)).await?,
        Fetch::NotModified
    ))
}

/// Finishes a run that found nothing new and the aggregates on the store current: the cache
/// keeps the state read, and `stale` rules (for which nothing new is itself news) are evaluated
/// on what is stored.
async fn unchanged(
    store: &dyn Store,
    options: &TransformOptions,
    loaded: &Loaded,
    prior: &Prior,
    as_of: Tick,
    mut out: TransformReport,
) -> Result<TransformReport> {
    let window = match (&prior.base, prior.whole) {
        // A warm state's base is the whole window already (see `CachedState::window`).
        (Some(window), true) => window.clone(),
        _ => {
            let (base, delta) = (prior.base.clone(), prior.delta.clone());
            blocking(move || state::merged(base, delta)).await?
        }
    };
    out.series = window.series().len();
    out.samples = window.len();
    if let (Some(cache), Some(version)) = (&options.cache, &loaded.version) {
        // Nothing was written: the state is still the one read.
        cache.put(CachedState {
            version: version.clone(),
            manifest: loaded.manifest.clone(),
            window: window.clone(),
            delta: prior.delta.clone(),
        });
    }
    let has_stale_rule = options
        .alerts
        .rules
        .iter()
        .any(|r| matches!(r.kind, RuleKind::Stale { .. }));
    if has_stale_rule && let Some(summary) = super::read_summary(store).await? {
        let last = last_snapshots(&loaded.manifest);
        alert(store, options, &window, &summary, as_of, &last, &mut out).await;
    }
    Ok(out)
}

/// The window after a run's merge, the delta the head will hold, the manifest as of the
/// window's latest tick, and the days of history the run closed.
struct Merged {
    window: Window,
    delta: Window,
    manifest: Manifest,
    as_of: Tick,
    /// Closed days, encoded for `history/`.
    history: Vec<history::EncodedDay>,
    /// Closed days not written, and why.
    missed: Vec<(Tick, String)>,
}

/// Merges the new rows of `builder` into the state `prior` (a rebuild without one), trims the
/// delta to the window, moves the manifest to the new `as_of`, and encodes the days of history
/// the move closes (none when `deferred` snapshots were left for the next run: a day could be
/// incomplete).
fn merge(
    prior: Option<Prior>,
    builder: WindowBuilder,
    mut manifest: Manifest,
    deferred: usize,
    stored_days: &[Tick],
    rebuilt_latest: Option<Tick>,
) -> Result<Merged> {
    let prior_as_of = prior.as_ref().and(manifest.as_of);
    let latest = |windows: &[Option<&Window>]| -> Result<Option<Tick>> {
        let mut latest = None;
        for w in windows.iter().flatten() {
            latest = latest.max(w.latest_tick()?);
        }
        Ok(latest)
    };
    // Whether the run closes a day, known before the merge, which then keeps the whole of it.
    let closing = |latest: Option<Tick>| match latest {
        Some(latest) => {
            let mut days = history::closed_days(prior_as_of, latest);
            days.retain(|d| !stored_days.contains(d));
            days
        }
        None => Vec::new(),
    };
    let untrimmed;
    let (delta, window, closed) = match prior {
        Some(prior) => {
            // The delta: what the prior head held, and the new rows (newer, so they win a tie).
            let new_rows = builder.build()?;
            let closed = closing(latest(&[
                Some(&new_rows),
                Some(&prior.delta),
                prior.base.as_ref(),
            ])?);
            untrimmed = !closed.is_empty() && deferred == 0;
            let mut delta = WindowBuilder::new();
            delta.push_window(prior.delta)?;
            delta.push_window(new_rows.clone())?;
            let delta = delta.build()?;
            // A warm state's window holds the delta's rows already, each as the merge decided:
            // only the new rows go in, since merging the delta again would meet every one of
            // its rows twice.
            let rows = if prior.whole { new_rows } else { delta.clone() };
            let window = if untrimmed {
                state::merged_whole(prior.base, rows)?
            } else {
                state::merged(prior.base, rows)?
            };
            (delta, window, closed)
        }
        // A rebuild: every row is new, and the window is what was read, as built.
        None => {
            let closed = closing(rebuilt_latest);
            untrimmed = !closed.is_empty() && deferred == 0;
            let window = if untrimmed {
                builder.build()?
            } else {
                builder.build_last(WINDOW_MINUTES)?
            };
            (window.clone(), window, closed)
        }
    };
    let as_of = window.latest_tick()?.ok_or_else(|| Error::NoData {
        prefix: RAW_PREFIX.into(),
    })?;
    let (history, missed) = if closed.is_empty() {
        (Vec::new(), Vec::new())
    } else if deferred > 0 {
        let why = format!("{deferred} snapshots were deferred to the next run");
        (
            Vec::new(),
            closed.into_iter().map(|d| (d, why.clone())).collect(),
        )
    } else {
        (history::encode_days(&window, &closed)?, Vec::new())
    };
    // The window was built whole for the days closed: now it is trimmed to 24 h.
    let window = if untrimmed {
        window.trimmed(as_of, WINDOW_MINUTES)?
    } else {
        window
    };
    let delta = delta.trimmed(as_of, WINDOW_MINUTES)?;
    manifest.as_of = Some(as_of);
    manifest.prune(as_of.add_secs(-i64::from(WINDOW_MINUTES) * 60));
    Ok(Merged {
        window,
        delta,
        manifest,
        as_of,
        history,
        missed,
    })
}

/// Each source's latest tick taken in.
fn last_snapshots(manifest: &Manifest) -> BTreeMap<SourceName, Tick> {
    manifest
        .ingested
        .iter()
        .filter_map(|(source, ticks)| {
            let last = ticks.last()?;
            Some((SourceName::new(source).ok()?, Tick::from_unix(*last)))
        })
        .collect()
}

/// Records the alert events of this transform into `out`; an error is logged and reported,
/// never returned: the aggregates are written already.
async fn alert(
    store: &dyn Store,
    options: &TransformOptions,
    window: &Window,
    summary: &Summary,
    as_of: Tick,
    last: &BTreeMap<SourceName, Tick>,
    out: &mut TransformReport,
) {
    let now = options::now(options);
    match super::alert_delivery::record(
        store,
        &options.alerts,
        &options.sinks,
        window,
        summary,
        as_of,
        last,
        now,
    )
    .await
    {
        Ok(recorded) => {
            out.alert_events = recorded.events;
            out.skipped.extend(recorded.set_aside);
        }
        Err(e) => {
            tracing::error!(error = %e, "alerting failed; the aggregates are written");
            out.alert_error = Some(e.to_string());
        }
    }
}
