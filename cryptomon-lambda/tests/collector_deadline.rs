//! The collector Lambda under its invocation's deadline: real exchange sources from a config,
//! a local exchange that answers and one that hangs, and a context whose deadline is near. The
//! handler returns before the deadline with the healthy snapshot stored and the hung source
//! reported, instead of Lambda ending the invocation with nothing said.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptomon_core::secrets::Secrets;
use cryptomon_core::{Store, StoreExt};
use cryptomon_lambda::budget::context_ending_in;
use cryptomon_lambda::collector::DEADLINE_MARGIN;
use cryptomon_lambda::{Collector, sources};
use cryptomon_mock::MemoryStore;
use lambda_runtime::LambdaEvent;
use serde_json::json;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A server that accepts connections and never answers.
fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for connection in listener.incoming() {
            held.push(connection);
        }
    });
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_source_is_reported_before_the_invocation_deadline() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cryptomon-core/tests/fixtures/kraken/ticker_xbtusd_docs_example.json");
    let kraken = MockServer::start().await;
    Mock::given(path("/0/public/Ticker"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(std::fs::read(fixture).unwrap(), "application/json"),
        )
        .mount(&kraken)
        .await;
    let hung = silent_server();
    // The production timings of a minute's tick: 10 s per request, 45 s per fetch, longer
    // than the invocation has left.
    let setup = sources::from_config(
        Some(&format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
         [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{hung}\"\n",
            kraken.uri()
        )),
        &Secrets::default(),
    )
    .unwrap();
    let store = Arc::new(MemoryStore::new());
    let collector = Collector::new(store.clone(), setup.sources, setup.interval_secs);

    let left = DEADLINE_MARGIN + Duration::from_secs(2);
    let context = context_ending_in(left);
    let started = Instant::now();
    let output = collector
        .handle(LambdaEvent::new(
            json!({"tick": "2026-12-01T10:00:00Z"}),
            context,
        ))
        .await
        .expect("one source collected: the invocation succeeds");
    let took = started.elapsed();

    assert!(
        took < left - DEADLINE_MARGIN / 2,
        "returned {took:?} into an invocation with {left:?} left"
    );
    assert_eq!(output.written, 1);
    assert_eq!(output.keys.len(), 1);
    assert!(
        output.keys[0].starts_with("raw/source=kraken/"),
        "{:?}",
        output.keys
    );
    assert!(
        store.get(&output.keys[0]).await.unwrap().is_some(),
        "stored"
    );
    assert_eq!(output.failed.len(), 1);
    let failure = &output.failed[0];
    assert_eq!(failure.source.as_str(), "binance");
    assert!(failure.retryable, "{}", failure.error);
    assert!(failure.error.contains("binance"), "{}", failure.error);
    assert!(
        store.list("raw/source=binance/").await.unwrap().is_empty(),
        "nothing written for the hung source"
    );
}

#[tokio::test]
async fn an_invocation_already_out_of_time_reports_every_source_at_once() {
    let hung = silent_server();
    let setup = sources::from_config(
        Some(&format!(
            "[[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{hung}\"\n"
        )),
        &Secrets::default(),
    )
    .unwrap();
    let collector = Collector::new(
        Arc::new(MemoryStore::new()),
        setup.sources,
        setup.interval_secs,
    );
    let context = context_ending_in(DEADLINE_MARGIN / 2);
    let started = Instant::now();
    let err = collector
        .handle(LambdaEvent::new(json!({}), context))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(err.error_type(), "Retryable", "{err}");
    assert!(err.message().contains("binance"), "{err}");
}
