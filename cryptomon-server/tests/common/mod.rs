//! Shared set-up of the server's tests: a store with a few hours of a small market, transformed.

#![allow(dead_code, unreachable_pub)]

use cryptomon_core::pipeline::TransformOptions;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use cryptomon_core::keys::raw_key;
use cryptomon_core::{
    DynStore, Pair, PolarsAggregator, Quote, Snapshot, SourceName, StoreExt, Summary, Tick,
    pipeline,
};
use cryptomon_mock::MemoryStore;
use cryptomon_server::{ApiOptions, AppState, app};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The first tick of the test market.
pub const START: &str = "2026-11-27T10:00:00Z";
/// Ticks per series.
pub const TICKS: i64 = 120;
pub const SOURCES: [&str; 3] = ["binance", "coinbase", "kraken"];
pub const PAIRS: [&str; 3] = ["BTC-USD", "ETH-USD", "SOL-USD"];

fn level(pair: &str) -> f64 {
    match pair {
        "BTC-USD" => 90_000.0,
        "ETH-USD" => 3_000.0,
        _ => 150.0,
    }
}

/// One snapshot per source at tick number `i`: a smooth, deterministic market. Kraken gives no
/// volume for SOL-USD; coinbase's BTC-USD volume spikes at tick 119 (an alert).
pub fn snapshot(source: &str, i: i64) -> Snapshot {
    let tick = Tick::parse(START).unwrap().add_secs(60 * i);
    let s = SOURCES.iter().position(|&x| x == source).unwrap() as f64;
    let quotes = PAIRS
        .iter()
        .enumerate()
        .map(|(p, pair)| {
            let wave = ((i as f64) / (7.0 + p as f64 * 3.0 + s)).sin();
            let mut q = Quote::new(
                Pair::new(pair).unwrap(),
                level(pair) * (1.0 + 0.01 * wave * (p as f64 + 1.0) + 0.0005 * s),
            );
            let spike = source == "coinbase" && *pair == "BTC-USD" && i == TICKS - 1;
            q.volume_24h = if source == "kraken" && *pair == "SOL-USD" {
                None
            } else {
                Some(
                    1000.0 * (p as f64 + 1.0) * (1.0 + 0.1 * wave) * if spike { 10.0 } else { 1.0 },
                )
            };
            q
        })
        .collect();
    Snapshot::new(
        SourceName::new(source).unwrap(),
        tick,
        tick.to_datetime(),
        quotes,
        serde_json::json!({}),
    )
}

/// Writes ticks `from..to` of every source.
pub async fn write_ticks(store: &MemoryStore, from: i64, to: i64) {
    for i in from..to {
        for source in SOURCES {
            let snap = snapshot(source, i);
            store
                .put(
                    &raw_key(&snap.source, snap.tick),
                    Bytes::from(snap.to_json()),
                )
                .await
                .unwrap();
        }
    }
}

/// Writes ticks `from..to` of every source, then transforms.
pub async fn write_and_transform(store: &MemoryStore, from: i64, to: i64) {
    write_ticks(store, from, to).await;
    pipeline::transform(
        store,
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
}

/// A store holding `TICKS` minutes of the market, transformed.
pub async fn market() -> Arc<MemoryStore> {
    let store = Arc::new(MemoryStore::new());
    write_and_transform(&store, 0, TICKS).await;
    store
}

/// The stored summary.
pub async fn stored_summary(store: &MemoryStore) -> Summary {
    pipeline::read_summary(store).await.unwrap().unwrap()
}

/// A state that checks the store on every request (tests change it between requests).
pub fn state(store: Arc<MemoryStore>) -> AppState {
    let store: DynStore = store;
    AppState::with_options(
        store,
        ApiOptions {
            check_every: Duration::ZERO,
            ..ApiOptions::default()
        },
    )
}

/// Sends one request through a fresh router.
pub async fn send(state: &AppState, request: Request<Body>) -> Response<Body> {
    app(state.clone()).oneshot(request).await.unwrap()
}

/// `GET uri`.
pub async fn get(state: &AppState, uri: &str) -> Response<Body> {
    send(state, Request::get(uri).body(Body::empty()).unwrap()).await
}

/// The whole body.
pub async fn body(response: Response<Body>) -> Bytes {
    response.into_body().collect().await.unwrap().to_bytes()
}

/// The body as JSON.
pub async fn json(response: Response<Body>) -> serde_json::Value {
    let bytes = body(response).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

/// A spike rule on volume, the brief's rule, for every series.
pub const SPIKE_RULES: &str = r#"
[[sources]]
kind = "coinbase"

[[alerts.rules]]
name = "volume-spike"
kind = "spike"
measure = "volume"
"#;

/// The alert rules of a config text.
pub fn alert_config(toml_text: &str) -> cryptomon_core::alerting::AlertConfig {
    let config = cryptomon_core::config::Config::from_toml_str(toml_text).unwrap();
    cryptomon_core::alerting::AlertConfig::from_toml(config.alerts.as_ref()).unwrap()
}

/// `market()` transformed once more with the spike rule: coinbase's BTC-USD volume spike at
/// the last tick is stored as an alert event.
pub async fn market_with_alerts() -> Arc<MemoryStore> {
    let store = market().await;
    let options = pipeline::TransformOptions {
        mode: pipeline::TransformMode::Full,
        alerts: Arc::new(alert_config(SPIKE_RULES)),
        ..Default::default()
    };
    let report = pipeline::transform(store.as_ref(), &PolarsAggregator::default(), &options)
        .await
        .unwrap();
    assert_eq!(report.alert_events.len(), 1, "{:?}", report.alert_error);
    store
}
