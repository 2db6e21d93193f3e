//! CoinGecko: `simple/price` by coin id, with an optional API key.

use cryptomon_core::config::Config;
use cryptomon_core::exchange::build_sources_with;
use cryptomon_core::secrets::Secrets;
use wiremock::matchers::{header, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const BTC_ETH: &str = "kind = \"coingecko\"\npairs = [\"BTC-USD\", \"ETH-USD\"]";

#[tokio::test]
async fn simple_price_bodies_parse_to_the_right_quotes() {
    let server = MockServer::start().await;
    Mock::given(path("/simple/price"))
        .and(query_param("ids", "bitcoin,ethereum"))
        .and(query_param("vs_currencies", "usd"))
        .and(query_param("include_24hr_vol", "true"))
        .and(query_param("include_last_updated_at", "true"))
        .respond_with(json_body(
            200,
            "coingecko/simple_price_btc_eth_CONSTRUCTED.json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = source(&server, BTC_ETH, &quick_policy());
    let f = s.fetch(TICK).await.unwrap();
    let btc = quote_of(&f, "BTC-USD");
    assert_eq!(btc.price, 67187.3358936566);
    assert_eq!(btc.quote_volume_24h, Some(31260929299.5248));
    assert_eq!(btc.volume_24h, None, "CoinGecko gives only a quote volume");
    assert_eq!(
        (btc.bid, btc.ask, btc.high_24h, btc.low_24h),
        (None, None, None, None)
    );
    assert_eq!(btc.exchange_time.unwrap().timestamp(), 1711356300);
    let eth = quote_of(&f, "ETH-USD");
    assert_eq!((eth.price, eth.quote_volume_24h), (3456.7, Some(2e10)));
    assert!(f.problems.is_empty(), "{:?}", f.problems);
}

#[tokio::test]
async fn ids_from_the_config_and_a_missing_coin_reported() {
    let server = MockServer::start().await;
    Mock::given(path("/simple/price"))
        .and(query_param("ids", "akash-network,bitcoin"))
        .respond_with(json_body(
            200,
            "coingecko/simple_price_akash_live_2026-07-17.json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = source(
        &server,
        "kind = \"coingecko\"\npairs = [\"AKT-USD\", \"BTC-USD\"]\nids = { \"AKT-USD\" = \"akash-network\" }",
        &quick_policy(),
    );
    let f = s.fetch(TICK).await.unwrap();
    let akt = quote_of(&f, "AKT-USD");
    assert_eq!(
        (akt.price, akt.quote_volume_24h, akt.exchange_time),
        (0.543761, Some(3719477.70), None)
    );
    assert_eq!(
        f.problems,
        ["BTC-USD: missing from the answer (coin id \"bitcoin\")"]
    );
}

#[tokio::test]
async fn error_bodies_and_an_empty_answer_give_the_right_errors() {
    assert_errors(
        BTC_ETH,
        &[
            ErrorCase {
                status: 200,
                fixture: "coingecko/simple_price_unknown_id_empty.json",
                expected: "no valid quote",
                retryable: false,
                requests: 1,
            },
            ErrorCase {
                status: 400,
                fixture: "coingecko/error_400_10011_demo_key_on_pro_host.json",
                expected: "(error code 10011)",
                retryable: false,
                requests: 1,
            },
            ErrorCase {
                status: 429,
                fixture: "coingecko/error_429_rate_limit.json",
                expected: "rate limited (HTTP 429, no Retry-After)",
                retryable: true,
                requests: 1,
            },
        ],
    )
    .await;
}

#[tokio::test]
async fn the_api_key_goes_in_a_header_and_nowhere_else() {
    // `cargo test` sets CARGO_PKG_NAME for the test process: an env var with a known value,
    // without `set_var` (unsafe in edition 2024, and unsafe code is forbidden here).
    let key = std::env::var("CARGO_PKG_NAME").expect("cargo sets it");
    let server = MockServer::start().await;
    Mock::given(path("/simple/price"))
        .and(header("x-cg-demo-api-key", key.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"bitcoin": {"usd": 1.5, "note": format!("key {key}")}}),
        ))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/simple/price"))
        .respond_with(
            ResponseTemplate::new(401)
                .set_body_json(serde_json::json!({"error": format!("invalid key {key}")})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let s = source(
        &server,
        "kind = \"coingecko\"\npairs = [\"BTC-USD\"]\napi_key_env = \"CARGO_PKG_NAME\"",
        &quick_policy(),
    );
    assert!(!format!("{s:?}").contains(&key), "not in Debug");
    let f = s.fetch(TICK).await.unwrap();
    assert_eq!(f.quotes[0].price, 1.5);
    assert!(
        !f.raw.to_string().contains(&key),
        "stripped from raw: {}",
        f.raw
    );
    assert_eq!(f.raw["bitcoin"]["note"], "key [redacted]");
    let (message, _) = source_error(s.fetch(TICK).await.unwrap_err());
    assert!(
        message.contains("invalid key [redacted]") && !message.contains(&key),
        "{message}"
    );
}

#[test]
fn an_unset_key_variable_stops_start_up_naming_the_entry() {
    let config = Config::from_toml_str(
        "[[sources]]\nkind = \"coingecko\"\napi_key_env = \"CRYPTOMON_TEST_UNSET_KEY_VAR\"\n",
    )
    .unwrap();
    let e = build_sources_with(&config, &quick_policy(), &Secrets::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("sources[0] (coingecko)") && e.contains("CRYPTOMON_TEST_UNSET_KEY_VAR"),
        "{e}"
    );
    // The same name given as a secret: the source builds.
    let secrets: Secrets = [("CRYPTOMON_TEST_UNSET_KEY_VAR".to_owned(), "k".to_owned())]
        .into_iter()
        .collect();
    build_sources_with(&config, &quick_policy(), &secrets).unwrap();
}
