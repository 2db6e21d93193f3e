//! The Lambda functions' event payloads, as each handler takes them: the collector's (EventBridge
//! scheduled event, Step Functions `{"tick": ...}`, `{}`), the transformer's (S3 notification,
//! Step Functions output) and the api's (API Gateway v2 HTTP request). The input's first byte
//! picks the handler, the rest is the JSON payload. Each answers or refuses with an error that
//! names the handler; never a panic.

use std::sync::Arc;

use crate::runtime;
use axum::body::Body;
use cryptomon_lambda::{Collector, Transformer};
use cryptomon_mock::MemoryStore;
use lambda_http::request::LambdaRequest;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;

pub fn check(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 3 {
        0 => collector(body),
        1 => transformer(body),
        _ => api(body),
    }
}

/// With no source configured, every payload is refused without a retry: a bad event as such,
/// a good one because there is nothing to collect.
fn collector(body: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let collector = Collector::new(Arc::new(MemoryStore::new()), Vec::new(), 60);
    let result =
        runtime().block_on(collector.handle(LambdaEvent::new(payload, Context::default())));
    let err = result.expect_err("nothing to collect, nothing collected");
    assert_eq!(err.error_type(), "NonRetryable", "{}", err.message());
    assert!(err.message().starts_with("collector:"), "{}", err.message());
}

/// Over an empty store: a payload is ignored, or refused, or transforms nothing (no data).
fn transformer(body: &[u8]) {
    let Ok(payload) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let transformer = Transformer::new(Arc::new(MemoryStore::new()), None);
    let result =
        runtime().block_on(transformer.handle(LambdaEvent::new(payload, Context::default())));
    if let Err(err) = result {
        assert!(!err.message().is_empty());
    }
}

/// An API Gateway v2 request through lambda_http into the api's router: below 500.
fn api(body: &[u8]) {
    let Ok(LambdaRequest::ApiGatewayV2(event)) = serde_json::from_slice::<LambdaRequest>(body)
    else {
        return;
    };
    // API Gateway sends only a path, host, scheme and query that parse; lambda_http unwraps
    // them (its panics on anything else are not this program's to handle).
    let path = event.raw_path.clone().unwrap_or_default();
    let host = event
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| event.request_context.domain_name.clone())
        .unwrap_or_else(|| "localhost".to_owned());
    let stage = event.request_context.stage.clone().unwrap_or_default();
    let query = event.raw_query_string.clone().unwrap_or_default();
    let full = format!("https://{host}/{stage}{path}?{query}");
    let scheme_ok = event
        .headers
        .get("x-forwarded-proto")
        .is_none_or(|p| p == "https" || p == "http");
    if !scheme_ok
        || !path.starts_with('/')
        || url::Url::parse(&full).is_err()
        || full.parse::<http::Uri>().is_err()
        || host.contains(['/', '?', '#', '@'])
    {
        return;
    }
    let request: http::Request<lambda_http::Body> = LambdaRequest::ApiGatewayV2(event).into();
    let (parts, body) = request.into_parts();
    let request = http::Request::from_parts(parts, Body::from(body.to_vec()));
    let status = super::api::send(request);
    assert!(!status.is_server_error(), "HTTP {status}");
}
