//! `cryptomon candles --from --to`: the same range answer as the API, over a store whose
//! transform wrote a history day; the cap and a reversed range are one-line errors.

mod common;

use std::process::{Command, Output};
use std::sync::Arc;

use bytes::Bytes;
use common::*;
use cryptomon_core::keys::raw_key;
use cryptomon_core::pipeline::TransformOptions;
use cryptomon_core::{DynStore, FsStore, PolarsAggregator, StoreExt, pipeline};
use cryptomon_server::AppState;

fn cryptomon(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// A store with the day before the market (one snapshot in ten minutes) and the market,
/// transformed: the transform closes 2026-11-26 into history.
async fn store_with_history(dir: &std::path::Path) -> Arc<FsStore> {
    let store = Arc::new(FsStore::create(dir).unwrap());
    let ticks = (-600 - 1440..0).step_by(10).chain(0..TICKS);
    for i in ticks {
        for source in SOURCES {
            let snap = snapshot(source, i);
            let key = raw_key(&snap.source, snap.tick);
            store.put(&key, Bytes::from(snap.to_json())).await.unwrap();
        }
    }
    let report = pipeline::transform(
        store.as_ref(),
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
    assert!(
        report.history.iter().any(|d| d.date == "2026-11-26"),
        "{:?}",
        report.history
    );
    store
}

#[tokio::test]
async fn candles_over_a_range_are_the_apis() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_history(dir.path()).await;
    let path = dir.path().to_str().unwrap();
    let (from, to) = ("2026-11-26T00:00:00Z", "2026-11-27T12:00:00Z");
    let out = cryptomon(&[
        "candles",
        "--store",
        path,
        "--source",
        "kraken",
        "--pair",
        "ETH-USD",
        "--interval",
        "1h",
        "--from",
        from,
        "--to",
        to,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let cli: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // 34 hours of one snapshot in ten minutes, then the market's 2 hours; the window holds
    // only the last 24 of them, the first 12 come from the history day.
    let candles = cli["candles"].as_array().unwrap();
    assert_eq!(candles.len(), 34 + 2, "{cli}");
    assert_eq!(candles[0]["t"], "2026-11-26T00:00:00Z");
    assert_eq!(candles[0]["n"], 6);

    let dyn_store: DynStore = store;
    let state = AppState::new(dyn_store);
    let uri = format!("/api/candles?source=kraken&pair=ETH-USD&interval=1h&from={from}&to={to}");
    let api = json(get(&state, &uri).await).await;
    assert_eq!(cli, api);

    let out = cryptomon(&[
        "candles",
        "--store",
        path,
        "--source",
        "kraken",
        "--pair",
        "ETH-USD",
        "--interval",
        "1m",
        "--from",
        "2026-11-20T00:00:00Z",
        "--to",
        "2026-11-30T00:00:00Z",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("5000") && stderr.contains("coarser"),
        "{stderr}"
    );

    let out = cryptomon(&[
        "candles", "--store", path, "--source", "kraken", "--pair", "ETH-USD", "--from", to,
        "--to", from,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--from"), "{stderr}");
}
