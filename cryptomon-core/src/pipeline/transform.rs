//! The transform pipeline: take in new snapshots, aggregate the 24 h window, write state and
//! summary.
//!
//! By default the transform is incremental: it reads the window state and only the raw objects
//! that arrived since it was written, found by listing the date partitions the window can still
//! touch. `TransformMode::Full` (and any missing, unreadable or older-format state) rebuilds the
//! window from raw. Both give the same aggregates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, stream};

use super::decode::{Samples, decode_samples};
use super::state::{self, BASE_KEYS, BaseRef, COMPACT_EVERY, Manifest};
use super::warm::{TransformCache, Warm};
use crate::alerting::{AlertConfig, AlertEvent, RuleKind};
use crate::engine::{Aggregator, WINDOW_MINUTES, Window, WindowBuilder};
use crate::error::{Error, Result};
use crate::keys::{RAW_PREFIX, RawKey, SUMMARY_KEY, WINDOW_KEY, parse_raw_key};
use crate::model::{SourceName, Summary, Tick};
use crate::store::{Fetch, Object, PutMode, Store, StoreExt, Version};

/// Reads in flight at once: enough to hide S3 latency, few enough to stay polite.
const READ_CONCURRENCY: usize = 16;
/// Snapshots decoded per hand-off to the blocking pool.
const DECODE_BATCH: usize = 32;
/// Decode batches in flight at once: one per core of a small machine, and one filling up.
const DECODE_BATCHES: usize = 3;
/// Conditional-write conflicts tolerated before giving up (another transform keeps winning).
const MAX_ATTEMPTS: u32 = 5;
/// How far ahead of the clock a snapshot's tick may be, unless the config says otherwise.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration =
    Duration::from_secs(crate::config::DEFAULT_MAX_CLOCK_SKEW_SECS as u64);

/// How a transform gathers its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformMode {
    /// Read the window state and only the raw objects that arrived since (the default). A
    /// missing, unreadable or older-format state falls back to a full rebuild by itself.
    Incremental,
    /// Rebuild the window from every raw object that can fall in it.
    Full,
}

/// How to run a transform: the mode, and the alert rules to evaluate after it.
#[derive(Debug, Clone)]
pub struct TransformOptions {
    /// Incremental (the default) or full.
    pub mode: TransformMode,
    /// The alert rules; none by default.
    pub alerts: Arc<AlertConfig>,
    /// The sinks events are queued for (see [`super::alerts::Notifier::sink`]).
    pub sinks: Vec<String>,
    /// The clock, for `stale` rules and for what counts as the future; `None` reads the
    /// system clock.
    pub now: Option<Tick>,
    /// How far ahead of the clock a snapshot's tick may be ([`DEFAULT_MAX_CLOCK_SKEW`]): one
    /// further ahead is skipped and reported, never taken in, so the window's `as_of` never
    /// passes the clock by more than this.
    pub max_clock_skew: Duration,
    /// What a long-lived process keeps between runs (see [`TransformCache`]); `None` (the
    /// default) reads the state from the store every run.
    pub cache: Option<Arc<TransformCache>>,
    /// When to stop taking in new snapshots, so that a caller with a hard deadline (a Lambda
    /// invocation) still writes what it has: snapshots not read by then are left in the store
    /// and taken in by the next run ([`TransformReport::deferred`]). A first batch is always
    /// read, so every run makes progress. `None` reads them all.
    pub deadline: Option<tokio::time::Instant>,
}

impl Default for TransformOptions {
    fn default() -> Self {
        TransformOptions {
            mode: TransformMode::Incremental,
            alerts: Arc::new(AlertConfig::default()),
            sinks: Vec::new(),
            now: None,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            cache: None,
            deadline: None,
        }
    }
}

/// An object the transform could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The key.
    pub key: String,
    /// Why it was skipped.
    pub reason: String,
}

/// What one transform did.
#[derive(Debug, Clone)]
pub struct TransformReport {
    /// The latest tick in the window.
    pub as_of: Tick,
    /// The mode that ran: `Full` when asked for, or when the state had to be rebuilt.
    pub mode: TransformMode,
    /// Why an incremental run rebuilt from raw, if it did.
    pub rebuild_reason: Option<String>,
    /// Keys listed.
    pub listed: usize,
    /// List requests made.
    pub lists: usize,
    /// Objects read (the state included).
    pub read: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Raw objects newly taken in.
    pub new_objects: usize,
    /// New snapshots left unread because [`TransformOptions::deadline`] came first: the next
    /// run takes them in.
    pub deferred: usize,
    /// Objects newly found unusable, with their keys (each is reported once), and objects
    /// dated too far ahead of the clock (reported at every run until the clock reaches them).
    pub skipped: Vec<Skipped>,
    /// Series in the summary.
    pub series: usize,
    /// Samples in the window.
    pub samples: usize,
    /// Alerts raised.
    pub alerts: usize,
    /// Objects written.
    pub writes: usize,
    /// Whether this run wrote a new base of the window state (once the rows taken in since the
    /// last one reach about an hour's; every full run).
    pub compacted: bool,
    /// Runs needed: more than 1 when a concurrent transform won the conditional write.
    pub attempts: u32,
    /// Whether the run stood on the state its [`TransformCache`] held (the store's head
    /// unchanged since this process wrote it), reading neither head nor base.
    pub warm: bool,
    /// Alert events this transform caused (fired and resolved), stored under `alerts/`.
    pub alert_events: Vec<AlertEvent>,
    /// Why alerting failed, if it did (the aggregates are written regardless).
    pub alert_error: Option<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Runs an incremental transform (see [`transform_with`]).
pub async fn transform(store: &dyn Store, aggregator: &dyn Aggregator) -> Result<TransformReport> {
    transform_with(store, aggregator, TransformMode::Incremental).await
}

/// Takes in the raw objects the window state has not seen (all of them with
/// [`TransformMode::Full`]), aggregates the window, and writes the summary, then the window
/// state.
///
/// Unreadable objects are skipped and reported once; they never stop the transform, and nor do
/// snapshots dated too far ahead of the clock, which are reported at every run. Each write is
/// atomic, so a reader sees the previous aggregates or the new ones. Both the summary and the
/// state (written last) are written conditionally: when another transform wrote either
/// meanwhile, this one re-reads and runs again, so no snapshot is lost and neither a stale state
/// nor an older summary replaces a newer one (see `put_summary`). The state records
/// the version of the summary written with it; a run with nothing new checks (with a
/// conditional read that transfers nothing) that the summary still has that version and rewrites
/// it if not, so a failed or raced summary write heals at the next run.
///
/// Writes per run: two, whatever the number of series; none when nothing new arrived and the
/// summary is current.
pub async fn transform_with(
    store: &dyn Store,
    aggregator: &dyn Aggregator,
    mode: TransformMode,
) -> Result<TransformReport> {
    let options = TransformOptions {
        mode,
        ..TransformOptions::default()
    };
    transform_opts(store, aggregator, &options).await
}

/// [`transform_with`], then the alert rules of `options` evaluated on the new window: the
/// events they cause are stored under `alerts/` and queued for delivery (see
/// [`super::alerts::deliver`]). Alerting never fails the transform: an error is logged and
/// reported in [`TransformReport::alert_error`].
pub async fn transform_opts(
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

/// Counts what a run asked of the store.
#[derive(Debug, Default)]
struct Io {
    listed: usize,
    lists: usize,
    read: usize,
    bytes_read: u64,
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
    let mut loaded = load_state(store, mode, &mut io, warm, clock).await?;
    // A cold run reads the base while it lists and reads what is new: the two do not depend on
    // each other, and the base (the largest read, and a Parquet decode) no longer waits for
    // ten lists and the new snapshots' reads.
    let gathered = loop {
        let pending = loaded.unread_base();
        let read_base = async {
            match &pending {
                Some(base) => state::read_base(store, base).await.map(Some),
                None => Ok(None),
            }
        };
        let has_prior = loaded.prior.is_some();
        let gather = gather_new(
            store,
            has_prior,
            &mut loaded.manifest,
            &mut io,
            clock,
            options.deadline,
        );
        let (base, gathered) = futures::join!(read_base, gather);
        match base? {
            Some(Ok((window, len))) => {
                io.read += 1;
                io.bytes_read += len;
                if let Some(prior) = &mut loaded.prior {
                    prior.base = Some(window);
                }
            }
            // What was gathered stood on a state that cannot be used: gather again for a
            // rebuild.
            Some(Err(reason)) => {
                loaded = loaded.unusable_base(reason);
                continue;
            }
            None => {}
        }
        break gathered?;
    };
    let Gathered {
        builder,
        mut skipped,
        ahead,
        new_objects,
        deferred,
    } = gathered;
    let was_warm = loaded.warm;
    let (prior_window, version, rebuild_reason) = (loaded.prior, loaded.version, loaded.rebuild);
    let mut manifest = loaded.manifest;

    // Objects dated ahead of the clock are reported at every run, but are not news.
    let nothing_new = new_objects == 0 && skipped.is_empty();
    skipped.extend(ahead);
    if nothing_new && let (Some(prior), Some(as_of)) = (&prior_window, manifest.as_of) {
        // Nothing arrived: if the summary is still the one written with this state, the
        // aggregates on the store are current.
        let written_with_state = manifest.summary_version.clone().map(Version);
        io.read += 1;
        if let Some(v) = &written_with_state
            && matches!(
                store.get_opts(SUMMARY_KEY, Some(v)).await?,
                Fetch::NotModified
            )
        {
            let window = match (&prior.base, prior.whole) {
                // A warm state's base is the whole window already (see `Warm::window`).
                (Some(window), true) => window.clone(),
                _ => {
                    let (base, delta) = (prior.base.clone(), prior.delta.clone());
                    blocking(move || state::merged(base, delta)).await?
                }
            };
            let (series, samples) = (window.series().len(), window.len());
            if let (Some(cache), Some(version)) = (&options.cache, &version) {
                // Nothing was written: the state is still the one read.
                cache.put(Warm {
                    version: version.clone(),
                    manifest: manifest.clone(),
                    window: window.clone(),
                    delta: prior.delta.clone(),
                });
            }
            let mut out = report(as_of, mode, None, io, 0, skipped, series, samples, 0, 0);
            out.warm = was_warm;
            out.deferred = deferred;
            // Nothing new is itself news for a `stale` rule: evaluate on what is stored.
            if options
                .alerts
                .rules
                .iter()
                .any(|r| matches!(r.kind, RuleKind::Stale { .. }))
                && let Some(summary) = read_summary(store).await?
            {
                let last = last_snapshots(&manifest);
                alert(store, options, &window, &summary, as_of, &last, &mut out).await;
            }
            return Ok(out);
        }
    }

    let (window, delta, manifest, as_of) = blocking(move || {
        let (delta, window) = match prior_window {
            Some(prior) => {
                // The delta: what the prior head held, and the new rows (newer, so they win a
                // tie).
                let new_rows = builder.build()?;
                let mut delta = WindowBuilder::new();
                delta.push_window(prior.delta)?;
                delta.push_window(new_rows.clone())?;
                let delta = delta.build()?;
                // The base is given up to the merge, which makes the window in its columns.
                let window = if prior.whole {
                    // A warm state's window holds the delta's rows already, each as the merge
                    // decided: only the new rows go in. (Merging the delta again would meet
                    // every one of its rows twice, one key at a time, up to an hour of rows.)
                    state::merged(prior.base, new_rows)?
                } else {
                    state::merged(prior.base, delta.clone())?
                };
                (delta, window)
            }
            // A rebuild: every row is new, and the window is what was read, as built (and the
            // memory of a day of rows matters here).
            None => {
                let window = builder.build_last(WINDOW_MINUTES)?;
                (window.clone(), window)
            }
        };
        let as_of = window.latest_tick()?.ok_or_else(|| Error::NoData {
            prefix: RAW_PREFIX.into(),
        })?;
        let delta = delta.trimmed(as_of, WINDOW_MINUTES)?;
        manifest.as_of = Some(as_of);
        manifest.prune(as_of.add_secs(-i64::from(WINDOW_MINUTES) * 60));
        Ok((window, delta, manifest, as_of))
    })
    .await?;
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
    let mode_run = if rebuild_reason.is_some() {
        TransformMode::Full
    } else {
        mode
    };
    let put_mode = match version {
        Some(v) => PutMode::Update(v),
        None => PutMode::Create,
    };
    let last = last_snapshots(&manifest);
    let state = State {
        delta,
        new_base,
        next_slot: loaded.next_slot,
    };
    let written = write_aggregates(store, state, manifest, put_mode, &summary, clock).await?;
    let writes = written.writes;
    if let Some(cache) = &options.cache {
        cache.put(Warm {
            version: written.version,
            manifest: written.manifest,
            window: window.clone(),
            delta: written.delta,
        });
    }
    let mut out = report(
        as_of,
        mode_run,
        rebuild_reason,
        io,
        new_objects,
        skipped,
        summary.series.len(),
        window.len(),
        summary.alerts.len(),
        writes,
    );
    out.compacted = compact;
    out.warm = was_warm;
    out.deferred = deferred;
    if !options.alerts.is_empty() {
        alert(store, options, &window, &summary, as_of, &last, &mut out).await;
    }
    Ok(out)
}

/// What arrived since the state was written.
struct Gathered {
    /// The new snapshots' samples.
    builder: WindowBuilder,
    /// Objects newly found unusable (recorded in the manifest too).
    skipped: Vec<Skipped>,
    /// Objects dated too far ahead of the clock: left for a later run, not recorded.
    ahead: Vec<Skipped>,
    /// Raw objects read to be taken in.
    new_objects: usize,
    /// New snapshots left unread at the deadline.
    deferred: usize,
}

/// Lists what `manifest` has not taken in (the window's partitions when standing on a state,
/// everything under `raw/` for a rebuild), reads and decodes it, and records it in `manifest`.
///
/// A key whose tick is further ahead of `clock` than it allows is neither read nor recorded:
/// it is reported in `ahead`, and taken in by the first run whose clock has reached it. Reading
/// stops at `deadline` once a first batch is in: what is unread is not recorded either, so the
/// next run reads it.
async fn gather_new(
    store: &dyn Store,
    has_prior: bool,
    manifest: &mut Manifest,
    io: &mut Io,
    clock: Clock,
    deadline: Option<tokio::time::Instant>,
) -> Result<Gathered> {
    let keys = match (has_prior, manifest.as_of) {
        (true, Some(as_of)) => list_window_partitions(store, as_of, io).await?,
        _ => list_all(store, io).await?,
    };

    // What is new: keys the manifest has not taken in or skipped.
    let mut skipped = Vec::new();
    let mut ahead = Vec::new();
    let mut to_read: Vec<(String, RawKey)> = Vec::new();
    for key in keys {
        let raw = parse_raw_key(&key);
        if manifest.has(&key, raw.as_ref()) {
            continue;
        }
        match raw {
            Some(raw) => match clock.check("tick", raw.tick) {
                Ok(()) => to_read.push((key, raw)),
                Err(why) => {
                    let reason =
                        format!("{why}: left in the store, taken in once the clock reaches it");
                    tracing::warn!(key, %reason, "skipping a snapshot from the future");
                    ahead.push(Skipped { key, reason });
                }
            },
            None => skipped.push(Skipped {
                key,
                reason: "not a snapshot key of the contract".into(),
            }),
        }
    }
    if !has_prior {
        // A rebuild reads only the partitions that can hold the window of the latest key.
        if let Some(latest) = to_read.iter().map(|(_, r)| r.tick).max() {
            let first_date = window_first_date(latest);
            to_read.retain(|(_, r)| r.tick.date() >= first_date);
        }
    }

    let mut builder = WindowBuilder::new();
    let to_take = to_read.len();
    let mut taken = 0;
    // A series gets a sample from each snapshot of its source: room for all of them at once,
    // not a doubling (and both copies) every time one fills.
    let mut per_source: BTreeMap<&SourceName, usize> = BTreeMap::new();
    for (_, raw) in &to_read {
        *per_source.entry(&raw.source).or_default() += 1;
    }
    for (source, objects) in per_source {
        builder.reserve_per_series(source, objects);
    }
    // Decoding is CPU work, done on the blocking pool a batch at a time, several batches at once
    // so every core decodes, while the next reads are in flight. A batch, not an object: a
    // hand-off to the pool (a thread wake-up) per 20 KB snapshot cost more than its decoding.
    let batches = stream::iter(to_read)
        .map(|(key, raw)| async move {
            let got = store.get(&key).await;
            (key, raw, got)
        })
        .buffered(READ_CONCURRENCY)
        .chunks(DECODE_BATCH);
    let mut batches = batches
        .map(|batch| tokio::task::spawn_blocking(move || decode_batch(batch)))
        .buffered(DECODE_BATCHES);
    loop {
        // The first batch is always awaited, so every run makes progress, however slow the
        // store: a run that read nothing would have nothing to write.
        let next = match deadline.filter(|_| taken > 0) {
            Some(deadline) => match tokio::time::timeout_at(deadline, batches.next()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => batches.next().await,
        };
        let Some(batch) = next else { break };
        let batch = batch.map_err(|e| Error::Engine(format!("decode task failed: {e}")))?;
        taken += batch.len();
        for (key, raw, got) in batch {
            let Some((len, decoded)) = got? else {
                continue; // deleted between list and get (a lifecycle rule): nothing to take in
            };
            io.read += 1;
            io.bytes_read += len;
            match decoded {
                Ok(samples) => {
                    samples.push_into(&mut builder)?;
                    manifest.add(&raw.source, raw.tick);
                }
                Err(reason) => {
                    tracing::warn!(key, %reason, "skipping unreadable object");
                    skipped.push(Skipped { key, reason });
                }
            }
        }
    }
    drop(batches);
    let deferred = to_take - taken;
    if deferred > 0 {
        tracing::warn!(
            deferred,
            taken,
            "deadline reached: the snapshots not read yet are left for the next run"
        );
    }
    for s in &skipped {
        manifest.skipped.insert(s.key.clone(), s.reason.clone());
    }
    Ok(Gathered {
        builder,
        skipped,
        ahead,
        new_objects: taken,
        deferred,
    })
}

/// A snapshot's decoding: its size and samples (or why it cannot be used), `None` if it was
/// deleted between list and get.
type Decoded = (String, RawKey, Result<Option<(u64, DecodeResult)>>);
type DecodeResult = std::result::Result<Samples, String>;

/// Decodes snapshots that were read, on one blocking thread.
fn decode_batch(objects: Vec<(String, RawKey, Result<Option<Object>>)>) -> Vec<Decoded> {
    objects
        .into_iter()
        .map(|(key, raw, got)| {
            let got = got.map(|o| o.map(|o| (o.body.len() as u64, decode_samples(&o.body))));
            (key, raw, got)
        })
        .collect()
}

/// A run's clock and how far ahead of it a tick may be.
#[derive(Debug, Clone, Copy)]
struct Clock {
    now: Tick,
    max_ahead_secs: u64,
}

impl Clock {
    fn of(options: &TransformOptions) -> Self {
        Clock {
            now: now(options),
            max_ahead_secs: options.max_clock_skew.as_secs(),
        }
    }

    /// Refuses `tick` (named `what` in the message) if it is too far ahead.
    fn check(self, what: &str, tick: Tick) -> std::result::Result<(), String> {
        tick.check_not_ahead(what, self.now, self.max_ahead_secs)
    }
}

/// The run's clock: the options' or the system's.
fn now(options: &TransformOptions) -> Tick {
    options
        .now
        .unwrap_or_else(|| Tick::floor(chrono::Utc::now(), 1))
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
    let now = now(options);
    match super::alerts::record(
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

#[allow(clippy::too_many_arguments)] // a plain record constructor
fn report(
    as_of: Tick,
    mode: TransformMode,
    rebuild_reason: Option<String>,
    io: Io,
    new_objects: usize,
    skipped: Vec<Skipped>,
    series: usize,
    samples: usize,
    alerts: usize,
    writes: usize,
) -> TransformReport {
    TransformReport {
        as_of,
        mode,
        rebuild_reason,
        listed: io.listed,
        lists: io.lists,
        read: io.read,
        bytes_read: io.bytes_read,
        new_objects,
        deferred: 0,
        skipped,
        series,
        samples,
        alerts,
        writes,
        compacted: false,
        attempts: 1,
        warm: false,
        elapsed: Duration::ZERO,
        alert_events: Vec::new(),
        alert_error: None,
    }
}

/// The state an incremental run stands on: the base (if the head names one) and the delta.
#[derive(Debug)]
struct Prior {
    base: Option<Window>,
    delta: Window,
    /// Whether `base` is the whole window, the delta merged in already (a warm state), rather
    /// than the stored base.
    whole: bool,
}

/// What [`load_state`] found.
struct Loaded {
    /// The state, for an incremental run that can use it.
    prior: Option<Prior>,
    /// Its manifest, or a new one.
    manifest: Manifest,
    /// The head's version, for the conditional write.
    version: Option<Version>,
    /// Why an incremental run rebuilds from raw, if it does.
    rebuild: Option<String>,
    /// The slot a new base goes to: the one the head does not name.
    next_slot: usize,
    /// Whether the state came from the cache, the head unchanged on the store.
    warm: bool,
}

impl Loaded {
    /// The base the head names, while the state stands on it and it is not read yet (a state
    /// from the cache holds the whole window already).
    fn unread_base(&self) -> Option<BaseRef> {
        match &self.prior {
            Some(Prior {
                base: None,
                whole: false,
                ..
            }) => self.manifest.base.clone(),
            _ => None,
        }
    }

    /// The state to rebuild from raw, its base found unusable for `reason`.
    fn unusable_base(self, reason: String) -> Loaded {
        tracing::warn!(key = WINDOW_KEY, %reason, "rebuilding the window from raw");
        Loaded {
            prior: None,
            next_slot: next_slot(Some(&self.manifest)),
            manifest: Manifest::new(),
            version: self.version,
            rebuild: Some(format!("window state unusable: {reason}")),
            warm: false,
        }
    }
}

/// Reads the state's head. Returns the state (for an incremental run; the base the head names
/// is left to the caller to read, see `Loaded::unread_base`), the head's version (for the
/// conditional write), and why a rebuild is needed if one is.
///
/// With `warm` (what this process wrote last), the head is read only if it changed since: when
/// it did not, the state is `warm`'s and nothing is transferred.
async fn load_state(
    store: &dyn Store,
    mode: TransformMode,
    io: &mut Io,
    warm: Option<Warm>,
    clock: Clock,
) -> Result<Loaded> {
    let warm = warm.filter(|_| mode == TransformMode::Incremental);
    let object = match store
        .get_opts(WINDOW_KEY, warm.as_ref().map(|w| &w.version))
        .await?
    {
        Fetch::Found(object) => Some(object),
        Fetch::Missing => None,
        Fetch::NotModified => {
            let warm = warm.ok_or_else(|| {
                Error::Engine(format!(
                    "{WINDOW_KEY}: not modified, but no version was given"
                ))
            })?;
            io.read += 1;
            return Ok(Loaded {
                next_slot: next_slot(Some(&warm.manifest)),
                prior: Some(Prior {
                    base: Some(warm.window),
                    delta: warm.delta,
                    whole: true,
                }),
                manifest: warm.manifest,
                version: Some(warm.version),
                rebuild: None,
                warm: true,
            });
        }
    };
    let Some(object) = object else {
        let reason = (mode == TransformMode::Incremental).then(|| "no window state yet".to_owned());
        if let Some(r) = &reason {
            tracing::info!("rebuilding the window from raw: {r}");
        }
        return Ok(Loaded {
            prior: None,
            manifest: Manifest::new(),
            version: None,
            rebuild: reason,
            next_slot: 0,
            warm: false,
        });
    };
    io.read += 1;
    io.bytes_read += object.body.len() as u64;
    let version = Some(object.version.clone());
    let decoded = blocking(move || Ok(state::decode_head(&object.body))).await?;
    // Without the state: a full run asked for, or (with `why`) an incremental one that cannot
    // use it. `head` is the manifest read, if any: the next base goes to the slot it does not
    // name.
    let rebuild = |why: Option<String>, head: Option<&Manifest>| {
        if let Some(reason) = &why {
            tracing::warn!(key = WINDOW_KEY, %reason, "rebuilding the window from raw");
        }
        Loaded {
            prior: None,
            manifest: Manifest::new(),
            version: version.clone(),
            rebuild: why.map(|reason| format!("window state unusable: {reason}")),
            next_slot: next_slot(head),
            warm: false,
        }
    };
    let unusable = |reason: String| (mode == TransformMode::Incremental).then_some(reason);
    let (delta, manifest) = match decoded {
        Ok(head) => head,
        Err(reason) => return Ok(rebuild(unusable(reason), None)),
    };
    if mode == TransformMode::Full {
        return Ok(rebuild(None, Some(&manifest)));
    }
    // A state that took in a snapshot from the future (written before ticks were bounded)
    // would hold every later run's window there: it is rebuilt from what the clock allows.
    if let Some(Err(why)) = manifest.as_of.map(|as_of| clock.check("as_of", as_of)) {
        return Ok(rebuild(Some(format!("its {why}")), Some(&manifest)));
    }
    Ok(Loaded {
        // The base is read by the caller, alongside what is new (`Loaded::unread_base`).
        prior: Some(Prior {
            base: None,
            delta,
            whole: false,
        }),
        next_slot: next_slot(Some(&manifest)),
        manifest,
        version,
        rebuild: None,
        warm: false,
    })
}

/// The base slot the head of `manifest` does not name (0 without one).
fn next_slot(manifest: Option<&Manifest>) -> usize {
    manifest
        .and_then(|m| m.base.as_ref())
        .map_or(0, |b| 1 - b.slot)
}

/// The first date partition that can hold a sample of the window ending at `as_of`.
fn window_first_date(as_of: Tick) -> String {
    as_of.add_secs(-i64::from(WINDOW_MINUTES) * 60).date()
}

/// Every key under `raw/`.
async fn list_all(store: &dyn Store, io: &mut Io) -> Result<Vec<String>> {
    let keys = store.list(RAW_PREFIX).await?;
    io.lists += 1;
    io.listed += keys.len();
    Ok(keys)
}

/// The keys of every source's date partitions from the window's first date on: what can hold
/// new or late snapshots of the window after `as_of`.
async fn list_window_partitions(
    store: &dyn Store,
    as_of: Tick,
    io: &mut Io,
) -> Result<Vec<String>> {
    let first_date = window_first_date(as_of);
    let sources = store.list_prefixes(RAW_PREFIX).await?;
    io.lists += 1;
    let mut partitions = BTreeSet::new();
    for source in &sources {
        if !source.starts_with("raw/source=") {
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

/// What a run writes of the window state.
struct State {
    /// The rows since the base, written in the head unless there is a new base.
    delta: Window,
    /// A new base (the whole window), encoded.
    new_base: Option<NewBase>,
    /// See [`Loaded::next_slot`].
    next_slot: usize,
}

/// A new base, encoded, with what the head records of it.
struct NewBase {
    bytes: Vec<u8>,
    generation: String,
    rows: usize,
}

/// Writes the summary (never over a newer one, see [`put_summary`]), then (on a compaction) a
/// new base, then the head (conditionally) with the summary's version in its manifest; returns
/// the number of writes.
///
/// A new base goes to the slot the head does not name: until the head names it, readers keep
/// using the other one. The write is unconditional on purpose: a base written by a run that
/// then lost the head's conditional write (or died) must not block the next compaction. Should
/// two transforms compact at once, the loser's base may replace the winner's; the head records
/// the generation of its base, so every reader sees the mismatch and the next transform
/// rebuilds from raw: slower, never wrong.
async fn write_aggregates(
    store: &dyn Store,
    state: State,
    mut manifest: Manifest,
    mode: PutMode,
    summary: &Summary,
    clock: Clock,
) -> Result<Written> {
    // The summary and a new base do not depend on each other: both are written at once (the
    // base's durable write took a full transform's last tenth when it waited on the summary's).
    // Only the head, written last, makes the new state current.
    let put_summary = async {
        let json = serde_json::to_vec(summary).map_err(|e| Error::Engine(e.to_string()))?;
        // The summary written with the state this run stands on: unchanged unless another
        // transform wrote since, which the condition catches.
        let expected = manifest.summary_version.clone().map(Version);
        put_summary(store, Bytes::from(json), summary.as_of, expected, clock).await
    };
    let put_base = async {
        let Some(base) = state.new_base else {
            return Ok(None);
        };
        let slot = state.next_slot;
        store.put(BASE_KEYS[slot], Bytes::from(base.bytes)).await?;
        Ok(Some(BaseRef {
            slot,
            generation: base.generation,
            rows: base.rows,
        }))
    };
    let (summary_version, base) = futures::try_join!(put_summary, put_base)?;
    manifest.summary_version = Some(summary_version.0);
    let mut writes = 1;
    let delta = match base {
        Some(base) => {
            writes += 1;
            manifest.base = Some(base);
            Window::empty()?
        }
        None => state.delta,
    };
    let (head, delta, manifest) = blocking(move || {
        let head = state::encode_head(&delta, &manifest)?;
        Ok((head, delta, manifest))
    })
    .await?;
    let version = put_conditionally(store, WINDOW_KEY, Bytes::from(head), mode).await?;
    Ok(Written {
        writes: writes + 1,
        version,
        manifest,
        delta,
    })
}

/// Writes `body` under `key` if the key still has the version `mode` expects (or is absent, for
/// [`PutMode::Create`]), failing with [`Error::Precondition`] when another writer changed it.
///
/// A refusal can also be this very write's: when the answer to a write that succeeded is lost,
/// the SDK retries it, and the retry finds the version it just made. So a refused write reads
/// the key back, and an object holding exactly `body` is taken as written: had another writer
/// made those bytes, the state would be the same.
async fn put_conditionally(
    store: &dyn Store,
    key: &str,
    body: Bytes,
    mode: PutMode,
) -> Result<Version> {
    match store.put_opts(key, body.clone(), mode).await {
        Ok(version) => Ok(version),
        Err(Error::Precondition { .. } | Error::AlreadyExists { .. }) => {
            match store.get(key).await? {
                Some(current) if current.body == body => {
                    tracing::info!(key, "a refused write had landed: its answer was lost");
                    Ok(current.version)
                }
                _ => Err(Error::Precondition { key: key.into() }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Writes the summary `body` (as of `as_of`), never replacing a newer one.
///
/// The write is conditional on `expected` (the version written with the state the run stands
/// on; absent: the key must be). When the summary changed since, it is read: a summary as of a
/// later tick (and not ahead of `clock`) wins, and the run is refused with
/// [`Error::Precondition`] to run again on the newer state; an older one, an unreadable one, or
/// one from the future is replaced, conditionally again. A summary holding exactly `body` is
/// this write's own, its answer lost.
async fn put_summary(
    store: &dyn Store,
    body: Bytes,
    as_of: Tick,
    expected: Option<Version>,
    clock: Clock,
) -> Result<Version> {
    let mut mode = expected.map_or(PutMode::Create, PutMode::Update);
    for _ in 0..MAX_ATTEMPTS {
        match put_conditionally(store, SUMMARY_KEY, body.clone(), mode).await {
            Err(Error::Precondition { .. }) => {}
            done => return done,
        }
        let Some(current) = store.get(SUMMARY_KEY).await? else {
            mode = PutMode::Create;
            continue;
        };
        if current.body == body {
            return Ok(current.version);
        }
        let stored_as_of = Summary::from_json(&current.body).ok().map(|(s, _)| s.as_of);
        if let Some(theirs) =
            stored_as_of.filter(|t| *t > as_of && clock.check("as_of", *t).is_ok())
        {
            tracing::info!(ours = %as_of, %theirs, "a newer summary is stored: running again");
            return Err(Error::Precondition {
                key: SUMMARY_KEY.into(),
            });
        }
        mode = PutMode::Update(current.version);
    }
    Err(Error::Precondition {
        key: SUMMARY_KEY.into(),
    })
}

/// What [`write_aggregates`] wrote of the state.
struct Written {
    /// Objects written.
    writes: usize,
    /// The head's new version.
    version: Version,
    /// The manifest written in the head.
    manifest: Manifest,
    /// The delta written in the head.
    delta: Window,
}

/// Runs CPU-bound engine work on a blocking thread: it must not stall the async executor, and
/// polars itself may block in place, which a runtime's worker thread does not allow.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Engine(format!("engine task failed: {e}")))?
}

/// Reads the summary the last transform wrote. A series, spread or alert that cannot be read is
/// left out and logged (see [`Summary::from_json`]).
pub async fn read_summary(store: &dyn Store) -> Result<Option<Summary>> {
    let Some(object) = store.get(SUMMARY_KEY).await? else {
        return Ok(None);
    };
    let (summary, degraded) = Summary::from_json(&object.body).map_err(|reason| Error::Decode {
        key: SUMMARY_KEY.into(),
        reason,
    })?;
    for part in &degraded {
        tracing::warn!(key = SUMMARY_KEY, %part, "left out of the summary read");
    }
    Ok(Some(summary))
}

/// Reads the window state the last transform wrote (see [`state::load_window`]).
pub async fn read_window(store: &dyn Store) -> Result<Option<Window>> {
    Ok(state::load_window(store, None)
        .await?
        .map(|s| Window::clone(&s.window)))
}
