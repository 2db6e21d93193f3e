//! [`Metrics`]: CloudWatch metrics written as Embedded Metric Format (EMF) documents.
//!
//! Each document is one compact JSON object on its own line of stdout, written directly rather
//! than through `tracing`: Lambda passes such a line to CloudWatch Logs unchanged, and
//! CloudWatch extracts the metrics it declares. A document has the root member `_aws` with
//! `Timestamp` (milliseconds since the epoch) and one `CloudWatchMetrics` directive
//! (`Namespace`, `Dimensions`, `Metrics` with `Name` and `Unit`); every metric's value and every
//! dimension's value (a string) is a root member of the same name, as
//! [the specification](https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
//! requires.
//!
//! Every metric is in the namespace [`NAMESPACE`] with the dimension [`STAGE_DIMENSION`], whose
//! value is read from [`STAGE_ENV`] when the [`Metrics`] is built. The names are constants so
//! that the alarms in `template.yaml` can be checked against them.
//!
//! Custom metrics are billed per metric and month, pro-rated by the hours in which they are
//! published: the metrics that only failures emit ([`SOURCES_FAILED`], [`OBJECTS_SKIPPED`],
//! [`ALERTS_FIRED`]) cost almost nothing in a healthy month.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// The namespace of every metric.
pub const NAMESPACE: &str = "cryptomon";
/// The dimension every metric has: the deployment's stage.
pub const STAGE_DIMENSION: &str = "Stage";
/// The environment variable holding the stage (`dev` or `prod` as the template sets it).
pub const STAGE_ENV: &str = "CRYPTOMON_STAGE";
/// The stage when [`STAGE_ENV`] is unset or blank.
pub const DEFAULT_STAGE: &str = "default";
/// The dimension naming the source of a [`SOURCES_FAILED`] data point.
pub const SOURCE_DIMENSION: &str = "Source";

/// Collector, only when a source failed: 1 per failed source, in one document per source.
/// Count, dimensions `[[Stage], [Stage, Source]]`, so its sum over `[Stage]` is the failures.
pub const SOURCES_FAILED: &str = "SourcesFailed";
/// Transformer, every transform: the clock less the summary's `as_of`, how old the newest data
/// is. Seconds, `[[Stage]]`.
pub const DATA_AGE: &str = "DataAge";
/// Transformer, only when > 0: objects newly found unreadable, and snapshots dated too far
/// ahead of the clock (at every run until it reaches them). Count, `[[Stage]]`.
pub const OBJECTS_SKIPPED: &str = "ObjectsSkipped";
/// Transformer, only when > 0: alert events of status `fired` the transform caused. Count,
/// `[[Stage]]`.
pub const ALERTS_FIRED: &str = "AlertsFired";

/// The most metrics one document may declare.
pub const MAX_METRICS: usize = 100;
/// The most dimension keys one dimension set may hold.
pub const MAX_DIMENSIONS: usize = 30;

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// `Count`.
    Count,
    /// `Milliseconds`.
    Milliseconds,
    /// `Seconds`.
    Seconds,
}

impl Unit {
    /// The unit's name in a metric definition.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One value of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
}

impl Metric {
    /// A value of `name` in `unit`.
    pub fn new(name: &'static str, value: f64, unit: Unit) -> Self {
        Metric { name, value, unit }
    }
}

/// Where a handler's metrics go: stdout on Lambda, or a buffer a test reads.
#[derive(Debug, Clone)]
pub struct Metrics {
    stage: String,
    sink: Sink,
}

#[derive(Debug, Clone)]
enum Sink {
    Stdout,
    Buffer(Arc<Mutex<Vec<String>>>),
}

/// The documents a [`Metrics::captured`] wrote, one JSON line each.
#[derive(Debug, Clone, Default)]
pub struct CapturedMetrics(Arc<Mutex<Vec<String>>>);

impl CapturedMetrics {
    /// The lines written so far, in order.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Removes and returns the lines written so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Metrics {
    /// Metrics written to stdout, for the stage in [`STAGE_ENV`].
    pub fn stdout() -> Self {
        Metrics {
            stage: stage_from(std::env::var(STAGE_ENV).ok()),
            sink: Sink::Stdout,
        }
    }

    /// Metrics for `stage` kept in memory, and the handle that reads them.
    pub fn captured(stage: &str) -> (Self, CapturedMetrics) {
        let captured = CapturedMetrics::default();
        let metrics = Metrics {
            stage: stage_from(Some(stage.to_owned())),
            sink: Sink::Buffer(captured.0.clone()),
        };
        (metrics, captured)
    }

    /// The value of the [`STAGE_DIMENSION`] dimension.
    pub fn stage(&self) -> &str {
        &self.stage
    }

    /// Writes `metrics` with the dimension set `[Stage]` and, when `dimensions` is not empty,
    /// also `[Stage, ...dimensions]`.
    ///
    /// Non-finite values are left out (JSON has no NaN); more than [`MAX_METRICS`] metrics are
    /// split over several documents, and dimensions past [`MAX_DIMENSIONS`] are dropped.
    pub fn emit(&self, dimensions: &[(&str, &str)], metrics: &[Metric]) {
        let finite: Vec<&Metric> = metrics.iter().filter(|m| m.value.is_finite()).collect();
        let dimensions = &dimensions[..dimensions.len().min(MAX_DIMENSIONS - 1)];
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        for chunk in finite.chunks(MAX_METRICS) {
            let document = self.document(timestamp, dimensions, chunk);
            self.write(&document.to_string());
        }
    }

    fn document(&self, timestamp: u64, dimensions: &[(&str, &str)], metrics: &[&Metric]) -> Value {
        let mut sets = vec![vec![STAGE_DIMENSION]];
        if !dimensions.is_empty() {
            sets.push(
                std::iter::once(STAGE_DIMENSION)
                    .chain(dimensions.iter().map(|(key, _)| *key))
                    .collect(),
            );
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{
                    "Namespace": NAMESPACE,
                    "Dimensions": sets,
                    "Metrics": definitions,
                }],
            }),
        );
        root.insert(STAGE_DIMENSION.into(), self.stage.clone().into());
        for (key, value) in dimensions {
            root.insert((*key).into(), (*value).into());
        }
        for m in metrics {
            root.insert(m.name.into(), m.value.into());
        }
        Value::Object(root)
    }

    fn write(&self, line: &str) {
        match &self.sink {
            // `println!` holds stdout's lock for the whole line, so no other output lands inside
            // it, and the test harness captures it; it panics only when stdout is unwritable,
            // when the function's logs are lost too.
            Sink::Stdout => println!("{line}"),
            Sink::Buffer(lines) => lines
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.to_owned()),
        }
    }
}

/// The stage for a value of [`STAGE_ENV`]: trimmed, or [`DEFAULT_STAGE`] when unset or blank
/// (a dimension value must hold a non-whitespace character).
pub fn stage_from(value: Option<String>) -> String {
    match value.as_deref().map(str::trim) {
        Some(stage) if !stage.is_empty() => stage.to_owned(),
        _ => DEFAULT_STAGE.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_defaults_when_unset_or_blank() {
        assert_eq!(stage_from(None), DEFAULT_STAGE);
        assert_eq!(stage_from(Some(" ".into())), DEFAULT_STAGE);
        assert_eq!(stage_from(Some("prod\n".into())), "prod");
    }

    #[test]
    fn a_document_declares_what_its_root_holds() {
        let (metrics, captured) = Metrics::captured("dev");
        metrics.emit(
            &[(SOURCE_DIMENSION, "kraken")],
            &[
                Metric::new(SOURCES_FAILED, 1.0, Unit::Count),
                Metric::new(DATA_AGE, f64::NAN, Unit::Seconds),
            ],
        );
        let lines = captured.lines();
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'), "compact: {}", lines[0]);
        let doc: Value = serde_json::from_str(&lines[0]).unwrap();
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert!(doc["_aws"]["Timestamp"].is_u64());
        assert_eq!(directive["Namespace"], NAMESPACE);
        assert_eq!(
            directive["Dimensions"],
            json!([["Stage"], ["Stage", "Source"]])
        );
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "SourcesFailed", "Unit": "Count"}])
        );
        assert_eq!(
            (&doc["Stage"], &doc["Source"]),
            (&json!("dev"), &json!("kraken"))
        );
        assert_eq!(doc["SourcesFailed"], 1.0);
        assert!(doc.get(DATA_AGE).is_none(), "a NaN is left out");
    }

    #[test]
    fn more_metrics_than_a_document_holds_are_split() {
        let (metrics, captured) = Metrics::captured("dev");
        let many: Vec<Metric> = (0..MAX_METRICS + 1)
            .map(|i| {
                let name: &'static str = Box::leak(format!("Metric{i}").into_boxed_str());
                Metric::new(name, 1.0, Unit::Count)
            })
            .collect();
        metrics.emit(&[], &many);
        let counts: Vec<usize> = captured
            .lines()
            .iter()
            .map(|l| {
                let doc: Value = serde_json::from_str(l).unwrap();
                doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(counts, [MAX_METRICS, 1]);
    }
}
