//! `GET /api/events`: the current summary first, then a `summary` event after each transform.

mod common;

use cryptomon_core::pipeline::TransformOptions;
use std::time::Duration;

use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use common::*;
use cryptomon_core::{PolarsAggregator, pipeline};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Reads frames until one whole `summary` event is in; returns its data as JSON.
async fn next_summary(body: &mut Body) -> serde_json::Value {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .expect("no event within 10 s")
            .expect("stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        if let Some(end) = text.find("\n\n") {
            let event = &text[..end];
            if event.lines().any(|l| l == "event: summary") {
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
            text.drain(..end + 2);
        }
    }
}

#[tokio::test]
async fn events_send_the_current_summary_then_each_new_one() {
    let store = market().await;
    let state = state(store.clone());
    let response = cryptomon_server::app(state.clone())
        .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let mut body = response.into_body();

    let first = next_summary(&mut body).await;
    assert_eq!(first["as_of"], "2026-11-27T11:59:00Z");

    write_and_transform(&store, TICKS, TICKS + 1).await;
    assert!(state.refresh().await.unwrap(), "new aggregates were loaded");
    let second = next_summary(&mut body).await;
    assert_eq!(second["as_of"], "2026-11-27T12:00:00Z");
    assert_eq!(
        second,
        serde_json::to_value(stored_summary(&store).await).unwrap()
    );

    // Shutting down ends the stream, so a graceful shutdown is not held up by it.
    state.close_streams();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            frame.unwrap();
        }
    })
    .await;
    assert!(end.is_ok(), "the stream did not end on close_streams");
}

#[tokio::test]
async fn events_wait_for_the_first_aggregates() {
    let store = std::sync::Arc::new(cryptomon_mock::MemoryStore::new());
    let state = state(store.clone());
    let response = cryptomon_server::app(state.clone())
        .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    write_ticks(&store, 0, 3).await;
    pipeline::transform(
        store.as_ref(),
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    state.refresh().await.unwrap();
    let first = next_summary(&mut body).await;
    assert_eq!(first["as_of"], "2026-11-27T10:02:00Z");
}

/// Reads frames until one whole event named `name` is in; returns its data as JSON.
async fn next_event(body: &mut Body, name: &str) -> serde_json::Value {
    let mut text = String::new();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 10 s"))
            .expect("stream ended")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
        while let Some(end) = text.find("\n\n") {
            let event = text[..end].to_owned();
            text.drain(..end + 2);
            if event.lines().any(|l| l == format!("event: {name}")) {
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
        }
    }
}

#[tokio::test]
async fn an_alert_event_is_pushed_when_a_transform_stores_one() {
    // The market up to the tick before coinbase's BTC-USD volume spike.
    let store = std::sync::Arc::new(cryptomon_mock::MemoryStore::new());
    write_ticks(&store, 0, TICKS - 1).await;
    pipeline::transform(
        store.as_ref(),
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    let state = state(store.clone());
    let response = cryptomon_server::app(state.clone())
        .oneshot(Request::get("/api/events").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    next_summary(&mut body).await;

    // The spike's tick, transformed with the spike rule: it fires, and the stream pushes it.
    write_ticks(&store, TICKS - 1, TICKS).await;
    let options = pipeline::TransformOptions {
        alerts: std::sync::Arc::new(alert_config(SPIKE_RULES)),
        ..Default::default()
    };
    let report = pipeline::transform(store.as_ref(), &PolarsAggregator::default(), &options)
        .await
        .unwrap();
    assert_eq!(report.alert_events.len(), 1, "{:?}", report.alert_events);
    state.refresh().await.unwrap();
    let alert = next_event(&mut body, "alert").await;
    assert_eq!(alert["rule"], "volume-spike");
    assert_eq!(alert["source"], "coinbase");
    assert_eq!(alert["key"], report.alert_events[0].key());
}
