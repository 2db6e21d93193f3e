//! `cryptomon collect --once --config` against local servers that answer like the exchanges,
//! with recorded bodies: snapshots hold exactly the bodies' prices under canonical pairs, and a
//! failing exchange writes nothing, says why, and makes the exit code non-zero.

use std::path::Path;
use std::process::Command;

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cryptomon-core/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

fn snapshot(store: &Path, source: &str) -> Option<serde_json::Value> {
    let dir = store.join(format!("raw/source={source}"));
    let date = std::fs::read_dir(dir).ok()?.next()?.ok()?.path();
    let file = std::fs::read_dir(date).ok()?.next()?.ok()?.path();
    Some(serde_json::from_slice(&std::fs::read(file).ok()?).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_writes_the_bodies_prices_and_reports_a_failing_exchange() {
    let kraken = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/0/public/Ticker"))
        .and(query_param("pair", "XBTUSD"))
        .respond_with(json(200, "kraken/ticker_xbtusd_docs_example.json"))
        .expect(1)
        .mount(&kraken)
        .await;
    let coinbase = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/ticker"))
        .respond_with(json(200, "coinbase/ticker_btc-usd_live_2026-06-19.json"))
        .mount(&coinbase)
        .await;
    Mock::given(path("/products/BTC-USD/stats"))
        .respond_with(json(200, "coinbase/stats_btc-usd_live_2026-06-19.json"))
        .mount(&coinbase)
        .await;
    let binance = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(400, "binance/error_400_invalid_symbol.json"))
        .mount(&binance)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{}\"\n",
            kraken.uri(),
            coinbase.uri(),
            binance.uri()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = tokio::task::spawn_blocking({
        let (config, store) = (config.clone(), store.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_cryptomon"))
                .args(["collect", "--once", "--config"])
                .arg(&config)
                .arg("--store")
                .arg(&store)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "binance failed, so the exit is non-zero: {stdout}"
    );
    assert!(
        stdout.contains("kraken: wrote raw/source=kraken/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coinbase: wrote raw/source=coinbase/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("binance: FAILED") && stdout.contains("Invalid symbol"),
        "{stdout}"
    );

    let k = snapshot(&store, "kraken").expect("kraken snapshot");
    assert_eq!(k["schema"], "cryptomon.snapshot/v1");
    assert_eq!(k["quotes"][0]["pair"], "BTC-USD");
    assert_eq!(k["quotes"][0]["price"], 30303.2);
    let c = snapshot(&store, "coinbase").expect("coinbase snapshot");
    assert_eq!(c["quotes"][0]["pair"], "BTC-USD");
    assert_eq!(c["quotes"][0]["price"], 63212.97);
    assert!(
        snapshot(&store, "binance").is_none(),
        "an error answer writes nothing"
    );
}

/// An API key given through `api_key_env` reaches the exchange in its header and nowhere else:
/// not in logs at debug level, not in error messages, not in stored snapshots, even when the
/// exchange echoes it back in its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_never_reaches_logs_errors_or_stored_bodies() {
    const KEY: &str = "CG-planted-key-7f3a9c1e";
    let coingecko = MockServer::start().await;
    // The first call answers with prices and the key echoed in an extra field; the second
    // (another run) fails with the key in the error body.
    Mock::given(path("/simple/price"))
        .and(wiremock::matchers::header("x-cg-demo-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"bitcoin": {{"usd": 91234.5, "usd_24h_vol": 1.5e10}}, "echo": "{KEY}"}}"#),
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&coingecko)
        .await;
    Mock::given(path("/simple/price"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            format!(r#"{{"status": {{"error_code": 10002, "error_message": "bad key {KEY}"}}}}"#),
            "application/json",
        ))
        .mount(&coingecko)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\napi_key_env = \"TEST_CG_KEY\"\n",
            coingecko.uri()
        ),
    )
    .unwrap();
    let mut output = String::new();
    for store in ["a", "b"] {
        let (config, store) = (config.clone(), dir.path().join(store));
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_cryptomon"))
                .args(["-vv", "collect", "--once", "--config"])
                .arg(&config)
                .arg("--store")
                .arg(&store)
                .env("TEST_CG_KEY", KEY)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        output.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The runs did happen: one snapshot stored, one failure reported.
    assert!(
        snapshot(&dir.path().join("a"), "coingecko").is_some(),
        "{output}"
    );
    assert!(output.contains("401"), "{output}");
    assert!(
        !output.contains(KEY),
        "the key leaked into the output:\n{output}"
    );
    let stored = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join("a/raw/source=coingecko"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(!stored.contains(KEY), "the key was stored: {stored}");
}
