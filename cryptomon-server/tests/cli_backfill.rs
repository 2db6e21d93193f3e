//! `cryptomon backfill --hours 2 --config` against local servers that answer like the
//! exchanges' candle endpoints (rows in the recorded bodies' shapes, generated for the current
//! hours): each source's hours are written with the candles' closes, volumes only where a whole
//! trailing day of candles is there, a failing exchange is reported while the others are
//! written, a second run writes nothing, and a run that can fetch nothing fails. `serve
//! --config` and `transform --config` backfill an empty window first, unless the config says
//! not to.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Timelike, Utc};
use serde_json::{Value, json};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Seconds in an hour.
const HOUR: i64 = 3600;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cryptomon-core/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn param(request: &Request, name: &str) -> String {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {}", request.url))
}

/// The close of minute `t` on every exchange here.
fn close_at(t: i64) -> f64 {
    50_000.0 + (t / 60 % 997) as f64
}

/// The minutes ETH-USD has no Coinbase candle for: 5 to 9 past `gap_hour`.
fn eth_gap(t: i64, gap_hour: i64) -> bool {
    (gap_hour + 5 * 60..gap_hour + 10 * 60).contains(&t)
}

/// Coinbase: a row for each minute of `[start, end]`, newest first, volume 0.5; ETH-USD lacks
/// five minutes of `gap_hour`.
async fn coinbase(gap_hour: i64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::path_regex(
        "^/products/[A-Z]+-USD/candles$",
    ))
    .respond_with(move |request: &Request| {
        let eth = request.url.path().contains("ETH-USD");
        let at = |name| {
            chrono::DateTime::parse_from_rfc3339(&param(request, name))
                .unwrap()
                .timestamp()
        };
        let (start, end) = (at("start"), at("end"));
        let rows: Vec<Value> = (0..=(end - start) / 60)
            .rev()
            .map(|i| start + i * 60)
            .filter(|&t| !(eth && eth_gap(t, gap_hour)))
            .map(|t| json!([t, 1.0, 2.0, 1.5, close_at(t), 0.5]))
            .collect();
        ResponseTemplate::new(200).set_body_json(rows)
    })
    .mount(&server)
    .await;
    server
}

/// Kraken: whatever `since` says, the 720 most recent minutes, the last one still open.
async fn kraken() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/0/public/OHLC"))
        .respond_with(|_: &Request| {
            let now = Utc::now().timestamp() / 60 * 60;
            let rows: Vec<Value> = (0..720)
                .map(|i| now - (719 - i) * 60)
                .map(|t| json!([t, "1", "1", "1", close_at(t).to_string(), "1", "2.5", 4]))
                .collect();
            ResponseTemplate::new(200)
                .set_body_json(json!({"error": [], "result": {"XXBTZUSD": rows, "last": now - 60}}))
        })
        .mount(&server)
        .await;
    server
}

/// Binance, from a restricted location.
async fn binance() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/api/v3/klines"))
        .respond_with(ResponseTemplate::new(451).set_body_raw(
            fixture("binance/error_451_restricted_location.json"),
            "application/json",
        ))
        .mount(&server)
        .await;
    server
}

async fn backfill(config: &Path, store: &Path) -> Output {
    let (config, store) = (config.to_owned(), store.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["backfill", "--hours", "2", "--config"])
            .arg(&config)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn object(store: &Path, source: &str, hour: i64) -> Option<Value> {
    let at = chrono::DateTime::from_timestamp(hour, 0).unwrap();
    let file: PathBuf = store.join(format!(
        "backfill/source={source}/date={}/{}.json",
        at.format("%Y-%m-%d"),
        at.format("%Y%m%dT%H%M%SZ")
    ));
    let bytes = std::fs::read(file).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn series<'a>(object: &'a Value, pair: &str) -> &'a Vec<Value> {
    object["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pair"] == pair)
        .unwrap_or_else(|| panic!("no {pair} in {object}"))["samples"]
        .as_array()
        .unwrap()
}

/// Waits out the last seconds of an hour, so the two runs of a test ask for the same hours.
async fn away_from_the_hour() -> i64 {
    let now = Utc::now();
    let into = i64::from(now.minute() * 60 + now.second());
    if into > HOUR - 40 {
        tokio::time::sleep(std::time::Duration::from_secs((HOUR - into + 2) as u64)).await;
    }
    Utc::now().timestamp() / HOUR * HOUR
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_writes_each_sources_hours_once_and_reports_what_it_could_not() {
    let end = away_from_the_hour().await;
    let hours = [end - 2 * HOUR, end - HOUR];
    let (coinbase, kraken, binance) = (coinbase(hours[0]).await, kraken().await, binance().await);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\", \"ETH-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{}\"\n",
            coinbase.uri(),
            kraken.uri(),
            binance.uri()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");

    let out = backfill(&config, &store).await;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("coinbase: 2 hours written, 0 already present, 0 not written"),
        "{all}"
    );
    assert!(all.contains("kraken: 2 hours written"), "{all}");
    assert!(
        all.contains("binance: 0 hours written, 0 already present, 2 not written"),
        "{all}"
    );
    assert!(
        all.contains("binance BTC-USDT:") && all.contains("HTTP 451"),
        "the failing exchange is named with its reason: {all}"
    );
    assert!(
        all.contains("coinbase ETH-USD: the exchange returned no candle"),
        "{all}"
    );
    assert!(
        all.contains("backfill: 4 hours written, 0 already present, 2 not written"),
        "{all}"
    );

    for hour in hours {
        let o = object(&store, "coinbase", hour).unwrap();
        assert_eq!(o["schema"], "cryptomon.backfill/v1");
        let btc = series(&o, "BTC-USD");
        assert_eq!(btc.len(), 60);
        for (i, s) in btc.iter().enumerate() {
            let t = hour + i as i64 * 60;
            // 1,440 trailing candles of 0.5 each.
            assert_eq!(s, &json!([t, close_at(t), 720.0]), "BTC-USD at {t}");
        }
        let k = object(&store, "kraken", hour).unwrap();
        let kbtc = series(&k, "BTC-USD");
        assert_eq!(kbtc.len(), 60);
        assert_eq!(
            kbtc[7],
            json!([hour + 420, close_at(hour + 420), null]),
            "720 minutes: no 24 h volume"
        );
        assert_eq!(object(&store, "binance", hour), None);
    }
    let first = object(&store, "coinbase", hours[0]).unwrap();
    let eth = series(&first, "ETH-USD");
    assert_eq!(eth.len(), 55);
    assert_eq!(
        eth[4][2],
        json!(720.0),
        "before the gap the trailing day is whole"
    );
    assert_eq!(eth[5][0], json!(hours[0] + 600));
    assert_eq!(eth[5][2], Value::Null, "after it, it is not");
    let gap = first["missing"][0].clone();
    assert_eq!(gap["pair"], "ETH-USD");
    let hh = chrono::DateTime::from_timestamp(hours[0], 0)
        .unwrap()
        .format("%H")
        .to_string();
    assert_eq!(
        gap["reason"],
        format!("exchange returned no candle for {hh}:05-{hh}:09")
    );
    assert!(!store.join("raw").exists(), "backfill never writes raw/");

    let coinbase_requests = coinbase.received_requests().await.unwrap().len();
    let out = backfill(&config, &store).await;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("coinbase: 0 hours written, 2 already present"),
        "{all}"
    );
    assert!(
        all.contains("kraken: 0 hours written, 2 already present"),
        "{all}"
    );
    assert_eq!(
        coinbase.received_requests().await.unwrap().len(),
        coinbase_requests,
        "present hours are not fetched again"
    );

    let only_binance = dir.path().join("binance.toml");
    std::fs::write(
        &only_binance,
        format!(
            "[[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{}\"\n",
            binance.uri()
        ),
    )
    .unwrap();
    let out = backfill(&only_binance, &dir.path().join("empty")).await;
    assert!(
        !out.status.success(),
        "nothing could be fetched: {}",
        text(&out)
    );
}

/// `cryptomon serve --config` on `store` until it says where it serves; its stderr.
async fn serve_until_ready(config: &Path, store: &Path) -> String {
    use std::io::{BufRead, BufReader, Read};
    use std::process::Stdio;

    let (config, store) = (config.to_owned(), store.to_owned());
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&config)
            .arg("--store")
            .arg(&store)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(line.contains("cryptomon serving"), "{line}\n{stderr}");
        stderr
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_backfills_an_empty_window_before_serving_unless_turned_off() {
    let end = away_from_the_hour().await;
    let coinbase = coinbase(end - 10 * HOUR).await;
    let dir = tempfile::tempdir().unwrap();
    let entry = format!(
        "[[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n",
        coinbase.uri()
    );
    for (on, wanted) in [(false, false), (true, true)] {
        let config = dir.path().join(format!("serve-{on}.toml"));
        std::fs::write(
            &config,
            format!("{entry}\n[backfill]\non_empty = {on}\nhours = 2\n"),
        )
        .unwrap();
        let store = dir.path().join(format!("store-{on}"));
        let stderr = serve_until_ready(&config, &store).await;
        for hour in [end - 2 * HOUR, end - HOUR] {
            let written = object(&store, "coinbase", hour);
            assert_eq!(written.is_some(), wanted, "on_empty = {on}: {stderr}");
            if let Some(o) = written {
                assert_eq!(series(&o, "BTC-USD").len(), 60);
            }
        }
        if on {
            assert!(stderr.contains("coinbase: 2 hours written"), "{stderr}");
        }
    }
}

/// `cryptomon transform --config` on `store` (`--every`'s first run goes the same way).
async fn transform(config: &Path, store: &Path) -> Output {
    let (config, store) = (config.to_owned(), store.to_owned());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["transform", "--config"])
            .arg(&config)
            .arg("--store")
            .arg(&store)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// The number of samples of `pair` of `source` in the store's summary.
fn summary_samples(store: &Path, source: &str, pair: &str) -> u64 {
    let bytes = std::fs::read(store.join("aggregates/summary.json")).unwrap();
    let summary: Value = serde_json::from_slice(&bytes).unwrap();
    summary["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == source && s["pair"] == pair)
        .unwrap_or_else(|| panic!("no {source} {pair} in {summary}"))["samples"]
        .as_u64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transform_with_a_config_backfills_an_empty_window_first_unless_turned_off() {
    let end = away_from_the_hour().await;
    let coinbase = coinbase(end - 10 * HOUR).await;
    let dir = tempfile::tempdir().unwrap();
    let entry = format!(
        "[[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n",
        coinbase.uri()
    );
    let config = |on: bool| {
        let path = dir.path().join(format!("transform-{on}.toml"));
        std::fs::write(
            &path,
            format!("{entry}\n[backfill]\non_empty = {on}\nhours = 2\n"),
        )
        .unwrap();
        path
    };
    let empty_store = |name: &str| {
        let store = dir.path().join(name);
        std::fs::create_dir(&store).unwrap();
        store
    };

    // On (the default): the two hours are backfilled, then transformed.
    let store = empty_store("on");
    let out = transform(&config(true), &store).await;
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("coinbase: 2 hours written"), "{all}");
    for hour in [end - 2 * HOUR, end - HOUR] {
        let o = object(&store, "coinbase", hour).unwrap_or_else(|| panic!("{hour}: {all}"));
        assert_eq!(series(&o, "BTC-USD").len(), 60);
    }
    assert!(all.contains("transform (full rebuild"), "{all}");
    assert_eq!(summary_samples(&store, "coinbase", "BTC-USD"), 120, "{all}");
    let requests = coinbase.received_requests().await.unwrap().len();
    assert!(requests > 0);

    // Off: nothing is fetched, and an empty store has nothing to transform, as before.
    let store = empty_store("off");
    let out = transform(&config(false), &store).await;
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("holds no readable snapshot"), "{all}");
    assert!(!store.join("backfill").exists(), "{all}");
    assert_eq!(coinbase.received_requests().await.unwrap().len(), requests);

    // A window that already holds a snapshot is not backfilled.
    let store = dir.path().join("collected");
    let collect = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(["collect", "--once", "--demo", "--store"])
        .arg(&store)
        .output()
        .unwrap();
    assert!(collect.status.success(), "{}", text(&collect));
    let out = transform(&config(true), &store).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(!store.join("backfill").exists(), "{}", text(&out));
    assert_eq!(coinbase.received_requests().await.unwrap().len(), requests);

    // A serve whose [prometheus] table is wrong stops before it fetches anything.
    let bad = dir.path().join("bad-prometheus.toml");
    std::fs::write(
        &bad,
        format!("{entry}\n[prometheus]\nsources = [\"no such source!\"]\n"),
    )
    .unwrap();
    let store = empty_store("bad-prometheus");
    let (bad_config, bad_store) = (bad.clone(), store.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["serve", "--addr", "127.0.0.1:0", "--config"])
            .arg(&bad_config)
            .arg("--store")
            .arg(&bad_store)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("[prometheus]"), "{}", text(&out));
    assert!(!store.join("backfill").exists(), "{}", text(&out));
    assert_eq!(coinbase.received_requests().await.unwrap().len(), requests);

    // A run told of its keys follows a collection: it never backfills, even on an empty store.
    let store = empty_store("told");
    let keys = dir.path().join("no-keys");
    std::fs::write(&keys, "").unwrap();
    let (told_config, told_store) = (config(true), store.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["transform", "--keys"])
            .arg(&keys)
            .arg("--config")
            .arg(&told_config)
            .arg("--store")
            .arg(&told_store)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!store.join("backfill").exists(), "{}", text(&out));
    assert_eq!(coinbase.received_requests().await.unwrap().len(), requests);
}

#[test]
fn help_says_what_backfill_does() {
    let out = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(["backfill", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for wanted in [
        "--hours",
        "--store",
        "--config",
        "one-minute candles",
        "Exit code",
    ] {
        assert!(help.contains(wanted), "{wanted}: {help}");
    }
}

/// The promise: a fresh `serve --config` against the exchanges shows a 24 h chart at
/// once, from the candles backfilled at start-up (the tickers here answer nothing, so no
/// snapshot is collected: every candle comes from the backfill).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_serve_shows_a_day_of_chart_at_once() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let end = away_from_the_hour().await;
    let coinbase = coinbase(end - 10 * HOUR).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("serve.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n[backfill]\nhours = 24\n",
            coinbase.uri()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(["serve", "--addr", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--store")
        .arg(dir.path().join("store"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    let url = format!("{base}api/candles?source=coinbase&pair=BTC-USD&interval=1h");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let candles = loop {
        if let Ok(response) = reqwest::get(&url).await
            && response.status() == 200
        {
            break response.json::<Value>().await.unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no candles from {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let candles = candles["candles"].as_array().unwrap();
    // The 24 whole hours before this one, each a candle of 60 backfilled minutes.
    assert!(candles.len() >= 23, "{} hourly candles", candles.len());
    let first = chrono::DateTime::parse_from_rfc3339(candles[0]["t"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert!(
        first <= end - 23 * HOUR,
        "the chart starts at {first}, now {end}"
    );
    let last = candles.last().unwrap();
    let t = chrono::DateTime::parse_from_rfc3339(last["t"].as_str().unwrap())
        .unwrap()
        .timestamp();
    assert_eq!(last["c"].as_f64(), Some(close_at(t + HOUR - 60)), "{last}");
}
