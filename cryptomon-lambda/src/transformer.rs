//! The transformer: one invocation runs the transform over the store.
//!
//! It takes the collector's output (the state machine's next step), an S3 `ObjectCreated`
//! notification (acted on only when it names a snapshot under `raw/`, so the transform's own
//! writes under `aggregates/` never trigger it again), or `{}` for a manual run.
//!
//! The first two name the new snapshots' keys: the transform reads those and lists nothing,
//! reconciling with a listing once an hour of ticks (see `TransformOptions::handoff`). `{}`
//! names none, so that run lists the window's partitions.
//!
//! On a fresh deployment, the container's first invocation may first fill the empty window
//! from the exchanges' candles ([`Transformer::with_backfill`], see [`crate::startup_backfill`]):
//! it emits no metric of its own and never fails the invocation.
//!
//! Every invocation that transformed emits [`DATA_AGE`], and
//! [`OBJECTS_SKIPPED`] and [`ALERTS_FIRED`] when they are not zero (see [`crate::metrics`]); an
//! ignored event emits nothing.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::s3::S3Event;
use chrono::Utc;
use cryptomon_core::alerting::EventStatus;
use cryptomon_core::config::BackfillConfig;
use cryptomon_core::keys::{RAW_PREFIX, parse_raw_key};
use cryptomon_core::pipeline::Alerting;
use cryptomon_core::{Aggregator, DynCandleSource, DynStore, PolarsAggregator, Tick, pipeline};
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::budget;
use crate::collector::kind_of;
use crate::error::HandlerError;
use crate::metrics::{ALERTS_FIRED, DATA_AGE, Metric, Metrics, OBJECTS_SKIPPED, Unit};
use crate::startup_backfill::{REBUILD_MARGIN, StartupBackfill};

const HANDLER: &str = "transformer";
/// Time kept after alert delivery for the invocation to log and return before its deadline.
const RETURN_MARGIN: Duration = Duration::from_secs(2);
/// Time kept, after the last new snapshot is read, to build and aggregate the window, write the
/// aggregates and state, record alerts and return: snapshots not read by then are left for the
/// next invocation rather than lost with the whole run to a Lambda timeout.
pub const FINISH_MARGIN: Duration = Duration::from_secs(15);

/// What the transformer needs: the store, and where in the bucket it sits (to tell its own
/// objects in S3 notifications).
#[derive(Debug, Clone)]
pub struct Transformer {
    store: DynStore,
    /// The bucket name and key prefix notifications are checked against; `None` accepts none.
    bucket: Option<(String, String)>,
    aggregator: Arc<dyn Aggregator>,
    /// The alert rules evaluated after each transform, and where their events go.
    alerting: Alerting,
    /// How long an invocation waits on alert receivers after its transform is written.
    delivery_budget: Duration,
    /// The window state the last invocation wrote: a warm container's next invocation reads
    /// neither head nor base (6.6 MB at 300 series) unless another one wrote meanwhile.
    cache: Arc<pipeline::TransformCache>,
    /// How far ahead of the clock a snapshot's tick may be to be taken in.
    max_clock_skew: Duration,
    /// Where the per-invocation metrics go.
    metrics: Metrics,
    /// The time kept before the deadline for finishing ([`FINISH_MARGIN`]).
    finish_margin: Duration,
    /// How many minutes of ticks the hand-offs are trusted before listing again.
    reconcile_every: Duration,
    /// The backfill of an empty window at the container's first invocation, if any.
    backfill: Option<Arc<StartupBackfill>>,
}

/// The transformer's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum TransformerOutput {
    /// The transform ran and wrote new aggregates.
    Transformed {
        /// The latest tick in the store.
        as_of: Tick,
        /// Series in the summary.
        series: usize,
        /// Samples in the window.
        samples: usize,
        /// Alerts raised (the summary's).
        alerts: usize,
        /// Alert events of the configured rules (fired or resolved).
        alert_events: usize,
        /// Objects read.
        read: usize,
        /// Objects skipped as unreadable (their keys are in the log).
        skipped: usize,
        /// New snapshots left for the next invocation because this one's deadline came first.
        deferred: usize,
        /// Whether the store was listed: a reconciliation, a rebuild, or a run not told of its
        /// keys (`{}`).
        reconciled: bool,
        /// Objects written.
        writes: usize,
        /// Wall time in milliseconds.
        elapsed_ms: u64,
    },
    /// The event needed no transform (a notification about a non-snapshot object).
    Ignored {
        /// Why.
        reason: String,
    },
}

impl Transformer {
    /// A transformer over `store`, which lives in `bucket` under `prefix` (for checking S3
    /// notifications; `None` where the store is not a bucket, as in tests over memory).
    pub fn new(store: DynStore, bucket: Option<(String, String)>) -> Self {
        Transformer {
            store,
            bucket,
            aggregator: Arc::new(PolarsAggregator::default()),
            alerting: Alerting::default(),
            delivery_budget: Duration::from_secs(20),
            cache: Arc::new(pipeline::TransformCache::new()),
            max_clock_skew: pipeline::DEFAULT_MAX_CLOCK_SKEW,
            metrics: Metrics::stdout(),
            finish_margin: FINISH_MARGIN,
            reconcile_every: pipeline::DEFAULT_RECONCILE_EVERY,
            backfill: None,
        }
    }

    /// The same transformer, listing the store to reconcile once `every` of ticks has passed
    /// since the last listing (hourly by default).
    pub fn with_reconcile_every(mut self, every: Duration) -> Self {
        self.reconcile_every = every;
        self
    }

    /// The same transformer, first filling an empty window with `config.hours` of the
    /// `sources`' candles on a fresh deployment (see [`crate::startup_backfill`]; the bin's
    /// sources and table come from [`crate::startup_backfill::from_config`]).
    pub fn with_backfill(mut self, sources: Vec<DynCandleSource>, config: BackfillConfig) -> Self {
        self.backfill = Some(Arc::new(StartupBackfill::new(sources, config)));
        self
    }

    /// The same transformer, keeping `margin` instead of [`FINISH_MARGIN`] before the
    /// invocation's deadline for everything after reading (the template's timeout is checked
    /// against the default).
    pub fn with_finish_margin(mut self, margin: Duration) -> Self {
        self.finish_margin = margin;
        self
    }

    /// The same transformer, emitting its metrics to `metrics` (stdout, for the stage in
    /// `CRYPTOMON_STAGE`, by default).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The same transformer, skipping snapshots dated more than `skew` ahead of the clock (the
    /// config's `max_clock_skew_secs`).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// The same transformer, evaluating `alerting`'s rules and delivering their events.
    pub fn with_alerting(mut self, alerting: Alerting) -> Self {
        self.alerting = alerting;
        self
    }

    /// The same transformer, waiting at most `budget` on alert receivers per invocation
    /// (20 s by default).
    pub fn with_delivery_budget(mut self, budget: Duration) -> Self {
        self.delivery_budget = budget;
        self
    }

    /// The delivery budget of an invocation: the configured one, cut to the time the
    /// invocation has left less [`RETURN_MARGIN`] when the runtime gives a deadline.
    fn delivery_budget_left(&self, context: &lambda_runtime::Context) -> Duration {
        match budget::time_left(context) {
            Some(left) => self.delivery_budget.min(left.saturating_sub(RETURN_MARGIN)),
            None => self.delivery_budget,
        }
    }

    /// Handles one invocation.
    pub async fn handle(
        &self,
        event: LambdaEvent<Value>,
    ) -> Result<TransformerOutput, HandlerError> {
        let handoff = match self.read_event(&event.payload)? {
            Work::Skip(reason) => {
                tracing::info!(%reason, "nothing to transform");
                return Ok(TransformerOutput::Ignored { reason });
            }
            Work::Transform { handoff } => handoff,
        };
        self.backfill_once(&event).await;
        let options = pipeline::TransformOptions {
            cache: Some(self.cache.clone()),
            max_clock_skew: self.max_clock_skew,
            deadline: budget::stop_at(&event.context, self.finish_margin),
            handoff,
            reconcile_every: self.reconcile_every,
            ..self.alerting.options(pipeline::TransformMode::Incremental)
        };
        let report =
            pipeline::transform(self.store.as_ref(), self.aggregator.as_ref(), &options).await?;
        if let Some(error) = &report.alert_error {
            tracing::warn!(%error, "alert rules not evaluated");
        }
        // The aggregates are written; delivery failures stay queued for the next invocation
        // and never fail this one. Each attempt is bounded by the budget and recorded as it
        // ends, so a hung receiver costs only its own attempt.
        let budget = self.delivery_budget_left(&event.context);
        if let Err(error) = self.alerting.deliver(self.store.as_ref(), budget).await {
            tracing::warn!(%error, "alert delivery round failed");
        }
        for s in &report.skipped {
            tracing::warn!(key = %s.key, reason = %s.reason, "skipped object");
        }
        tracing::info!(as_of = %report.as_of, series = report.series, samples = report.samples,
            read = report.read, skipped = report.skipped.len(), deferred = report.deferred,
            warm = report.warm, reconciled = report.reconciled, lists = report.lists,
            elapsed_ms = report.elapsed.as_millis() as u64, "transformed");
        self.emit_metrics(&report);
        Ok(TransformerOutput::Transformed {
            as_of: report.as_of,
            series: report.series,
            samples: report.samples,
            alerts: report.alerts,
            alert_events: report.alert_events.len(),
            read: report.read,
            skipped: report.skipped.len(),
            deferred: report.deferred,
            reconciled: report.reconciled,
            writes: report.writes,
            elapsed_ms: report.elapsed.as_millis() as u64,
        })
    }

    /// The startup backfill, on the container's first invocation, until the time the
    /// transform needs.
    async fn backfill_once(&self, event: &LambdaEvent<Value>) {
        if let Some(backfill) = &self.backfill {
            let until = budget::stop_at(&event.context, self.finish_margin + REBUILD_MARGIN);
            backfill
                .run_once(self.store.as_ref(), &event.payload, until)
                .await;
        }
    }

    /// The metrics of a transform: the data's age, which the stale-data alarm reads, and the
    /// counts only when not zero, so a healthy month publishes none of them. Its duration is
    /// Lambda's own `Duration` metric, which is free.
    fn emit_metrics(&self, report: &pipeline::TransformReport) {
        let age = Utc::now() - report.as_of.to_datetime();
        let mut metrics = vec![Metric::new(
            DATA_AGE,
            age.num_milliseconds() as f64 / 1000.0,
            Unit::Seconds,
        )];
        if !report.skipped.is_empty() {
            metrics.push(Metric::new(
                OBJECTS_SKIPPED,
                report.skipped.len() as f64,
                Unit::Count,
            ));
        }
        let fired = report
            .alert_events
            .iter()
            .filter(|e| e.status == EventStatus::Fired)
            .count();
        if fired > 0 {
            metrics.push(Metric::new(ALERTS_FIRED, fired as f64, Unit::Count));
        }
        self.metrics.emit(&[], &metrics);
    }

    /// What an event asks for, with the keys it tells of: the collector's output names its
    /// tick's snapshots, an S3 notification the snapshots created, and `{}` none (so the run
    /// lists). An error when it is not an event this handler takes.
    fn read_event(&self, payload: &Value) -> Result<Work, HandlerError> {
        let Some(object) = payload.as_object() else {
            return Err(HandlerError::bad_event(
                HANDLER,
                format!("expected a JSON object, got {}", kind_of(payload)),
            ));
        };
        if object.contains_key("Records") {
            return self.check_notification(payload);
        }
        if object.is_empty() {
            return Ok(Work::Transform { handoff: None });
        }
        if let (true, Some(keys)) = (
            object.contains_key("tick"),
            object.get("keys").and_then(Value::as_array),
        ) {
            let keys = keys.iter().filter_map(Value::as_str).map(str::to_owned);
            return Ok(Work::Transform {
                handoff: Some(keys.collect()),
            });
        }
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        Err(HandlerError::bad_event(
            HANDLER,
            format!(
                "expected the collector's output, an S3 notification or {{}}, \
                 got an object with keys {keys:?}"
            ),
        ))
    }

    fn check_notification(&self, payload: &Value) -> Result<Work, HandlerError> {
        // Other services send `Records` too (SQS, SNS): name the sender rather than a field.
        let senders: Vec<&str> = payload["Records"]
            .as_array()
            .map(|records| {
                records
                    .iter()
                    .map(|r| {
                        r["eventSource"]
                            .as_str()
                            .or(r["EventSource"].as_str())
                            .unwrap_or("?")
                    })
                    .filter(|s| *s != "aws:s3")
                    .collect()
            })
            .unwrap_or_default();
        if let Some(sender) = senders.first() {
            return Err(HandlerError::bad_event(
                HANDLER,
                format!("expected an S3 notification, got records from {sender:?}"),
            ));
        }
        let event: S3Event = serde_json::from_value(payload.clone()).map_err(|e| {
            HandlerError::bad_event(HANDLER, format!("malformed S3 notification: {e}"))
        })?;
        let Some((bucket, prefix)) = &self.bucket else {
            return Err(HandlerError::non_retryable(
                "transformer: S3 notifications need the store's bucket (CRYPTOMON_BUCKET)",
            ));
        };
        let mut snapshots = Vec::new();
        for record in &event.records {
            let name = record.event_name.as_deref().unwrap_or("");
            if !name.starts_with("ObjectCreated:") {
                continue;
            }
            let event_bucket = record.s3.bucket.name.as_deref().unwrap_or("");
            if event_bucket != bucket {
                // Wiring another bucket's notifications here is a deployment mistake.
                return Err(HandlerError::non_retryable(format!(
                    "transformer: notification for bucket {event_bucket:?}, but the store is in \
                     {bucket:?}"
                )));
            }
            let key = decode_key(record.s3.object.key.as_deref().unwrap_or(""));
            if let Some(k) = key
                .strip_prefix(prefix.as_str())
                .filter(|k| k.starts_with(RAW_PREFIX) && parse_raw_key(k).is_some())
            {
                snapshots.push(k.to_owned());
            }
        }
        if snapshots.is_empty() {
            return Ok(Work::Skip(format!(
                "none of the {} notified objects is a new snapshot under {prefix}{RAW_PREFIX}",
                event.records.len()
            )));
        }
        Ok(Work::Transform {
            handoff: Some(snapshots),
        })
    }
}

/// What an event asks of the transformer.
#[derive(Debug, PartialEq)]
enum Work {
    /// Nothing, for this reason.
    Skip(String),
    /// A transform, told of these keys (`None`: of none, so it lists).
    Transform { handoff: Option<Vec<String>> },
}

/// Object keys in S3 notifications are URL-encoded, with `+` for spaces.
fn decode_key(encoded: &str) -> String {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification hands on the snapshots it says were created, and nothing else: not a
    /// removed one, not another prefix's object.
    #[test]
    fn a_notification_hands_on_the_snapshots_created() {
        // The recorded notification, its record renamed, re-keyed and repeated.
        let recorded: Value =
            serde_json::from_str(include_str!("../tests/events/s3-object-created.json")).unwrap();
        let record = |name: &str, key: &str| {
            let mut r = recorded["Records"][0].clone();
            r["eventName"] = name.into();
            r["s3"]["bucket"]["name"] = "b".into();
            r["s3"]["object"]["key"] = key.into();
            r
        };
        let created = "p/raw/source%3Dkraken/date%3D2026-11-27/20261127T234800Z.json";
        let payload = serde_json::json!({"Records": [
            record("ObjectCreated:Put", created),
            record("ObjectRemoved:Delete", "p/raw/source%3Dbeta/date%3D2026-11-27/20261127T234800Z.json"),
            record("ObjectCreated:Put", "p/aggregates/summary.json"),
        ]});
        let store: DynStore = Arc::new(cryptomon_mock::MemoryStore::new());
        let transformer = Transformer::new(store, Some(("b".into(), "p/".into())));
        assert_eq!(
            transformer.read_event(&payload).unwrap(),
            Work::Transform {
                handoff: Some(vec![
                    "raw/source=kraken/date=2026-11-27/20261127T234800Z.json".into()
                ])
            }
        );
    }

    #[test]
    fn notification_keys_are_url_decoded() {
        assert_eq!(
            decode_key("p/raw/source%3Dkraken/date%3D2026-11-27/20261127T234800Z.json"),
            "p/raw/source=kraken/date=2026-11-27/20261127T234800Z.json"
        );
        assert_eq!(decode_key("a+b%2"), "a b%2");
        assert_eq!(decode_key("%zz"), "%zz");
    }
}
