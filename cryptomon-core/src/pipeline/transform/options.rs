//! How a transform runs: its mode, its alert rules, its clock, its cache and its deadline.

use std::sync::Arc;
use std::time::Duration;

use super::super::cache::TransformCache;
use crate::alerting::AlertConfig;
use crate::model::Tick;

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
    /// The sinks events are queued for (see [`Notifier::sink`](crate::alerting::Notifier::sink)).
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
    /// and taken in by the next run ([`TransformReport::deferred`](super::TransformReport::deferred)). A first batch is always
    /// read, so every run makes progress. `None` reads them all.
    pub deadline: Option<tokio::time::Instant>,
    /// The keys the caller wrote since the last run (the collector's output): a run told of
    /// them reads them and lists nothing, until a reconciliation is due (see
    /// [`reconcile_every`](Self::reconcile_every)). `None` (the default) lists the window's
    /// partitions every run.
    pub handoff: Option<Vec<String>>,
    /// How many minutes of ticks a run with a [`handoff`](Self::handoff) trusts it before
    /// listing again to find what it was not told of ([`DEFAULT_RECONCILE_EVERY`]); zero lists
    /// at every run.
    pub reconcile_every: Duration,
}

/// How often a run told of its keys reconciles with a listing: hourly.
pub const DEFAULT_RECONCILE_EVERY: Duration = Duration::from_secs(3600);

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
            handoff: None,
            reconcile_every: DEFAULT_RECONCILE_EVERY,
        }
    }
}

impl TransformOptions {
    /// A full rebuild from raw, with the other options' defaults.
    pub fn full() -> Self {
        TransformOptions {
            mode: TransformMode::Full,
            ..TransformOptions::default()
        }
    }
}

/// A run's clock and how far ahead of it a tick may be.
#[derive(Debug, Clone, Copy)]
pub(super) struct Clock {
    /// Now, as the options or the system clock say.
    now: Tick,
    max_ahead_secs: u64,
}

impl Clock {
    pub(super) fn of(options: &TransformOptions) -> Self {
        Clock {
            now: now(options),
            max_ahead_secs: options.max_clock_skew.as_secs(),
        }
    }

    /// Now.
    pub(super) fn now(self) -> Tick {
        self.now
    }

    /// Refuses `tick` (named `what` in the message) if it is too far ahead.
    pub(super) fn check(self, what: &str, tick: Tick) -> std::result::Result<(), String> {
        tick.check_not_ahead(what, self.now, self.max_ahead_secs)
    }
}

/// The run's clock: the options' or the system's.
pub(super) fn now(options: &TransformOptions) -> Tick {
    options
        .now
        .unwrap_or_else(|| Tick::floor(chrono::Utc::now(), 1))
}
