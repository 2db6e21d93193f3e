//! `/api/candles` over a range: the window and the stored history days merged (the window wins
//! a minute both hold), the cap on candles, bad ranges, and a corrupt day skipped and reported.

mod common;

use axum::http::StatusCode;
use bytes::Bytes;
use common::*;
use cryptomon_core::keys::{history_key, raw_key};
use cryptomon_core::{
    CandleInterval, Measure, Pair, Point, SourceName, StoreExt, engine, pipeline,
};
use cryptomon_mock::MemoryStore;
use serde_json::Value;

/// Snapshots every ten minutes from the start of 2026-11-25 to the market's start (10:00 on
/// the 27th), and the market's first half hour again at twice its prices: history the window
/// must win over.
async fn with_history(store: &MemoryStore) {
    let past = MemoryStore::new();
    let first = -600 - 2 * 1440;
    for i in (first..30).step_by(10) {
        for source in SOURCES {
            let mut snap = snapshot(source, i);
            if i >= 0 {
                for q in &mut snap.quotes {
                    q.price *= 2.0;
                }
            }
            let key = raw_key(&snap.source, snap.tick);
            past.put(&key, Bytes::from(snap.to_json())).await.unwrap();
        }
    }
    for date in ["2026-11-25", "2026-11-26", "2026-11-27"] {
        pipeline::repair_history(&past, date).await.unwrap();
        let day = past.get(&history_key(date)).await.unwrap().unwrap();
        store.put(&history_key(date), day.body).await.unwrap();
    }
    store
        .put(
            &history_key("2026-11-24"),
            Bytes::from_static(b"PAR1 not parquet"),
        )
        .await
        .unwrap();
}

/// What the range should hold for `source:pair`: the history's samples before the window,
/// then the window's.
async fn expected(store: &MemoryStore, source: &str, pair: &str) -> Vec<Point> {
    let window = pipeline::read_window(store).await.unwrap().unwrap();
    let (s, p) = (SourceName::new(source).unwrap(), Pair::new(pair).unwrap());
    let recent = engine::points(&window, &s, &p, Measure::Price).unwrap();
    let pair_index = PAIRS.iter().position(|&x| x == pair).unwrap();
    let mut out: Vec<Point> = (-600 - 2 * 1440..0)
        .step_by(10)
        .map(|i| {
            let snap = snapshot(source, i);
            Point {
                t: snap.tick,
                v: snap.quotes[pair_index].price,
            }
        })
        .collect();
    out.extend(recent);
    out
}

async fn range(state: &cryptomon_server::AppState, query: &str) -> (StatusCode, Value) {
    let response = get(state, &format!("/api/candles?{query}")).await;
    let status = response.status();
    (status, json(response).await)
}

#[tokio::test]
async fn a_range_merges_history_and_window_and_reports_a_corrupt_day() {
    let store = market().await;
    with_history(&store).await;
    let state = state(store.clone());
    let (status, got) = range(
        &state,
        "source=kraken&pair=ETH-USD&interval=5m&from=2026-11-24T00:00:00Z&to=2026-11-27T12:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let points = expected(&store, "kraken", "ETH-USD").await;
    let want = engine::bucket(points.iter().map(|p| (p.t.unix(), p.v)), CandleInterval::M5);
    assert_eq!(got["candles"], serde_json::to_value(&want).unwrap());
    // 2 days and 10 hours of one sample in ten minutes, then 2 hours of every minute.
    assert_eq!(want.len(), (2 * 144 + 60) + 24);
    let skipped = got["skipped_days"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{got}");
    assert_eq!(skipped[0]["date"], "2026-11-24");

    // Days: the 25th, 26th and 27th, each a whole candle of what the range holds.
    let (status, got) = range(
        &state,
        "source=kraken&pair=ETH-USD&interval=1d&from=2026-11-25T00:00:00Z&to=2026-11-27T12:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    let days = got["candles"].as_array().unwrap();
    assert_eq!(days.len(), 3);
    assert_eq!(days[2]["t"], "2026-11-27T00:00:00Z");
    assert_eq!(days[2]["n"], 60 + 120);
    assert!(got.get("skipped_days").is_none(), "{got}");
}

#[tokio::test]
async fn the_range_is_capped_and_checked() {
    let store = market().await;
    with_history(&store).await;
    let state = state(store);
    let base = "source=kraken&pair=ETH-USD";
    // 3.5 days of minutes: past the cap.
    let (status, got) = range(
        &state,
        &format!("{base}&interval=1m&from=2026-11-24T00:00:00Z&to=2026-11-27T12:00:00Z"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = got["error"].as_str().unwrap();
    assert!(
        message.contains("5000") && message.contains("coarser interval"),
        "{message}"
    );
    // From the epoch: counted from the first stored day, so a whole-history query is fine.
    let (status, got) = range(
        &state,
        &format!("{base}&interval=1d&from=1970-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{got}");
    assert_eq!(got["candles"].as_array().unwrap().len(), 3);

    for (query, status, names) in [
        (
            format!("{base}&from=2026-11-27T12:00:00Z&to=2026-11-27T11:00:00Z"),
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            format!("{base}&from=2026-11-28T00:00:00Z"),
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            format!("{base}&from=yesterday"),
            StatusCode::BAD_REQUEST,
            "from",
        ),
        (
            format!("{base}&to=2026-11-27%2012:00:00Z"),
            StatusCode::BAD_REQUEST,
            "to",
        ),
        (
            format!("{base}&interval=1w&to=2026-11-27T12:00:00Z"),
            StatusCode::BAD_REQUEST,
            "interval",
        ),
        (
            "source=okx&pair=ETH-USD&to=2026-11-27T12:00:00Z".to_owned(),
            StatusCode::NOT_FOUND,
            "okx:ETH-USD",
        ),
    ] {
        let (got_status, got) = range(&state, &query).await;
        assert_eq!(got_status, status, "{query}: {got}");
        let message = got["error"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");
    }
}

#[tokio::test]
async fn a_warm_read_is_the_cold_one_and_a_repaired_day_is_read_again() {
    let store = market().await;
    with_history(&store).await;
    let day = store
        .get(&history_key("2026-11-26"))
        .await
        .unwrap()
        .unwrap();
    let state = state(store.clone());
    let query =
        "source=kraken&pair=SOL-USD&interval=1h&from=2026-11-26T00:00:00Z&to=2026-11-26T23:59:00Z";
    let (status, first) = range(&state, query).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["candles"].as_array().unwrap().len(), 24);
    // The same answer again, from the cache; and after the day is repaired with other bytes,
    // from the new day.
    let (_, again) = range(&state, query).await;
    assert_eq!(again, first);
    store
        .put(&history_key("2026-11-26"), Bytes::from_static(b"garbage"))
        .await
        .unwrap();
    let (status, after) = range(&state, query).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(after["skipped_days"][0]["date"], "2026-11-26", "{after}");
    store
        .put(&history_key("2026-11-26"), day.body)
        .await
        .unwrap();
    let (_, restored) = range(&state, query).await;
    assert_eq!(restored, first);
}
