//! Golden test: the transform of `data/golden/small` matches the expected aggregates of the
//! shared contract (computed by an independent implementation) within 1e-9 relative, on every
//! store.

use bytes::Bytes;
use cryptomon_core::pipeline::TransformMode;
use cryptomon_core::pipeline::TransformOptions;
use cryptomon_core::{
    CandleInterval, FsStore, PolarsAggregator, Store, StoreExt, engine, pipeline,
};
use cryptomon_mock::MemoryStore;
use cryptomon_tests::golden::{golden_dir, golden_objects};
use serde_json::Value;

async fn load(store: &dyn Store) {
    for (key, body) in golden_objects() {
        store.put(&key, Bytes::from(body)).await.unwrap();
    }
}

/// Compares two JSON documents: numbers within 1e-9 relative, everything else exactly.
fn assert_close(path: &str, got: &Value, want: &Value) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            let tol = 1e-9 * w.abs().max(1e-300);
            assert!((g - w).abs() <= tol, "{path}: got {g}, want {w}");
        }
        (Value::Object(g), Value::Object(w)) => {
            for (k, wv) in w {
                let gv = g.get(k).unwrap_or_else(|| panic!("{path}.{k} missing"));
                assert_close(&format!("{path}.{k}"), gv, wv);
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: length");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_close(&format!("{path}[{i}]"), gv, wv);
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

async fn check_store(store: &dyn Store) {
    load(store).await;
    let report = pipeline::transform(
        store,
        &PolarsAggregator::default(),
        &TransformOptions::full(),
    )
    .await
    .unwrap();
    check_aggregates(store, &report).await;
}

/// The incremental path: the objects arrive in four batches (the last one holding a late
/// snapshot of an earlier tick), with a transform after each; the end result is the same.
async fn check_store_incremental(store: &dyn Store) {
    let mut objects = golden_objects();
    objects.sort_by(|a, b| a.0.rsplit('/').next().cmp(&b.0.rsplit('/').next()));
    // Hold one mid-window snapshot back so it arrives late, after the state moved past it.
    let late = objects.remove(objects.len() / 2);
    let n = objects.len();
    let batches = [0..n / 2, n / 2..n - 40, n - 40..n];
    let aggregator = PolarsAggregator::default();
    let mut last = None;
    for (i, range) in batches.into_iter().enumerate() {
        for (key, body) in &objects[range.clone()] {
            store.put(key, Bytes::from(body.clone())).await.unwrap();
        }
        if i == 2 {
            store
                .put(&late.0, Bytes::from(late.1.clone()))
                .await
                .unwrap();
        }
        let report = pipeline::transform(store, &aggregator, &TransformOptions::default())
            .await
            .unwrap();
        if i == 0 {
            assert_eq!(report.mode, TransformMode::Full, "no state yet: a rebuild");
        } else {
            assert_eq!(report.mode, TransformMode::Incremental);
            let new = range.len() + usize::from(i == 2);
            assert_eq!(report.new_objects, new, "batch {i}");
            // The state (its head and base), then only the new objects.
            assert_eq!(report.read, 2 + new, "batch {i}");
        }
        last = Some(report);
    }
    // A run with nothing new reads the state (head and base), checks the summary is current
    // without transferring it, and writes nothing.
    let idle = pipeline::transform(store, &aggregator, &TransformOptions::default())
        .await
        .unwrap();
    assert_eq!((idle.read, idle.writes, idle.new_objects), (3, 0, 0));
    check_aggregates_after_batches(store, &last.unwrap()).await;
}

async fn check_aggregates_after_batches(store: &dyn Store, report: &pipeline::TransformReport) {
    // The corrupt objects arrive in the last batch and are reported there.
    check_aggregates(store, report).await;
}

async fn check_aggregates(store: &dyn Store, report: &pipeline::TransformReport) {
    // The two deliberately corrupt objects are skipped and named.
    let mut skipped: Vec<&str> = report.skipped.iter().map(|s| s.key.as_str()).collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "raw/source=kraken/date=2026-11-27/20261127T115830Z.json",
            "raw/source=kraken/date=2026-11-27/20261127T115845Z.json"
        ],
        "{:?}",
        report.skipped
    );
    // The summary and the state's head; and its base when the run wrote a new one.
    assert_eq!(report.writes, 2 + usize::from(report.compacted));

    let want: Value =
        serde_json::from_slice(&std::fs::read(golden_dir().join("expected/summary.json")).unwrap())
            .unwrap();
    let got: Value = serde_json::from_slice(
        &store
            .get("aggregates/summary.json")
            .await
            .unwrap()
            .unwrap()
            .body,
    )
    .unwrap();
    assert_close("summary", &got, &want);
    // The ranks are among the values compared: the expected file holds all three (issue 23).
    for s in want["series"].as_array().unwrap() {
        for rank in ["price_rank", "volume_rank", "volatility_rank"] {
            assert!(s[rank].is_number(), "the expected {rank} is missing: {s}");
        }
    }
    // Every series of the expected summary has every field; nothing extra is null-vs-missing.
    assert_eq!(got["series"].as_array().unwrap().len(), 12);

    let window = pipeline::read_window(store).await.unwrap().unwrap();
    // The engine is CPU-bound: run it off the async executor, as the pipelines do.
    let compared = pipeline::blocking(move || Ok(compare_candles(&window)))
        .await
        .unwrap();
    assert_eq!(compared, 12 * 5);
}

fn compare_candles(window: &cryptomon_core::Window) -> usize {
    let mut compared = 0;
    for key in window.series() {
        for interval in CandleInterval::ALL {
            // The golden set has no day candles: they are its hourly ones merged.
            let file = if interval == CandleInterval::D1 {
                CandleInterval::H1
            } else {
                interval
            };
            let path = golden_dir().join(format!(
                "expected/candles/source={}/pair={}/{}.json",
                key.source, key.pair, file
            ));
            let mut want: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            if interval == CandleInterval::D1 {
                want = daily_from_hourly(want);
            }
            let got = engine::candles(window, &key.source, &key.pair, interval).unwrap();
            let got = serde_json::to_value(&got).unwrap();
            assert_close(&path.display().to_string(), &got, &want);
            compared += 1;
        }
    }
    compared
}

/// Day candles of a golden hourly candle document: each day's first open, highest high, lowest
/// low, last close and total count.
fn daily_from_hourly(mut hourly: Value) -> Value {
    let mut days: Vec<Value> = Vec::new();
    for h in hourly["candles"].as_array().unwrap() {
        let t = cryptomon_core::Tick::parse(h["t"].as_str().unwrap()).unwrap();
        let day = cryptomon_core::Tick::from_unix(t.unix().div_euclid(86_400) * 86_400);
        let f = |c: &Value, k: &str| c[k].as_f64().unwrap();
        match days.last_mut() {
            Some(d) if d["t"] == day.to_string() => {
                d["h"] = f(d, "h").max(f(h, "h")).into();
                d["l"] = f(d, "l").min(f(h, "l")).into();
                d["c"] = h["c"].clone();
                d["n"] = (d["n"].as_u64().unwrap() + h["n"].as_u64().unwrap()).into();
            }
            _ => {
                let mut d = h.clone();
                d["t"] = day.to_string().into();
                days.push(d);
            }
        }
    }
    hourly["interval"] = "1d".into();
    hourly["candles"] = days.into();
    hourly
}

#[tokio::test]
async fn golden_small_on_memory_store() {
    check_store(&MemoryStore::new()).await;
}

#[tokio::test]
async fn golden_small_incremental_on_memory_store() {
    check_store_incremental(&MemoryStore::new()).await;
}

#[tokio::test]
async fn golden_small_incremental_on_fs_store() {
    let dir = tempfile::tempdir().unwrap();
    check_store_incremental(&FsStore::open(dir.path()).unwrap()).await;
}

#[tokio::test]
async fn golden_small_on_fs_store() {
    let dir = tempfile::tempdir().unwrap();
    check_store(&FsStore::open(dir.path()).unwrap()).await;
}
