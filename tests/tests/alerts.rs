//! Alert rules through the pipeline: the golden data's two volume spikes fire once each and
//! reach a local webhook receiver signed; failing and hanging receivers are retried later
//! without touching the transform; a stale source fires on the (injected) clock and resolves.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cryptomon_core::alerting::{
    ALERT_STATE_KEY, AlertEvent, AlertState, DEFAULT_WEBHOOK_MAX_BODY_BYTES, DELIVERY_HEADER,
    DynNotifier, SIGNATURE_HEADER, Webhook, WebhookFormat, WebhookNotifier, sink_name,
};
use cryptomon_core::pipeline::{self, Alerting, TransformMode, TransformReport};
use cryptomon_core::{PolarsAggregator, Store, StoreExt, Tick};
use cryptomon_mock::MemoryStore;
use cryptomon_tests::alert_rules::{SPIKE, rules};
use cryptomon_tests::golden::{golden_dir, golden_objects};
use cryptomon_tests::queued_alerts::queue_events;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SECRET: &[u8] = b"test-webhook-secret";
/// The golden data's last tick: both volume spikes are there.
const LAST: &str = "20261127T120000Z";

/// A round's budget in these tests: far more than a healthy local receiver needs.
const BUDGET: Duration = Duration::from_secs(10);

fn webhook(server: &MockServer, timeout_secs: u64) -> DynNotifier {
    webhook_to(&format!("{}/hook", server.uri()), timeout_secs)
}

fn webhook_to(url: &str, timeout_secs: u64) -> DynNotifier {
    Arc::new(WebhookNotifier::with_secret(&hook(url, timeout_secs), Some(SECRET.to_vec())).unwrap())
}

fn hook(url: &str, timeout_secs: u64) -> Webhook {
    Webhook {
        url: url.to_owned(),
        secret_env: None,
        format: WebhookFormat::Json,
        timeout_secs,
        max_body_bytes: DEFAULT_WEBHOOK_MAX_BODY_BYTES,
    }
}

/// A local webhook receiver answering every POST with `status`.
async fn receiver_answering(status: u16) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(&server)
        .await;
    server
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
    let report = pipeline::transform(store, &PolarsAggregator::default(), &alerting.options(mode))
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
    assert_eq!(alerting.deliver(&store, BUDGET).await.unwrap().delivered, 0);

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

    let delivery = alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!((delivery.delivered, delivery.pending), (2, 0));
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "one POST for the batch");
    let request = &requests[0];
    verify_signature(request);
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
        assert_eq!(alerting.deliver(&store, BUDGET).await.unwrap().delivered, 0);
    }
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    assert_eq!(
        store.list("alerts/").await.unwrap().len(),
        2,
        "nothing stored twice"
    );
}

/// Checks a request's signature as a receiver would, with its own HMAC: `t` is recent and
/// `v1` is the HMAC-SHA256 of "<t>.<body>". Returns `t`.
fn verify_signature(request: &wiremock::Request) -> i64 {
    let header = request.headers[SIGNATURE_HEADER].to_str().unwrap();
    let (t, v1) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
        .unwrap_or_else(|| panic!("not t=...,v1=...: {header}"));
    let t: i64 = t.parse().unwrap();
    let age = chrono::Utc::now().timestamp() - t;
    assert!((0..300).contains(&age), "t is {age} s old");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&request.body);
    assert_eq!(
        v1,
        hex::encode(mac.finalize().into_bytes()),
        "v1 is the lowercase hex HMAC-SHA256 of \"<t>.<body>\""
    );
    t
}

#[tokio::test]
async fn a_failing_receiver_never_fails_the_transform_and_gets_the_same_delivery_again() {
    let receiver = MockServer::start().await;
    // A 500, then success.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
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

    let first = alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!(first.delivered, 0);
    assert_eq!(first.pending, 2, "both events stay queued");
    assert_eq!(first.failed.len(), 1);
    assert!(first.failed[0].1.contains("500"), "{:?}", first.failed);
    let state = alert_state(&store).await;
    assert!(state.pending.iter().all(|p| p.attempts == 1), "{state:?}");
    // The next round delivers the same events, under the same delivery id.
    let second = alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!((second.delivered, second.pending), (2, 0));
    let requests = receiver.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body, requests[1].body, "the same batch, resent");
    let id = |r: &wiremock::Request| r.headers[DELIVERY_HEADER].to_str().unwrap().to_owned();
    assert!(id(&requests[0]).starts_with("dlv_"), "{}", id(&requests[0]));
    assert_eq!(
        id(&requests[0]),
        id(&requests[1]),
        "a retry keeps its delivery id"
    );
    for r in &requests {
        verify_signature(r);
    }
    assert_eq!(alerting.deliver(&store, BUDGET).await.unwrap().delivered, 0);
}

#[tokio::test]
async fn a_hanging_receiver_times_out_and_stays_queued() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&receiver)
        .await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&receiver, 1)]);
    load(&store, |_| true).await;
    // The transform never waits on a receiver: delivery is a separate step.
    let report = transform(&store, &alerting, TransformMode::Full).await;
    assert_eq!(report.alert_events.len(), 2);
    assert!(pipeline::read_summary(&store).await.unwrap().is_some());

    let round = alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!((round.delivered, round.pending), (0, 2));
    assert!(
        round.failed[0].1.contains("no answer within"),
        "{:?}",
        round.failed
    );
}

/// A local server that accepts connections and never answers; it counts them.
struct HungServer {
    url: String,
    connections: Arc<AtomicUsize>,
}

impl HungServer {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            let mut open = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                open.push(socket);
            }
        });
        HungServer { url, connections }
    }
}

/// The log lines written on this thread while the guard lives (a `#[tokio::test]` runs on one).
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(lines.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (lines, tracing::subscriber::set_default(subscriber))
}

fn logged(lines: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&lines.lock().unwrap()).into_owned()
}

async fn alert_state(store: &dyn Store) -> AlertState {
    AlertState::decode(&store.get(ALERT_STATE_KEY).await.unwrap().unwrap().body).unwrap()
}

#[tokio::test]
async fn a_hung_webhook_never_cancels_or_repeats_the_others_and_is_given_up() {
    let healthy = receiver_answering(200).await;
    let hung = HungServer::start().await;
    let mut config = rules(SPIKE);
    config.delivery_attempts = 3;
    // The hung webhook's own timeout is past the round's budget: the budget cuts it.
    let alerting = Alerting::new(
        config,
        vec![webhook(&healthy, 5), webhook_to(&hung.url, 60)],
    );
    let hung_sink = sink_name(&hung.url);
    let store = MemoryStore::new();
    load(&store, |_| true).await;
    let report = transform(&store, &alerting, TransformMode::Full).await;
    assert_eq!(report.alert_events.len(), 2);

    let (lines, _guard) = capture_logs();
    let budget = Duration::from_secs(2);
    for round in 1..=3u32 {
        let started = Instant::now();
        let report = alerting.deliver(&store, budget).await.unwrap();
        assert!(
            started.elapsed() < budget + Duration::from_secs(2),
            "round {round} took {:?}",
            started.elapsed()
        );
        assert_eq!(
            report.delivered,
            if round == 1 { 2 } else { 0 },
            "{report:?}"
        );
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert_eq!(report.failed[0].0, hung_sink);
        assert!(
            report.failed[0].1.contains("no answer within"),
            "{report:?}"
        );
        let state = alert_state(&store).await;
        if round < 3 {
            assert_eq!(report.pending, 2, "only the hung sink's two");
            assert!(
                state
                    .pending
                    .iter()
                    .all(|p| p.sink == hung_sink && p.attempts == round),
                "round {round}: {:?}",
                state.pending
            );
        } else {
            assert_eq!((report.dropped, report.pending), (2, 0), "{report:?}");
            assert!(state.pending.is_empty());
        }
    }
    assert_eq!(
        hung.connections.load(Ordering::SeqCst),
        3,
        "one attempt a round"
    );
    let requests = healthy.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1, "the healthy webhook got each event once");
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["events"].as_array().unwrap().len(), 2);

    let logs = logged(&lines);
    let given_up: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("alert delivery given up"))
        .collect();
    assert_eq!(given_up.len(), 2, "{logs}");
    for (line, event) in given_up.iter().zip(&report.alert_events) {
        assert!(line.contains("WARN"), "{line}");
        assert!(line.contains(&event.key()), "{line}");
        assert!(line.contains(&hung_sink), "{line}");
        assert!(line.contains("attempts=3"), "{line}");
        assert!(line.contains("no answer within"), "{line}");
    }
    // Nothing is left to deliver anywhere.
    let after = alerting.deliver(&store, budget).await.unwrap();
    assert_eq!((after.delivered, after.pending), (0, 0));
    assert_eq!(healthy.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
    let elsewhere = receiver_answering(200).await;
    let redirecting = MockServer::start().await;
    let location = format!("{}/stolen", elsewhere.uri());
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", location.as_str()))
        .mount(&redirecting)
        .await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&redirecting, 5)]);
    load(&store, |_| true).await;
    transform(&store, &alerting, TransformMode::Full).await;

    let round = alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!((round.delivered, round.pending), (0, 2));
    let (sink, why) = &round.failed[0];
    assert_eq!(sink, &sink_name(&format!("{}/hook", redirecting.uri())));
    assert!(why.contains(sink.as_str()), "{why}");
    assert!(why.contains("307") && why.contains(&location), "{why}");
    assert!(why.contains("redirects are not followed"), "{why}");
    assert_eq!(redirecting.received_requests().await.unwrap().len(), 1);
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the body and its signature went nowhere else"
    );
}

#[tokio::test]
async fn many_events_are_split_to_fit_the_webhook_limit() {
    let receiver = receiver_answering(200).await;
    let notifier = webhook(&receiver, 5);
    let store = MemoryStore::new();
    // About 1.4 MB of events: more than one body of 1 MiB.
    let events = queue_events(&store, &notifier.sink(), 4000).await;
    let report = pipeline::deliver(&store, &[notifier], &Default::default())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.pending), (4000, 0), "{report:?}");

    let requests = receiver.received_requests().await.unwrap();
    assert!(requests.len() >= 2, "{} requests", requests.len());
    let mut keys = Vec::new();
    let mut ids = Vec::new();
    for r in &requests {
        assert!(
            r.body.len() <= DEFAULT_WEBHOOK_MAX_BODY_BYTES,
            "{} bytes",
            r.body.len()
        );
        verify_signature(r);
        ids.push(r.headers[DELIVERY_HEADER].to_str().unwrap().to_owned());
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        for e in body["events"].as_array().unwrap() {
            keys.push(e["key"].as_str().unwrap().to_owned());
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), requests.len(), "one delivery id per message");
    let mut want: Vec<String> = events.iter().map(AlertEvent::key).collect();
    want.sort();
    keys.sort();
    assert_eq!(keys, want, "every event exactly once");
}

#[tokio::test]
async fn an_event_too_large_for_its_sink_is_given_up_at_once() {
    let receiver = receiver_answering(200).await;
    let mut small = hook(&format!("{}/hook", receiver.uri()), 5);
    small.max_body_bytes = 200;
    let notifier: DynNotifier = Arc::new(WebhookNotifier::with_secret(&small, None).unwrap());
    let store = MemoryStore::new();
    let events = queue_events(&store, &notifier.sink(), 2).await;
    let (lines, _guard) = capture_logs();
    let report = pipeline::deliver(&store, std::slice::from_ref(&notifier), &Default::default())
        .await
        .unwrap();
    assert_eq!((report.dropped, report.pending), (2, 0), "{report:?}");
    assert!(receiver.received_requests().await.unwrap().is_empty());
    let logs = logged(&lines);
    for event in &events {
        let line = logs
            .lines()
            .find(|l| l.contains("alert delivery given up") && l.contains(&event.key()))
            .unwrap_or_else(|| panic!("no give-up line for {}: {logs}", event.key()));
        assert!(line.contains("over the sink's limit of 200"), "{line}");
        assert!(line.contains(&notifier.sink()), "{line}");
    }
    // Not retried: nothing is queued any more.
    assert!(alert_state(&store).await.pending.is_empty());
}

#[tokio::test]
async fn an_unreadable_alert_state_is_kept_aside_and_old_alerts_do_not_fire_again() {
    let receiver = receiver_answering(200).await;
    let store = MemoryStore::new();
    let alerting = Alerting::new(rules(SPIKE), vec![webhook(&receiver, 5)]);
    load(&store, |_| true).await;
    // Full runs: an incremental one with nothing new evaluates no rules.
    let at = |minute: i64| {
        let mut options = alerting.options(TransformMode::Full);
        options.now = Some(
            Tick::parse("2026-11-27T12:00:00Z")
                .unwrap()
                .add_secs(60 * minute),
        );
        options
    };
    let run = |options: pipeline::TransformOptions| {
        let store = &store;
        async move {
            pipeline::transform(store, &PolarsAggregator::default(), &options)
                .await
                .unwrap()
        }
    };
    assert_eq!(run(at(1)).await.alert_events.len(), 2);
    alerting.deliver(&store, BUDGET).await.unwrap();
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);

    for (minute, bad) in [
        (2, &br#"{"format": 1, "active": {"#[..]),
        (
            3,
            &br#"{"format": 99, "last_tick": null, "active": {}, "last_fired": {}, "pending": []}"#
                [..],
        ),
    ] {
        store
            .put(ALERT_STATE_KEY, Bytes::copy_from_slice(bad))
            .await
            .unwrap();
        let report = run(at(minute)).await;
        assert_eq!(report.alert_error, None);
        assert_eq!(report.alert_events, [], "the spikes that fired stay fired");
        let copy = format!("aggregates/alerts.state.corrupt-20261127T12{minute:02}00Z.json");
        let skipped = report
            .skipped
            .iter()
            .find(|s| s.key == ALERT_STATE_KEY)
            .unwrap_or_else(|| panic!("not reported: {:?}", report.skipped));
        assert!(skipped.reason.contains(&copy), "{}", skipped.reason);
        assert_eq!(
            store.get(&copy).await.unwrap().unwrap().body.as_ref(),
            bad,
            "kept byte for byte"
        );
        let state = alert_state(&store).await;
        assert_eq!(state.active.len(), 2, "rebuilt from the stored events");
        assert_eq!(alerting.deliver(&store, BUDGET).await.unwrap().delivered, 0);
        assert_eq!(
            receiver.received_requests().await.unwrap().len(),
            1,
            "nothing delivered again"
        );
    }
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
            pipeline::transform(store, &PolarsAggregator::default(), &options)
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

/// The transformer Lambda with a webhook that hangs past the invocation's delivery budget
/// beside a healthy one: the budget ends only the hung attempt, every attempt is recorded, so
/// the healthy receiver gets the events once however many invocations follow, and the hung
/// one's attempts add up.
#[tokio::test]
async fn the_transformer_lambda_never_resends_what_a_healthy_webhook_took() {
    use cryptomon_lambda::{Transformer, TransformerOutput};
    let healthy = receiver_answering(200).await;
    let hung = HungServer::start().await;
    let hung_sink = sink_name(&hung.url);
    let store = Arc::new(MemoryStore::new());
    load(store.as_ref(), |_| true).await;
    let alerting = Alerting::new(
        rules(SPIKE),
        vec![webhook(&healthy, 5), webhook_to(&hung.url, 60)],
    );
    let budget = Duration::from_secs(2);
    let transformer = Transformer::new(store.clone(), None)
        .with_alerting(alerting)
        .with_delivery_budget(budget);
    for invocation in 1..=3u32 {
        let started = Instant::now();
        let out = transformer
            .handle(lambda_http::LambdaEvent::new(
                serde_json::json!({}),
                lambda_http::Context::default(),
            ))
            .await
            .unwrap();
        assert!(
            matches!(out, TransformerOutput::Transformed { .. }),
            "{out:?}"
        );
        assert!(started.elapsed() < budget + Duration::from_secs(5));
        let state = alert_state(store.as_ref()).await;
        assert_eq!(state.pending.len(), 2, "{:?}", state.pending);
        assert!(
            state
                .pending
                .iter()
                .all(|p| p.sink == hung_sink && p.attempts == invocation),
            "invocation {invocation}: {:?}",
            state.pending
        );
    }
    assert_eq!(healthy.received_requests().await.unwrap().len(), 1);
    assert_eq!(hung.connections.load(Ordering::SeqCst), 3);
}

/// On Lambda, the delivery budget is also cut to the invocation's deadline: with 6 s left, a
/// hung webhook's attempt ends in time for the invocation to return, and is counted.
#[tokio::test]
async fn the_transformer_lambda_delivers_within_the_invocation_deadline() {
    use cryptomon_lambda::Transformer;
    let hung = HungServer::start().await;
    let store = Arc::new(MemoryStore::new());
    load(store.as_ref(), |_| true).await;
    let alerting = Alerting::new(rules(SPIKE), vec![webhook_to(&hung.url, 60)]);
    // The default budget (20 s) is longer than the invocation has left; reading may use all
    // but 2 s of it, so the transform takes everything in before delivery begins.
    let transformer = Transformer::new(store.clone(), None)
        .with_alerting(alerting)
        .with_finish_margin(Duration::from_secs(2));
    let left = Duration::from_secs(6);
    let context = cryptomon_lambda::budget::context_ending_in(left);
    let started = Instant::now();
    transformer
        .handle(lambda_http::LambdaEvent::new(
            serde_json::json!({}),
            context,
        ))
        .await
        .unwrap();
    assert!(
        started.elapsed() < left,
        "returned after {:?}",
        started.elapsed()
    );
    assert_eq!(hung.connections.load(Ordering::SeqCst), 1);
    let state = alert_state(store.as_ref()).await;
    assert!(
        state.pending.iter().all(|p| p.attempts == 1),
        "{:?}",
        state.pending
    );
}

/// A delivery round's write of the alert state that lands but whose answer is lost (the SDK's
/// retry then meets its own write as a 412): the round re-reads, applies its attempt again, and
/// the attempt is counted once.
#[tokio::test]
async fn a_lost_answer_to_the_state_write_counts_the_attempt_once() {
    use cryptomon_mock::{Fault, FaultyStore, Op};
    let receiver = receiver_answering(503).await;
    let notifier = webhook(&receiver, 5);
    let store = FaultyStore::new(MemoryStore::new());
    queue_events(&store, &notifier.sink(), 3).await;
    store.reset_counters();
    store.add_fault(Fault::nth_call(1).on(Op::Put).lose_response().as_conflict());
    let report = pipeline::deliver(&store, &[notifier], &Default::default())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.pending), (0, 3), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    let state = alert_state(&store).await;
    assert!(
        state
            .pending
            .iter()
            .all(|p| p.attempts == 1 && p.error.contains("503")),
        "{:?}",
        state.pending
    );
    assert_eq!(receiver.received_requests().await.unwrap().len(), 1);
    let counters = store.counters();
    assert_eq!(
        (counters.writes, counters.injected),
        (2, 1),
        "the lost answer, then the write again"
    );
}
