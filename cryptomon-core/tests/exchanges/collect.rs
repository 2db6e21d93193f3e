//! Collection end to end: config, sources, snapshots in a file store.

use cryptomon_core::{FsStore, Snapshot, Store, StoreExt, collect_all};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

use crate::common::*;

#[tokio::test]
async fn every_source_writes_its_snapshot_and_a_failing_one_writes_nothing() {
    let server = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/ticker"))
        .respond_with(json_body(
            200,
            "coinbase/ticker_btc-usd_live_2026-06-19.json",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/products/BTC-USD/stats"))
        .respond_with(json_body(
            200,
            "coinbase/stats_btc-usd_live_2026-06-19.json",
        ))
        .mount(&server)
        .await;
    Mock::given(path("/0/public/Ticker"))
        .respond_with(json_body(200, KRAKEN_DOCS))
        .mount(&server)
        .await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json_body(400, "binance/error_400_invalid_symbol.json"))
        .mount(&server)
        .await;
    Mock::given(path("/simple/price"))
        .respond_with(json_body(
            200,
            "coingecko/simple_price_bitcoin_docs_example.json",
        ))
        .mount(&server)
        .await;
    let uri = server.uri();
    let sources = sources(
        &format!(
            r#"
        [[sources]]
        kind = "coinbase"
        pairs = ["BTC-USD"]
        base_url = "{uri}"
        [[sources]]
        kind = "kraken"
        pairs = ["BTC-USD"]
        base_url = "{uri}"
        [[sources]]
        kind = "binance"
        pairs = ["BTC-USDT"]
        base_url = "{uri}"
        [[sources]]
        kind = "coingecko"
        pairs = ["BTC-USD"]
        base_url = "{uri}"
        "#
        ),
        &quick_policy(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let results = collect_all(&sources, &store, TICK).await;

    let mut prices = Vec::new();
    for (name, result) in &results {
        if name.as_str() == "binance" {
            let e = result.as_ref().unwrap_err().to_string();
            assert!(e.contains("Invalid symbol."), "{e}");
            continue;
        }
        let report = result.as_ref().unwrap();
        assert!(report.written);
        let object = store.get(&report.key).await.unwrap().expect("written");
        let snapshot: Snapshot = serde_json::from_slice(&object.body).unwrap();
        snapshot.validate().unwrap();
        assert_eq!(snapshot.tick, TICK);
        assert_eq!(snapshot.quotes[0].pair.as_str(), "BTC-USD");
        prices.push((name.to_string(), snapshot.quotes[0].price));
    }
    assert_eq!(
        prices,
        [
            ("coinbase".to_owned(), 63212.97),
            ("kraken".to_owned(), 30303.2),
            ("coingecko".to_owned(), 67187.3358936566)
        ]
    );
    let binance = store.list("raw/source=binance/").await.unwrap();
    assert!(binance.is_empty(), "an error answer writes nothing");
}
