//! `cryptomon collect --once --config` against local servers that answer like the exchanges,
//! with recorded bodies: snapshots hold exactly the bodies' prices under canonical pairs, and a
//! failing exchange writes nothing, says why, and makes the exit code non-zero.

use std::path::Path;
use std::process::Command;

use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cryptomon-core/tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(status: u16, name: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixture(name), "application/json")
}

fn snapshot(store: &Path, source: &str) -> Option<serde_json::Value> {
    let dir = store.join(format!("raw/source={source}"));
    let date = std::fs::read_dir(dir).ok()?.next()?.ok()?.path();
    let file = std::fs::read_dir(date).ok()?.next()?.ok()?.path();
    Some(serde_json::from_slice(&std::fs::read(file).ok()?).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_writes_the_bodies_prices_and_reports_a_failing_exchange() {
    let kraken = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/0/public/Ticker"))
        .and(query_param("pair", "XBTUSD"))
        .respond_with(json(200, "kraken/ticker_xbtusd_docs_example.json"))
        .expect(1)
        .mount(&kraken)
        .await;
    let coinbase = MockServer::start().await;
    Mock::given(path("/products/BTC-USD/ticker"))
        .respond_with(json(200, "coinbase/ticker_btc-usd_live_2026-06-19.json"))
        .mount(&coinbase)
        .await;
    Mock::given(path("/products/BTC-USD/stats"))
        .respond_with(json(200, "coinbase/stats_btc-usd_live_2026-06-19.json"))
        .mount(&coinbase)
        .await;
    let binance = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(json(400, "binance/error_400_invalid_symbol.json"))
        .mount(&binance)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{}\"\n",
            kraken.uri(),
            coinbase.uri(),
            binance.uri()
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let out = tokio::task::spawn_blocking({
        let (config, store) = (config.clone(), store.clone());
        move || {
            Command::new(env!("CARGO_BIN_EXE_cryptomon"))
                .args(["collect", "--once", "--config"])
                .arg(&config)
                .arg("--store")
                .arg(&store)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "binance failed, so the exit is non-zero: {stdout}"
    );
    assert!(
        stdout.contains("kraken: wrote raw/source=kraken/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("coinbase: wrote raw/source=coinbase/"),
        "{stdout}"
    );
    assert!(
        stdout.contains("binance: FAILED") && stdout.contains("Invalid symbol"),
        "{stdout}"
    );

    let k = snapshot(&store, "kraken").expect("kraken snapshot");
    assert_eq!(k["schema"], "cryptomon.snapshot/v1");
    assert_eq!(k["quotes"][0]["pair"], "BTC-USD");
    assert_eq!(k["quotes"][0]["price"], 30303.2);
    let c = snapshot(&store, "coinbase").expect("coinbase snapshot");
    assert_eq!(c["quotes"][0]["pair"], "BTC-USD");
    assert_eq!(c["quotes"][0]["price"], 63212.97);
    assert!(
        snapshot(&store, "binance").is_none(),
        "an error answer writes nothing"
    );
}

/// An API key given through `api_key_env` reaches the exchange in its header and nowhere else:
/// not in logs at debug level, not in error messages, not in stored snapshots, even when the
/// exchange echoes it back in its body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_never_reaches_logs_errors_or_stored_bodies() {
    const KEY: &str = "CG-planted-key-7f3a9c1e";
    let coingecko = MockServer::start().await;
    // The first call answers with prices and the key echoed in an extra field; the second
    // (another run) fails with the key in the error body.
    Mock::given(path("/simple/price"))
        .and(wiremock::matchers::header("x-cg-demo-api-key", KEY))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            format!(r#"{{"bitcoin": {{"usd": 91234.5, "usd_24h_vol": 1.5e10}}, "echo": "{KEY}"}}"#),
            "application/json",
        ))
        .up_to_n_times(1)
        .mount(&coingecko)
        .await;
    Mock::given(path("/simple/price"))
        .respond_with(ResponseTemplate::new(401).set_body_raw(
            format!(r#"{{"status": {{"error_code": 10002, "error_message": "bad key {KEY}"}}}}"#),
            "application/json",
        ))
        .mount(&coingecko)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cryptomon.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\napi_key_env = \"TEST_CG_KEY\"\n",
            coingecko.uri()
        ),
    )
    .unwrap();
    let mut output = String::new();
    for store in ["a", "b"] {
        let (config, store) = (config.clone(), dir.path().join(store));
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_cryptomon"))
                .args(["-vv", "collect", "--once", "--config"])
                .arg(&config)
                .arg("--store")
                .arg(&store)
                .env("TEST_CG_KEY", KEY)
                .env_remove("RUST_LOG")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        output.push_str(&String::from_utf8_lossy(&out.stdout));
        output.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // The runs did happen: one snapshot stored, one failure reported.
    assert!(
        snapshot(&dir.path().join("a"), "coingecko").is_some(),
        "{output}"
    );
    assert!(output.contains("401"), "{output}");
    assert!(
        !output.contains(KEY),
        "the key leaked into the output:\n{output}"
    );
    let stored = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join("a/raw/source=coingecko"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(!stored.contains(KEY), "the key was stored: {stored}");
}

/// Runs `cryptomon collect --once --config CONFIG` into a fresh store, sampling the process's
/// peak resident memory (`VmHWM`) every 10 ms while it runs.
fn collect_once(config: &Path, store: &Path) -> (std::process::Output, u64, std::time::Duration) {
    let started = std::time::Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_cryptomon"))
        .args(["collect", "--once", "--config"])
        .arg(config)
        .arg("--store")
        .arg(store)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let peak_kib = std::thread::scope(|s| {
        let sampler = s.spawn(|| {
            let mut peak = 0;
            while let Ok(text) = std::fs::read_to_string(&status) {
                let hwm = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
                match hwm {
                    Some(kib) => peak = peak.max(kib),
                    // A zombie has no memory left to report.
                    None => break,
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        });
        let out = child.wait_with_output().unwrap();
        (out, sampler.join().unwrap())
    });
    let (out, peak) = peak_kib;
    (out, peak, started.elapsed())
}

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let config = dir.join("cryptomon.toml");
    std::fs::write(&config, text).unwrap();
    config
}

async fn healthy_kraken() -> MockServer {
    let kraken = MockServer::start().await;
    Mock::given(path("/0/public/Ticker"))
        .respond_with(json(200, "kraken/ticker_xbtusd_docs_example.json"))
        .mount(&kraken)
        .await;
    kraken
}

/// Issue 20: `Retry-After: 18446744073709551615` made `collect` panic (exit 101) adding it to a
/// clock. Now each absurd value (a u64::MAX of seconds, a date in year 9999, a negative number)
/// fails its source at once with an error naming it, and the healthy source is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_fails_its_source_without_a_panic() {
    let kraken = healthy_kraken().await;
    let limited =
        |file: &str, retry_after: &str| json(429, file).insert_header("Retry-After", retry_after);
    let binance = MockServer::start().await;
    Mock::given(path("/api/v3/ticker/24hr"))
        .respond_with(limited(
            "binance/error_429_too_much_weight.json",
            "18446744073709551615",
        ))
        .mount(&binance)
        .await;
    let coinbase = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(limited(
            "coinbase/error_429_public_rate_limit.json",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ))
        .mount(&coinbase)
        .await;
    let coingecko = MockServer::start().await;
    Mock::given(path("/simple/price"))
        .respond_with(limited("coingecko/error_429_rate_limit.json", "-5"))
        .mount(&coingecko)
        .await;

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"binance\"\npairs = [\"BTC-USDT\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"coinbase\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"coingecko\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n",
            kraken.uri(),
            binance.uri(),
            coinbase.uri(),
            coingecko.uri()
        ),
    );
    let store = dir.path().join("store");
    let (out, _, elapsed) = tokio::task::spawn_blocking(move || collect_once(&config, &store))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "no wait past the budget: {elapsed:?}"
    );
    assert!(
        stdout.contains("kraken: wrote raw/source=kraken/"),
        "{stdout}"
    );
    for (source, wait) in [
        (
            "binance",
            "Retry-After 18446744073709551615 s, taken as 3600 s",
        ),
        ("coinbase", "Retry-After "),
        ("coingecko", "no Retry-After"),
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{source}: FAILED")))
            .unwrap_or_else(|| panic!("no failure line for {source}: {stdout}"));
        assert!(
            line.contains(&format!("source {source} failed"))
                && line.contains("rate limited (HTTP 429")
                && line.contains(wait),
            "{line}"
        );
    }
    assert!(snapshot(&dir.path().join("store"), "kraken").is_some());
}

/// A local exchange answering 200 with a chunked body that never ends, counting what it sent.
fn endless_server(sent: std::sync::Arc<std::sync::atomic::AtomicU64>) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            let Ok(mut connection) = connection else {
                return;
            };
            let sent = sent.clone();
            std::thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match connection.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Transfer-Encoding: chunked\r\n\r\n5\r\n[{\"a\"\r\n";
                if connection.write_all(head).is_err() {
                    return;
                }
                let chunk = [b' '; 64 * 1024];
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                while connection.write_all(&frame).is_ok() {
                    sent.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    format!("http://{address}")
}

/// Issue 20: a 1 GiB body drove `collect` to 2 GB of RSS. Now a body that never ends is cut at
/// the entry's `max_body_bytes` (8 MiB here): the source fails at once naming the limit, the
/// process stays far below 200 MB, and the healthy source is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_cut_at_the_cap_with_bounded_memory() {
    let kraken = healthy_kraken().await;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let endless = endless_server(sent.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[[sources]]\nkind = \"kraken\"\npairs = [\"BTC-USD\"]\nbase_url = \"{}\"\n\
             [[sources]]\nkind = \"binance\"\npairs = \"all\"\nbase_url = \"{endless}\"\n\
             max_body_bytes = 8388608\n",
            kraken.uri()
        ),
    );
    let store = dir.path().join("store");
    let (out, peak_kib, elapsed) =
        tokio::task::spawn_blocking(move || collect_once(&config, &store))
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("binance: FAILED"))
        .unwrap_or_else(|| panic!("{stdout}\n{stderr}"));
    assert!(
        line.contains("source binance failed")
            && line.contains("over the limit of 8 MiB (max_body_bytes = 8388608)"),
        "{line}"
    );
    assert!(
        stdout.contains("kraken: wrote raw/source=kraken/"),
        "{stdout}"
    );
    assert!(snapshot(&dir.path().join("store"), "kraken").is_some());
    assert!(
        sent.load(std::sync::atomic::Ordering::Relaxed) >= 8 << 20,
        "the server streamed past the cap"
    );
    assert!(peak_kib > 0, "the peak was sampled");
    assert!(
        peak_kib < 200 * 1024,
        "peak RSS {} MiB for an 8 MiB cap",
        peak_kib / 1024
    );
    assert!(
        elapsed < std::time::Duration::from_secs(10),
        "cut at the cap, not at a timeout: {elapsed:?}"
    );
}
