//! [`StartupBackfill`]: the transformer's backfill of a fresh deployment, so its first summary
//! holds a day of the exchanges' one-minute candles instead of one minute of quotes.
//!
//! The state machine runs the collector first, so when the transformer first runs on a fresh
//! deployment the window already holds this tick's snapshots: "empty" here means the window
//! holds nothing older than the tick the transformer was handed
//! ([`window_is_empty_before`]). The check runs on a container's first invocation only, and
//! first looks for the transform's state ([`WINDOW_KEY`]): a store the transformer already
//! ran on costs one list request per cold start, besides the candle sources' HTTP clients the
//! bin builds at start-up.
//!
//! The backfill gets the invocation's time up to its deadline less [`FINISH_MARGIN`] and
//! [`REBUILD_MARGIN`]; each hour is stored as it is done, so a backfill cut there keeps what
//! it wrote, and `cryptomon backfill --store s3://…` finishes it. Then the transform runs as
//! usual: with no state it is a full rebuild, which takes the backfill objects in. A failure
//! is a warning and never fails the invocation.
//!
//! [`FINISH_MARGIN`]: crate::transformer::FINISH_MARGIN

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use cryptomon_core::config::BackfillConfig;
use cryptomon_core::keys::WINDOW_KEY;
use cryptomon_core::pipeline::{
    BackfillProgress, HourOutcome, HourReport, backfill, window_is_empty_before,
};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynCandleSource, Pair, SourceName, Store, Tick, exchange};
use serde_json::Value;

use crate::error::HandlerError;

/// Time kept, after the backfill and before the transform's own [`FINISH_MARGIN`], for the
/// rebuild to read the window (the backfill objects among it).
///
/// [`FINISH_MARGIN`]: crate::transformer::FINISH_MARGIN
pub const REBUILD_MARGIN: Duration = Duration::from_secs(10);

/// The candle sources and `[backfill]` table of a fresh deployment's first transform.
#[derive(Debug)]
pub struct StartupBackfill {
    sources: Vec<DynCandleSource>,
    config: BackfillConfig,
    /// Set by the container's first invocation: later ones never check again.
    checked: AtomicBool,
}

/// What the transformer backfills under the config `text` (`CRYPTOMON_CONFIG`), read the way
/// the collector reads it:
///
/// - `None` (no config): the built-in default, BTC, ETH and SOL on four exchanges, which is
///   what the collector collects then;
/// - `demo = true`: nothing (the synthetic market has no candles);
/// - a config whose `[backfill] on_empty` is false: nothing;
/// - any other config: its sources' candles, for its `[backfill] hours`.
///
/// A config that does not parse is an error, as it is for the collector. Sources that cannot be
/// built are a warning: the transformer runs without a backfill.
pub fn from_config(
    text: Option<&str>,
    secrets: &Secrets,
) -> Result<Option<(Vec<DynCandleSource>, BackfillConfig)>, HandlerError> {
    let Some(config) = crate::settings::exchange_config(text)? else {
        return Ok(None);
    };
    if !config.backfill.on_empty {
        return Ok(None);
    }
    match exchange::build_candle_sources(&config, secrets) {
        Ok(sources) if sources.is_empty() => Ok(None),
        Ok(sources) => Ok(Some((sources, config.backfill))),
        Err(error) => {
            tracing::warn!(%error, "cannot set up the candle sources: no backfill of an empty window");
            Ok(None)
        }
    }
}

impl StartupBackfill {
    /// A backfill of `config.hours` from `sources`, not yet checked.
    pub fn new(sources: Vec<DynCandleSource>, config: BackfillConfig) -> Self {
        StartupBackfill {
            sources,
            config,
            checked: AtomicBool::new(false),
        }
    }

    /// On the container's first call only: backfills `store` if the transformer never ran on
    /// it and its window holds nothing older than the tick of `payload` (the collector's output;
    /// the current minute for any other event), stopping at `until`. Logs what it did; never
    /// fails.
    pub(crate) async fn run_once(
        &self,
        store: &dyn Store,
        payload: &Value,
        until: Option<tokio::time::Instant>,
    ) {
        if self.checked.swap(true, Ordering::SeqCst) {
            return;
        }
        let tick = handed_tick(payload);
        match self.is_fresh(store, tick).await {
            Ok(true) => self.run(store, tick, until).await,
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot tell whether the window is empty: no backfill")
            }
        }
    }

    /// Whether the transform never ran on `store` and its window holds nothing before `tick`.
    async fn is_fresh(&self, store: &dyn Store, tick: Tick) -> cryptomon_core::Result<bool> {
        // A list, not a read: the state's head is megabytes.
        if !store.list(WINDOW_KEY).await?.is_empty() {
            return Ok(false);
        }
        window_is_empty_before(store, tick).await
    }

    async fn run(&self, store: &dyn Store, tick: Tick, until: Option<tokio::time::Instant>) {
        let hours = self.config.hours;
        let finish = format!("`cryptomon backfill --hours {hours} --config FILE --store {store}`");
        if until.is_some_and(|u| u <= tokio::time::Instant::now()) {
            tracing::warn!(
                "the window is empty but the invocation has no time left to backfill it; \
                 {finish} does"
            );
            return;
        }
        tracing::info!(
            hours,
            sources = self.sources.len(),
            "the window is empty: backfilling from the exchanges' candles"
        );
        let progress = Progress::default();
        let run = backfill(store, &self.sources, hours, tick, &progress);
        let outcome = match until {
            Some(until) => tokio::time::timeout_at(until, run).await.ok(),
            None => Some(run.await),
        };
        let written = progress.written.load(Ordering::Relaxed);
        match outcome {
            Some(Ok(report)) => {
                for u in &report.unfilled {
                    let pair = u.pair.as_ref().map_or("(all pairs)", Pair::as_str);
                    tracing::warn!(source = %u.source, pair, reason = %u.reason, hours = u.hours,
                        minutes = u.minutes, "not backfilled");
                }
                tracing::info!(
                    written = report.written(),
                    present = report.present(),
                    not_written = report.not_written(),
                    "backfill done"
                );
            }
            Some(Err(error)) => {
                tracing::warn!(%error, written, "backfill failed; the hours written are kept");
            }
            None => tracing::warn!(
                written,
                "backfill cut at the invocation's deadline; the hours written are kept and \
                 {finish} fetches the rest"
            ),
        }
    }
}

/// The tick the collector handed over (`{"tick": ..., "keys": [...]}`), or the current minute.
fn handed_tick(payload: &Value) -> Tick {
    payload["tick"]
        .as_str()
        .and_then(|t| Tick::parse(t).ok())
        .unwrap_or_else(|| Tick::floor(Utc::now(), 60))
}

/// Counts the hours written, for the log line of a backfill cut short.
#[derive(Default)]
struct Progress {
    written: AtomicUsize,
}

impl BackfillProgress for Progress {
    fn planned(&self, source: &SourceName, hours: usize) {
        tracing::info!(%source, hours, "hours to backfill");
    }

    fn done(&self, report: &HourReport) {
        if matches!(report.outcome, HourOutcome::Written { .. }) {
            self.written.fetch_add(1, Ordering::Relaxed);
        }
    }
}
