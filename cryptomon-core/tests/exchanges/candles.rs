//! The candle clients of a backfill: recorded candle bodies read to the right closes and
//! volumes, ranges paged by each exchange's cap, Kraken's 720 minutes, error bodies, a 429 with
//! `Retry-After`, and rows the client refuses or tidies.

use std::time::{Duration, Instant};

use cryptomon_core::config::Config;
use cryptomon_core::exchange::{HttpPolicy, build_candle_sources_with};
use cryptomon_core::{DynCandleSource, MinuteCandle, Pair, Tick};
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::common::*;

/// The candle source of a `[[sources]]` entry pointed at `server`.
fn candle_source(server: &MockServer, entry: &str, policy: &HttpPolicy) -> DynCandleSource {
    let text = format!("[[sources]]\nbase_url = \"{}\"\n{entry}\n", server.uri());
    let config = Config::from_toml_str(&text).unwrap();
    build_candle_sources_with(&config, policy)
        .unwrap()
        .remove(0)
}

fn pair(p: &str) -> Pair {
    Pair::new(p).unwrap()
}

fn closes(candles: &[MinuteCandle]) -> Vec<(i64, f64, Option<f64>)> {
    candles
        .iter()
        .map(|c| (c.tick.unix(), c.close, c.volume))
        .collect()
}

fn param(request: &Request, name: &str) -> String {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {}", request.url))
}

/// A close for minute `t` that tells minutes apart.
fn close_at(t: i64) -> f64 {
    100.0 + (t / 60 % 1000) as f64 / 4.0
}

/// A Coinbase exchange answering every candle request with a row for each minute of
/// `[start, end]`, newest first, as its recorded body.
fn coinbase_generated(request: &Request) -> ResponseTemplate {
    let at = |name| Tick::parse(&param(request, name)).unwrap().unix();
    let (start, end) = (at("start"), at("end"));
    let rows: Vec<Value> = (0..=(end - start) / 60)
        .rev()
        .map(|i| start + i * 60)
        .map(|t| json!([t, 1.0, 2.0, 1.5, close_at(t), 0.5]))
        .collect();
    ResponseTemplate::new(200).set_body_json(rows)
}

const COINBASE_BTC: &str = "kind = \"coinbase\"\npairs = [\"BTC-USD\"]";

#[tokio::test]
async fn coinbase_recorded_candles_come_oldest_first() {
    let server = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/candles"))
        .and(query_param("granularity", "60"))
        .and(query_param("start", "2026-06-19T16:38:00Z"))
        .and(query_param("end", "2026-06-19T16:39:00Z"))
        .respond_with(json_body(
            200,
            "coinbase/candles_btc-usd_60_live_2026-06-19.json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let s = candle_source(&server, COINBASE_BTC, &quick_policy());
    let (from, to) = (
        Tick::from_unix(1_781_887_080),
        Tick::from_unix(1_781_887_200),
    );
    let candles = s.candles(&pair("BTC-USD"), from, to).await.unwrap();
    assert_eq!(
        closes(&candles),
        [
            (1_781_887_080, 63244.77, Some(0.89694057)),
            (1_781_887_140, 63239.75, Some(0.69450254))
        ]
    );
}

#[tokio::test]
async fn coinbase_pages_by_300_candles() {
    let server = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/candles"))
        .respond_with(coinbase_generated)
        .expect(3)
        .mount(&server)
        .await;
    let s = candle_source(&server, COINBASE_BTC, &quick_policy());
    let from = Tick::parse("2026-12-07T00:00:00Z").unwrap();
    let candles = s
        .candles(&pair("BTC-USD"), from, from.add_secs(700 * 60))
        .await
        .unwrap();
    assert_eq!(candles.len(), 700);
    assert!(
        candles
            .windows(2)
            .all(|w| w[1].tick.unix() - w[0].tick.unix() == 60)
    );
    assert_eq!(candles[0].tick, from);
    assert_eq!(candles[699].close, close_at(from.unix() + 699 * 60));
    let pages: Vec<(String, String)> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| (param(r, "start"), param(r, "end")))
        .collect();
    assert_eq!(
        pages,
        [
            ("2026-12-07T00:00:00Z".into(), "2026-12-07T04:59:00Z".into()),
            ("2026-12-07T05:00:00Z".into(), "2026-12-07T09:59:00Z".into()),
            ("2026-12-07T10:00:00Z".into(), "2026-12-07T11:39:00Z".into())
        ],
        "each page at most 300 candles, both ends included"
    );
}

#[tokio::test]
async fn binance_recorded_klines_and_pages_by_1000() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .and(query_param("symbol", "BNBBTC"))
        .and(query_param("interval", "1m"))
        .and(query_param("startTime", "1499040000000"))
        .and(query_param("endTime", "1499040059999"))
        .respond_with(json_body(200, "binance/klines_docs_example.json"))
        .expect(1)
        .mount(&server)
        .await;
    let s = candle_source(&server, BINANCE_BNB, &quick_policy());
    let from = Tick::from_unix(1_499_040_000);
    let candles = s
        .candles(&pair("BNB-BTC"), from, from.add_secs(60))
        .await
        .unwrap();
    assert_eq!(
        closes(&candles),
        [(1_499_040_000, 0.015771, Some(148976.11427815))]
    );

    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .and(query_param("limit", "1000"))
        .respond_with(|request: &Request| {
            let ms = |name| param(request, name).parse::<i64>().unwrap();
            let rows: Vec<Value> = (ms("startTime")..=ms("endTime"))
                .step_by(60_000)
                .map(|t| {
                    let close = close_at(t / 1000).to_string();
                    json!([
                        t,
                        "1",
                        "2",
                        "0.5",
                        close,
                        "3.25",
                        t + 59_999,
                        "0",
                        1,
                        "0",
                        "0",
                        "0"
                    ])
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(rows)
        })
        .expect(3)
        .mount(&server)
        .await;
    let s = candle_source(&server, BINANCE_BTC, &quick_policy());
    let from = Tick::parse("2026-12-07T00:00:00Z").unwrap();
    let candles = s
        .candles(&pair("BTC-USDT"), from, from.add_secs(2500 * 60))
        .await
        .unwrap();
    assert_eq!(candles.len(), 2500);
    assert!(candles.iter().all(|c| c.volume == Some(3.25)));
    assert_eq!(candles[2499].tick, from.add_secs(2499 * 60));
}

#[tokio::test]
async fn kraken_drops_the_open_minute_and_maps_its_names_back() {
    let server = MockServer::start().await;
    Mock::given(path("/0/public/OHLC"))
        .and(query_param("pair", "XBTUSD"))
        .and(query_param("interval", "1"))
        .and(query_param("since", "1688671199"))
        .respond_with(json_body(200, "kraken/ohlc_xbtusd_1m_docs_example.json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/0/public/OHLC"))
        .and(query_param("pair", "USDCUSD"))
        .respond_with(json_body(200, "kraken/ohlc_usdcusd_1m_polimec.json"))
        .expect(1)
        .mount(&server)
        .await;
    let s = candle_source(
        &server,
        "kind = \"kraken\"\npairs = [\"BTC-USD\", \"USDC-USD\"]",
        &quick_policy(),
    );
    assert_eq!(
        s.reach_minutes().map(|r| r.0),
        Some(720),
        "kraken says how far back it serves"
    );
    let from = Tick::from_unix(1_688_671_200);
    let btc = s
        .candles(&pair("BTC-USD"), from, from.add_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        closes(&btc),
        [
            (1_688_671_200, 30305.7, Some(3.39243896)),
            (1_688_671_260, 30300.0, Some(4.42996871)),
            (1_688_671_320, 30291.4, Some(2.13024789))
        ],
        "XXBTZUSD is BTC-USD; the last row, still open, is dropped"
    );
    let from = Tick::from_unix(1_699_976_820);
    let usdc = s
        .candles(&pair("USDC-USD"), from, from.add_secs(3600))
        .await
        .unwrap();
    assert_eq!(usdc.len(), 9, "10 rows, the last one open");
    assert_eq!(usdc[1].volume, Some(0.0), "a minute without a trade");
    assert_eq!(usdc[5].volume, Some(30692.6965));
}

#[tokio::test]
async fn kraken_sends_one_request_and_gives_only_its_720_minutes() {
    let now = Tick::parse("2026-12-07T16:00:00Z").unwrap();
    let server = MockServer::start().await;
    Mock::given(path("/0/public/OHLC"))
        .respond_with(move |_: &Request| {
            // Whatever `since` asks for: the 720 most recent minutes, the last one open.
            let rows: Vec<Value> = (0..720)
                .map(|i| {
                    let t = now.unix() - (719 - i) * 60;
                    json!([t, "1", "1", "1", close_at(t).to_string(), "1", "0.5", 3])
                })
                .collect();
            ResponseTemplate::new(200).set_body_json(
                json!({"error": [], "result": {"XXBTZUSD": rows, "last": now.unix() - 60}}),
            )
        })
        .expect(1)
        .mount(&server)
        .await;
    let s = candle_source(&server, KRAKEN_BTC, &quick_policy());
    let from = now.add_secs(-2000 * 60);
    let candles = s.candles(&pair("BTC-USD"), from, now).await.unwrap();
    assert_eq!(candles.len(), 719, "719 closed minutes, nothing older");
    assert_eq!(candles[0].tick, now.add_secs(-719 * 60));
    assert_eq!(candles[718].tick, now.add_secs(-60));
}

#[tokio::test]
async fn error_bodies_name_the_source_and_say_whether_to_retry() {
    let from = Tick::parse("2026-12-07T00:00:00Z").unwrap();
    for (entry, pair_name, status, fixture, expected, retryable) in [
        (
            COINBASE_BTC,
            "BTC-USD",
            400,
            "coinbase/error_400_granularity_too_small.json",
            "HTTP 400: granularity too small",
            false,
        ),
        (
            COINBASE_BTC,
            "BTC-USD",
            404,
            "coinbase/error_404_notfound.json",
            "NotFound",
            false,
        ),
        (
            BINANCE_BTC,
            "BTC-USDT",
            400,
            "binance/error_400_invalid_interval.json",
            "Invalid interval. (code -1120)",
            false,
        ),
        (
            KRAKEN_BTC,
            "BTC-USD",
            200,
            "kraken/error_unknown_asset_pair.json",
            "EQuery:Unknown asset pair",
            false,
        ),
        (
            KRAKEN_BTC,
            "BTC-USD",
            520,
            "kraken/error_520_cloudflare_CONSTRUCTED.html",
            "HTTP 520 after 3 attempts: an HTML page (api.kraken.com | 520",
            true,
        ),
        (
            KRAKEN_BTC,
            "BTC-USD",
            200,
            "kraken/error_too_many_requests.json",
            "EGeneral:Too many requests",
            true,
        ),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .respond_with(json_body(status, fixture))
            .mount(&server)
            .await;
        let s = candle_source(&server, entry, &quick_policy());
        let e = s
            .candles(&pair(pair_name), from, from.add_secs(600))
            .await
            .unwrap_err();
        let (message, retry) = source_error(e);
        assert!(
            message.starts_with(&format!("{}: ", s.name())),
            "{fixture}: {message}"
        );
        assert!(message.contains(expected), "{fixture}: {message}");
        assert_eq!(retry, retryable, "{fixture}: {message}");
    }
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_retry_after() {
    let server = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/candles"))
        .respond_with(
            json_body(429, "coinbase/error_429_public_rate_limit.json")
                .insert_header("Retry-After", "1"),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/products/BTC-USD/candles"))
        .respond_with(coinbase_generated)
        .expect(1)
        .mount(&server)
        .await;
    let s = candle_source(&server, COINBASE_BTC, &quick_policy());
    let from = Tick::parse("2026-12-07T00:00:00Z").unwrap();
    let started = Instant::now();
    let candles = s
        .candles(&pair("BTC-USD"), from, from.add_secs(600))
        .await
        .unwrap();
    assert_eq!(candles.len(), 10);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

/// What Coinbase's candles of `rows` make for ten minutes from `FROM`.
async fn coinbase_rows(rows: Value) -> cryptomon_core::Result<Vec<MinuteCandle>> {
    let server = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/candles"))
        .respond_with(ResponseTemplate::new(200).set_body_json(rows))
        .mount(&server)
        .await;
    let s = candle_source(&server, COINBASE_BTC, &quick_policy());
    s.candles(&pair("BTC-USD"), FROM, FROM.add_secs(600)).await
}

const FROM: Tick = Tick::from_unix(1_796_000_400);

#[tokio::test]
async fn extreme_or_invalid_numbers_are_refused_naming_pair_and_field() {
    let t = FROM.unix();
    for (row, field) in [
        (json!([t, 1, 1, 1, 1e300, 1]), "close: price 1e300"),
        (json!([t, 1, 1, 1, 0, 1]), "close: price 0e0"),
        (json!([t, 1, 1, 1, 1e-320, 1]), "close: price"),
        (json!([t, 1, 1, 1, 5, -2]), "volume -2e0"),
        (json!([t, 1, 1, 1, 5, 1e19]), "volume 1e19"),
        (
            json!([t, 1, 1, 1, "NaN", 1]),
            "close: \"NaN\" is not a decimal number",
        ),
        (json!([t, 1, 1, 1, null, 1]), "close:"),
        (json!([t, 1, 1, 1, 5]), "no volume (field 5)"),
        (
            json!(["soon", 1, 1, 1, 5, 1]),
            "time: \"soon\" is not a whole number",
        ),
        (json!([t + 1, 1, 1, 1, 5, 1]), "not on a whole minute"),
    ] {
        let e = coinbase_rows(json!([row])).await.unwrap_err().to_string();
        assert!(e.contains("coinbase") && e.contains("BTC-USD"), "{e}");
        assert!(e.contains(field), "{field}: {e}");
    }
    let e = coinbase_rows(json!({"candles": []}))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected a list of candles"), "{e}");
}

#[tokio::test]
async fn duplicate_and_unsorted_rows_are_tidied_and_conflicts_refused() {
    let t = FROM.unix();
    let candles = coinbase_rows(json!([
        [t + 60, 1, 1, 1, 2.0, 1],
        [t, 1, 1, 1, 1.0, 1],
        [t + 120, 1, 1, 1, 3.0, 1],
        [t, 1, 1, 1, 1.0, 1],
        [t + 6000, 1, 1, 1, 9.0, 1]
    ]))
    .await
    .unwrap();
    assert_eq!(
        closes(&candles),
        [
            (t, 1.0, Some(1.0)),
            (t + 60, 2.0, Some(1.0)),
            (t + 120, 3.0, Some(1.0))
        ],
        "sorted, the repeat dropped, the minute out of range left out"
    );
    let e = coinbase_rows(json!([[t, 1, 1, 1, 1.0, 1], [t, 1, 1, 1, 1.5, 1]]))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("BTC-USD") && e.contains("two different candles"),
        "{e}"
    );
}

#[tokio::test]
async fn coingecko_is_not_fillable_and_sends_nothing() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    let s = candle_source(
        &server,
        "kind = \"coingecko\"\npairs = [\"BTC-USD\"]",
        &quick_policy(),
    );
    assert_eq!(s.pairs(), [pair("BTC-USD")]);
    let e = s
        .candles(&pair("BTC-USD"), FROM, FROM.add_secs(600))
        .await
        .unwrap_err();
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("no one-minute candles"), "{e}");
}

#[test]
fn binance_every_market_lists_no_pair_to_backfill() {
    let config =
        Config::from_toml_str("[[sources]]\nkind = \"binance\"\npairs = \"all\"\n").unwrap();
    let sources = build_candle_sources_with(&config, &quick_policy()).unwrap();
    assert!(sources[0].pairs().is_empty());
}
