//! The collector: one invocation collects every configured source for one tick.
//!
//! It takes an EventBridge scheduled event (its `time` is the slot), a Step Functions input
//! `{"tick": "2026-11-27T23:48:00Z"}` (any RFC 3339 time, floored to the interval), or `{}`
//! (collect now, for a manual run). Collection is idempotent: a retried or duplicated invocation
//! for the same tick writes nothing new.
//!
//! Collection ends [`DEADLINE_MARGIN`] before the invocation's deadline, so a slow source is
//! reported as failed alongside the stored ones instead of Lambda ending the invocation with
//! nothing reported.
//!
//! An invocation emits [`SOURCES_FAILED`] for each failed source (see [`crate::metrics`]), also
//! when every source failed, and no metric when all were collected.

use std::time::Duration;

use aws_lambda_events::event::cloudwatch_events::CloudWatchEvent;
use chrono::{DateTime, Utc};
use cryptomon_core::{DynSource, DynStore, SourceName, Tick, pipeline};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget;
use crate::error::HandlerError;
use crate::metrics::{Metric, Metrics, SOURCE_DIMENSION, SOURCES_FAILED, Unit};

const HANDLER: &str = "collector";

/// The time kept, before the invocation's deadline, to return the per-source results.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// What the collector needs: where to write and what to collect.
#[derive(Debug, Clone)]
pub struct Collector {
    store: DynStore,
    sources: Vec<DynSource>,
    interval_secs: u32,
    /// How far ahead of the clock an event's tick may be.
    max_clock_skew: Duration,
    /// Where the per-invocation metrics go.
    metrics: Metrics,
}

/// The collector's answer, which the state machine hands to the transformer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CollectorOutput {
    /// The tick collected.
    pub tick: Tick,
    /// The snapshot keys of this tick: written now, or already there from an earlier attempt.
    pub keys: Vec<String>,
    /// How many of `keys` this invocation wrote.
    pub written: usize,
    /// Sources that failed, with why; the others were still collected.
    pub failed: Vec<SourceFailure>,
}

/// One source that failed to collect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFailure {
    /// The source.
    pub source: SourceName,
    /// The error.
    pub error: String,
    /// Whether a later attempt may succeed.
    pub retryable: bool,
}

impl Collector {
    /// A collector writing to `store` from `sources` at ticks of `interval_secs`.
    pub fn new(store: DynStore, sources: Vec<DynSource>, interval_secs: u32) -> Self {
        Collector {
            store,
            sources,
            interval_secs: interval_secs.max(1),
            max_clock_skew: pipeline::DEFAULT_MAX_CLOCK_SKEW,
            metrics: Metrics::stdout(),
        }
    }

    /// The same collector, emitting its metrics to `metrics` (stdout, for the stage in
    /// `CRYPTOMON_STAGE`, by default).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same collector, refusing events whose tick is more than `skew` ahead of the clock
    /// (the config's `max_clock_skew_secs`).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// Handles one invocation.
    ///
    /// Fails only when every source failed (retryable if any of them may succeed later): one
    /// source down must not cost the others' snapshots nor stop the transform, and each source
    /// already retries within the tick.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<CollectorOutput, HandlerError> {
        let tick = self.tick_of(&event.payload)?;
        if self.sources.is_empty() {
            return Err(HandlerError::non_retryable(
                "collector: the config names no source",
            ));
        }
        let store = self.store.as_ref();
        let results = match budget::stop_at(&event.context, DEADLINE_MARGIN) {
            Some(deadline) => {
                pipeline::collect_all_until(&self.sources, store, tick, deadline).await
            }
            None => pipeline::collect_all(&self.sources, store, tick).await,
        };
        let mut output = CollectorOutput {
            tick,
            keys: Vec::new(),
            written: 0,
            failed: Vec::new(),
        };
        for (source, result) in results {
            match result {
                Ok(report) => {
                    tracing::info!(%source, key = %report.key, written = report.written,
                        quotes = report.quotes, problems = report.problems.len(), "collected");
                    for problem in &report.problems {
                        tracing::warn!(%source, problem, "quote dropped");
                    }
                    output.written += usize::from(report.written);
                    output.keys.push(report.key);
                }
                Err(e) => {
                    tracing::error!(%source, error = %e, retryable = e.is_retryable(), "collection failed");
                    output.failed.push(SourceFailure {
                        source,
                        retryable: e.is_retryable(),
                        error: e.to_string(),
                    });
                }
            }
        }
        self.emit_metrics(&output);
        if output.keys.is_empty() {
            let message = format!(
                "collector: every source failed at {tick}: {}",
                output
                    .failed
                    .iter()
                    .map(|f| f.error.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            return Err(if output.failed.iter().any(|f| f.retryable) {
                HandlerError::retryable(message)
            } else {
                HandlerError::non_retryable(message)
            });
        }
        Ok(output)
    }

    /// [`SOURCES_FAILED`] once per failed source, so a healthy invocation publishes no metric
    /// at all (each custom metric is billed for every hour it is published in). How many were
    /// stored is in the invocation's output and log line; a collector that stops fails the
    /// state machine's execution, which Step Functions' own free metric counts.
    fn emit_metrics(&self, output: &CollectorOutput) {
        for failure in &output.failed {
            self.metrics.emit(
                &[(SOURCE_DIMENSION, failure.source.as_str())],
                &[Metric::new(SOURCES_FAILED, 1.0, Unit::Count)],
            );
        }
    }

    /// The tick an event asks for, refused if it is further ahead of the clock than the config
    /// allows: nothing is collected for it.
    fn tick_of(&self, payload: &Value) -> Result<Tick, HandlerError> {
        let tick = self.requested_tick(payload)?;
        tick.check_not_ahead(
            "tick",
            Tick::floor(Utc::now(), 1),
            self.max_clock_skew.as_secs(),
        )
        .map_err(|reason| HandlerError::bad_event(HANDLER, reason))?;
        Ok(tick)
    }

    /// The tick an event names.
    fn requested_tick(&self, payload: &Value) -> Result<Tick, HandlerError> {
        let Some(object) = payload.as_object() else {
            return Err(HandlerError::bad_event(
                HANDLER,
                format!("expected a JSON object, got {}", kind_of(payload)),
            ));
        };
        if let Some(tick) = object.get("tick") {
            let text = tick.as_str().ok_or_else(|| {
                HandlerError::bad_event(HANDLER, format!("\"tick\" must be a string, got {tick}"))
            })?;
            let at = DateTime::parse_from_rfc3339(text).map_err(|e| {
                HandlerError::bad_event(
                    HANDLER,
                    format!("\"tick\" {text:?} is not an RFC 3339 time: {e}"),
                )
            })?;
            return Ok(Tick::floor(at.with_timezone(&Utc), self.interval_secs));
        }
        if object.contains_key("detail-type") {
            let event: CloudWatchEvent = serde_json::from_value(payload.clone()).map_err(|e| {
                HandlerError::bad_event(HANDLER, format!("malformed scheduled event: {e}"))
            })?;
            return Ok(Tick::floor(event.time, self.interval_secs));
        }
        if object.is_empty() {
            return Ok(Tick::floor(Utc::now(), self.interval_secs));
        }
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        Err(HandlerError::bad_event(
            HANDLER,
            format!(
                "expected a scheduled event, {{\"tick\": \"<RFC 3339 time>\"}} or {{}}, \
                 got an object with keys {keys:?}"
            ),
        ))
    }
}

/// A JSON value's kind, for error messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
