//! Binance: `ticker/24hr` for listed symbols or every market, and its bans.

use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

#[tokio::test]
async fn full_and_mini_tickers_parse_to_the_right_quotes() {
    for file in [BNB_FULL, "binance/ticker_24hr_docs_example_mini.json"] {
        let server = MockServer::start().await;
        Mock::given(path("/api/v3/ticker/24hr"))
            .and(query_param("symbols", "[\"BNBBTC\"]"))
            .respond_with(json_body(200, file))
            .expect(1)
            .mount(&server)
            .await;
        let s = source(&server, BINANCE_BNB, &quick_policy());
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
    let template: Value = serde_json::from_str(&fixture(BNB_FULL)).unwrap();
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
        .and(query_param_is_missing("symbols"))
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
    assert_errors(
        BINANCE_BTC,
        &[
            ErrorCase {
                status: 400,
                fixture: "binance/error_400_invalid_symbol.json",
                expected: "HTTP 400: Invalid symbol. (code -1121)",
                retryable: false,
                requests: 1,
            },
            ErrorCase {
                status: 451,
                fixture: "binance/error_451_restricted_location.json",
                expected: "HTTP 451: Service unavailable from a restricted location",
                retryable: false,
                requests: 1,
            },
        ],
    )
    .await;
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
            .respond_with(json_body(200, BNB_FULL))
            .mount(&server)
            .await;
        let s = source(&server, BINANCE_BNB, &paused_policy());
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
