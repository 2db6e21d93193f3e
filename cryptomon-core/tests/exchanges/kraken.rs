//! Kraken: one `Ticker` request for every pair, answered under Kraken's own names, with errors
//! in a 200 answer.

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

#[tokio::test]
async fn docs_ticker_maps_xxbtzusd_back_to_btc_usd() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/0/public/Ticker"))
        .and(query_param("pair", "XBTUSD"))
        .respond_with(json_body(200, KRAKEN_DOCS))
        .expect(1)
        .mount(&server)
        .await;
    let s = source(&server, KRAKEN_BTC, &quick_policy());
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
    let case = |fixture, expected, retryable| ErrorCase {
        status: 200,
        fixture,
        expected,
        retryable,
        requests: 1,
    };
    assert_errors(
        KRAKEN_BTC,
        &[
            case(
                "kraken/error_unknown_asset_pair.json",
                "EQuery:Unknown asset pair (asked for XBTUSD)",
                false,
            ),
            case(
                "kraken/error_invalid_arguments.json",
                "EGeneral:Invalid arguments",
                false,
            ),
            case(
                "kraken/error_too_many_requests.json",
                "EGeneral:Too many requests",
                true,
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_cloudflare_html_page_is_retried_then_reported_not_a_panic() {
    let page = fixture("kraken/error_520_cloudflare_CONSTRUCTED.html");
    let answer = ResponseTemplate::new(520).set_body_raw(page, "text/html");
    // The first attempt and max_retries = 2.
    let server = serve("/0/public/Ticker", answer, 3).await;
    let s = source(&server, KRAKEN_BTC, &quick_policy());
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
    let page = "<html><body>maintenance</body></html>";
    let answer = ResponseTemplate::new(200).set_body_raw(page, "text/html");
    let server = serve("/0/public/Ticker", answer, 1).await;
    let s = source(&server, KRAKEN_BTC, &quick_policy());
    let (message, _) = source_error(s.fetch(TICK).await.unwrap_err());
    assert!(
        message.contains("HTTP 200: an HTML page, not JSON"),
        "{message}"
    );
}
