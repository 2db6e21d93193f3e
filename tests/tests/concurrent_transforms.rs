//! Two transforms at once: the conditional write on the state makes the slower one re-read and
//! run again, so no snapshot is lost and no stale state replaces a newer one.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::TimeZone;
use cryptomon_core::keys::{WINDOW_KEY, raw_key};
use cryptomon_core::pipeline;
use cryptomon_core::{
    FsStore, Pair, PolarsAggregator, PutMode, Quote, Result, Snapshot, SourceName, Store, StoreExt,
    Tick, Version,
};
use cryptomon_mock::MemoryStore;
use tokio::sync::Notify;

/// Holds back the first write of the window state until released.
struct PausedStateWrite<S> {
    inner: Arc<S>,
    paused: AtomicBool,
    reached: Notify,
    release: Notify,
}

impl<S> fmt::Debug for PausedStateWrite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PausedStateWrite")
    }
}

impl<S> fmt::Display for PausedStateWrite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("paused store")
    }
}

#[async_trait]
impl<S: Store> Store for PausedStateWrite<S> {
    async fn get_opts(&self, key: &str, v: Option<&Version>) -> Result<cryptomon_core::Fetch> {
        self.inner.get_opts(key, v).await
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        if key == WINDOW_KEY && !self.paused.swap(true, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        self.inner.put_opts(key, body, mode).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }
}

fn snapshot(source: &str, minute: i64) -> (String, Bytes) {
    let source = SourceName::new(source).unwrap();
    let tick = Tick::from_unix(1_796_040_000 + minute * 60);
    let quote = Quote::new(Pair::new("BTC-USD").unwrap(), 100.0 + minute as f64);
    let at = chrono::Utc.timestamp_opt(tick.unix(), 0).unwrap();
    let snap = Snapshot::new(source.clone(), tick, at, vec![quote], serde_json::json!({}));
    (raw_key(&source, tick), Bytes::from(snap.to_json()))
}

async fn race<S: Store>(inner: Arc<S>) {
    let aggregator = PolarsAggregator::default();
    for m in 0..5 {
        let (k, b) = snapshot("alpha", m);
        inner.put(&k, b).await.unwrap();
    }
    pipeline::transform(inner.as_ref(), &aggregator)
        .await
        .unwrap();

    // A new snapshot; transform A takes it in, then stalls before writing the state.
    let (k, b) = snapshot("alpha", 5);
    inner.put(&k, b).await.unwrap();
    let paused = Arc::new(PausedStateWrite {
        inner: inner.clone(),
        paused: AtomicBool::new(false),
        reached: Notify::new(),
        release: Notify::new(),
    });
    let a = {
        let paused = paused.clone();
        tokio::spawn(async move {
            pipeline::transform(paused.as_ref(), &PolarsAggregator::default()).await
        })
    };
    paused.reached.notified().await;

    // Meanwhile another snapshot lands and transform B runs to the end.
    let (k, b) = snapshot("beta", 6);
    inner.put(&k, b).await.unwrap();
    let b_report = pipeline::transform(inner.as_ref(), &aggregator)
        .await
        .unwrap();
    assert_eq!(b_report.attempts, 1);
    assert_eq!(b_report.new_objects, 2);

    paused.release.notify_one();
    let a_report = a.await.unwrap().unwrap();
    assert_eq!(
        a_report.attempts, 2,
        "A's stale write is refused and A runs again"
    );

    let window = pipeline::read_window(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.len(), 7, "every snapshot is in the state");
    assert_eq!(window.series().len(), 2);
    let summary = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(summary.as_of.unix(), 1_796_040_000 + 6 * 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transforms_on_memory_store() {
    race(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_transforms_on_fs_store() {
    let dir = tempfile::tempdir().unwrap();
    race(Arc::new(FsStore::open(dir.path()).unwrap())).await;
}
