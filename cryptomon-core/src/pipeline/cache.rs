//! What a transform keeps between runs in a process that lives across ticks (the server's
//! scheduler, a warm Lambda): the window state it last wrote, so that the next run, when no
//! other transform has written since, reads neither the head nor the base.
//!
//! Whether the store still holds that state is asked with a conditional read of the head (its
//! version), which transfers nothing when it does. A cold run reads the head and the 6.6 MB
//! base of a 300-series window and decodes both on every tick; a warm one skips that, and on S3
//! saves the base's transfer too.

use std::sync::Mutex;

use super::state::Manifest;
use crate::engine::Window;
use crate::store::Version;

/// A transform's memory across runs: pass the same one (in [`super::TransformOptions::cache`])
/// to every run of a long-lived process. Runs that share it must share a store.
///
/// It holds at most one state: the one the last successful run wrote. A run takes it out when
/// it starts and puts back what it wrote only once its writes succeeded, so a failed or raced
/// run leaves it empty and the next run reads the store as a cold one would.
#[derive(Debug, Default)]
pub struct TransformCache {
    state: Mutex<Option<CachedState>>,
}

/// The state a run wrote, as the next run needs it.
#[derive(Debug)]
pub(crate) struct CachedState {
    /// The head's version as written.
    pub(crate) version: Version,
    /// The manifest as written in the head.
    pub(crate) manifest: Manifest,
    /// The whole window of that run. It stands for the stored base and delta together: merging
    /// it with the delta (and new rows) gives exactly what merging the stored base would, since
    /// the delta's rows are in it already, each as the merge decided.
    pub(crate) window: Window,
    /// The delta as written in the head.
    pub(crate) delta: Window,
}

impl TransformCache {
    /// An empty cache: the first run reads the store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether it holds a state (the last run that used it succeeded).
    pub fn is_warm(&self) -> bool {
        self.lock().is_some()
    }

    pub(crate) fn take(&self) -> Option<CachedState> {
        self.lock().take()
    }

    pub(crate) fn put(&self, warm: CachedState) {
        *self.lock() = Some(warm);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<CachedState>> {
        // A panic while holding it cannot leave a half-written state: it is replaced whole.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
