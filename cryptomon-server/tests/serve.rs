//! `serve()` in-process on `127.0.0.1:0`: the demo history, the schedule, Prometheus metrics,
//! read-only pick-up of aggregates written elsewhere, and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use cryptomon_core::DynStore;
use cryptomon_mock::MemoryStore;
use cryptomon_server::{ServeOptions, demo_sources, serve};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

async fn start(
    store: DynStore,
    sources: Vec<cryptomon_core::DynSource>,
    options: ServeOptions,
) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        serve(listener, store, sources, options, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (base, stop, task)
}

async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

async fn wait_until(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_fills_the_store_counts_and_stops_gracefully() {
    let store = Arc::new(MemoryStore::new());
    let options = ServeOptions {
        seed_history: true,
        ..ServeOptions::default()
    };
    let (base, stop, task) = start(store.clone(), demo_sources(), options).await;
    let http = reqwest::Client::new();
    wait_until("a healthy demo", async || {
        get_json(&http, &format!("{base}/api/health"))
            .await
            .is_some_and(|h| h["status"] == "ok")
    })
    .await;
    // 24 h of history plus the current tick, for each of the 3 demo sources.
    let raw = store
        .keys()
        .iter()
        .filter(|k| k.starts_with("raw/"))
        .count();
    assert!(raw >= 3 * 1441, "{raw} snapshots");
    let summary = get_json(&http, &format!("{base}/api/summary"))
        .await
        .unwrap();
    assert_eq!(summary["series"].as_array().unwrap().len(), 36);
    // The window is (as_of − 24 h, as_of]: the oldest history tick has just left it.
    assert_eq!(summary["series"][0]["samples"], 1440);

    // The transform's duration is recorded when the run returns, a moment after its summary
    // is readable: wait for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("cryptomon_transform_duration_seconds")
            || std::time::Instant::now() > deadline
        {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for needle in [
        "cryptomon_collections_total{source=\"demo\",outcome=\"ok\"}",
        "cryptomon_transform_duration_seconds",
        "cryptomon_http_requests_total{route=\"/api/summary\",status=\"200\"}",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle}:\n{text}");
    }

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve did not stop")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_serve_picks_up_aggregates_written_elsewhere() {
    let store = market().await;
    let options = ServeOptions {
        read_only: true,
        watch_every: Duration::from_millis(100),
        ..ServeOptions::default()
    };
    let (base, stop, task) = start(store.clone(), Vec::new(), options).await;
    let http = reqwest::Client::new();
    let summary = get_json(&http, &format!("{base}/api/summary"))
        .await
        .unwrap();
    assert_eq!(summary["as_of"], "2026-11-27T11:59:00Z");

    // Another writer lands a new transform.
    write_and_transform(&store, TICKS, TICKS + 1).await;
    wait_until("the new summary", async || {
        get_json(&http, &format!("{base}/api/summary"))
            .await
            .is_some_and(|s| s["as_of"] == "2026-11-27T12:00:00Z")
    })
    .await;
    // Read-only: no collection; the only snapshots are the ones written here.
    let raw = store
        .keys()
        .iter()
        .filter(|k| k.starts_with("raw/"))
        .count();
    assert_eq!(raw, 3 * (TICKS as usize + 1));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve did not stop")
        .unwrap();
}

/// Sends `request` on a fresh connection and returns the status line of the answer, or `None`
/// when the server closed the connection without one.
async fn raw_status(base: &str, request: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    // The server may close while the request is still being written: that is a refusal too.
    let _ = socket.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer));
    let _ = read.await.expect("the server neither answered nor closed");
    let text = String::from_utf8_lossy(&answer);
    text.lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_headers_are_refused_and_serving_goes_on() {
    let options = ServeOptions {
        read_only: true,
        ..ServeOptions::default()
    };
    let (base, stop, task) = start(market().await, Vec::new(), options).await;

    // One 1 MiB header, then 200 small ones: over hyper's limits (buffer and header count).
    let big = format!(
        "GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /api/health HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    for (what, request) in [("a 1 MiB header", big), ("200 headers", many)] {
        // hyper answers before the router sees the request (so without a JSON body).
        assert_eq!(
            raw_status(&base, request.as_bytes()).await.as_deref(),
            Some("HTTP/1.1 431 Request Header Fields Too Large"),
            "{what}"
        );
    }
    // The server is unharmed: a normal request still gets its answer.
    let ok = raw_status(
        &base,
        b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(ok.as_deref(), Some("HTTP/1.1 200 OK"));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("serve did not stop")
        .unwrap();
}
