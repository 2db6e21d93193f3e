//! Absurd headers, oversized bodies and a caller's deadline: every wait and every body is
//! bounded, and the error names the source.

use std::time::Duration;

use cryptomon_core::FsStore;
use cryptomon_core::exchange::HttpPolicy;
use cryptomon_core::pipeline::collect_all_until;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

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
        let s = source(&server, BINANCE_BTC, &quick_policy());
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
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![b' '; 2048], "application/json"))
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
    let body = fixture(BNB_FULL);
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json_body(200, BNB_FULL))
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
        .respond_with(json_body(200, KRAKEN_DOCS))
        .mount(&fine)
        .await;
    // The production policy of a minute: 10 s per request, 45 s per fetch.
    let policy = HttpPolicy {
        pool_idle_timeout: None,
        ..HttpPolicy::for_interval(60)
    };
    let sources = sources(
        &format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{hung}\"\n",
            fine.uri()
        ),
        &policy,
    );
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
