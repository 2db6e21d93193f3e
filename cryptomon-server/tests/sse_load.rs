//! 500 event-stream clients held open against `cryptomon serve --read-only` (a process of its
//! own, on loopback) while transforms land in its store: every client gets every new summary,
//! one client that never reads does not hold the others back, and the server's memory stays
//! bounded. `SSE_HOLD_SECS` sets how long the clients are held (default 60).

mod common;

use cryptomon_core::pipeline::TransformOptions;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use cryptomon_core::{FsStore, PolarsAggregator, StoreExt, keys::raw_key, pipeline};

const CLIENTS: usize = 500;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

async fn write_and_transform(store: &FsStore, from: i64, to: i64) {
    for i in from..to {
        for source in SOURCES {
            let snap = snapshot(source, i);
            store
                .put(
                    &raw_key(&snap.source, snap.tick),
                    bytes::Bytes::from(snap.to_json()),
                )
                .await
                .unwrap();
        }
    }
    pipeline::transform(
        store,
        &PolarsAggregator::default(),
        &TransformOptions::default(),
    )
    .await
    .unwrap();
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_event_streams_get_every_summary_and_a_slow_one_stalls_nobody() {
    let hold = Duration::from_secs(
        std::env::var("SSE_HOLD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    write_and_transform(&store, 0, 60).await;

    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_cryptomon"))
            .args(["serve", "--read-only", "--addr", "127.0.0.1:0", "--store"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(server.0.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let addr = base.trim_start_matches("http://").to_owned();

    // A client that asks for the stream and never reads a byte of it.
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "GET /api/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();

    let rss_before = rss_kb(pid);
    let summaries: Arc<Vec<AtomicUsize>> =
        Arc::new((0..CLIENTS).map(|_| AtomicUsize::new(0)).collect());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (http, url, summaries) = (
            http.clone(),
            format!("{base}/api/events"),
            summaries.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut response = http.get(url).send().await.unwrap();
            assert!(response.status().is_success());
            let mut text = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = text.find("\n\n") {
                    if text[..end].lines().any(|l| l == "event: summary") {
                        summaries[i].fetch_add(1, Ordering::SeqCst);
                    }
                    text.drain(..end + 2);
                }
            }
        }));
    }
    let all_have = |n: usize| summaries.iter().all(|c| c.load(Ordering::SeqCst) >= n);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !all_have(1) {
        assert!(
            Instant::now() < deadline,
            "not every client got the first summary"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_connected = rss_kb(pid);

    // Transforms land while the clients are held; each must reach every client.
    let started = Instant::now();
    let mut landed = 1;
    let mut tick = 60;
    while started.elapsed() < hold || landed < 4 {
        write_and_transform(&store, tick, tick + 1).await;
        tick += 1;
        landed += 1;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !all_have(landed) {
            let behind = summaries
                .iter()
                .filter(|c| c.load(Ordering::SeqCst) < landed)
                .count();
            assert!(
                Instant::now() < deadline,
                "{behind} clients did not get summary {landed}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(5).min(hold / 4)).await;
    }
    let rss_after = rss_kb(pid);
    eprintln!(
        "{CLIENTS} streams held {:.0} s, {landed} summaries each; server RSS {} MB idle, {} MB connected, {} MB after",
        started.elapsed().as_secs_f64(),
        rss_before / 1024,
        rss_connected / 1024,
        rss_after / 1024
    );
    // Bounded: the streams share the latest summary instead of queueing copies.
    assert!(
        rss_after < rss_connected + 64 * 1024,
        "server memory grew from {rss_connected} kB to {rss_after} kB"
    );
    // The server still answers ordinary requests.
    let health: serde_json::Value = http
        .get(format!("{base}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "stale");
    drop(slow);
    for c in clients {
        c.abort();
    }
}
