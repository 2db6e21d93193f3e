//! Extreme but valid input through the pipeline and every API route: whatever prices pass
//! validation, the summary round-trips through JSON and every route answers 200; a stored
//! snapshot or summary that an older writer left with an extreme price or a `null` metric
//! costs that snapshot or that series, never the rest (issue 20).

mod common;

use cryptomon_core::pipeline::TransformOptions;
use std::sync::Arc;

use axum::http::StatusCode;
use bytes::Bytes;
use common::*;
use cryptomon_core::keys::{SUMMARY_KEY, raw_key};
use cryptomon_core::model::{AMOUNT_RANGE, PRICE_RANGE};
use cryptomon_core::{
    Pair, PolarsAggregator, Quote, Snapshot, SourceName, StoreExt, Summary, Tick, pipeline,
};
use cryptomon_mock::MemoryStore;
use proptest::prelude::*;

/// Every route of the API over `store`'s aggregates, each of which must answer 200.
async fn every_route_answers_200(store: Arc<MemoryStore>) -> Result<(), TestCaseError> {
    let state = state(store.clone());
    let summary = stored_summary(&store).await;
    let mut uris = vec![
        "/api/summary".to_owned(),
        "/api/health".to_owned(),
        "/api/metrics".to_owned(),
        "/api/alerts".to_owned(),
    ];
    for s in &summary.series {
        for measure in ["price", "volume"] {
            if measure == "price" || s.volume_last.is_some() {
                uris.push(format!("/api/metrics/{}:{}:{measure}", s.source, s.pair));
            }
        }
        for interval in ["1m", "5m", "15m", "1h"] {
            uris.push(format!(
                "/api/candles?source={}&pair={}&interval={interval}",
                s.source, s.pair
            ));
        }
    }
    for uri in uris {
        let response = get(&state, &uri).await;
        let status = response.status();
        let text = body(response).await;
        prop_assert_eq!(
            status,
            StatusCode::OK,
            "{}: {}",
            uri,
            String::from_utf8_lossy(&text)
        );
    }
    Ok(())
}

/// A price anywhere in the accepted range, its bounds included, on a log scale.
fn price() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(*PRICE_RANGE.start()),
        Just(*PRICE_RANGE.end()),
        (-15.0f64..=15.0).prop_map(|e| 10f64
            .powf(e)
            .clamp(*PRICE_RANGE.start(), *PRICE_RANGE.end())),
    ]
}

/// A volume: none, 0, or anywhere in the accepted range.
fn volume() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        Just(None),
        Just(Some(0.0)),
        Just(Some(*AMOUNT_RANGE.end())),
        (-15.0f64..=18.0).prop_map(|e| Some(
            10f64
                .powf(e)
                .clamp(*AMOUNT_RANGE.start(), *AMOUNT_RANGE.end())
        )),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_prices_give_a_summary_every_route_serves(
        // (source, pair, minute, price, volume): two sources, two pairs, up to 70 minutes.
        rows in prop::collection::vec(
            (0usize..2, 0usize..2, 0i64..70, price(), volume()),
            1..120,
        ),
    ) {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let store = Arc::new(MemoryStore::new());
            let t0 = Tick::parse(START).unwrap();
            let mut by_key = std::collections::BTreeMap::new();
            for (s, p, m, price, volume) in rows {
                let tick = t0.add_secs(60 * m);
                let snap = by_key.entry((s, m)).or_insert_with(|| Snapshot::new(
                    SourceName::new(["alpha", "beta"][s]).unwrap(),
                    tick,
                    tick.to_datetime(),
                    vec![],
                    serde_json::json!({}),
                ));
                let pair = Pair::new(["BTC-USD", "DUST-BTC"][p]).unwrap();
                if snap.quotes.iter().all(|q| q.pair != pair) {
                    let mut q = Quote::new(pair, price);
                    q.volume_24h = volume;
                    snap.quotes.push(q);
                }
            }
            for snap in by_key.values() {
                snap.validate().map_err(|e| TestCaseError::fail(e.to_string()))?;
                store.put(&raw_key(&snap.source, snap.tick), Bytes::from(snap.to_json())).await.unwrap();
            }
            let report = pipeline::transform(store.as_ref(), &PolarsAggregator::default(), &TransformOptions::default()).await.unwrap();
            prop_assert!(report.skipped.is_empty(), "{:?}", report.skipped);
            let summary = stored_summary(&store).await;
            prop_assert_eq!(summary.series.len(), report.series);
            // Every metric is a finite number or null, so the summary reads back whole.
            let stored = store.get(SUMMARY_KEY).await.unwrap().unwrap().body;
            let (read, degraded) = Summary::from_json(&stored).unwrap();
            prop_assert!(degraded.is_empty(), "{:?}", degraded);
            prop_assert_eq!(&read, &summary);
            every_route_answers_200(store).await
        })?;
    }
}

/// A snapshot an older collector stored with a price of 1e-320 is skipped and named by the
/// transform; every other snapshot is taken in and served (issue 20).
#[tokio::test]
async fn a_stored_snapshot_with_an_extreme_price_is_skipped_and_named() {
    let store = Arc::new(MemoryStore::new());
    write_ticks(&store, 0, TICKS).await;
    // The old collector's snapshot of a dust market: finite and positive, so it passed.
    let mut dust = snapshot("kraken", TICKS - 1);
    dust.source = SourceName::new("oldkraken").unwrap();
    dust.quotes[0].price = 1e-320;
    let key = raw_key(&dust.source, dust.tick);
    let text = serde_json::to_vec(&dust).unwrap();
    store.put(&key, Bytes::from(text.clone())).await.unwrap();

    let report = pipeline::transform(
        store.as_ref(),
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    let skipped: Vec<_> = report.skipped.iter().filter(|s| s.key == key).collect();
    assert_eq!(skipped.len(), 1, "{:?}", report.skipped);
    assert!(
        skipped[0]
            .reason
            .contains("BTC-USD: price 1e-320 is outside the accepted range"),
        "{}",
        skipped[0].reason
    );
    assert_eq!(
        store.get(&key).await.unwrap().unwrap().body,
        text,
        "kept as stored"
    );
    assert_eq!(report.series, SOURCES.len() * PAIRS.len());
    every_route_answers_200(store).await.unwrap();
}

/// A summary an older transform wrote with `null` in a required metric (its infinite
/// `change_pct`) costs that series only: `/api/summary` serves the others, health is `ok`.
#[tokio::test]
async fn a_stored_summary_with_a_null_metric_loses_that_series_only() {
    let store = market().await;
    let mut summary: serde_json::Value =
        serde_json::from_slice(&store.get(SUMMARY_KEY).await.unwrap().unwrap().body).unwrap();
    let series = summary["series"].as_array().unwrap().len();
    summary["series"][0]["change_pct"] = serde_json::Value::Null;
    summary["series"][1]["price_std"] = serde_json::json!("NaN");
    store
        .put(SUMMARY_KEY, Bytes::from(summary.to_string()))
        .await
        .unwrap();

    let state = state(store.clone());
    let served = json(get(&state, "/api/summary").await).await;
    assert_eq!(served["series"].as_array().unwrap().len(), series - 2);
    let health = json(get(&state, "/api/health").await).await;
    assert_ne!(health["status"], "empty", "{health}");
    assert_ne!(health["status"], "unavailable", "{health}");
    let metrics = json(get(&state, "/api/metrics").await).await;
    assert!(!metrics.as_array().unwrap().is_empty());
    // The transform reads it the same way, and its next run writes a whole summary again.
    let read = pipeline::read_summary(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.series.len(), series - 2);
}
