//! The handlers' CloudWatch metrics: real handlers and events over a `MemoryStore`, each
//! emitted line checked against the Embedded Metric Format rules, then its values.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{event, failing, hanging, invoke, market, seeded_store};
use cryptomon_core::alerting::AlertConfig;
use cryptomon_core::pipeline::Alerting;
use cryptomon_core::{DynSource, StoreExt};
use cryptomon_lambda::budget::context_ending_in;
use cryptomon_lambda::collector::DEADLINE_MARGIN;
use cryptomon_lambda::metrics::{
    ALERTS_FIRED, CapturedMetrics, DATA_AGE, MAX_DIMENSIONS, MAX_METRICS, NAMESPACE,
    OBJECTS_SKIPPED, SOURCE_DIMENSION, SOURCES_FAILED, STAGE_DIMENSION,
};
use cryptomon_lambda::{Collector, Metrics, Transformer, TransformerOutput};
use cryptomon_mock::MemoryStore;
use lambda_runtime::LambdaEvent;
use serde_json::{Map, Value, json};

const STAGE: &str = "test";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Parses an emitted line and checks it against the EMF specification and the names this
/// crate publishes; returns the document.
fn validated(line: &str) -> Map<String, Value> {
    assert!(
        line.starts_with('{') && !line.contains('\n'),
        "one compact JSON object per line: {line:?}"
    );
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(line) else {
        panic!("not a JSON object: {line}");
    };
    let aws = root["_aws"].as_object().expect("_aws is an object");
    let mut aws_keys: Vec<&str> = aws.keys().map(String::as_str).collect();
    aws_keys.sort_unstable();
    assert_eq!(aws_keys, ["CloudWatchMetrics", "Timestamp"], "{line}");
    let timestamp = aws["Timestamp"].as_u64().expect("Timestamp is an integer");
    assert!(
        timestamp.abs_diff(now_ms()) < 60_000,
        "Timestamp {timestamp} is not within a minute of now"
    );
    let directives = aws["CloudWatchMetrics"].as_array().unwrap();
    assert!(!directives.is_empty(), "{line}");
    for directive in directives {
        let directive = directive.as_object().unwrap();
        let mut keys: Vec<&str> = directive.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["Dimensions", "Metrics", "Namespace"], "{line}");
        assert_eq!(directive["Namespace"], NAMESPACE);
        for set in directive["Dimensions"].as_array().unwrap() {
            let set = set.as_array().unwrap();
            assert!(set.len() <= MAX_DIMENSIONS, "{line}");
            assert_eq!(set[0], STAGE_DIMENSION, "every set has the stage: {line}");
            for key in set {
                let key = key.as_str().expect("dimension keys are strings");
                assert!(
                    [STAGE_DIMENSION, SOURCE_DIMENSION].contains(&key),
                    "unknown dimension {key}"
                );
                assert!(
                    root.get(key).is_some_and(Value::is_string),
                    "dimension {key} is not a string at the root: {line}"
                );
            }
        }
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(
            !metrics.is_empty() && metrics.len() <= MAX_METRICS,
            "{line}"
        );
        for metric in metrics {
            let name = metric["Name"].as_str().expect("a metric has a Name");
            assert!(
                [SOURCES_FAILED, DATA_AGE, OBJECTS_SKIPPED, ALERTS_FIRED].contains(&name),
                "unknown metric {name}"
            );
            let unit = metric["Unit"].as_str().expect("a metric has a Unit");
            assert!(["Count", "Seconds"].contains(&unit), "{unit}");
            assert!(
                root.get(name).is_some_and(Value::is_number),
                "metric {name} is not a number at the root: {line}"
            );
        }
    }
    assert_eq!(root[STAGE_DIMENSION], STAGE);
    root
}

/// Every document emitted so far, validated.
fn documents(captured: &CapturedMetrics) -> Vec<Map<String, Value>> {
    captured.take().iter().map(|l| validated(l)).collect()
}

/// The names a document declares, in order.
fn declared(doc: &Map<String, Value>) -> Vec<&str> {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap())
        .collect()
}

fn unit_of<'a>(doc: &'a Map<String, Value>, name: &str) -> &'a str {
    doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Name"] == name)
        .and_then(|m| m["Unit"].as_str())
        .unwrap()
}

fn dimension_sets(doc: &Map<String, Value>) -> &Value {
    &doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
}

fn collector(store: &Arc<MemoryStore>, sources: Vec<DynSource>) -> (Collector, CapturedMetrics) {
    let (metrics, captured) = Metrics::captured(STAGE);
    let collector = Collector::new(store.clone(), sources, 60).with_metrics(metrics);
    (collector, captured)
}

fn transformer(store: &Arc<MemoryStore>) -> (Transformer, CapturedMetrics) {
    let (metrics, captured) = Metrics::captured(STAGE);
    let transformer = Transformer::new(
        store.clone(),
        Some(("cryptomon-databucket-example".into(), "prod/".into())),
    )
    .with_metrics(metrics);
    (transformer, captured)
}

/// A healthy collection publishes no metric: each custom metric is billed for every hour it is
/// published in, and a stopped collector fails the execution, which Step Functions counts.
#[tokio::test]
async fn a_collector_whose_sources_all_succeed_publishes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let (c, captured) = collector(&store, vec![market("alpha"), market("beta")]);
    // A duplicate delivery collects nothing new, and publishes nothing either.
    for _ in 0..2 {
        let out = c
            .handle(invoke(event("scheduled-event.json")))
            .await
            .unwrap();
        assert_eq!(out.keys.len(), 2);
        assert!(captured.lines().is_empty(), "{:?}", captured.lines());
    }

    // A refused event reaches no source and emits nothing.
    c.handle(invoke(json!({"tick": "yesterday"})))
        .await
        .unwrap_err();
    assert!(captured.lines().is_empty(), "{:?}", captured.lines());
}

#[tokio::test]
async fn the_collector_reports_a_failed_source_by_name() {
    let store = Arc::new(MemoryStore::new());
    let (c, captured) = collector(&store, vec![market("alpha"), failing("beta", true)]);
    let out = c
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    assert_eq!((out.keys.len(), out.failed.len()), (1, 1));
    let docs = documents(&captured);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(declared(&docs[0]), [SOURCES_FAILED]);
    assert_eq!(unit_of(&docs[0], SOURCES_FAILED), "Count");
    assert_eq!(
        dimension_sets(&docs[0]),
        &json!([["Stage"], ["Stage", "Source"]])
    );
    assert_eq!(docs[0][SOURCES_FAILED], 1.0);
    assert_eq!(docs[0][SOURCE_DIMENSION], "beta");
}

#[tokio::test]
async fn a_collector_whose_every_source_failed_still_reports_before_its_error() {
    let store = Arc::new(MemoryStore::new());
    let (c, captured) = collector(&store, vec![failing("beta", true), failing("gamma", true)]);
    let err = c
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap_err();
    assert!(err.message().contains("every source failed"), "{err}");
    let docs = documents(&captured);
    assert_eq!(docs.len(), 2, "{docs:?}");
    let failed: Vec<(&Value, &Value)> = docs
        .iter()
        .map(|d| (&d[SOURCE_DIMENSION], &d[SOURCES_FAILED]))
        .collect();
    assert_eq!(
        failed,
        [
            (&json!("beta"), &json!(1.0)),
            (&json!("gamma"), &json!(1.0))
        ]
    );
}

#[tokio::test]
async fn a_source_hung_past_the_deadline_is_reported_as_failed() {
    let store = Arc::new(MemoryStore::new());
    let (c, captured) = collector(&store, vec![market("alpha"), hanging("stuck")]);
    let context = context_ending_in(DEADLINE_MARGIN + Duration::from_secs(1));
    let out = c
        .handle(LambdaEvent::new(
            json!({"tick": "2026-12-01T10:00:00Z"}),
            context,
        ))
        .await
        .unwrap();
    assert_eq!(out.failed.len(), 1);
    let docs = documents(&captured);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(
        (&docs[0][SOURCE_DIMENSION], &docs[0][SOURCES_FAILED]),
        (&json!("stuck"), &json!(1.0))
    );
}

#[tokio::test]
async fn the_transformer_reports_the_age_of_the_data() {
    let store = seeded_store().await;
    let (t, captured) = transformer(&store);
    let out = t
        .handle(invoke(event("stepfunctions-transform.json")))
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let TransformerOutput::Transformed { as_of, .. } = out else {
        panic!("expected a transform, got {out:?}");
    };
    let docs = documents(&captured);
    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = &docs[0];
    // Nothing skipped and no rules: the counts are not published.
    assert_eq!(declared(doc), [DATA_AGE]);
    assert_eq!(dimension_sets(doc), &json!([["Stage"]]));
    assert_eq!(unit_of(doc, DATA_AGE), "Seconds");
    let want_age = (now - as_of.to_datetime()).num_seconds() as f64;
    let age = doc[DATA_AGE].as_f64().unwrap();
    assert!(
        (age - want_age).abs() < 5.0,
        "DataAge {age} s, want {want_age} s"
    );
}

#[tokio::test]
async fn the_transformer_counts_a_corrupt_snapshot_as_skipped() {
    let store = seeded_store().await;
    store
        .put(
            "raw/source=alpha/date=2026-11-27/20261127T234900Z.json",
            Bytes::from_static(b"{\"truncated"),
        )
        .await
        .unwrap();
    let (t, captured) = transformer(&store);
    let out = t.handle(invoke(json!({}))).await.unwrap();
    assert!(
        matches!(out, TransformerOutput::Transformed { skipped: 1, .. }),
        "{out:?}"
    );
    let docs = documents(&captured);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(declared(&docs[0]), [DATA_AGE, OBJECTS_SKIPPED]);
    assert_eq!(unit_of(&docs[0], OBJECTS_SKIPPED), "Count");
    assert_eq!(docs[0][OBJECTS_SKIPPED], 1.0);

    // It is reported once: the next transform skips nothing new.
    t.handle(invoke(json!({}))).await.unwrap();
    let docs = documents(&captured);
    assert_eq!(declared(&docs[0]), [DATA_AGE]);
}

#[tokio::test]
async fn the_transformer_counts_fired_alerts() {
    let store = seeded_store().await;
    let rules: toml::Table = r#"
        [[rules]]
        name = "btc-high"
        kind = "threshold"
        pair = "BTC-USD"
        above = 80000.0
    "#
    .parse()
    .unwrap();
    let config = AlertConfig::from_toml(Some(&toml::Value::Table(rules))).unwrap();
    let (t, captured) = transformer(&store);
    let t = t.with_alerting(Alerting::new(config, Vec::new()));
    let out = t.handle(invoke(json!({}))).await.unwrap();
    // The rule holds for both sources' BTC-USD at the first evaluation.
    assert!(
        matches!(
            out,
            TransformerOutput::Transformed {
                alert_events: 2,
                ..
            }
        ),
        "{out:?}"
    );
    let docs = documents(&captured);
    assert_eq!(docs.len(), 1, "{docs:?}");
    assert_eq!(declared(&docs[0]), [DATA_AGE, ALERTS_FIRED]);
    assert_eq!(docs[0][ALERTS_FIRED], 2.0);

    // Still firing, nothing new: no count.
    t.handle(invoke(json!({}))).await.unwrap();
    let docs = documents(&captured);
    assert_eq!(declared(&docs[0]), [DATA_AGE]);
}

#[tokio::test]
async fn an_ignored_notification_emits_nothing() {
    let store = seeded_store().await;
    let (t, captured) = transformer(&store);
    let out = t
        .handle(invoke(event("s3-object-created-aggregates.json")))
        .await
        .unwrap();
    assert!(matches!(out, TransformerOutput::Ignored { .. }), "{out:?}");
    assert!(captured.lines().is_empty(), "{:?}", captured.lines());
}
