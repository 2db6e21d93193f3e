//! The transformer's backfill of a fresh deployment, against a local server answering like
//! Coinbase's candle endpoint: the first invocation after the collector's first tick backfills
//! the hours before it, a store the transformer already ran on is not backfilled, a container
//! checks once, a backfill is cut at the invocation's deadline, and which configs turn it on.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{event, invoke, market};
use cryptomon_core::keys::WINDOW_KEY;
use cryptomon_core::secrets::Secrets;
use cryptomon_lambda::budget::context_ending_in;
use cryptomon_lambda::startup_backfill::{self, REBUILD_MARGIN};
use cryptomon_lambda::transformer::FINISH_MARGIN;
use cryptomon_lambda::{Collector, Transformer, TransformerOutput};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Coinbase: a candle for each minute of `[start, end]`, newest first, answered after `delay`.
async fn coinbase(delay: Duration) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex(
        "^/products/[A-Z]+-USD/candles$",
    ))
    .respond_with(move |request: &Request| {
        let at = |name: &str| {
            let value = request
                .url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
                .unwrap();
            chrono::DateTime::parse_from_rfc3339(&value)
                .unwrap()
                .timestamp()
        };
        let (start, end) = (at("start"), at("end"));
        let rows: Vec<Value> = (0..=(end - start) / 60)
            .rev()
            .map(|i| start + i * 60)
            .map(|t| json!([t, 1.0, 2.0, 1.5, 50_000.0 + (t / 60 % 997) as f64, 0.5]))
            .collect();
        ResponseTemplate::new(200)
            .set_body_json(rows)
            .set_delay(delay)
    })
    .mount(&server)
    .await;
    server
}

/// A config of BTC-USD on `server`, backfilling 3 hours.
fn config(server: &MockServer) -> String {
    format!(
        "[[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
         [backfill]\nhours = 3\n",
        server.uri()
    )
}

/// A transformer over `store` with the startup backfill of `config`.
fn backfilling(store: Arc<FaultyStore<MemoryStore>>, config: &str) -> Transformer {
    let (sources, backfill) = startup_backfill::from_config(Some(config), &Secrets::default())
        .unwrap()
        .expect("a backfill");
    Transformer::new(store, None).with_backfill(sources, backfill)
}

/// A fresh deployment's store after the collector's first tick (2026-11-27T23:48Z), and the
/// collector's output that the state machine hands the transformer.
async fn first_tick() -> (Arc<FaultyStore<MemoryStore>>, Value) {
    let store = Arc::new(FaultyStore::new(MemoryStore::new()));
    let out = Collector::new(store.clone(), vec![market("alpha")], 60)
        .handle(invoke(event("scheduled-event.json")))
        .await
        .unwrap();
    (store, serde_json::to_value(&out).unwrap())
}

fn backfill_keys(store: &FaultyStore<MemoryStore>) -> Vec<String> {
    let keys = store.inner().keys();
    keys.into_iter()
        .filter(|k| k.starts_with("backfill/"))
        .collect()
}

fn samples(out: &TransformerOutput) -> (usize, usize) {
    match out {
        TransformerOutput::Transformed {
            series, samples, ..
        } => (*series, *samples),
        other => panic!("expected a transform, got {other:?}"),
    }
}

#[tokio::test]
async fn the_first_transform_of_a_fresh_deployment_backfills_the_hours_before_its_tick() {
    let server = coinbase(Duration::ZERO).await;
    let (store, handed) = first_tick().await;
    let t = backfilling(store.clone(), &config(&server));
    let out = t.handle(invoke(handed.clone())).await.unwrap();
    assert_eq!(
        backfill_keys(&store),
        [
            "backfill/source=coinbase/date=2026-11-27/20261127T200000Z.json",
            "backfill/source=coinbase/date=2026-11-27/20261127T210000Z.json",
            "backfill/source=coinbase/date=2026-11-27/20261127T220000Z.json",
        ]
    );
    // Three hours of coinbase's minutes and the collected snapshot of alpha.
    assert_eq!(samples(&out), (2, 3 * 60 + 1));
    let requests = server.received_requests().await.unwrap().len();
    assert!(requests > 0);

    // The container's next invocations never check again: a failing check would show.
    store.add_fault(Fault::key_prefix(WINDOW_KEY).on(Op::List));
    let injected = store.counters().injected;
    let again = t.handle(invoke(handed.clone())).await.unwrap();
    assert_eq!(samples(&again), (2, 181));
    assert_eq!(store.counters().injected, injected, "checked again");
    assert_eq!(server.received_requests().await.unwrap().len(), requests);

    // A new container checks once; a check that fails is a warning, not a failed invocation.
    let cold = backfilling(store.clone(), &config(&server));
    let out = cold.handle(invoke(handed)).await.unwrap();
    assert_eq!(samples(&out), (2, 181));
    assert_eq!(store.counters().injected, injected + 1);
    assert_eq!(server.received_requests().await.unwrap().len(), requests);
}

#[tokio::test]
async fn a_store_the_transformer_already_ran_on_is_not_backfilled() {
    let server = coinbase(Duration::ZERO).await;
    let (store, handed) = first_tick().await;
    // An earlier deployment's transformer, without a backfill, wrote the state.
    let plain = || Transformer::new(store.clone(), None);
    plain().handle(invoke(handed.clone())).await.unwrap();
    let lists = |before: u64| store.counters().lists - before;
    let before = store.counters().lists;
    plain().handle(invoke(handed.clone())).await.unwrap();
    let without = lists(before);
    let before = store.counters().lists;
    let out = backfilling(store.clone(), &config(&server))
        .handle(invoke(handed))
        .await
        .unwrap();
    assert_eq!(samples(&out), (1, 1));
    assert!(backfill_keys(&store).is_empty());
    assert!(server.received_requests().await.unwrap().is_empty());
    // The state's head answered it in one list: the window's partitions were not listed.
    assert_eq!(lists(before), without + 1);
}

#[tokio::test]
async fn a_backfill_is_cut_at_the_invocations_deadline_and_the_transform_still_runs() {
    let server = coinbase(Duration::from_secs(30)).await;
    let (store, handed) = first_tick().await;
    let t = backfilling(store.clone(), &config(&server));
    let left = FINISH_MARGIN + REBUILD_MARGIN + Duration::from_secs(1);
    let started = Instant::now();
    let out = t
        .handle(LambdaEvent::new(handed, context_ending_in(left)))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(samples(&out), (1, 1), "the collected snapshot only");
    assert!(backfill_keys(&store).is_empty());
}

#[test]
fn the_config_says_whether_and_what_to_backfill() {
    let secrets = Secrets::default();
    let default = startup_backfill::from_config(None, &secrets)
        .unwrap()
        .expect("no config: the default exchanges, as the collector collects");
    assert_eq!(default.0.len(), 4);
    assert_eq!(default.1.hours, 24);
    for off in [
        "demo = true",
        "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\n[backfill]\non_empty = false\n",
    ] {
        assert!(
            startup_backfill::from_config(Some(off), &secrets)
                .unwrap()
                .is_none(),
            "{off}"
        );
    }
    let error = startup_backfill::from_config(Some("[backfill]\nhours = 0\n"), &secrets)
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("CRYPTOMON_CONFIG"), "{error}");
}
