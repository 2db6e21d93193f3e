//! The Lambda handlers on a real S3 wire: real event JSON from `cryptomon-lambda/tests/events`,
//! an `S3Store` on moto (`CRYPTOMON_TEST_S3_ENDPOINT`, see `cryptomon_tests::moto`), and the
//! S3 requests each tick costs, counted for the cost estimate in docs/deploy.md.

use std::path::Path;
use std::sync::Arc;

use cryptomon_core::alerting::{AlertConfig, DynNotifier};
use cryptomon_core::pipeline::Alerting;
use cryptomon_core::{DynSource, SourceName, Store, Tick, pipeline};
use cryptomon_lambda::{Collector, SnsNotifier, Transformer, TransformerOutput};
use cryptomon_mock::{FaultyStore, SyntheticSource};
use cryptomon_server::{AppState, app};
use cryptomon_tests::fake_s3::FakeS3;
use cryptomon_tests::queued_alerts::queue_events;
use cryptomon_tests::{moto, moto_endpoint};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::{Value, json};

fn event(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cryptomon-lambda/tests/events")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn invoke(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// The S3 requests made through `store` since the last call: GETs, PUTs and `ListObjectsV2`s
/// (one per listing: every listing here is under the 1,000 keys of a page).
fn requests<S: Store>(store: &FaultyStore<S>) -> [usize; 3] {
    let c = store.counters();
    store.reset_counters();
    [c.reads, c.writes, c.lists].map(|n| n as usize)
}

fn sources(names: &[&str]) -> Vec<DynSource> {
    names
        .iter()
        .map(|n| {
            let market = SyntheticSource::new(SourceName::new(n).unwrap(), 3, 7);
            Arc::new(market.with_null_probability(0.0)) as DynSource
        })
        .collect()
}

/// The S3 notification of `key` in `bucket`, from the real event file.
fn notification(bucket: &str, key: &str) -> Value {
    let mut e = event("s3-object-created.json");
    e["Records"][0]["s3"]["bucket"]["name"] = json!(bucket);
    e["Records"][0]["s3"]["bucket"]["arn"] = json!(format!("arn:aws:s3:::{bucket}"));
    e["Records"][0]["s3"]["object"]["key"] = json!(key.replace('=', "%3D"));
    e
}

/// The state machine's tick on moto, request by request: the collector writes a snapshot per
/// source and hands their keys on; the transformer reads exactly those and its state's head, and
/// lists nothing except when it reconciles (here every 10 minutes of ticks, to see several).
/// A tick whose transform never ran (a missed hand-off) is found by the next reconciliation.
#[tokio::test]
async fn lambda_collector_then_transformer_on_moto() {
    let endpoint = moto_endpoint!("lambda_collector_then_transformer_on_moto");
    let store = Arc::new(FaultyStore::new(
        moto::fresh_store(&endpoint, "lambda-e2e", "prod").await,
    ));
    let s3 = store.inner();
    let bucket = s3.location().bucket().to_owned();
    // Four sources, as the default config has.
    let names = ["binance", "coinbase", "coingecko", "kraken"];
    let sources_n = names.len();
    let collector = Collector::new(store.clone(), sources(&names), 60);
    let transformer = Transformer::new(store.clone(), Some((bucket.clone(), "prod/".into())))
        .with_reconcile_every(std::time::Duration::from_secs(600));

    let ticks = 30;
    let missed = 15;
    let scheduled = event("scheduled-event.json");
    let t0 = Tick::parse("2026-11-27T23:00:00Z").unwrap();
    let mut last_output = None;
    let mut reconciled_at = Vec::new();
    for m in 0..ticks {
        let mut e = scheduled.clone();
        e["time"] = json!(t0.add_secs(m * 60).to_string());
        let out = collector.handle(invoke(e)).await.unwrap();
        assert_eq!(out.written, sources_n);
        let [gets, puts, lists] = requests(&store);
        assert_eq!(
            (gets, puts, lists),
            (0, sources_n, 0),
            "collector requests per tick"
        );
        if m == missed {
            continue; // the transform of this tick failed: its keys were handed to no one
        }
        let result = transformer
            .handle(invoke(serde_json::to_value(&out).unwrap()))
            .await
            .unwrap();
        let [gets, puts, lists] = requests(&store);
        eprintln!("tick {m}: transformer GET {gets} PUT {puts} LIST {lists}");
        let TransformerOutput::Transformed {
            writes, reconciled, ..
        } = &result
        else {
            panic!("tick {m}: expected a transform, got {result:?}");
        };
        if m > 0 && !reconciled {
            // The steady state, in a warm container: the head's version checked (a conditional
            // GET that transfers nothing: the container holds the state it wrote) and the
            // handed-off snapshots read; the head and the summary written, and a new base when
            // the delta has outgrown 1/24 of the window. Nothing listed.
            assert!(*writes == 2 || *writes == 3, "tick {m}: {writes} writes");
            assert_eq!(
                (gets, puts, lists),
                (sources_n + 1, *writes, 0),
                "transformer requests at tick {m}"
            );
        } else if m > 0 {
            // A reconciliation: the sources, each one's date partition from the last mark on
            // (`StartAfter`), and backfill/'s sources (none here).
            assert_eq!(lists, 1 + sources_n + 1, "tick {m}");
            reconciled_at.push(m);
        }
        last_output = Some(result);
    }
    assert_eq!(reconciled_at, [10, 20], "ticks that reconciled");
    match last_output.unwrap() {
        TransformerOutput::Transformed {
            as_of,
            series,
            samples,
            ..
        } => {
            assert_eq!(as_of, t0.add_secs((ticks - 1) * 60));
            assert_eq!((series, samples), (12, 12 * ticks as usize));
        }
        other => panic!("expected a transform, got {other:?}"),
    }
    // What the api serves: the summary, read back from the bucket...
    let summary = pipeline::read_summary(s3).await.unwrap().unwrap();
    assert_eq!(summary.series.len(), 12);
    assert_eq!(summary.series[0].samples, ticks as u32);
    // ...and the api function answering the recorded HTTP API event with it, from the bucket.
    let request: LambdaRequest = serde_json::from_value(event("apigw-v2-summary.json")).unwrap();
    let response = Adapter::from(app(AppState::new(store.clone())))
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["statusCode"], json!(200), "{response}");
    let served: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(served, serde_json::to_value(&summary).unwrap());
    assert_eq!(
        requests(&store),
        [3, 0, 0],
        "the api's first request reads the summary and the window state (head and base)"
    );
    let keys = s3.list("").await.unwrap();
    // The snapshots, the summary, the state's head and its two base slots (compacted in turn).
    assert_eq!(keys.len(), 4 * ticks as usize + 4, "{keys:?}");
    for base in pipeline::BASE_KEYS {
        assert!(keys.contains(&format!("prod/{base}")) || keys.contains(&base.to_owned()));
    }
    assert!(keys.contains(&"aggregates/summary.json".to_owned()));

    // The transformer's own write is not a reason to run again.
    let own = notification(&bucket, "prod/aggregates/summary.json");
    assert!(matches!(
        transformer.handle(invoke(own)).await.unwrap(),
        TransformerOutput::Ignored { .. }
    ));
    assert_eq!(
        requests(&store),
        [0, 0, 0],
        "an ignored event costs no request"
    );

    // Wired to S3 notifications instead, one invocation per snapshot: each reads the one key it
    // names. (The first tick here is due a reconciliation, which takes in all four at once.)
    for m in [ticks, ticks + 1] {
        let mut e = scheduled.clone();
        e["time"] = json!(t0.add_secs(m * 60).to_string());
        let out = collector.handle(invoke(e)).await.unwrap();
        requests(&store);
        for (i, key) in out.keys.iter().enumerate() {
            let payload = notification(&bucket, &format!("prod/{key}"));
            let result = transformer.handle(invoke(payload)).await.unwrap();
            let [gets, puts, lists] = requests(&store);
            let TransformerOutput::Transformed { reconciled, .. } = result else {
                panic!("expected a transform, got {result:?}");
            };
            match (m == ticks, i) {
                (true, 0) => assert!(reconciled && lists > 0),
                // Told of a key the reconciliation took in: the head and the summary checked.
                (true, _) => assert_eq!((gets, puts, lists), (2, 0, 0), "{key}"),
                (false, _) => assert_eq!((gets, puts, lists), (2, 2, 0), "{key}"),
            }
        }
    }
}

#[tokio::test]
async fn lambda_handlers_on_a_missing_bucket_fail_non_retryable_on_moto() {
    let endpoint = moto_endpoint!("lambda_handlers_on_a_missing_bucket_fail_non_retryable_on_moto");
    let bucket = moto::unique_bucket("lambda-missing");
    let store = Arc::new(moto::store_at(&endpoint, &bucket, "prod").await);

    let collector = Collector::new(store.clone(), sources(&["kraken"]), 60);
    let err = collector
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
    assert!(err.message().contains("NoSuchBucket"), "{err}");
    assert!(
        err.message().contains(&format!("s3://{bucket}/prod/raw/")),
        "{err}"
    );

    let transformer = Transformer::new(store, Some((bucket.clone(), "prod/".into())));
    let err = transformer
        .handle(invoke(event("stepfunctions-transform.json")))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
    assert!(err.message().contains("NoSuchBucket"), "{err}");
}

/// What a fresh stack would meet if its role could not list the bucket: S3 answers a read of the
/// state that does not exist yet with 403, not 404. The handlers then fail every invocation, not
/// retryably, and say which grant is missing; template.yaml grants s3:ListBucket so that the
/// first read is a "not found" (the first tick of `lambda_collector_then_transformer_on_moto`),
/// and cryptomon-lambda/tests/template.rs checks that grant.
#[tokio::test]
async fn a_denied_read_of_a_missing_key_names_the_list_grant() {
    let fake = FakeS3::start(403, "AccessDenied").await;
    let store = Arc::new(fake.store("s3://fresh-stack/prod").await);
    let transformer = Transformer::new(store.clone(), Some(("fresh-stack".into(), "prod/".into())));
    let err = transformer
        .handle(invoke(event("stepfunctions-transform.json")))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NonRetryable", "{err}");
    assert!(err.message().contains("AccessDenied (HTTP 403)"), "{err}");
    assert!(err.message().contains("s3:ListBucket"), "{err}");

    // The api answers a JSON error (the cause, which names the bucket, stays in its log).
    let request: LambdaRequest = serde_json::from_value(event("apigw-v2-summary.json")).unwrap();
    let response = Adapter::from(app(AppState::new(store)))
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    let status = response["statusCode"].as_u64().unwrap();
    assert!((500..600).contains(&status), "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert!(body["error"].is_string(), "{body}");
}

/// The transformer with an alert rule and the SNS notifier, on moto's S3 and SNS: the events
/// are stored under alerts/ and published; a topic that does not exist fails the delivery (kept
/// queued, named in the error), never the transform.
#[tokio::test]
async fn transformer_alerts_publish_to_sns_on_moto() {
    let endpoint = moto_endpoint!("transformer_alerts_publish_to_sns_on_moto");
    let store = Arc::new(moto::fresh_store(&endpoint, "lambda-sns", "").await);
    let sns = aws_sdk_sns::Client::new(&moto::sdk_config(&endpoint).await);
    let topic = sns
        .create_topic()
        .name(moto::unique_bucket("alerts"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let value: toml::Value = toml::from_str(
        "[[alerts.rules]]\nname = \"any-price\"\nkind = \"threshold\"\nabove = 0.000001\n",
    )
    .unwrap();
    let rules = AlertConfig::from_toml(value.get("alerts")).unwrap();
    let notifier = Arc::new(SnsNotifier::new(sns.clone(), topic.clone())) as DynNotifier;
    let transformer = Transformer::new(store.clone(), None)
        .with_alerting(Alerting::new(rules.clone(), vec![notifier.clone()]));
    let collector = Collector::new(store.clone(), sources(&["kraken", "binance"]), 60);
    let mut tick = event("scheduled-event.json");
    tick["time"] = json!("2026-11-27T23:00:00Z");
    collector.handle(invoke(tick)).await.unwrap();

    let out = transformer.handle(invoke(json!({}))).await.unwrap();
    let TransformerOutput::Transformed { alert_events, .. } = out else {
        panic!("expected a transform, got {out:?}");
    };
    // Every series fires: 2 sources x 3 pairs.
    assert_eq!(alert_events, 6);
    assert_eq!(
        store.list("alerts/date=2026-11-27/").await.unwrap().len(),
        6
    );
    // Published: nothing is left queued.
    let report = pipeline::deliver(store.as_ref(), &[notifier], &Default::default())
        .await
        .unwrap();
    assert_eq!((report.delivered, report.pending), (0, 0));

    // A topic that is gone: the delivery fails with the sink named and stays queued.
    let gone = format!("{topic}-gone");
    let bad = Arc::new(SnsNotifier::new(sns, gone.clone())) as DynNotifier;
    let store2 = Arc::new(moto::fresh_store(&endpoint, "lambda-sns-gone", "").await);
    Collector::new(store2.clone(), sources(&["kraken"]), 60)
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    let transformer = Transformer::new(store2.clone(), None)
        .with_alerting(Alerting::new(rules, vec![bad.clone()]));
    assert!(matches!(
        transformer.handle(invoke(json!({}))).await.unwrap(),
        TransformerOutput::Transformed {
            alert_events: 3,
            ..
        }
    ));
    let report = pipeline::deliver(store2.as_ref(), &[bad], &Default::default())
        .await
        .unwrap();
    assert_eq!(report.pending, 3);
    assert!(
        report.failed[0].0 == format!("sns:{gone}") && !report.failed[0].1.is_empty(),
        "{:?}",
        report.failed
    );
}

/// More events than one SNS message holds (256 KiB, which moto enforces as SNS does): they go in
/// several messages, every one accepted, none given up.
#[tokio::test]
async fn many_alert_events_are_split_to_fit_sns_on_moto() {
    let endpoint = moto_endpoint!("many_alert_events_are_split_to_fit_sns_on_moto");
    let sns = aws_sdk_sns::Client::new(&moto::sdk_config(&endpoint).await);
    let topic = sns
        .create_topic()
        .name(moto::unique_bucket("alerts-many"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let notifier = Arc::new(SnsNotifier::new(sns, topic)) as DynNotifier;
    let store = cryptomon_mock::MemoryStore::new();
    let events = queue_events(&store, &notifier.sink(), 1200).await;
    let (subject, whole) = SnsNotifier::message(&events);
    assert!(
        subject.len() + whole.len() > 262_144,
        "one message would be refused"
    );

    let report = pipeline::deliver(&store, &[notifier], &Default::default())
        .await
        .unwrap();
    assert_eq!(report.failed, [], "{report:?}");
    assert_eq!(
        (report.delivered, report.pending, report.dropped),
        (1200, 0, 0)
    );
}
