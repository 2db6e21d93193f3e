//! Two transforms at once: the conditional write on the state makes the slower one re-read and
//! run again, so no snapshot is lost and no stale state replaces a newer one.

use cryptomon_core::pipeline::TransformOptions;
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
    Summary, Tick, Version,
};
use cryptomon_mock::MemoryStore;
use tokio::sync::Notify;

/// Holds back the first write of `key` until released.
struct PausedWrite<S> {
    key: &'static str,
    inner: Arc<S>,
    paused: AtomicBool,
    reached: Notify,
    release: Notify,
    /// The bodies written under `key`, in the order the writes succeeded.
    written: std::sync::Mutex<Vec<Bytes>>,
}

impl<S> PausedWrite<S> {
    fn new(key: &'static str, inner: Arc<S>) -> Arc<Self> {
        Arc::new(PausedWrite {
            key,
            inner,
            paused: AtomicBool::new(false),
            reached: Notify::new(),
            release: Notify::new(),
            written: Default::default(),
        })
    }
}

impl<S> fmt::Debug for PausedWrite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PausedWrite")
    }
}

impl<S> fmt::Display for PausedWrite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("paused store")
    }
}

#[async_trait]
impl<S: Store> Store for PausedWrite<S> {
    async fn get_opts(&self, key: &str, v: Option<&Version>) -> Result<cryptomon_core::Fetch> {
        self.inner.get_opts(key, v).await
    }

    async fn put_opts(&self, key: &str, body: Bytes, mode: PutMode) -> Result<Version> {
        if key == self.key && !self.paused.swap(true, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
        let version = self.inner.put_opts(key, body.clone(), mode).await?;
        if key == self.key {
            self.written.lock().unwrap().push(body);
        }
        Ok(version)
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }
}

/// Starts a transform over `inner` that stalls at its first write of `key`; returns once it
/// stalls, with the store that releases it and the transform's task.
async fn transform_paused_at<S: Store>(
    key: &'static str,
    inner: &Arc<S>,
) -> (
    Arc<PausedWrite<S>>,
    tokio::task::JoinHandle<Result<pipeline::TransformReport>>,
) {
    let paused = PausedWrite::new(key, inner.clone());
    let task = {
        let paused = paused.clone();
        tokio::spawn(async move {
            pipeline::transform(
                paused.as_ref(),
                &PolarsAggregator::default(),
                &TransformOptions::default(),
            )
            .await
        })
    };
    paused.reached.notified().await;
    (paused, task)
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
    pipeline::transform(inner.as_ref(), &aggregator, &TransformOptions::default())
        .await
        .unwrap();

    // A new snapshot; transform A takes it in, then stalls before writing the state.
    let (k, b) = snapshot("alpha", 5);
    inner.put(&k, b).await.unwrap();
    let (paused, a) = transform_paused_at(WINDOW_KEY, &inner).await;

    // Meanwhile another snapshot lands and transform B runs to the end.
    let (k, b) = snapshot("beta", 6);
    inner.put(&k, b).await.unwrap();
    let b_report = pipeline::transform(inner.as_ref(), &aggregator, &TransformOptions::default())
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

/// A transform that took in less (as of an earlier tick) and reaches its summary write after a
/// newer transform wrote its own never replaces the newer summary: its conditional write is
/// refused, it reads the stored summary, finds it newer and runs again on the newer state
/// (issue 20).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_transform_never_replaces_a_newer_summary() {
    let inner = Arc::new(MemoryStore::new());
    let aggregator = PolarsAggregator::default();
    for m in 0..5 {
        for source in ["alpha", "beta"] {
            let (k, b) = snapshot(source, m);
            inner.put(&k, b).await.unwrap();
        }
    }
    pipeline::transform(inner.as_ref(), &aggregator, &TransformOptions::default())
        .await
        .unwrap();

    // B takes in alpha's minute 5 (as of minute 5), then stalls before its summary write.
    let (k, b) = snapshot("alpha", 5);
    inner.put(&k, b).await.unwrap();
    let (paused, older) = transform_paused_at(cryptomon_core::keys::SUMMARY_KEY, &inner).await;

    // Meanwhile minutes 5 to 7 land and A writes a summary as of minute 7.
    for (source, m) in [("beta", 5), ("alpha", 6), ("beta", 6), ("alpha", 7)] {
        let (k, b) = snapshot(source, m);
        inner.put(&k, b).await.unwrap();
    }
    let newer = pipeline::transform(paused.as_ref(), &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!(newer.as_of.unix(), 1_796_040_000 + 7 * 60);

    paused.release.notify_one();
    let older = older.await.unwrap().unwrap();
    assert_eq!(
        older.attempts, 2,
        "B's summary write is refused and B runs again"
    );
    // At no moment was the summary older than one stored before it.
    let written: Vec<i64> = paused
        .written
        .lock()
        .unwrap()
        .iter()
        .map(|body| Summary::from_json(body).unwrap().0.as_of.unix())
        .collect();
    assert!(!written.is_empty());
    assert!(
        written.windows(2).all(|w| w[0] <= w[1]),
        "summaries written as of {written:?}"
    );
    let summary = pipeline::read_summary(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        summary.as_of.unix(),
        1_796_040_000 + 7 * 60,
        "the summary as of minute 7 stands"
    );
    let window = pipeline::read_window(inner.as_ref())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(window.len(), 15, "every snapshot is in the state");
}

/// A summary replaced behind the transform's back (a raced or half-failed run) is rewritten by
/// the next run even when no snapshot is new.
#[tokio::test]
async fn a_stale_summary_is_rewritten_by_the_next_run() {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    for m in 0..3 {
        let (k, b) = snapshot("alpha", m);
        store.put(&k, b).await.unwrap();
    }
    pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    let good = store
        .get(cryptomon_core::keys::SUMMARY_KEY)
        .await
        .unwrap()
        .unwrap()
        .body;

    store
        .put(
            cryptomon_core::keys::SUMMARY_KEY,
            Bytes::from_static(b"{\"stale\": true}"),
        )
        .await
        .unwrap();
    let report = pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!((report.new_objects, report.writes), (0, 2));
    let healed = store
        .get(cryptomon_core::keys::SUMMARY_KEY)
        .await
        .unwrap()
        .unwrap()
        .body;
    assert_eq!(healed, good);

    // And once it is current again, an idle run writes nothing.
    let idle = pipeline::transform(&store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!(idle.writes, 0);
}
