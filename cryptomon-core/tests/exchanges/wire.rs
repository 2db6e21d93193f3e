//! Retries, timeouts and rate limits on the wire: the HTTP layer every exchange shares.

use std::time::Duration;

use cryptomon_core::exchange::HttpPolicy;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

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
        .respond_with(json_body(200, KRAKEN_DOCS))
        .expect(1)
        .mount(&server)
        .await;
    let s = source(&server, KRAKEN_BTC, &paused_policy());
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
    let slow = json_body(200, BNB_FULL).set_delay(Duration::from_secs(3));
    let server = serve("/api/v3/ticker/24hr", slow, 3).await;
    let s = source(&server, BINANCE_BNB, &quick_policy());
    let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
    assert!(message.contains("timed out after 3 attempts"), "{message}");
    assert!(retryable);
}

#[tokio::test]
async fn a_timeout_then_an_answer_succeeds() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json_body(200, BNB_FULL).set_delay(Duration::from_secs(3)))
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
        .respond_with(json_body(200, BNB_FULL))
        .expect(1)
        .mount(&server)
        .await;
    let s = source(&server, BINANCE_BNB, &quick_policy());
    let f = s.fetch(TICK).await.unwrap();
    assert_eq!(f.quotes[0].price, 4.000002);
}

#[tokio::test]
async fn the_entry_timeout_overrides_the_policy() {
    let slow = json_body(200, KRAKEN_DOCS).set_delay(Duration::from_secs(4));
    let server = serve("/0/public/Ticker", slow, 1).await;
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
    let text = format!(
        "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"http://127.0.0.1:{port}\"\n"
    );
    let s = sources(&text, &quick_policy()).remove(0);
    let (message, retryable) = source_error(s.fetch(TICK).await.unwrap_err());
    assert!(message.contains("failed after 3 attempts"), "{message}");
    assert!(retryable);
}
