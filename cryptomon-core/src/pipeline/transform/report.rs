//! What a transform did: [`TransformReport`], and the objects it skipped.

use std::time::Duration;

use super::TransformMode;
use crate::alerting::AlertEvent;
use crate::model::Tick;
use crate::pipeline::HistoryDay;

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
    /// Whether the run listed the store (a rebuild, a run with no hand-off, or a
    /// reconciliation; see [`TransformOptions::handoff`](super::TransformOptions::handoff)).
    pub reconciled: bool,
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
    /// New snapshots left unread because [`TransformOptions::deadline`](super::TransformOptions::deadline) came first: the next
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
    /// Whether the run stood on the state its [`TransformCache`](crate::pipeline::TransformCache) held (the store's head
    /// unchanged since this process wrote it), reading neither head nor base.
    pub warm: bool,
    /// The days of history this run closed, and what became of each.
    pub history: Vec<HistoryDay>,
    /// Alert events this transform caused (fired and resolved), stored under `alerts/`.
    pub alert_events: Vec<AlertEvent>,
    /// Why alerting failed, if it did (the aggregates are written regardless).
    pub alert_error: Option<String>,
    /// Wall time.
    pub elapsed: Duration,
}

/// Counts what a run asked of the store.
#[derive(Debug, Default)]
pub(super) struct Io {
    pub(super) listed: usize,
    pub(super) lists: usize,
    pub(super) read: usize,
    pub(super) bytes_read: u64,
}

impl TransformReport {
    /// A run's report as of `as_of` with what it asked of the store; the rest is filled in as
    /// the run goes.
    pub(super) fn new(as_of: Tick, mode: TransformMode, io: Io) -> Self {
        TransformReport {
            as_of,
            mode,
            rebuild_reason: None,
            reconciled: false,
            listed: io.listed,
            lists: io.lists,
            read: io.read,
            bytes_read: io.bytes_read,
            new_objects: 0,
            deferred: 0,
            skipped: Vec::new(),
            series: 0,
            samples: 0,
            alerts: 0,
            writes: 0,
            compacted: false,
            attempts: 1,
            warm: false,
            history: Vec::new(),
            alert_events: Vec::new(),
            alert_error: None,
            elapsed: Duration::ZERO,
        }
    }
}
