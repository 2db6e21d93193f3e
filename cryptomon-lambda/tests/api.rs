//! The api function as Lambda runs it: a real API Gateway v2 (HTTP API) event, turned into a
//! request by `lambda_http`'s adapter (the one `lambda_http::run` wraps the router in), answered
//! by the server's router, and turned back into the HTTP API's response JSON.

mod common;

use cryptomon_core::pipeline::TransformOptions;
use std::sync::Arc;

use common::event;
use cryptomon_core::{PolarsAggregator, Tick, pipeline};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, SyntheticSource};
use cryptomon_server::{AppState, app};
use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::{Value, json};

/// The API Gateway v2 event of `GET path?query`, from the recorded summary request.
fn get(path: &str, query: &str) -> Value {
    let mut e = event("apigw-v2-summary.json");
    e["rawPath"] = json!(path);
    e["requestContext"]["http"]["path"] = json!(path);
    e["pathParameters"]["proxy"] = json!(path.trim_start_matches('/'));
    e["rawQueryString"] = json!(query);
    e
}

/// Invokes the api function with `payload`; returns the HTTP API response JSON.
async fn invoke(state: &AppState, payload: Value) -> Value {
    let request: LambdaRequest = serde_json::from_value(payload).expect("an HTTP API v2 event");
    let response = Adapter::from(app(state.clone()))
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .expect("the router never fails");
    serde_json::to_value(response).unwrap()
}

fn body(response: &Value) -> Value {
    assert_eq!(
        response["isBase64Encoded"],
        json!(false),
        "JSON goes back as text: {response}"
    );
    serde_json::from_str(response["body"].as_str().expect("a body")).expect("a JSON body")
}

/// A store with an hour of a three-source synthetic market, transformed.
async fn transformed_store() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    let end = Tick::parse("2026-11-27T23:49:00Z").unwrap();
    for source in SyntheticSource::demo_market() {
        cryptomon_mock::backfill(&source, store.as_ref(), end, 60)
            .await
            .unwrap();
    }
    pipeline::transform(
        store.as_ref(),
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    store
}

#[tokio::test]
async fn api_answers_the_recorded_http_api_event_with_the_summary() {
    let store = transformed_store().await;
    let state = AppState::new(store.clone());
    let response = invoke(&state, event("apigw-v2-summary.json")).await;
    assert_eq!(response["statusCode"], json!(200), "{response}");
    assert!(
        response["headers"]["content-type"]
            .as_str()
            .is_some_and(|t| t.starts_with("application/json")),
        "{response}"
    );
    let summary = body(&response);
    let stored = pipeline::read_summary(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary, serde_json::to_value(&stored).unwrap());
    assert_eq!(summary["as_of"], json!("2026-11-27T23:49:00Z"));

    // A repeated poll with the ETag costs no body.
    let etag = response["headers"]["etag"]
        .as_str()
        .expect("an ETag")
        .to_owned();
    let mut again = event("apigw-v2-summary.json");
    again["headers"]["if-none-match"] = json!(etag);
    let response = invoke(&state, again).await;
    assert_eq!(response["statusCode"], json!(304), "{response}");
    assert!(response["body"].as_str().is_none_or(str::is_empty));
}

#[tokio::test]
async fn api_routes_and_errors_through_the_http_api_event() {
    let store = transformed_store().await;
    let state = AppState::new(store);

    let metrics = body(&invoke(&state, get("/api/metrics", "")).await);
    let id = metrics[0]["id"].as_str().expect("a metric id").to_owned();
    let detail = invoke(&state, get(&format!("/api/metrics/{id}"), "")).await;
    assert_eq!(detail["statusCode"], json!(200), "{detail}");
    let detail = body(&detail);
    assert_eq!(detail["id"], json!(id));
    assert_eq!(detail["points"].as_array().map(Vec::len), Some(60));

    let candles = invoke(
        &state,
        get("/api/candles", "source=demo&pair=BTC-USD&interval=5m"),
    )
    .await;
    assert_eq!(candles["statusCode"], json!(200), "{candles}");
    assert_eq!(body(&candles)["candles"].as_array().map(Vec::len), Some(12));

    // Bad input: 4xx with a JSON error, through the same adapter.
    for (path, query, status) in [
        ("/api/metrics/demo:NOPE-USD:price", "", 404),
        ("/api/metrics/demo:BTC-USD", "", 400),
        ("/api/candles", "source=demo&pair=BTC-USD&interval=7m", 400),
        ("/api/nothing-here", "", 404),
    ] {
        let response = invoke(&state, get(path, query)).await;
        assert_eq!(response["statusCode"], json!(status), "{path}?{query}");
        let error = body(&response);
        assert!(
            error["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}?{query}: {error}"
        );
    }
}

#[tokio::test]
async fn api_on_an_empty_store_says_no_aggregates_yet() {
    let state = AppState::new(Arc::new(MemoryStore::new()));
    let response = invoke(&state, event("apigw-v2-summary.json")).await;
    assert_eq!(response["statusCode"], json!(503), "{response}");
    assert_eq!(
        response["headers"]["retry-after"],
        json!("10"),
        "{response}"
    );
    let error = body(&response);
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("no aggregates yet")),
        "{error}"
    );
}

#[tokio::test]
async fn a_request_still_waiting_at_the_deadline_gets_a_json_503() {
    // Reads that never answer, like S3 unreachable from a function.
    let day = std::time::Duration::from_secs(86_400);
    let unanswered =
        FaultyStore::new(MemoryStore::new()).with_fault(Fault::always().slowed_by(day));
    let state = AppState::new(Arc::new(unanswered));
    let request: LambdaRequest = serde_json::from_value(get("/api/summary", "")).unwrap();
    let left = std::time::Duration::from_millis(1500);
    let context = cryptomon_lambda::budget::context_ending_in(left);
    let started = std::time::Instant::now();
    let response = Adapter::from(cryptomon_lambda::api::router(state))
        .oneshot(LambdaEvent::new(request, context))
        .await
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited < left,
        "answered after {waited:?}, past the deadline {left:?} away"
    );
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["statusCode"], json!(503), "{response}");
    assert!(
        body(&response)["error"]
            .as_str()
            .unwrap()
            .contains("ran out of time")
    );
}

#[tokio::test]
async fn a_candle_range_reads_the_history_days_on_lambda() {
    let store = transformed_store().await;
    // An hour of the day before, closed into history by the repair command's writer.
    let before = Tick::parse("2026-11-26T12:59:00Z").unwrap();
    for source in SyntheticSource::demo_market() {
        cryptomon_mock::backfill(&source, store.as_ref(), before, 60)
            .await
            .unwrap();
    }
    pipeline::repair_history(store.as_ref(), "2026-11-26")
        .await
        .unwrap();
    let state = AppState::new(store.clone());
    // The function's own router: the API's, with its deadline and `/metrics`.
    let invoke = |payload: Value| {
        let state = state.clone();
        async move {
            let request: LambdaRequest = serde_json::from_value(payload).unwrap();
            let response = Adapter::from(cryptomon_lambda::api::router(state))
                .oneshot(LambdaEvent::new(request, Context::default()))
                .await
                .unwrap();
            serde_json::to_value(response).unwrap()
        }
    };
    let query =
        "source=demo&pair=BTC-USD&interval=1h&from=2026-11-26T00:00:00Z&to=2026-11-27T23:59:00Z";
    let response = invoke(get("/api/candles", query)).await;
    assert_eq!(response["statusCode"], json!(200), "{response}");
    let candles = body(&response)["candles"].as_array().unwrap().clone();
    assert_eq!(candles.first().unwrap()["t"], "2026-11-26T12:00:00Z");
    assert_eq!(candles.first().unwrap()["n"], 60);
    assert_eq!(candles.last().unwrap()["t"], "2026-11-27T23:00:00Z");

    let reversed = "source=demo&pair=BTC-USD&from=2026-11-27T00:00:00Z&to=2026-11-26T00:00:00Z";
    let response = invoke(get("/api/candles", reversed)).await;
    assert_eq!(response["statusCode"], json!(400), "{response}");
    assert!(body(&response)["error"].as_str().unwrap().contains("from"));
}

#[tokio::test]
async fn metrics_has_the_market_gauges_of_the_stored_summary() {
    let store = transformed_store().await;
    let state = AppState::new(store.clone());
    let request: LambdaRequest = serde_json::from_value(get("/metrics", "")).unwrap();
    let response = Adapter::from(cryptomon_lambda::api::router(state))
        .oneshot(LambdaEvent::new(request, Context::default()))
        .await
        .unwrap();
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["statusCode"], json!(200), "{response}");
    assert!(
        response["headers"]["content-type"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{response}"
    );
    let text = response["body"].as_str().unwrap();
    let summary = pipeline::read_summary(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    for s in &summary.series {
        let line = format!(
            "cryptomon_price{{source=\"{}\",pair=\"{}\",quote=\"{}\"}} {}\n",
            s.source.as_str(),
            s.pair.as_str(),
            s.pair.quote(),
            s.last
        );
        assert!(text.contains(&line), "no {line} in:\n{text}");
    }
    // A function instance's counters are CloudWatch's: only the market gauges are here.
    assert!(!text.contains("cryptomon_http_requests_total"), "{text}");
}
