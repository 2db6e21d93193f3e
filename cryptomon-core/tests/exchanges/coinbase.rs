//! Coinbase: a ticker and a stats request per product, merged into one quote.

use std::time::Duration;

use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer};

use crate::common::*;

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
    assert_errors(
        "kind = \"coinbase\"\npairs = [\"BTC-USD\"]",
        &[
            ErrorCase {
                status: 404,
                fixture: "coinbase/error_404_notfound.json",
                expected: "HTTP 404: NotFound",
                retryable: false,
                requests: 2,
            },
            ErrorCase {
                status: 400,
                fixture: "coinbase/error_400_invalid_price_docs.json",
                expected: "HTTP 400: Invalid Price",
                retryable: false,
                requests: 2,
            },
            // A 429 without Retry-After: given up for this tick, not retried, not hammered.
            ErrorCase {
                status: 429,
                fixture: "coinbase/error_429_public_rate_limit.json",
                expected: "Public rate limit exceeded",
                retryable: true,
                requests: 2,
            },
        ],
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn coinbase_requests_stay_under_its_rate() {
    let server = MockServer::start().await;
    Mock::given(path_regex("^/products/[A-Z0-9]+-USD/ticker$"))
        .respond_with(json_body(200, "coinbase/ticker_docs_example.json"))
        .expect(10)
        .mount(&server)
        .await;
    Mock::given(path_regex("^/products/[A-Z0-9]+-USD/stats$"))
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
