//! Alert rules through the pipeline: the golden data's two volume spikes fire once each and
//! reach a local webhook receiver signed; failing and hanging receivers are retried later
//! without touching the transform; a stale source fires on the (injected) clock and resolves.

use std::sync::Arc;

use bytes::Bytes;
use cryptomon_core::alerting::{
    AlertConfig, SIGNATURE_HEADER, Webhook, WebhookFormat, WebhookNotifier, sign,
};
use cryptomon_core::pipeline::{self, Alerting, DynNotifier, TransformMode, TransformReport};
use cryptomon_core::{PolarsAggregator, Store, StoreExt, Tick};
use cryptomon_mock::MemoryStore;
use cryptomon_tests::golden::{golden_dir, golden_objects};
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &[u8] = b"test-webhook-secret";
/// The golden data's last tick: both volume spikes are there.
const LAST: &str = "20261127T120000Z";

fn rules(text: &str) -> AlertConfig {
    let value: toml::Value = toml::from_str(text).unwrap();
    AlertConfig::from_toml(value.get("alerts")).unwrap()
}

const SPIKE: &str = r#"
[[alerts.rules]]
name = "volume-spike"
kind = "spike"
measure = "volume"
factor = 3.0
window_minutes = 60
cooldown_minutes = 30
"#;

fn webhook(server: &MockServer, timeout_secs: u64) -> DynNotifier {
    let hook = Webhook {
        url: format!("{}/hook", server.uri()),
        secret_env: None,
        format: WebhookFormat::Json,
        timeout_secs,
    };
    Arc::new(WebhookNotifier::with_secret(&hook, Some(SECRET.to_vec())).unwrap())
}

/// Writes the golden objects whose key matches `keep`.
async fn load(store: &dyn Store, keep: impl Fn(&str) -> bool) {
    for (key, body) in golden_objects() {
        if keep(&key) {
            store.put(&key, Bytes::from(body)).await.unwrap();
        }
    }
}

async fn transform(store: &dyn Store, alerting: &Alerting, mode: TransformMode) -> TransformReport {
    let report =
        pipeline::transform_opts(store, &PolarsAggregator::default(), &alerting.options(mode))
            .await
            .unwrap();
    assert_eq!(report.alert_error, None);
    report
}

/// The golden summary's alerts: (source, pair, value).
fn expected_spikes() -> Vec<(String, String, f64)> {
    let summary: Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join("expected/summary.json")).unwrap())
            .unwrap();
    summary["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["source"].as_str().unwrap().to_owned(),
                a["pair"].as_str().unwrap().to_owned(),
                a["value"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn golden_volume_spikes_fire_once_each_signed() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&receiver, 5)]);

    // Everything before the last tick: no spike yet.
    load(&store, |k| !k.contains(LAST)).await;
    let before = transform(&store, &alerting, TransformMode::Incremental).await;
    assert_eq!(before.alert_events, [], "no spike before 12:00");
    assert_eq!(alerting.deliver(&store).await.unwrap().delivered, 0);

    // The last tick arrives: two spikes, as the summary's alerts.
    load(&store, |k| k.contains(LAST)).await;
    let report = transform(&store, &alerting, TransformMode::Incremental).await;
    let mut fired: Vec<(String, String, f64)> = report
        .alert_events
        .iter()
        .map(|e| {
            (
                e.source.as_ref().unwrap().to_string(),
                e.pair.as_ref().unwrap().to_string(),
                e.value,
            )
        })
        .collect();
    fired.sort_by(|a, b| a.0.cmp(&b.0));
    let want = expected_spikes();
    assert_eq!(fired.len(), 2, "{:?}", report.alert_events);
    for ((s, p, v), (ws, wp, wv)) in fired.iter().zip(&want) {
        assert_eq!((s, p), (ws, wp));
        assert!((v - wv).abs() <= 1e-9 * wv.abs(), "{s} {p}: {v} vs {wv}");
    }
    // Stored create-only under alerts/date=2026-11-27/.
    let stored = store.list("alerts/date=2026-11-27/").await.unwrap();
    assert_eq!(stored.len(), 2, "{stored:?}");

    let delivery = alerting.deliver(&store).await.unwrap();
    assert_eq!((delivery.delivered, delivery.pending), (2, 0));
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one POST for the batch");
    let request = &requests[0];
    assert_eq!(
        request.headers[SIGNATURE_HEADER].to_str().unwrap(),
        sign(SECRET, &request.body),
        "the signature is the HMAC-SHA256 of the body as sent"
    );
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["schema"], "cryptomon.alert/v1");
        assert_eq!(e["rule"], "volume-spike");
        assert_eq!(e["status"], "fired");
        assert_eq!(e["measure"], "volume");
        assert_eq!(e["tick"], "2026-11-27T12:00:00Z");
        assert!(e["ratio"].as_f64().unwrap() > 3.0);
        assert!(stored.contains(&e["key"].as_str().unwrap().to_owned()));
    }

    // Re-running the same tick, incrementally or from scratch, fires and sends nothing again.
    for mode in [TransformMode::Incremental, TransformMode::Full] {
        let again = transform(&store, &alerting, mode).await;
        assert_eq!(again.alert_events, [], "{mode:?}");
        assert_eq!(alerting.deliver(&store).await.unwrap().delivered, 0);
    }
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        store.list("alerts/").await.unwrap().len(),
        2,
        "nothing stored twice"
    );
}

#[tokio::test]
async fn a_failing_receiver_never_fails_the_transform_and_is_retried() {
    let receiver = MockServer::start().await;
    // Two 500s (both attempts of the first round), then success.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .with_priority(2)
        .mount(&receiver)
        .await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&receiver, 5)]);
    load(&store, |_| true).await;
    let report = transform(&store, &alerting, TransformMode::Full).await;
    assert_eq!(report.alert_events.len(), 2);
    // Summary, window base and head.
    assert_eq!(report.writes, 3, "the aggregates are written regardless");

    let first = alerting.deliver(&store).await.unwrap();
    assert_eq!(first.delivered, 0);
    assert_eq!(first.pending, 2, "both events stay queued");
    assert_eq!(first.failed.len(), 1);
    assert!(first.failed[0].1.contains("500"), "{:?}", first.failed);
    // The next round (after the next transform) delivers the same events.
    let second = alerting.deliver(&store).await.unwrap();
    assert_eq!((second.delivered, second.pending), (2, 0));
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].body, requests[2].body, "the same batch, resent");
    assert_eq!(alerting.deliver(&store).await.unwrap().delivered, 0);
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_stays_queued() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(std::time::Duration::from_secs(30)))
        .mount(&receiver)
        .await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&receiver, 1)]);
    load(&store, |_| true).await;
    // The transform never waits on a receiver: delivery is a separate step.
    let report = transform(&store, &alerting, TransformMode::Full).await;
    assert_eq!(report.alert_events.len(), 2);
    assert!(pipeline::read_summary(&store).await.unwrap().is_some());

    let round = alerting.deliver(&store).await.unwrap();
    assert_eq!((round.delivered, round.pending), (0, 2));
    assert!(
        round.failed[0].1.contains("timed out") || round.failed[0].1.contains("timeout"),
        "{:?}",
        round.failed
    );
}

#[tokio::test]
async fn a_stale_source_fires_on_the_clock_and_resolves_when_it_returns() {
    let store = MemoryStore::new();
    let alerting = Alerting::new(
        rules(
            r#"
[[alerts.rules]]
name = "quiet"
kind = "stale"
source = "kraken"
minutes = 10
"#,
        ),
        vec![],
    );
    // Everything but kraken's last 15 minutes.
    let cut = "20261127T114500Z";
    load(&store, |k| {
        !(k.contains("source=kraken") && k.rsplit('/').next().unwrap() >= cut)
    })
    .await;
    let as_of = Tick::parse("2026-11-27T12:00:00Z").unwrap();
    let at = |minutes: i64| {
        let mut options = alerting.options(TransformMode::Incremental);
        options.now = Some(as_of.add_secs(60 * minutes));
        options
    };
    let run = |options: pipeline::TransformOptions| {
        let store = &store;
        async move {
            pipeline::transform_opts(store, &PolarsAggregator::default(), &options)
                .await
                .unwrap()
        }
    };
    // Kraken's last snapshot is 11:44: 16 minutes before 12:00, past the limit.
    let report = run(at(0)).await;
    assert_eq!(report.alert_events.len(), 1, "{:?}", report.alert_events);
    let e = &report.alert_events[0];
    assert_eq!(
        (e.rule.as_str(), e.source.as_ref().unwrap().as_str()),
        ("quiet", "kraken")
    );
    assert_eq!(e.tick, as_of);
    // The clock moves on with no new data: no second event.
    assert_eq!(run(at(5)).await.alert_events, []);
    // Kraken comes back: resolved, dated by the clock.
    load(&store, |k| {
        k.contains("source=kraken") && k.rsplit('/').next().unwrap() >= cut
    })
    .await;
    let report = run(at(6)).await;
    assert_eq!(report.alert_events.len(), 1);
    assert_eq!(
        report.alert_events[0].status,
        cryptomon_core::alerting::EventStatus::Resolved
    );
    assert_eq!(report.alert_events[0].tick, as_of.add_secs(360));
}
