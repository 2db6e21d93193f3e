//! Sources from the config text: what the collector collects.

use cryptomon_core::DynSource;

use crate::error::HandlerError;

/// The sources of a config and the collection interval.
#[derive(Debug)]
pub struct SourceSetup {
    /// The sources to collect, each once per tick.
    pub sources: Vec<DynSource>,
    /// Seconds between ticks.
    pub interval_secs: u32,
}

/// The sources a config names: with `demo = true` the synthetic market (no network), else the
/// exchanges of its `[[sources]]`; `None` is the built-in default.
pub fn from_config(text: Option<&str>) -> Result<SourceSetup, HandlerError> {
    let _ = text;
    Err(HandlerError::non_retryable(
        "config: sources are not wired yet",
    ))
}
