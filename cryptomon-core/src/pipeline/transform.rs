//! The transform pipeline: read the window's snapshots, aggregate, write state and summary.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use serde::Deserialize;

use crate::engine::{Aggregator, WINDOW_MINUTES, Window, WindowBuilder};
use crate::error::{Error, Result};
use crate::keys::{RAW_PREFIX, SUMMARY_KEY, WINDOW_KEY, parse_raw_key};
use crate::model::{Quote, Snapshot, SourceName, Summary, Tick};
use crate::store::{Store, StoreExt};

/// Reads in flight at once: enough to hide S3 latency, few enough to stay polite.
const READ_CONCURRENCY: usize = 16;

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
    /// The latest tick in the store.
    pub as_of: Tick,
    /// Keys listed under `raw/`.
    pub listed: usize,
    /// Objects read.
    pub read: usize,
    /// Bytes read.
    pub bytes_read: u64,
    /// Objects skipped, with their keys.
    pub skipped: Vec<Skipped>,
    /// Series in the summary.
    pub series: usize,
    /// Samples in the window.
    pub samples: usize,
    /// Alerts raised.
    pub alerts: usize,
    /// Objects written.
    pub writes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The stored form of a snapshot without its `raw` bodies, which the transform never needs
/// (serde skips them unparsed).
#[derive(Deserialize)]
struct StoredSnapshot {
    schema: String,
    source: SourceName,
    tick: Tick,
    collected_at: DateTime<Utc>,
    quotes: Vec<Quote>,
}

/// Decodes and validates a stored snapshot. The error says what is wrong, for the report.
pub fn decode_snapshot(body: &[u8]) -> std::result::Result<Snapshot, String> {
    let s: StoredSnapshot = serde_json::from_slice(body).map_err(|e| {
        // A foreign JSON document is more useful reported by its schema than by serde's path.
        match serde_json::from_slice::<serde_json::Value>(body) {
            Ok(v) => match v.get("schema").and_then(|s| s.as_str()) {
                Some(schema) if schema != crate::model::SNAPSHOT_SCHEMA => {
                    format!("not a snapshot (schema {schema:?})")
                }
                _ => format!("malformed snapshot: {e}"),
            },
            Err(_) => format!("not valid JSON: {e}"),
        }
    })?;
    let snapshot = Snapshot::new(
        s.source,
        s.tick,
        s.collected_at,
        s.quotes,
        serde_json::Value::Null,
    );
    let snapshot = Snapshot {
        schema: s.schema,
        ..snapshot
    };
    snapshot.validate().map_err(|e| e.to_string())?;
    Ok(snapshot)
}

/// Reads the snapshots that can fall in the window, builds it, aggregates it and writes the
/// window state, then the summary. Unreadable objects are skipped and reported; they never stop
/// the transform. Each write is atomic, so a reader sees the previous aggregates or the new ones.
///
/// The writes per run are two whatever the number of series: candles and charts are views of
/// the window state, computed on request.
pub async fn transform(store: &dyn Store, aggregator: &dyn Aggregator) -> Result<TransformReport> {
    let started = Instant::now();
    let listed = store.list(RAW_PREFIX).await?;
    let mut skipped = Vec::new();
    let mut candidates = Vec::with_capacity(listed.len());
    for key in &listed {
        match parse_raw_key(key) {
            Some(raw) => candidates.push((key.as_str(), raw.tick)),
            None => skipped.push(Skipped {
                key: key.clone(),
                reason: "not a snapshot key of the contract".into(),
            }),
        }
    }
    let latest = candidates
        .iter()
        .map(|&(_, t)| t)
        .max()
        .ok_or_else(|| Error::NoData {
            prefix: RAW_PREFIX.into(),
        })?;
    // Date partitions prune the read: a snapshot of the window is in the partition of the first
    // day the window touches or later.
    let first_date = latest.add_secs(-i64::from(WINDOW_MINUTES) * 60).date();
    candidates.retain(|(_, t)| t.date() >= first_date);

    let mut builder = WindowBuilder::new();
    let mut read = 0;
    let mut bytes_read = 0u64;
    let mut reads = stream::iter(
        candidates
            .iter()
            .map(|&(key, _)| async move { (key, store.get(key).await) }),
    )
    .buffered(READ_CONCURRENCY);
    while let Some((key, got)) = reads.next().await {
        let Some(object) = got? else {
            // Deleted between list and get (a lifecycle rule): nothing to report.
            continue;
        };
        read += 1;
        bytes_read += object.body.len() as u64;
        match decode_snapshot(&object.body) {
            Ok(snapshot) => builder.push_snapshot(&snapshot),
            Err(reason) => {
                tracing::warn!(key, %reason, "skipping unreadable object");
                skipped.push(Skipped {
                    key: key.to_owned(),
                    reason,
                });
            }
        }
    }
    let aggregator = aggregator.clone_box();
    let (window, summary, parquet) = blocking(move || {
        let window = builder.build()?;
        let as_of = window.latest_tick()?.ok_or_else(|| Error::NoData {
            prefix: RAW_PREFIX.into(),
        })?;
        let window = window.trimmed(as_of, WINDOW_MINUTES)?;
        let summary = aggregator.aggregate(&window, as_of)?;
        let parquet = window.to_parquet()?;
        Ok((window, summary, parquet))
    })
    .await?;
    let as_of = summary.as_of;
    let writes = write_aggregates(store, parquet, &summary).await?;
    Ok(TransformReport {
        as_of,
        listed: listed.len(),
        read,
        bytes_read,
        skipped,
        series: summary.series.len(),
        samples: window.len(),
        alerts: summary.alerts.len(),
        writes,
        elapsed: started.elapsed(),
    })
}

/// Writes the window state, then the summary; returns the number of writes.
async fn write_aggregates(store: &dyn Store, parquet: Vec<u8>, summary: &Summary) -> Result<usize> {
    store.put(WINDOW_KEY, Bytes::from(parquet)).await?;
    let json = serde_json::to_vec(summary).map_err(|e| Error::Engine(e.to_string()))?;
    store.put(SUMMARY_KEY, Bytes::from(json)).await?;
    Ok(2)
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

/// Reads the summary the last transform wrote.
pub async fn read_summary(store: &dyn Store) -> Result<Option<Summary>> {
    let Some(object) = store.get(SUMMARY_KEY).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&object.body)
        .map(Some)
        .map_err(|e| Error::Decode {
            key: SUMMARY_KEY.into(),
            reason: e.to_string(),
        })
}

/// Reads the window state the last transform wrote.
pub async fn read_window(store: &dyn Store) -> Result<Option<Window>> {
    let Some(object) = store.get(WINDOW_KEY).await? else {
        return Ok(None);
    };
    blocking(move || Window::from_parquet(&object.body))
        .await
        .map(Some)
        .map_err(|e| Error::Decode {
            key: WINDOW_KEY.into(),
            reason: e.to_string(),
        })
}
