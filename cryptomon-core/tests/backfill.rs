//! The backfill pipeline over a file store with a scripted candle source: hours beyond an
//! exchange's reach, a failure a later run may fix, hours already present, and what the
//! objects hold.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use cryptomon_core::config::BackfillConfig;
use cryptomon_core::keys::backfill_key;
use cryptomon_core::keys::raw_key;
use cryptomon_core::model::Backfill;
use cryptomon_core::pipeline::{
    HourOutcome, backfill, backfill_on_empty, window_is_empty, window_is_empty_before,
};
use cryptomon_core::{
    CandleSource, DynCandleSource, Error, FsStore, MinuteCandle, Pair, Result, SourceName,
    StoreExt, Tick,
};

/// 20 minutes into `hour(16)`: the last whole hour is `hour(15)`.
const NOW: Tick = Tick::from_unix(1_796_000_400 + 16 * 3600 + 20 * 60);

/// A market with a candle every minute (close by minute, volume 1), failing as scripted.
#[derive(Debug)]
struct Scripted {
    name: SourceName,
    pairs: Vec<Pair>,
    reach: Option<(u32, &'static str)>,
    /// A retryable failure for this pair, while set.
    flaky: Mutex<Option<Pair>>,
    /// Calls of `candles`, shared with the test.
    calls: Arc<AtomicUsize>,
}

impl Scripted {
    fn new(reach: Option<(u32, &'static str)>) -> Self {
        Scripted {
            name: SourceName::new("scripted").unwrap(),
            pairs: vec![Pair::new("BTC-USD").unwrap(), Pair::new("ETH-USD").unwrap()],
            reach,
            flaky: Mutex::new(None),
            calls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

#[async_trait]
impl CandleSource for Scripted {
    fn name(&self) -> &SourceName {
        &self.name
    }

    fn pairs(&self) -> Vec<Pair> {
        self.pairs.clone()
    }

    fn reach_minutes(&self) -> Option<(u32, &'static str)> {
        self.reach
    }

    async fn candles(&self, pair: &Pair, from: Tick, to: Tick) -> Result<Vec<MinuteCandle>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.flaky.lock().unwrap().as_ref() == Some(pair) {
            return Err(Error::Source {
                source_name: self.name.to_string(),
                message: format!("{pair}: rate limited"),
                retryable: true,
            });
        }
        let earliest = self.reach.map_or(from, |(m, _)| {
            NOW.add_secs(-(i64::from(m) - 1) * 60).max(from)
        });
        Ok((earliest.unix()..to.unix())
            .step_by(60)
            .map(|t| MinuteCandle {
                tick: Tick::from_unix(t),
                close: 1000.0 + (t / 60 % 100) as f64,
                volume: Some(1.0),
            })
            .collect())
    }
}

async fn object(store: &FsStore, hour: Tick) -> Option<Backfill> {
    let key = backfill_key(&SourceName::new("scripted").unwrap(), hour);
    let o = store.get(&key).await.unwrap()?;
    Some(Backfill::from_json(&key, &o.body).unwrap())
}

/// The `h`th hour of the test's day.
fn hour(h: i64) -> Tick {
    Tick::from_unix(1_796_000_400 + h * 3600)
}

#[tokio::test]
async fn hours_beyond_the_reach_are_reported_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    // The 720 most recent minutes, NOW's own included, start 21 minutes into hour(4): hours 5
    // on are whole, 4 is partly reachable, 2 and 3 not at all.
    let sources: Vec<DynCandleSource> = vec![Box::new(Scripted::new(Some((720, "only 720"))))];
    let report = backfill(&store, &sources, 14, NOW, &()).await.unwrap();
    assert_eq!(report.hours.len(), 14);
    assert_eq!(report.hours[0].hour, hour(2));
    assert_eq!(report.written(), 12, "{report:#?}");
    assert!(matches!(
        report.hours[0].outcome,
        HourOutcome::NotWritten(_)
    ));
    assert!(object(&store, hour(3)).await.is_none());
    let partial = object(&store, hour(4)).await.unwrap();
    assert_eq!(partial.series[0].samples.len(), 39);
    assert_eq!(partial.series[0].samples[0].tick, hour(4).add_secs(21 * 60));
    assert!(
        partial.missing[0]
            .reason
            .starts_with("only 720 (none before"),
        "{:?}",
        partial.missing
    );
    let whole = object(&store, hour(15)).await.unwrap();
    assert_eq!(whole.series.len(), 2);
    assert!(
        whole.series[0]
            .samples
            .iter()
            .all(|s| s.volume_24h.is_none()),
        "720 minutes are not a day"
    );
    let btc = report
        .unfilled
        .iter()
        .find(|u| u.pair.as_ref().is_some_and(|p| p.as_str() == "BTC-USD"))
        .unwrap();
    assert_eq!((btc.hours, btc.minutes), (3, 141), "{btc:?}");
    assert_eq!(
        report.unfilled.len(),
        2,
        "no gap besides the reach: {report:#?}"
    );
    assert!(!report.fetched_nothing());
}

#[tokio::test]
async fn a_retryable_failure_leaves_the_hour_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let source = Scripted::new(None);
    *source.flaky.lock().unwrap() = Some(Pair::new("ETH-USD").unwrap());
    let sources: Vec<DynCandleSource> = vec![Box::new(source)];
    let report = backfill(&store, &sources, 3, NOW, &()).await.unwrap();
    assert_eq!(report.written(), 0);
    assert!(report.fetched_nothing());
    match &report.hours[0].outcome {
        HourOutcome::NotWritten(why) => assert!(why.contains("ETH-USD: rate limited"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(object(&store, hour(15)).await.is_none());
    // The exchange answers again: the next run writes those hours.
    let recovered: Vec<DynCandleSource> = vec![Box::new(Scripted::new(None))];
    let report = backfill(&store, &recovered, 3, NOW, &()).await.unwrap();
    assert_eq!(report.written(), 3);
    assert_eq!(object(&store, hour(15)).await.unwrap().series.len(), 2);
}

#[tokio::test]
async fn present_hours_are_skipped_and_volumes_sum_a_whole_day() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let sources: Vec<DynCandleSource> = vec![Box::new(Scripted::new(None))];
    let first = backfill(&store, &sources, 1, NOW, &()).await.unwrap();
    assert_eq!((first.written(), first.present()), (1, 0));
    let o = object(&store, hour(15)).await.unwrap();
    let samples = &o.series[0].samples;
    assert_eq!(samples.len(), 60);
    assert!(samples.iter().all(|s| s.volume_24h == Some(1440.0)));
    assert_eq!(
        samples[3].price,
        1000.0 + (hour(15).unix() / 60 % 100 + 3) as f64
    );
    assert!(o.missing.is_empty());

    let second = backfill(&store, &sources, 3, NOW, &()).await.unwrap();
    assert_eq!((second.written(), second.present()), (2, 1));
    let again = backfill(&store, &sources, 3, NOW, &()).await.unwrap();
    assert_eq!((again.written(), again.present()), (0, 3));
    assert!(!again.fetched_nothing());
}

#[tokio::test]
async fn start_up_backfills_only_an_empty_window_and_only_if_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let sources: Vec<DynCandleSource> = vec![Box::new(Scripted::new(None))];
    let on = BackfillConfig {
        on_empty: true,
        hours: 2,
    };
    let off = BackfillConfig {
        on_empty: false,
        ..on
    };
    assert_eq!(
        backfill_on_empty(&store, &sources, &off, NOW, &())
            .await
            .unwrap(),
        None
    );
    assert!(object(&store, hour(15)).await.is_none());

    // A snapshot older than the window leaves it empty; one inside it does not.
    let old = raw_key(
        &SourceName::new("kraken").unwrap(),
        NOW.add_secs(-3 * 86_400),
    );
    store.put(&old, Bytes::from_static(b"{}")).await.unwrap();
    assert!(window_is_empty(&store, NOW).await.unwrap());
    // So does one dated days ahead of the clock (a skewed collector's): the transform leaves
    // it unread until the clock reaches it.
    let ahead = raw_key(
        &SourceName::new("kraken").unwrap(),
        NOW.add_secs(3 * 86_400),
    );
    store.put(&ahead, Bytes::from_static(b"{}")).await.unwrap();
    assert!(window_is_empty(&store, NOW).await.unwrap());
    let report = backfill_on_empty(&store, &sources, &on, NOW, &())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.written(), 2);

    let recent = raw_key(&SourceName::new("kraken").unwrap(), NOW.add_secs(-600));
    store.put(&recent, Bytes::from_static(b"{}")).await.unwrap();
    assert!(!window_is_empty(&store, NOW).await.unwrap());
    assert_eq!(
        backfill_on_empty(&store, &sources, &on, NOW, &())
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn the_window_before_a_tick_is_empty_until_an_earlier_snapshot_lands() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let put = |source: &str, tick: Tick| {
        let key = raw_key(&SourceName::new(source).unwrap(), tick);
        let store = &store;
        async move { store.put(&key, Bytes::from_static(b"{}")).await.unwrap() }
    };
    assert!(window_is_empty_before(&store, NOW).await.unwrap());
    // The collector's own tick, on two sources, and a snapshot beyond the window: still empty.
    put("kraken", NOW).await;
    put("coinbase", NOW).await;
    put("kraken", NOW.add_secs(-3 * 86_400)).await;
    assert!(window_is_empty_before(&store, NOW).await.unwrap());
    assert!(
        !window_is_empty(&store, NOW).await.unwrap(),
        "the tick's own snapshots fill the window as `serve` sees it"
    );
    // A later tick (a clock ahead) is not older than the one handed over.
    put("kraken", NOW.add_secs(60)).await;
    assert!(window_is_empty_before(&store, NOW).await.unwrap());
    // A snapshot a minute before, on the tick's date: not empty.
    put("coinbase", NOW.add_secs(-60)).await;
    assert!(!window_is_empty_before(&store, NOW).await.unwrap());

    // One on the day before the tick, inside the window, is enough.
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let yesterday = NOW.add_secs(-20 * 3600);
    assert_ne!(yesterday.date(), NOW.date());
    let key = raw_key(&SourceName::new("kraken").unwrap(), yesterday);
    store.put(&key, Bytes::from_static(b"{}")).await.unwrap();
    assert!(!window_is_empty_before(&store, NOW).await.unwrap());
}

#[tokio::test]
async fn a_long_backfill_goes_a_week_at_a_time_with_whole_volumes() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsStore::create(dir.path()).unwrap();
    let source = Scripted::new(None);
    let calls = source.calls.clone();
    let sources: Vec<DynCandleSource> = vec![Box::new(source)];
    let report = backfill(&store, &sources, 200, NOW, &()).await.unwrap();
    assert_eq!(report.written(), 200);
    assert_eq!(calls.load(Ordering::SeqCst), 4, "two pairs, two chunks");
    // 200 hours are two weeks' chunks: the second starts 168 hours after the first.
    let second = hour(16 - 200 + 168);
    let o = object(&store, second).await.unwrap();
    assert_eq!(
        o.series[0].samples[0].volume_24h,
        Some(1440.0),
        "the second chunk fetched its own day before"
    );
}
