//! `oneshot` tests of every route and every error of the API router.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    RETRY_AFTER,
};
use axum::http::{Request, StatusCode};
use common::*;
use cryptomon_core::{CandleInterval, FsStore, Pair, SourceName, engine, pipeline};
use cryptomon_mock::MemoryStore;
use cryptomon_server::AppState;
use serde_json::Value;

async fn assert_error(state: &AppState, uri: &str, status: StatusCode, contains: &str) {
    let response = get(state, uri).await;
    assert_eq!(response.status(), status, "{uri}");
    assert!(
        response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{uri}"
    );
    let body = json(response).await;
    let message = body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{uri}: {body}"));
    assert!(
        message.contains(contains),
        "{uri}: {message:?} lacks {contains:?}"
    );
    assert_eq!(body.as_object().unwrap().len(), 1, "{uri}: {body}");
}

#[tokio::test]
async fn summary_is_the_stored_summary_with_validators() {
    let store = market().await;
    let state = state(store.clone());
    let response = get(&state, "/api/summary").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-cache");
    let etag = response.headers()[ETAG].clone();
    assert!(etag.to_str().unwrap().starts_with("W/\""), "{etag:?}");
    let got: Value = json(response).await;
    let want = serde_json::to_value(stored_summary(&store).await).unwrap();
    assert_eq!(got, want);
    assert_eq!(got["series"].as_array().unwrap().len(), 9);

    // A poll with the validator costs a 304 and no body.
    let request = Request::get("/api/summary")
        .header(IF_NONE_MATCH, etag.clone())
        .body(Body::empty())
        .unwrap();
    let response = send(&state, request).await;
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.headers()[ETAG], etag);
    assert!(body(response).await.is_empty());
}

#[tokio::test]
async fn new_aggregates_are_picked_up_and_change_the_etag() {
    let store = market().await;
    let state = state(store.clone());
    let first = get(&state, "/api/summary").await;
    let etag = first.headers()[ETAG].clone();
    write_and_transform(&store, TICKS, TICKS + 1).await;
    let request = Request::get("/api/summary")
        .header(IF_NONE_MATCH, etag.clone())
        .body(Body::empty())
        .unwrap();
    let response = send(&state, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()[ETAG], etag);
    let summary = json(response).await;
    assert_eq!(summary["as_of"], "2026-11-27T12:00:00Z");
}

#[tokio::test]
async fn health_reports_each_source() {
    let state = state(market().await);
    let response = get(&state, "/api/health").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let health = json(response).await;
    assert_eq!(health["as_of"], "2026-11-27T11:59:00Z");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    let sources = health["sources"].as_array().unwrap();
    let names: Vec<&str> = sources
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(names, SOURCES);
    for s in sources {
        assert_eq!(s["series"], 3);
        assert_eq!(s["last_tick"], "2026-11-27T11:59:00Z");
        // The test market is in the past: every source is stale by the clock.
        assert_eq!(s["stale"], true);
        assert!(s["age_secs"].as_i64().unwrap() > 0);
    }
    assert_eq!(health["status"], "stale");
}

#[tokio::test]
async fn an_empty_store_is_healthy_but_has_no_data() {
    let state = state(Arc::new(MemoryStore::new()));
    let health = json(get(&state, "/api/health").await).await;
    assert_eq!(health["status"], "empty");
    assert_eq!(health["as_of"], Value::Null);
    for uri in [
        "/api/summary",
        "/api/metrics",
        "/api/metrics/coinbase:BTC-USD:price",
        "/api/candles?source=coinbase&pair=BTC-USD",
    ] {
        let response = get(&state, uri).await;
        assert_eq!(response.headers()[RETRY_AFTER], "10", "{uri}");
        assert_error(
            &state,
            uri,
            StatusCode::SERVICE_UNAVAILABLE,
            "no aggregates yet",
        )
        .await;
    }
    // Alert events do not need aggregates: none stored is an empty list.
    let alerts = json(get(&state, "/api/alerts").await).await;
    assert_eq!(alerts["events"], serde_json::json!([]));
}

#[tokio::test]
async fn metrics_lists_price_and_volume_with_ranks() {
    let store = market().await;
    let summary = stored_summary(&store).await;
    let state = state(store);
    let response = get(&state, "/api/metrics").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key(ETAG));
    let metrics = json(response).await;
    let metrics = metrics.as_array().unwrap();
    // 9 price metrics, 8 volume metrics: kraken gives no SOL-USD volume.
    assert_eq!(metrics.len(), 17);
    let find = |id: &str| metrics.iter().find(|m| m["id"] == id).cloned();
    assert!(find("kraken:SOL-USD:volume").is_none());
    let series = summary
        .series
        .iter()
        .find(|s| s.source.as_str() == "coinbase" && s.pair.as_str() == "ETH-USD")
        .unwrap();
    let price = find("coinbase:ETH-USD:price").unwrap();
    assert_eq!(price["source"], "coinbase");
    assert_eq!(price["pair"], "ETH-USD");
    assert_eq!(price["measure"], "price");
    assert_eq!(price["last"].as_f64().unwrap(), series.last);
    assert_eq!(price["rank"].as_f64(), series.price_rank);
    assert!(series.volatility_rank.is_some());
    assert_eq!(price["volatility_rank"].as_f64(), series.volatility_rank);
    let volume = find("coinbase:ETH-USD:volume").unwrap();
    assert_eq!(volume["last"].as_f64(), series.volume_last);
    assert_eq!(volume["rank"].as_f64(), series.volume_rank);
    // Volatility is the price's: a volume metric has no volatility rank.
    assert_eq!(volume["volatility_rank"], Value::Null);
}

#[tokio::test]
async fn a_metric_has_its_points_stats_and_rank() {
    let store = market().await;
    let summary = stored_summary(&store).await;
    let state = state(store);
    let series = &summary.series[0];
    let id = format!("{}:{}:price", series.source, series.pair);
    let response = get(&state, &format!("/api/metrics/{id}")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[ETAG].clone();
    let detail = json(response).await;
    assert_eq!(detail["id"], id);
    assert_eq!(detail["measure"], "price");
    assert_eq!(detail["as_of"], "2026-11-27T11:59:00Z");
    let points = detail["points"].as_array().unwrap();
    assert_eq!(points.len(), TICKS as usize);
    assert_eq!(points[0]["t"], START);
    assert_eq!(points.last().unwrap()["v"].as_f64().unwrap(), series.last);
    assert_eq!(detail["stats"]["samples"], TICKS);
    assert_eq!(detail["stats"]["high"].as_f64().unwrap(), series.high);
    assert_eq!(
        detail["stats"]["volatility_pct"].as_f64(),
        series.volatility_pct
    );
    assert_eq!(detail["rank"].as_f64(), series.price_rank);
    assert_eq!(detail["ranked"], 9);
    assert!(series.volatility_rank.is_some());
    assert_eq!(detail["volatility_rank"].as_f64(), series.volatility_rank);
    assert_eq!(detail["volatility_ranked"], 9);

    // Served from memory the second time, identically; 304 with the validator.
    let again = json(get(&state, &format!("/api/metrics/{id}")).await).await;
    assert_eq!(again, detail);
    let request = Request::get(format!("/api/metrics/{id}"))
        .header(IF_NONE_MATCH, etag)
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&state, request).await.status(),
        StatusCode::NOT_MODIFIED
    );
}

#[tokio::test]
async fn two_metrics_have_different_charts_and_ranks() {
    let state = state(market().await);
    let a = json(get(&state, "/api/metrics/binance:BTC-USD:price").await).await;
    let b = json(get(&state, "/api/metrics/kraken:SOL-USD:price").await).await;
    assert_ne!(a["points"], b["points"]);
    assert_ne!(a["rank"], b["rank"]);
}

#[tokio::test]
async fn a_volume_metric_has_stats_from_its_points() {
    let state = state(market().await);
    let detail = json(get(&state, "/api/metrics/coinbase:BTC-USD:volume").await).await;
    let points = detail["points"].as_array().unwrap();
    assert_eq!(points.len(), TICKS as usize);
    let values: Vec<f64> = points.iter().map(|p| p["v"].as_f64().unwrap()).collect();
    let high = values.iter().copied().fold(f64::MIN, f64::max);
    assert_eq!(detail["stats"]["high"].as_f64().unwrap(), high);
    assert_eq!(
        detail["stats"]["last"].as_f64().unwrap(),
        *values.last().unwrap()
    );
    assert_eq!(detail["stats"]["rsi_14"], Value::Null);
    assert_eq!(detail["ranked"], 8);
    assert_eq!(detail["volatility_rank"], Value::Null);
    assert_eq!(detail["volatility_ranked"], 9);
}

#[tokio::test]
async fn metric_errors() {
    let state = state(market().await);
    for (uri, status, message) in [
        (
            "/api/metrics/coinbase:DOGE-USD:price",
            StatusCode::NOT_FOUND,
            "unknown metric",
        ),
        (
            "/api/metrics/kraken:SOL-USD:volume",
            StatusCode::NOT_FOUND,
            "unknown metric",
        ),
        (
            "/api/metrics/okx:BTC-USD:price",
            StatusCode::NOT_FOUND,
            "unknown metric",
        ),
        (
            "/api/metrics/coinbase:BTC-USD",
            StatusCode::BAD_REQUEST,
            "invalid metric id",
        ),
        (
            "/api/metrics/coinbase:BTC-USD:temp",
            StatusCode::BAD_REQUEST,
            "unknown measure",
        ),
        (
            "/api/metrics/coinbase:btc-usd:price",
            StatusCode::BAD_REQUEST,
            "invalid pair",
        ),
        (
            "/api/metrics/Coinbase:BTC-USD:price",
            StatusCode::BAD_REQUEST,
            "invalid source",
        ),
        (
            "/api/metrics/%FF%FE",
            StatusCode::BAD_REQUEST,
            "invalid metric id",
        ),
        (
            "/api/metrics/..%2F..%2Fetc%2Fpasswd",
            StatusCode::BAD_REQUEST,
            "invalid metric id",
        ),
    ] {
        assert_error(&state, uri, status, message).await;
    }
    let long = format!("/api/metrics/{}", "a".repeat(5000));
    assert_error(&state, &long, StatusCode::BAD_REQUEST, "too long").await;
}

#[tokio::test]
async fn candles_are_the_engine_view_for_every_interval() {
    let store = market().await;
    let window = pipeline::read_window(store.as_ref())
        .await
        .unwrap()
        .unwrap();
    let state = state(store);
    let (source, pair) = (
        SourceName::new("kraken").unwrap(),
        Pair::new("ETH-USD").unwrap(),
    );
    for interval in CandleInterval::ALL {
        let uri = format!("/api/candles?source=kraken&pair=ETH-USD&interval={interval}");
        let response = get(&state, &uri).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        assert!(response.headers().contains_key(ETAG));
        let got = json(response).await;
        let (w, s, p) = (window.clone(), source.clone(), pair.clone());
        let want = pipeline::blocking(move || engine::candles(&w, &s, &p, interval))
            .await
            .unwrap();
        assert_eq!(got, serde_json::to_value(&want).unwrap(), "{uri}");
        assert_eq!(got["schema"], "cryptomon.candles/v1");
    }
    // 5m is the default interval.
    let default = json(get(&state, "/api/candles?source=kraken&pair=ETH-USD").await).await;
    assert_eq!(default["interval"], "5m");
    assert_eq!(default["candles"].as_array().unwrap().len(), 24);
}

#[tokio::test]
async fn candle_errors() {
    let state = state(market().await);
    for (uri, status, message) in [
        (
            "/api/candles",
            StatusCode::BAD_REQUEST,
            "missing parameter source",
        ),
        (
            "/api/candles?pair=BTC-USD",
            StatusCode::BAD_REQUEST,
            "missing parameter source",
        ),
        (
            "/api/candles?source=kraken",
            StatusCode::BAD_REQUEST,
            "missing parameter pair",
        ),
        (
            "/api/candles?source=kraken&pair=",
            StatusCode::BAD_REQUEST,
            "missing parameter pair",
        ),
        (
            "/api/candles?source=kraken&pair=BTC-USD&interval=2m",
            StatusCode::BAD_REQUEST,
            "invalid interval",
        ),
        // The document says an interval is one of five: an empty one is not the default.
        (
            "/api/candles?source=kraken&pair=BTC-USD&interval=",
            StatusCode::BAD_REQUEST,
            "invalid interval \"\"",
        ),
        (
            "/api/candles?source=kraken&pair=btcusd",
            StatusCode::BAD_REQUEST,
            "invalid pair",
        ),
        (
            "/api/candles?source=../x&pair=BTC-USD",
            StatusCode::BAD_REQUEST,
            "invalid source",
        ),
        (
            "/api/candles?source=kraken&source=coinbase&pair=BTC-USD",
            StatusCode::BAD_REQUEST,
            "malformed query",
        ),
        (
            "/api/candles?source=kraken&pair=DOGE-USD",
            StatusCode::NOT_FOUND,
            "unknown series kraken:DOGE-USD",
        ),
        (
            "/api/candles?source=okx&pair=BTC-USD",
            StatusCode::NOT_FOUND,
            "unknown series",
        ),
    ] {
        assert_error(&state, uri, status, message).await;
    }
}

#[tokio::test]
async fn alerts_are_the_stored_events_filtered() {
    let store = market_with_alerts().await;
    let state = state(store);
    let response = get(&state, "/api/alerts").await;
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[ETAG].clone();
    let alerts = json(response).await;
    // The default look-back: 24 h before the latest aggregates.
    assert_eq!(alerts["since"], "2026-11-26T11:59:00Z");
    let events = alerts["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{alerts}");
    let e = &events[0];
    assert_eq!(
        (
            &e["rule"],
            &e["status"],
            &e["source"],
            &e["pair"],
            &e["measure"]
        ),
        (
            &Value::from("volume-spike"),
            &Value::from("fired"),
            &Value::from("coinbase"),
            &Value::from("BTC-USD"),
            &Value::from("volume")
        )
    );
    assert_eq!(e["tick"], "2026-11-27T11:59:00Z");
    assert!(e["ratio"].as_f64().unwrap() > 3.0, "{e}");
    assert!(
        e["key"]
            .as_str()
            .unwrap()
            .starts_with("alerts/date=2026-11-27/")
    );
    // Unchanged events: a 304.
    let again = send(
        &state,
        Request::get("/api/alerts")
            .header(IF_NONE_MATCH, etag)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    for (uri, expected) in [
        ("/api/alerts?rule=volume-spike", 1),
        ("/api/alerts?rule=price-spike", 0),
        ("/api/alerts?pair=BTC-USD", 1),
        ("/api/alerts?pair=ETH-USD", 0),
        ("/api/alerts?since=2026-11-27T11:59:00Z", 1),
        ("/api/alerts?since=2026-11-27T12:00:00Z", 0),
        (
            "/api/alerts?since=2026-11-20T00:00:00%2B01:00&pair=BTC-USD",
            1,
        ),
    ] {
        let body = json(get(&state, uri).await).await;
        assert_eq!(
            body["events"].as_array().unwrap().len(),
            expected,
            "{uri}: {body}"
        );
    }
}

#[tokio::test]
async fn alert_query_errors() {
    let state = state(market_with_alerts().await);
    for (uri, message) in [
        ("/api/alerts?since=yesterday", "invalid since \"yesterday\""),
        ("/api/alerts?pair=BTC%2F..%2Fx", "pair"),
        ("/api/alerts?rule=a&rule=b", "malformed query string"),
        // The document's patterns: an empty value is malformed, not absent.
        ("/api/alerts?since=", "invalid since \"\""),
        (
            "/api/alerts?since=2026-11-27%2011:59:00Z",
            "invalid since \"2026-11-27 11:59:00Z\"",
        ),
        ("/api/alerts?pair=", "invalid pair \"\""),
        ("/api/alerts?rule=", "invalid rule \"\""),
        (
            "/api/alerts?rule=Volume%20Spike",
            "invalid rule \"Volume Spike\"",
        ),
    ] {
        assert_error(&state, uri, StatusCode::BAD_REQUEST, message).await;
    }
}

/// Found by Schemathesis: a valid RFC 3339 `since` more than 31 days back was answered 400,
/// which no schema can state. It is answered from the bound, which the answer names.
#[tokio::test]
async fn schemathesis_a_since_before_the_look_back_counts_from_its_bound() {
    let state = state(market_with_alerts().await);
    for (since, events) in [
        ("2026-09-01T00:00:00Z", 1),
        ("0001-01-01T00:00:00Z", 1),
        ("1970-01-01T00:00:00%2B14:00", 1),
    ] {
        let uri = format!("/api/alerts?since={since}");
        let response = get(&state, &uri).await;
        assert_eq!(response.status(), StatusCode::OK, "{uri}");
        let body = json(response).await;
        // 31 days before the aggregates' as_of, 2026-11-27T11:59:00Z.
        assert_eq!(body["since"], "2026-10-27T11:59:00Z", "{uri}");
        assert_eq!(body["events"].as_array().unwrap().len(), events, "{uri}");
    }
    let future = json(get(&state, "/api/alerts?since=9999-12-31T23:59:59Z").await).await;
    assert_eq!(future["since"], "9999-12-31T23:59:59Z");
    assert_eq!(future["events"], Value::Array(Vec::new()));
}

/// The served document's patterns and enums decide, through the real routes, what is a 400:
/// a value they accept is answered 200 or 404, one they refuse 400.
#[tokio::test]
async fn schemathesis_documented_patterns_decide_what_the_routes_refuse() {
    let state = state(market_with_alerts().await);
    let doc = json(get(&state, "/openapi.json").await).await;
    let schema = |name: &str| doc["components"]["schemas"][name].clone();
    let accepts = |name: &str, value: &str| -> bool {
        let s = schema(name);
        if let Some(pattern) = s["pattern"].as_str() {
            regex::Regex::new(pattern).unwrap().is_match(value)
        } else {
            s["enum"].as_array().unwrap().iter().any(|v| v == value)
        }
    };
    let names = [
        "kraken",
        "coinbase",
        "okx_2",
        "Kraken",
        "1x",
        "_a",
        "a-b",
        "",
        "ETH-USD",
        "BTC-USD",
        "btc-usd",
        "BTC-",
        "-USD",
        "BTC-USD-X",
        "BTC_USD",
        "5m",
        "1h",
        "2m",
        "5M",
        "price",
        "volume",
        "temp",
        "price-spike",
        "volume-spike",
        "Spike",
    ];
    let long = "a".repeat(33);
    let cases = names.iter().copied().chain([long.as_str()]);
    for value in cases {
        for (name, uri) in [
            (
                "SourceName",
                format!("/api/candles?source={value}&pair=ETH-USD"),
            ),
            ("Pair", format!("/api/candles?source=kraken&pair={value}")),
            (
                "CandleInterval",
                format!("/api/candles?source=kraken&pair=ETH-USD&interval={value}"),
            ),
            ("Pair", format!("/api/alerts?pair={value}")),
            ("RuleName", format!("/api/alerts?rule={value}")),
            ("MetricId", format!("/api/metrics/kraken:ETH-USD:{value}")),
            ("MetricId", format!("/api/metrics/{value}:ETH-USD:price")),
            ("MetricId", format!("/api/metrics/kraken:{value}:price")),
        ] {
            let id = uri.strip_prefix("/api/metrics/");
            let valid = accepts(name, id.unwrap_or(value));
            let status = get(&state, &uri).await.status();
            if valid {
                assert!(
                    status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                    "{uri}: the document accepts {value:?}, the route answered {status}"
                );
            } else {
                assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {value:?}");
            }
        }
    }
}

#[tokio::test]
async fn openapi_responses_are_described_and_parameters_constrained() {
    let state = state(market().await);
    let doc = json(get(&state, "/openapi.json").await).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let schemas = &doc["components"]["schemas"];
    assert_eq!(schemas["SourceName"]["pattern"], SourceName::PATTERN);
    assert_eq!(schemas["Pair"]["pattern"], Pair::PATTERN);
    assert_eq!(
        schemas["RuleName"]["pattern"],
        cryptomon_core::alerting::Rule::NAME_PATTERN
    );
    assert_eq!(schemas["Time"]["format"], "date-time");
    for (path, item) in doc["paths"].as_object().unwrap() {
        let op = &item["get"];
        for (status, response) in op["responses"].as_object().unwrap() {
            let description = response["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{path} {status}: no description");
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let body = if (path.as_str(), status.as_str()) == ("/api/health", "503") {
                    "Health"
                } else {
                    "ErrorBody"
                };
                assert_eq!(
                    schema.as_str(),
                    Some(format!("#/components/schemas/{body}").as_str()),
                    "{path} {status}"
                );
            }
        }
        for code in ["408", "413"] {
            assert!(op["responses"].get(code).is_some(), "{path}: no {code}");
        }
        for param in op["parameters"].as_array().into_iter().flatten() {
            let name = param["schema"]["$ref"]
                .as_str()
                .and_then(|r| r.strip_prefix("#/components/schemas/"))
                .unwrap_or_else(|| panic!("{path}: {param} has no named schema"));
            let s = &schemas[name];
            assert!(
                s.get("pattern").is_some() || s.get("enum").is_some() || s.get("format").is_some(),
                "{path}: {name} states no constraint"
            );
        }
    }
    // Every 503 but health's carries Retry-After (an_empty_store_is_healthy_but_has_no_data).
    for path in [
        "/api/summary",
        "/api/metrics",
        "/api/metrics/{id}",
        "/api/candles",
        "/api/alerts",
    ] {
        let headers = &doc["paths"][path]["get"]["responses"]["503"]["headers"];
        assert!(headers.get("Retry-After").is_some(), "{path}");
    }
    // 400 and 404 are documented wherever a parameter can be refused or name nothing.
    for (path, codes) in [
        ("/api/candles", ["400", "404"]),
        ("/api/metrics/{id}", ["400", "404"]),
    ] {
        for code in codes {
            assert!(
                doc["paths"][path]["get"]["responses"].get(code).is_some(),
                "{path} {code}"
            );
        }
    }
}

#[tokio::test]
async fn openapi_documents_every_route_and_the_contract_fields() {
    let store = market_with_alerts().await;
    let summary = stored_summary(&store).await;
    let state = state(store);
    let response = get(&state, "/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json(response).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/health",
        "/api/summary",
        "/api/metrics",
        "/api/metrics/{id}",
        "/api/candles",
        "/api/alerts",
        "/api/events",
        "/",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
    }
    // The documented schemas have exactly the fields the core serializes.
    let schemas = &doc["components"]["schemas"];
    let fields = |name: &str| -> Vec<String> {
        let mut f: Vec<String> = schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no schema {name}"))
            .keys()
            .cloned()
            .collect();
        f.sort();
        f
    };
    let keys = |v: Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    let s = serde_json::to_value(&summary).unwrap();
    assert_eq!(fields("Summary"), keys(s.clone()));
    assert_eq!(fields("SeriesSummary"), keys(s["series"][0].clone()));
    assert_eq!(fields("Spread"), keys(s["spreads"][0].clone()));
    assert_eq!(fields("Alert"), keys(s["alerts"][0].clone()));
    let candles = json(get(&state, "/api/candles?source=kraken&pair=ETH-USD").await).await;
    // `skipped_days` appears only when a range left a history day out: documented, optional.
    let mut with_skipped = candles.clone();
    with_skipped["skipped_days"] = Value::Array(Vec::new());
    assert_eq!(fields("Candles"), keys(with_skipped));
    let required = schemas["Candles"]["required"].as_array().unwrap();
    assert!(
        !required.iter().any(|f| f == "skipped_days"),
        "{required:?}"
    );
    assert_eq!(fields("Candle"), keys(candles["candles"][0].clone()));
    let detail = json(get(&state, "/api/metrics/kraken:ETH-USD:price").await).await;
    assert_eq!(fields("MetricDetail"), keys(detail.clone()));
    assert_eq!(fields("MetricStats"), keys(detail["stats"].clone()));
    let metrics = json(get(&state, "/api/metrics").await).await;
    assert_eq!(fields("MetricInfo"), keys(metrics[0].clone()));
    // The ranks, the one that compares markets among them, are documented (issue 23).
    for (schema, field) in [
        ("SeriesSummary", "volatility_rank"),
        ("MetricInfo", "volatility_rank"),
        ("MetricDetail", "volatility_rank"),
        ("MetricDetail", "volatility_ranked"),
    ] {
        assert!(
            fields(schema).iter().any(|f| f == field),
            "{schema}.{field}"
        );
    }
    let health = json(get(&state, "/api/health").await).await;
    assert_eq!(fields("Health"), keys(health.clone()));
    let alerts = json(get(&state, "/api/alerts").await).await;
    assert_eq!(fields("AlertEvents"), keys(alerts.clone()));
    // An event as served is the stored event and its key.
    let mut keyed = fields("AlertEvent");
    keyed.extend(
        schemas["KeyedAlertEvent"]["allOf"][1]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned(),
    );
    keyed.sort();
    assert_eq!(keyed, keys(alerts["events"][0].clone()));
}

#[tokio::test]
async fn the_dashboard_and_its_assets_are_embedded() {
    let state = state(Arc::new(MemoryStore::new()));
    let response = get(&state, "/").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(response.headers().contains_key(ETAG));
    let html = String::from_utf8(body(response).await.to_vec()).unwrap();
    assert!(html.contains("lightweight-charts.standalone.production.js"));
    assert!(
        !html.contains("https://"),
        "the page must not load anything from the network"
    );

    let response = get(
        &state,
        "/assets/vendor/lightweight-charts.standalone.production.js",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    let js = body(response).await;
    assert!(js.starts_with(b"/*!\n * @license\n * TradingView Lightweight Charts"));
    for asset in [
        "/assets/app.js",
        "/assets/style.css",
        "/assets/vendor/lightweight-charts.LICENSE",
    ] {
        assert_eq!(get(&state, asset).await.status(), StatusCode::OK, "{asset}");
    }
    assert_error(
        &state,
        "/assets/vendor/README.md",
        StatusCode::NOT_FOUND,
        "no such asset",
    )
    .await;
    assert_error(&state, "/assets/../Cargo.toml", StatusCode::NOT_FOUND, "").await;
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let state = state(market().await);
    assert_error(&state, "/api/nope", StatusCode::NOT_FOUND, "no such route").await;
    assert_error(
        &state,
        "/favicon.ico",
        StatusCode::NOT_FOUND,
        "no such route",
    )
    .await;
    let request = Request::post("/api/summary").body(Body::empty()).unwrap();
    let response = send(&state, request).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json(response).await["error"], "method not allowed");
}

/// Found by the `api` fuzz target: an asset path that does not percent-decode to UTF-8 got
/// axum's plain-text 400 instead of a JSON error.
#[tokio::test]
async fn fuzz_api_undecodable_asset_path_is_a_json_400() {
    let state = state(market().await);
    for uri in [
        "/assets/..%2f..%:phe%:phets/..%4f..ts/..%8f..%:ph%o..%t0oml",
        "/assets/%ff.js",
        "/assets/app%c3.js",
    ] {
        assert_error(&state, uri, StatusCode::BAD_REQUEST, "invalid asset path").await;
    }
}

#[tokio::test]
async fn responses_are_compressed_when_accepted() {
    let state = state(market().await);
    for encoding in ["gzip", "br"] {
        let request = Request::get("/api/summary")
            .header(ACCEPT_ENCODING, encoding)
            .body(Body::empty())
            .unwrap();
        let response = send(&state, request).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[CONTENT_ENCODING], encoding);
    }
    let plain = get(&state, "/api/summary").await;
    assert!(!plain.headers().contains_key(CONTENT_ENCODING));
}

#[tokio::test]
async fn a_corrupt_store_answers_503_without_internal_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    use cryptomon_core::StoreExt;
    store
        .put("aggregates/summary.json", "{not json".into())
        .await
        .unwrap();
    let state = AppState::new(Arc::new(store));
    let response = get(&state, "/api/summary").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = String::from_utf8(body(response).await.to_vec()).unwrap();
    assert!(!text.contains(dir.path().to_str().unwrap()), "{text}");
    assert!(!text.contains("summary.json"), "{text}");
    assert_eq!(text, r#"{"error":"the store is unavailable"}"#);
}

#[tokio::test]
async fn limits_traversal_and_cors() {
    let state = state(market().await);
    // A body is of no use to a read-only API: over the limit, a JSON 413 before any handler.
    let big = send(
        &state,
        Request::get("/api/summary")
            .header(
                "content-length",
                (cryptomon_server::api::MAX_BODY + 1).to_string(),
            )
            .body(Body::from(vec![b'x'; cryptomon_server::api::MAX_BODY + 1]))
            .unwrap(),
    )
    .await;
    assert_eq!(big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(json(big).await["error"].as_str().unwrap().contains("bytes"));
    // Writes are refused: the API is read-only.
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = send(
            &state,
            Request::builder()
                .method(method)
                .uri("/api/summary")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    // Paths and parameters that try to climb out of the store or the assets.
    for uri in [
        "/assets/../Cargo.toml",
        "/assets/..%2F..%2FCargo.toml",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "/api/metrics/..%2F..%2Fetc%2Fpasswd",
        "/api/metrics/coinbase:..%2F..%2Faggregates%2Fsummary.json:price",
        "/api/candles?source=..%2F..%2Fetc&pair=BTC-USD",
        "/api/candles?source=coinbase&pair=..%2Fwindow",
        "/api/alerts?pair=..%2F..%2Fetc",
    ] {
        let r = get(&state, uri).await;
        assert!(r.status().is_client_error(), "{uri}: {}", r.status());
        let body = body(r).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("root:") && !text.contains("[package]") && !text.contains("as_of"),
            "{uri}: {text}"
        );
        serde_json::from_slice::<Value>(&body).unwrap_or_else(|_| panic!("{uri}: not JSON"));
    }
    // CORS: any origin may read, explicitly GET and HEAD only.
    let preflight = send(
        &state,
        Request::builder()
            .method("OPTIONS")
            .uri("/api/summary")
            .header("origin", "https://example.org")
            .header("access-control-request-method", "GET")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let methods = preflight.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        methods.contains("GET") && !methods.contains("POST"),
        "{methods}"
    );
}
