//! The exchange sources against a local mock server (wiremock on loopback) serving real
//! exchange bodies from `tests/fixtures` (see its PROVENANCE.md): success bodies parse to the
//! right quotes, error bodies to the right errors, and the wire behaviour (retries, timeouts,
//! `Retry-After`, request counts) is what the issue asks for. No test talks to the internet.

use std::path::PathBuf;
use std::time::Duration;

use cryptomon_core::config::Config;
use cryptomon_core::exchange::{HttpPolicy, build_sources_with};
use cryptomon_core::secrets::Secrets;
use cryptomon_core::{DynSource, Error, Fetched, Quote, Tick};
use serde_json::Value;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TICK: Tick = Tick::from_unix(1_796_000_000);

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json_body(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

/// Fast retries and a short budget, for tests on real time.
fn quick_policy() -> HttpPolicy {
    HttpPolicy {
        timeout: Some(Duration::from_millis(300)),
        max_retries: 2,
        min_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        budget: Duration::from_secs(5),
        rate_limit_pause: Duration::from_secs(10),
        pool_idle_timeout: None,
    }
}

/// The production shape for tests with paused time: no request timer and no pool timer, which
/// paused time would fire while the mock server (on its own thread) answers.
fn paused_policy() -> HttpPolicy {
    HttpPolicy {
        timeout: None,
        pool_idle_timeout: None,
        ..HttpPolicy::for_interval(60)
    }
}

/// The one source of a `[[sources]]` entry pointed at `server`.
fn source(server: &MockServer, entry: &str, policy: &HttpPolicy) -> DynSource {
    let toml = format!("[[sources]]\nbase_url = \"{}\"\n{entry}\n", server.uri());
    let config = Config::from_toml_str(&toml).unwrap();
    build_sources_with(&config, policy, &Secrets::default())
        .unwrap()
        .remove(0)
}

fn quote_of<'a>(fetched: &'a Fetched, pair: &str) -> &'a Quote {
    fetched
        .quotes
        .iter()
        .find(|q| q.pair.as_str() == pair)
        .unwrap_or_else(|| panic!("no {pair} in {:?}", fetched.quotes))
}

fn source_error(e: Error) -> (String, bool) {
    let retryable = e.is_retryable();
    match e {
        Error::Source {
            source_name,
            message,
            ..
        } => (format!("{source_name}: {message}"), retryable),
        other => panic!("expected a source error, got {other}"),
    }
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

mod coinbase {
    use super::*;

    async fn mount_product(server: &MockServer, product: &str, ticker: &str, stats: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/products/{product}/ticker")))
            .respond_with(json_body(200, ticker))
            .expect(1)
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path(format!("/products/{product}/stats")))
            .respond_with(json_body(200, stats))
            .expect(1)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn ticker_and_stats_bodies_parse_to_the_right_quotes() {
        let server = MockServer::start().await;
        mount_product(
            &server,
            "BTC-USD",
            "coinbase/ticker_btc-usd_live_2026-06-19.json",
            "coinbase/stats_btc-usd_live_2026-06-19.json",
        )
        .await;
        mount_product(
            &server,
            "ETH-USD",
            "coinbase/ticker_docs_example.json",
            "coinbase/stats_docs_example.json",
        )
        .await;
        let s = source(
            &server,
            "kind = \"coinbase\"\npairs = [\"BTC-USD\", \"ETH-USD\"]",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.problems, Vec::<String>::new());
        let btc = quote_of(&f, "BTC-USD");
        assert_eq!(btc.price, 63212.97);
        assert_eq!((btc.bid, btc.ask), (Some(63212.97), Some(63212.98)));
        assert_eq!(btc.volume_24h, Some(4916.94797396));
        assert_eq!((btc.high_24h, btc.low_24h), (Some(63351.3), Some(62159.76)));
        assert_eq!(btc.quote_volume_24h, None);
        assert_eq!(
            btc.exchange_time.unwrap().timestamp_nanos_opt(),
            Some(1_781_887_413_016_274_911)
        );
        let eth = quote_of(&f, "ETH-USD");
        assert_eq!(
            (eth.price, eth.high_24h, eth.low_24h),
            (6268.48, Some(6441.37), Some(5261.69))
        );
        // The bodies are kept verbatim under the product.
        assert_eq!(f.raw["BTC-USD"]["ticker"]["trade_id"], 1040406588);
        assert_eq!(f.raw["ETH-USD"]["stats"]["rfq_volume_24hour"], "78.23");
    }

    #[tokio::test]
    async fn an_unknown_product_is_reported_while_the_others_are_kept() {
        let server = MockServer::start().await;
        mount_product(
            &server,
            "BTC-USD",
            "coinbase/ticker_btc-usd_live_2026-06-19.json",
            "coinbase/stats_btc-usd_java_comment.json",
        )
        .await;
        Mock::given(path("/products/FOO-USD/ticker"))
            .respond_with(json_body(404, "coinbase/error_404_notfound.json"))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/products/FOO-USD/stats"))
            .respond_with(json_body(404, "coinbase/error_404_notfound.json"))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"coinbase\"\npairs = [\"BTC-USD\", \"FOO-USD\"]",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.quotes.len(), 1);
        assert_eq!(quote_of(&f, "BTC-USD").high_24h, Some(81534.28));
        assert_eq!(f.problems.len(), 1, "{:?}", f.problems);
        assert!(
            f.problems[0].starts_with("FOO-USD: dropped")
                && f.problems[0].contains("HTTP 404: NotFound"),
            "{:?}",
            f.problems
        );
    }

    #[tokio::test]
    async fn error_bodies_give_the_right_errors() {
        for (status, file, expected, retryable, calls) in [
            (
                404,
                "coinbase/error_404_notfound.json",
                "HTTP 404: NotFound",
                false,
                2,
            ),
            (
                400,
                "coinbase/error_400_invalid_price_docs.json",
                "HTTP 400: Invalid Price",
                false,
                2,
            ),
            // A 429 without Retry-After: given up for this tick, not retried, not hammered.
            (
                429,
                "coinbase/error_429_public_rate_limit.json",
                "Public rate limit exceeded",
                true,
                2,
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(method("GET"))
                .respond_with(json_body(status, file))
                .expect(calls)
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"coinbase\"\npairs = [\"BTC-USD\"]",
                &quick_policy(),
            );
            let (message, is_retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(message.starts_with("coinbase: "), "{message}");
            assert!(message.contains(expected), "{file}: {message}");
            assert_eq!(is_retryable, retryable, "{file}");
        }
    }
}

mod kraken {
    use super::*;

    #[tokio::test]
    async fn docs_ticker_maps_xxbtzusd_back_to_btc_usd() {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/0/public/Ticker"))
            .and(query_param("pair", "XBTUSD"))
            .respond_with(json_body(200, "kraken/ticker_xbtusd_docs_example.json"))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\"]",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        let q = quote_of(&f, "BTC-USD");
        assert_eq!(
            (q.price, q.bid, q.ask),
            (30303.2, Some(30300.0), Some(30300.1))
        );
        assert_eq!(q.volume_24h, Some(4412.73601799));
        assert_eq!((q.high_24h, q.low_24h), (Some(31631.0), Some(29868.3)));
        assert_eq!((q.quote_volume_24h, q.exchange_time), (None, None));
        assert_eq!(f.raw["result"]["XXBTZUSD"]["o"], "30502.80000");
        assert!(f.problems.is_empty(), "{:?}", f.problems);
    }

    #[tokio::test]
    async fn renamed_pairs_map_back_and_a_bad_price_is_dropped() {
        let server = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .and(query_param("pair", "XBTUSD,XBTUSDT,XDGUSD,ETHUSD,SOLUSD"))
            .respond_with(json_body(
                200,
                "kraken/ticker_renamed_pairs_CONSTRUCTED.json",
            ))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\", \"BTC-USDT\", \"DOGE-USD\", \"ETH-USD\", \"SOL-USD\"]",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        let pairs: Vec<_> = f.quotes.iter().map(|q| q.pair.as_str()).collect();
        assert_eq!(pairs.len(), 3, "{pairs:?}");
        assert_eq!(quote_of(&f, "BTC-USD").price, 30303.2);
        assert_eq!(quote_of(&f, "BTC-USDT").price, 43539.7);
        let doge = quote_of(&f, "DOGE-USD");
        assert_eq!((doge.price, doge.volume_24h), (0.081225, Some(2.5e7)));
        assert!(
            f.problems
                .iter()
                .any(|p| p.starts_with("ETH-USD: dropped: price 0")),
            "{:?}",
            f.problems
        );
        assert!(
            f.problems
                .contains(&"SOL-USD: missing from the answer".to_owned()),
            "{:?}",
            f.problems
        );
    }

    #[tokio::test]
    async fn http_200_error_bodies_give_the_right_errors() {
        for (file, expected, retryable) in [
            (
                "kraken/error_unknown_asset_pair.json",
                "EQuery:Unknown asset pair",
                false,
            ),
            (
                "kraken/error_invalid_arguments.json",
                "EGeneral:Invalid arguments",
                false,
            ),
            (
                "kraken/error_too_many_requests.json",
                "EGeneral:Too many requests",
                true,
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/0/public/Ticker"))
                .respond_with(json_body(200, file))
                .expect(1)
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"kraken\"\npairs = [\"BTC-USD\"]",
                &quick_policy(),
            );
            let (message, is_retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(
                message.starts_with("kraken: ") && message.contains(expected),
                "{message}"
            );
            assert_eq!(is_retryable, retryable, "{file}");
        }
    }

    #[tokio::test]
    async fn a_cloudflare_html_page_is_retried_then_reported_not_a_panic() {
        let server = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(ResponseTemplate::new(520).set_body_raw(
                fixture("kraken/error_520_cloudflare_CONSTRUCTED.html"),
                "text/html",
            ))
            .expect(3) // the first attempt and max_retries = 2
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\"]",
            &quick_policy(),
        );
        let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(message.contains("HTTP 520 after 3 attempts"), "{message}");
        assert!(
            message.contains("an HTML page (api.kraken.com | 520"),
            "{message}"
        );
        assert!(!message.contains("<html"), "{message}");
        assert!(retryable);
    }

    #[tokio::test]
    async fn an_html_page_with_status_200_is_an_error() {
        let server = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_raw("<html><body>maintenance</body></html>", "text/html"),
            )
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\"]",
            &quick_policy(),
        );
        let (message, _) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(
            message.contains("HTTP 200: an HTML page, not JSON"),
            "{message}"
        );
    }
}

mod binance {
    use super::*;

    #[tokio::test]
    async fn full_and_mini_tickers_parse_to_the_right_quotes() {
        for file in [
            "binance/ticker_24hr_docs_example_full.json",
            "binance/ticker_24hr_docs_example_mini.json",
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/api/v3/ticker/24hr"))
                .and(query_param("symbols", "[\"BNBBTC\"]"))
                .respond_with(json_body(200, file))
                .expect(1)
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"binance\"\npairs = [\"BNB-BTC\"]",
                &quick_policy(),
            );
            let f = s.fetch(TICK).await.unwrap();
            let q = quote_of(&f, "BNB-BTC");
            assert_eq!(q.price, 4.000002, "{file}");
            assert_eq!(
                (q.volume_24h, q.quote_volume_24h),
                (Some(8913.3), Some(15.3))
            );
            assert_eq!((q.high_24h, q.low_24h), (Some(100.0), Some(0.1)));
            assert_eq!(q.exchange_time.unwrap().timestamp_millis(), 1499869899040);
            if file.contains("full") {
                assert_eq!((q.bid, q.ask), (Some(4.0), Some(4.000002)));
            } else {
                assert_eq!((q.bid, q.ask), (None, None), "MINI has no book");
            }
            assert_eq!(f.raw["symbol"], "BNBBTC");
        }
    }

    #[tokio::test]
    async fn every_market_in_one_snapshot() {
        // 2,500 markets shaped like the docs' FULL ticker, plus the idle and odd ones a real
        // every-market answer holds.
        let template: Value =
            serde_json::from_str(&fixture("binance/ticker_24hr_docs_example_full.json")).unwrap();
        let mut markets: Vec<Value> = (0..2500)
            .map(|i| {
                let mut m = template.clone();
                m["symbol"] = Value::from(format!("C{i}USDT"));
                m["lastPrice"] = Value::from(format!("{}.5", i + 1));
                m
            })
            .collect();
        let mut idle = template.clone();
        idle["symbol"] = "OLDBTC".into();
        idle["lastPrice"] = "0.00000000".into();
        idle["count"] = 0.into();
        markets.push(idle);
        let mut odd = template.clone();
        odd["symbol"] = "ABCXYZ".into();
        markets.push(odd);

        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .and(wiremock::matchers::query_param_is_missing("symbols"))
            .respond_with(ResponseTemplate::new(200).set_body_json(&markets))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"binance\"\npairs = \"all\"",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.quotes.len(), 2500);
        assert_eq!(
            quote_of(&f, "C41USDT".replace("USDT", "-USDT").as_str()).price,
            42.5
        );
        assert_eq!(f.problems.len(), 2, "{:?}", f.problems);
        assert!(f.problems[0].starts_with("1 markets without a trade"));
        assert!(f.problems[1].contains("ABCXYZ"));
        assert_eq!(f.raw.as_array().unwrap().len(), 2502);
    }

    #[tokio::test]
    async fn error_bodies_give_the_right_errors() {
        for (status, file, expected, retryable) in [
            (
                400,
                "binance/error_400_invalid_symbol.json",
                "HTTP 400: Invalid symbol. (code -1121)",
                false,
            ),
            (
                451,
                "binance/error_451_restricted_location.json",
                "HTTP 451: Service unavailable from a restricted location",
                false,
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/api/v3/ticker/24hr"))
                .respond_with(json_body(status, file))
                .expect(1)
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"binance\"\npairs = [\"BTC-USDT\"]",
                &quick_policy(),
            );
            let (message, is_retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(
                message.starts_with("binance: ") && message.contains(expected),
                "{message}"
            );
            assert_eq!(is_retryable, retryable, "{file}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ban_is_respected_across_ticks_until_retry_after() {
        for (status, file) in [
            (429, "binance/error_429_too_much_weight.json"),
            (418, "binance/error_418_ip_banned.json"),
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/api/v3/ticker/24hr"))
                .respond_with(json_body(status, file).insert_header("Retry-After", "120"))
                .up_to_n_times(1)
                .mount(&server)
                .await;
            Mock::given(path("/api/v3/ticker/24hr"))
                .respond_with(json_body(200, "binance/ticker_24hr_docs_example_full.json"))
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"binance\"\npairs = [\"BNB-BTC\"]",
                &paused_policy(),
            );
            let start = tokio::time::Instant::now();

            // 120 s does not fit in this tick's 45 s budget: given up at once, not waited.
            let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(
                message.contains(&format!("HTTP {status}, Retry-After 120 s")),
                "{message}"
            );
            assert!(message.contains("weight"), "{message}");
            assert!(retryable);
            assert_eq!(requests(&server).await, 1);
            assert!(start.elapsed() < Duration::from_secs(1));

            // The next tick, 60 s later, is still inside the ban: nothing is sent.
            tokio::time::advance(Duration::from_secs(60)).await;
            let (message, _) = source_error(s.fetch(TICK.add_secs(60)).await.unwrap_err());
            assert!(message.contains("left alone"), "{message}");
            assert_eq!(requests(&server).await, 1, "no request during the ban");

            // Once Retry-After has passed, the source asks again and succeeds.
            tokio::time::advance(Duration::from_secs(61)).await;
            let f = s.fetch(TICK.add_secs(120)).await.unwrap();
            assert_eq!(f.quotes[0].price, 4.000002);
            assert_eq!(requests(&server).await, 2);
        }
    }
}

mod coingecko {
    use super::*;

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
        for (status, file, expected, retryable) in [
            (
                200,
                "coingecko/simple_price_unknown_id_empty.json",
                "no valid quote",
                false,
            ),
            (
                400,
                "coingecko/error_400_10011_demo_key_on_pro_host.json",
                "(error code 10011)",
                false,
            ),
            (
                429,
                "coingecko/error_429_rate_limit.json",
                "rate limited (HTTP 429, no Retry-After)",
                true,
            ),
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/simple/price"))
                .respond_with(json_body(status, file))
                .expect(1)
                .mount(&server)
                .await;
            let s = source(&server, BTC_ETH, &quick_policy());
            let (message, is_retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(
                message.starts_with("coingecko: ") && message.contains(expected),
                "{message}"
            );
            assert_eq!(is_retryable, retryable, "{file}");
        }
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
}

/// Retries, timeouts and rate limits, on the wire.
mod wire {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn retry_after_within_the_budget_is_waited_out_not_hammered() {
        let server = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "5"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(json_body(200, "kraken/ticker_xbtusd_docs_example.json"))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\"]",
            &paused_policy(),
        );
        let start = tokio::time::Instant::now();
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.quotes[0].price, 30303.2);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_secs(5),
            "retried after {waited:?}, before Retry-After"
        );
        assert!(waited < Duration::from_secs(7), "{waited:?}");
        assert_eq!(requests(&server).await, 2);
    }

    #[tokio::test]
    async fn a_timeout_is_retried_then_reported() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(
                json_body(200, "binance/ticker_24hr_docs_example_full.json")
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(3)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"binance\"\npairs = [\"BNB-BTC\"]",
            &quick_policy(),
        );
        let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(message.contains("timed out after 3 attempts"), "{message}");
        assert!(retryable);
    }

    #[tokio::test]
    async fn a_timeout_then_an_answer_succeeds() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(
                json_body(200, "binance/ticker_24hr_docs_example_full.json")
                    .set_delay(Duration::from_secs(3)),
            )
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(ResponseTemplate::new(503).set_body_string("busy"))
            .up_to_n_times(1)
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(json_body(200, "binance/ticker_24hr_docs_example_full.json"))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"binance\"\npairs = [\"BNB-BTC\"]",
            &quick_policy(),
        );
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.quotes[0].price, 4.000002);
    }

    #[tokio::test]
    async fn the_entry_timeout_overrides_the_policy() {
        let server = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(
                json_body(200, "kraken/ticker_xbtusd_docs_example.json")
                    .set_delay(Duration::from_secs(4)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let policy = HttpPolicy {
            timeout: None,
            max_retries: 0,
            ..quick_policy()
        };
        let s = source(
            &server,
            "kind = \"kraken\"\npairs = [\"BTC-USD\"]\ntimeout_secs = 1",
            &policy,
        );
        let start = std::time::Instant::now();
        let (message, _) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(message.contains("timed out after 1 attempt"), "{message}");
        assert!(
            start.elapsed() < Duration::from_secs(3),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_retried_then_reported() {
        // A port that was just free: connecting is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = Config::from_toml_str(&format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"http://127.0.0.1:{port}\"\n"
        ))
        .unwrap();
        let s = build_sources_with(&config, &quick_policy(), &Secrets::default())
            .unwrap()
            .remove(0);
        let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(message.contains("failed after 3 attempts"), "{message}");
        assert!(retryable);
    }

    #[tokio::test(start_paused = true)]
    async fn coinbase_requests_stay_under_its_rate() {
        let server = MockServer::start().await;
        Mock::given(wiremock::matchers::path_regex(
            "^/products/[A-Z0-9]+-USD/ticker$",
        ))
        .respond_with(json_body(200, "coinbase/ticker_docs_example.json"))
        .expect(10)
        .mount(&server)
        .await;
        Mock::given(wiremock::matchers::path_regex(
            "^/products/[A-Z0-9]+-USD/stats$",
        ))
        .respond_with(json_body(200, "coinbase/stats_docs_example.json"))
        .expect(10)
        .mount(&server)
        .await;
        let pairs: Vec<String> = (0..10).map(|i| format!("\"C{i}-USD\"")).collect();
        let s = source(
            &server,
            &format!("kind = \"coinbase\"\npairs = [{}]", pairs.join(", ")),
            &paused_policy(),
        );
        let start = tokio::time::Instant::now();
        let f = s.fetch(TICK).await.unwrap();
        assert_eq!(f.quotes.len(), 10);
        // 20 requests at 8 a second (bursts of 8): at least 1.5 s, never a burst over 10/s.
        assert!(
            start.elapsed() >= Duration::from_millis(1500),
            "{:?}",
            start.elapsed()
        );
    }
}

/// Collection end to end: config -> sources -> snapshots in a file store.
mod collect {
    use super::*;
    use cryptomon_core::exchange::build_sources_with;
    use cryptomon_core::{FsStore, Snapshot, Store, StoreExt, collect_all};

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
            .respond_with(json_body(200, "kraken/ticker_xbtusd_docs_example.json"))
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
        let config = Config::from_toml_str(&format!(
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
        ))
        .unwrap();
        let sources = build_sources_with(&config, &quick_policy(), &Secrets::default()).unwrap();
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
}

/// Absurd headers, oversized bodies and a caller's deadline: every wait and every body is
/// bounded, and the error names the source.
mod bounds {
    use super::*;
    use cryptomon_core::FsStore;
    use cryptomon_core::pipeline::collect_all_until;

    #[tokio::test]
    async fn an_absurd_retry_after_gives_up_for_the_tick_without_a_panic() {
        for value in [
            "18446744073709551615",
            "99999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "-5",
            "1.5",
            "soon",
        ] {
            let server = MockServer::start().await;
            Mock::given(path("/api/v3/ticker/24hr"))
                .respond_with(
                    json_body(429, "binance/error_429_too_much_weight.json")
                        .insert_header("Retry-After", value),
                )
                .mount(&server)
                .await;
            let s = source(
                &server,
                "kind = \"binance\"\npairs = [\"BTC-USDT\"]",
                &quick_policy(),
            );
            let start = std::time::Instant::now();
            let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "{value}: waited {:?}",
                start.elapsed()
            );
            assert!(retryable, "{value}: {message}");
            assert!(
                message.starts_with("binance: ")
                    && message.contains("rate limited (HTTP 429")
                    && message.contains("giving up for this tick"),
                "{value}: {message}"
            );
            assert_eq!(requests(&server).await, 1, "{value}: not retried");
            // The next tick is not sent either, and the pause it reports is at most an hour.
            let (message, _) = source_error(s.fetch(TICK).await.unwrap_err());
            assert!(message.contains("left alone for"), "{value}: {message}");
            let secs: u64 = message
                .split("left alone for ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{value}: {message}"));
            assert!(secs <= 3600, "{value}: {message}");
        }
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_from_its_content_length() {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(
                ResponseTemplate::new(200).set_body_raw(vec![b' '; 2048], "application/json"),
            )
            .mount(&server)
            .await;
        let s = source(
            &server,
            "kind = \"binance\"\npairs = [\"BTC-USDT\"]\nmax_body_bytes = 1024",
            &quick_policy(),
        );
        let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
        assert!(
            message.starts_with("binance: ")
                && message.contains("Content-Length of 2048 bytes is over the limit of 1024 bytes")
                && message.contains("max_body_bytes = 1024"),
            "{message}"
        );
        assert!(!retryable, "the same body would come back: {message}");
        assert_eq!(requests(&server).await, 1, "not retried");
    }

    #[tokio::test]
    async fn a_body_at_the_cap_is_read() {
        let body = fixture("binance/ticker_24hr_docs_example_full.json");
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .respond_with(json_body(200, "binance/ticker_24hr_docs_example_full.json"))
            .mount(&server)
            .await;
        let s = source(
            &server,
            &format!(
                "kind = \"binance\"\npairs = [\"BNB-BTC\"]\nmax_body_bytes = {}",
                body.len()
            ),
            &quick_policy(),
        );
        assert_eq!(s.fetch(TICK).await.unwrap().quotes.len(), 1);
    }

    /// A server that accepts connections and never answers.
    async fn silent_server() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = listener.accept().await {
                held.push(connection);
            }
        });
        format!("http://{address}")
    }

    #[tokio::test]
    async fn a_fetch_ends_by_the_callers_deadline_with_its_own_error() {
        let hung = silent_server().await;
        let fine = MockServer::start().await;
        Mock::given(path("/0/public/Ticker"))
            .respond_with(json_body(200, "kraken/ticker_xbtusd_docs_example.json"))
            .mount(&fine)
            .await;
        let config = Config::from_toml_str(&format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{hung}\"\n",
            fine.uri()
        ))
        .unwrap();
        // The production policy of a minute: 10 s per request, 45 s per fetch.
        let policy = HttpPolicy {
            pool_idle_timeout: None,
            ..HttpPolicy::for_interval(60)
        };
        let sources = build_sources_with(&config, &policy, &Secrets::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = FsStore::create(dir.path()).unwrap();
        let start = tokio::time::Instant::now();
        let deadline = start + Duration::from_secs(2);
        let mut results = collect_all_until(&sources, &store, TICK, deadline).await;
        assert!(
            start.elapsed() <= Duration::from_millis(2100),
            "{:?}",
            start.elapsed()
        );
        let kraken = results[0].1.as_ref().expect("the healthy source is stored");
        assert!(kraken.written);
        let (message, retryable) = source_error(results.remove(1).1.unwrap_err());
        assert!(retryable, "{message}");
        assert!(
            message.starts_with("binance: ") && message.contains("timed out"),
            "the HTTP layer's own timeout, within the deadline: {message}"
        );
    }
}
