//! The pipelines every adapter runs: `collect`, `transform` and `backfill`.

mod alert_delivery;
mod backfill;
mod cache;
mod candle_range;
mod collect;
mod decode;
mod history;
mod history_read;
mod read;
mod state;
mod transform;
mod window_empty;

pub use alert_delivery::{
    Alerting, DEFAULT_DELIVERY_BUDGET, DeliveryOptions, DeliveryReport, deliver, list_event_keys,
    read_event, read_events,
};
pub use backfill::{
    BackfillProgress, BackfillReport, HourOutcome, HourReport, Unfilled, VOLUME_MINUTES, backfill,
    backfill_on_empty,
};
pub use cache::TransformCache;
pub use candle_range::{MAX_CANDLES, range_candles};
pub use collect::{
    CollectReport, SOURCE_TIMEOUT, collect, collect_all, collect_all_until, collect_all_within,
    fetch_deadline,
};
pub use history::{HistoryDay, HistoryOutcome, HistoryRepair, repair_history};
pub use history_read::{
    DEFAULT_HISTORY_CACHE_BYTES, HistoryCache, HistoryRead, read_history, stored_days,
};
pub use read::{read_summary, read_window};
pub use state::{BASE_KEYS, WindowState, load_window};
pub use transform::{
    DEFAULT_MAX_CLOCK_SKEW, DEFAULT_RECONCILE_EVERY, RECONCILE_OVERLAP, Skipped, TransformMode,
    TransformOptions, TransformReport, transform,
};
pub use window_empty::{window_is_empty, window_is_empty_before};

use crate::error::{Error, Result};

/// Runs CPU-bound engine work on a blocking thread: it must not stall the async executor, and
/// polars itself may block in place, which a runtime's worker thread does not allow.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Engine(format!("engine task failed: {e}")))?
}

/// Entry points for the fuzz targets in `fuzz/`: the parsers the pipelines run on stored bytes.
/// Not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    /// The transform's snapshot decoder on `body`: the number of samples, or why it refused.
    pub fn decode_snapshot(body: &[u8]) -> Result<usize, String> {
        super::decode::decode_samples(body).map(|s| s.len())
    }

    /// The transform's reading of a stored window state (the head: a Parquet window and its
    /// manifest): its rows, or why it would be rebuilt instead.
    pub fn decode_window_state(bytes: &[u8]) -> Result<usize, String> {
        super::state::decode_head(bytes).map(|(window, _)| window.len())
    }

    /// A window state read back after writing it again: its rows, or why it could not be.
    pub fn reencode_window_state(bytes: &[u8]) -> Result<usize, String> {
        let (window, manifest) = super::state::decode_head(bytes)?;
        let written = super::state::encode_head(&window, &manifest).map_err(|e| e.to_string())?;
        super::state::decode_head(&written).map(|(window, _)| window.len())
    }
}
