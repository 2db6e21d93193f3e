//! History: each closed UTC day is written once, whole, to `history/date=…/samples.parquet` by
//! the transform that moves the window past it; never rewritten by a later run; a failed
//! write is reported and the transform goes on.

use std::io::Cursor;

use bytes::Bytes;
use chrono::TimeZone as _;
use cryptomon_core::keys::{history_key, raw_key};
use cryptomon_core::pipeline::{self, HistoryOutcome, TransformMode, TransformOptions};
use cryptomon_core::{Pair, PolarsAggregator, Quote, Snapshot, SourceName, Store, StoreExt, Tick};
use cryptomon_mock::{Fault, FaultyStore, MemoryStore, Op};
use polars::prelude::*;

/// 2026-12-06T00:00:00Z: the day the tests close.
const DAY: i64 = 1_796_515_200;
const SOURCES: [&str; 2] = ["alpha", "beta"];

fn price(source: &str, minute: i64) -> f64 {
    100.0 + minute as f64 + if source == "beta" { 0.5 } else { 0.0 }
}

/// A snapshot of `source` at `minute` minutes after the day's start (negative: the day before).
async fn put_snapshot(store: &dyn Store, source: &str, minute: i64) {
    let source_name = SourceName::new(source).unwrap();
    let tick = Tick::from_unix(DAY + minute * 60);
    let quote = Quote::new(Pair::new("BTC-USD").unwrap(), price(source, minute));
    let at = chrono::Utc.timestamp_opt(tick.unix() + 2, 0).unwrap();
    let snapshot = Snapshot::new(
        source_name.clone(),
        tick,
        at,
        vec![quote],
        serde_json::json!({}),
    );
    store
        .put(
            &raw_key(&source_name, tick),
            Bytes::from(snapshot.to_json()),
        )
        .await
        .unwrap();
}

fn at(minute: i64) -> TransformOptions {
    TransformOptions {
        now: Some(Tick::from_unix(DAY + minute * 60)),
        ..TransformOptions::default()
    }
}

/// Collects and transforms minute by minute over `minutes`, returning each run's history.
async fn run_minutes(
    store: &dyn Store,
    minutes: std::ops::Range<i64>,
) -> Vec<(i64, Vec<pipeline::HistoryDay>)> {
    let aggregator = PolarsAggregator::default();
    let mut closed = Vec::new();
    for minute in minutes {
        for source in SOURCES {
            put_snapshot(store, source, minute).await;
        }
        let report = pipeline::transform(store, &aggregator, &at(minute))
            .await
            .unwrap();
        if !report.history.is_empty() {
            closed.push((minute, report.history));
        }
    }
    closed
}

/// A day closed by runs told of their keys, one hand-off lost just before midnight, and no
/// reconciliation due for a day: the run that closes the day lists the window anyway, so the
/// day holds the snapshots nobody was told of.
#[tokio::test]
async fn a_day_closed_by_told_runs_holds_the_snapshots_of_a_lost_hand_off() {
    let store = MemoryStore::new();
    let aggregator = PolarsAggregator::default();
    let cache = std::sync::Arc::new(pipeline::TransformCache::new());
    let mut closed = Vec::new();
    for minute in 22 * 60..1440 + 2 {
        let mut keys = Vec::new();
        for source in SOURCES {
            put_snapshot(&store, source, minute).await;
            let name = SourceName::new(source).unwrap();
            keys.push(raw_key(&name, Tick::from_unix(DAY + minute * 60)));
        }
        if minute == 1438 {
            continue; // this tick's transform never ran
        }
        let options = TransformOptions {
            handoff: Some(keys),
            reconcile_every: std::time::Duration::from_secs(86_400),
            cache: Some(cache.clone()),
            ..at(minute)
        };
        let report = pipeline::transform(&store, &aggregator, &options)
            .await
            .unwrap();
        assert_eq!(
            report.reconciled,
            minute == 22 * 60 || minute == 1440,
            "minute {minute}: only the first run and the one closing the day list"
        );
        if !report.history.is_empty() {
            closed.push(report.history);
        }
    }
    let rows = 2 * 120;
    assert_eq!(
        closed,
        [vec![pipeline::HistoryDay {
            date: "2026-12-06".into(),
            outcome: HistoryOutcome::Written { rows },
        }]]
    );
    let day = read_day(
        store
            .get(&history_key("2026-12-06"))
            .await
            .unwrap()
            .unwrap()
            .body
            .to_vec(),
    );
    assert_eq!(day.height(), rows);
}

fn read_day(bytes: Vec<u8>) -> DataFrame {
    ParquetReader::new(Cursor::new(bytes)).finish().unwrap()
}

#[tokio::test]
async fn the_run_past_midnight_writes_the_whole_day_once() {
    let store = MemoryStore::new();
    // The state stands from the day's 22:00; the window passes midnight at minute 1440.
    let closed = run_minutes(&store, 22 * 60..1440 + 5).await;
    assert_eq!(closed.len(), 1, "one run closes the day: {closed:?}");
    let (minute, days) = &closed[0];
    assert_eq!(*minute, 1440);
    let rows = 2 * 120;
    assert_eq!(
        days[..],
        [pipeline::HistoryDay {
            date: "2026-12-06".into(),
            outcome: HistoryOutcome::Written { rows },
        }]
    );
    assert!(
        store
            .get(&history_key("2026-12-07"))
            .await
            .unwrap()
            .is_none()
    );

    let day = read_day(
        store
            .get(&history_key("2026-12-06"))
            .await
            .unwrap()
            .unwrap()
            .body
            .to_vec(),
    );
    let names: Vec<&str> = day.get_column_names().iter().map(|n| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "source",
            "pair",
            "tick",
            "price",
            "volume",
            "origin",
            "collected_at"
        ]
    );
    assert_eq!(day.height(), rows);
    assert_eq!(
        day.column("tick").unwrap().dtype(),
        &DataType::Datetime(TimeUnit::Milliseconds, Some(polars::prelude::TimeZone::UTC))
    );
    // Sorted by source, then tick; every price the snapshot's, every origin a snapshot.
    let source = day.column("source").unwrap().str().unwrap();
    let tick = day
        .column("tick")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .clone();
    let prices = day.column("price").unwrap().f64().unwrap();
    let origin = day.column("origin").unwrap().str().unwrap();
    for row in 0..rows {
        let (s, t) = (source.get(row).unwrap(), tick.get(row).unwrap());
        let minute = (t / 1000 - DAY) / 60;
        assert_eq!(s, SOURCES[row / 120]);
        assert_eq!(minute, 22 * 60 + (row % 120) as i64);
        assert_eq!(prices.get(row), Some(price(s, minute)));
        assert_eq!(origin.get(row), Some("snapshot"));
    }
}

#[tokio::test]
async fn a_rebuild_leaves_a_written_day_as_it_is() {
    let store = MemoryStore::new();
    run_minutes(&store, 23 * 60..1440 + 2).await;
    let before = store
        .get(&history_key("2026-12-06"))
        .await
        .unwrap()
        .unwrap();
    // A late snapshot of the closed day, then a full rebuild that reads the day's partition.
    put_snapshot(&store, "gamma", 23 * 60 + 30).await;
    let options = TransformOptions {
        mode: TransformMode::Full,
        ..at(1442)
    };
    let report = pipeline::transform(&store, &PolarsAggregator::default(), &options)
        .await
        .unwrap();
    assert_eq!(report.history[0].outcome, HistoryOutcome::Present);
    let after = store
        .get(&history_key("2026-12-06"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        before.body, after.body,
        "a closed day is never rewritten by a transform"
    );
}

#[tokio::test]
async fn a_failed_day_is_reported_and_the_transform_goes_on() {
    let store =
        FaultyStore::new(MemoryStore::new()).with_fault(Fault::key_prefix("history/").on(Op::Put));
    let closed = run_minutes(&store, 23 * 60 + 50..1440 + 3).await;
    assert!(
        matches!(&closed[..], [(1440, days)] if matches!(days[0].outcome, HistoryOutcome::Failed(_))),
        "{closed:?}"
    );
    // The aggregates moved on past midnight all the same.
    let summary = pipeline::read_summary(&store).await.unwrap().unwrap();
    assert_eq!(summary.as_of, Tick::from_unix(DAY + (1440 + 2) * 60));
}

#[tokio::test]
async fn repair_writes_a_day_from_raw_and_says_what_it_replaced() {
    let store =
        FaultyStore::new(MemoryStore::new()).with_fault(Fault::key_prefix("history/").on(Op::Put));
    run_minutes(&store, 23 * 60 + 50..1440 + 1).await;
    store.clear_faults();
    // A snapshot of the day that arrived after it closed: a repair takes it in.
    put_snapshot(&store, "gamma", 23 * 60 + 55).await;
    let repair = pipeline::repair_history(&store, "2026-12-06")
        .await
        .unwrap();
    assert_eq!(
        (repair.snapshots, repair.rows, repair.replaced),
        (21, 21, None)
    );
    let again = pipeline::repair_history(&store, "2026-12-06")
        .await
        .unwrap();
    assert_eq!(again.replaced.map(|(rows, _)| rows), Some(21));

    let none = pipeline::repair_history(&store, "2026-12-01")
        .await
        .unwrap_err();
    assert!(none.to_string().contains("date=2026-12-01"), "{none}");
    let bad = pipeline::repair_history(&store, "2026-13-01")
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("YYYY-MM-DD"), "{bad}");
}

/// A repaired day holds its backfilled hours as the transform wrote them: a minute only a
/// backfill holds is `backfill`, one a snapshot holds too is the snapshot's. A day of
/// backfill alone can be repaired too.
#[tokio::test]
async fn repair_takes_in_the_days_backfilled_hours() {
    let store = MemoryStore::new();
    put_backfill(&store, "alpha", 22 * 60).await;
    for minute in 22 * 60 + 30..22 * 60 + 40 {
        put_snapshot(&store, "alpha", minute).await;
    }
    let repair = pipeline::repair_history(&store, "2026-12-06")
        .await
        .unwrap();
    assert_eq!(
        (repair.snapshots, repair.backfilled_hours, repair.rows),
        (10, 1, 60)
    );
    let day = read_day(
        store
            .get(&history_key("2026-12-06"))
            .await
            .unwrap()
            .unwrap()
            .body
            .to_vec(),
    );
    let origins = day.column("origin").unwrap().str().unwrap();
    let backfilled = (0..origins.len())
        .filter(|&r| origins.get(r) == Some("backfill"))
        .count();
    assert_eq!(
        backfilled, 50,
        "the 10 collected minutes keep the snapshots'"
    );

    let only_backfill = MemoryStore::new();
    put_backfill(&only_backfill, "beta", 3 * 60).await;
    let repair = pipeline::repair_history(&only_backfill, "2026-12-06")
        .await
        .unwrap();
    assert_eq!(
        (repair.snapshots, repair.backfilled_hours, repair.rows),
        (0, 1, 60)
    );
}

/// An hour of backfill for `source`'s BTC-USD: every minute of the hour starting at `hour`
/// minutes after the day's start, priced 50 + minute.
async fn put_backfill(store: &dyn Store, source: &str, hour: i64) {
    use cryptomon_core::keys::backfill_key;
    use cryptomon_core::model::{Backfill, BackfillSample, BackfillSeries};
    let source = SourceName::new(source).unwrap();
    let start = Tick::from_unix(DAY + hour * 60);
    let samples = (hour..hour + 60)
        .map(|m| BackfillSample {
            tick: Tick::from_unix(DAY + m * 60),
            price: 50.0 + m as f64,
            volume_24h: None,
        })
        .collect();
    let series = vec![BackfillSeries {
        pair: Pair::new("BTC-USD").unwrap(),
        samples,
    }];
    let fetched = chrono::Utc.timestamp_opt(DAY + 2 * 86_400, 0).unwrap();
    let object = Backfill::new(source.clone(), start, fetched, series, Vec::new());
    store
        .put(&backfill_key(&source, start), Bytes::from(object.to_json()))
        .await
        .unwrap();
}

#[tokio::test]
async fn backfilled_minutes_fill_the_window_where_no_snapshot_is() {
    let store = MemoryStore::new();
    // The collector started at 22:30; the 22:00 hour was backfilled later, fetched "after"
    // every snapshot, yet a snapshot's minute keeps the snapshot's price.
    put_backfill(&store, "alpha", 22 * 60).await;
    let closed = run_minutes(&store, 22 * 60 + 30..1440 + 1).await;
    assert!(matches!(
        closed[0].1[0].outcome,
        HistoryOutcome::Written { .. }
    ));
    let day = read_day(
        store
            .get(&history_key("2026-12-06"))
            .await
            .unwrap()
            .unwrap()
            .body
            .to_vec(),
    );
    let source = day.column("source").unwrap().str().unwrap();
    let tick = day
        .column("tick")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .clone();
    let prices = day.column("price").unwrap().f64().unwrap();
    let origin = day.column("origin").unwrap().str().unwrap();
    let alpha: Vec<_> = (0..day.height())
        .filter(|&r| source.get(r) == Some("alpha"))
        .map(|r| {
            let minute = (tick.get(r).unwrap() / 1000 - DAY) / 60;
            (minute, prices.get(r).unwrap(), origin.get(r).unwrap())
        })
        .collect();
    assert_eq!(alpha.len(), 120, "22:00 to 23:59, one row a minute");
    for (minute, price_seen, origin) in alpha {
        if minute < 22 * 60 + 30 {
            assert_eq!(
                (price_seen, origin),
                (50.0 + minute as f64, "backfill"),
                "{minute}"
            );
        } else {
            assert_eq!(
                (price_seen, origin),
                (price("alpha", minute), "snapshot"),
                "{minute}"
            );
        }
    }
}

#[tokio::test]
async fn a_backfill_arriving_later_is_taken_in_and_a_corrupt_one_reported() {
    let store = MemoryStore::new();
    run_minutes(&store, 600..660).await;
    put_backfill(&store, "alpha", 480).await;
    let corrupt = "backfill/source=beta/date=2026-12-06/20261206T080000Z.json";
    store
        .put(corrupt, Bytes::from_static(b"{\"schema\":"))
        .await
        .unwrap();
    for source in SOURCES {
        put_snapshot(&store, source, 660).await;
    }
    let report = pipeline::transform(&store, &PolarsAggregator::default(), &at(660))
        .await
        .unwrap();
    assert_eq!(
        report.new_objects, 4,
        "two snapshots, a backfill and the corrupt one read"
    );
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].key, corrupt);
    // alpha's 08:00 hour is in the window now: 60 backfilled minutes more than beta's.
    let window = pipeline::read_window(&store).await.unwrap().unwrap();
    assert_eq!(window.len(), 2 * 61 + 60);
}
