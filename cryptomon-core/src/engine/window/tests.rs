//! The window's builder, merge and Parquet codec against the slow ways.

use super::*;

const T0: i64 = 1_796_040_000;

/// Two series over 3 hours, the second starting late; minute 100 of the first collected
/// twice (the later collection must win).
fn builder() -> WindowBuilder {
    let (a, b) = (
        SourceName::new("kraken").unwrap(),
        SourceName::new("coinbase").unwrap(),
    );
    let pair = Pair::new("BTC-USD").unwrap();
    let mut w = WindowBuilder::new();
    for m in 0..180 {
        let t = Tick::from_unix(T0 + m * 60);
        w.push(&a, &pair, t, m * 1000, 100.0 + m as f64, Some(1.0));
        if m >= 150 {
            w.push(&b, &pair, t, m * 1000, 200.0 + m as f64, None);
        }
    }
    w.push(
        &a,
        &pair,
        Tick::from_unix(T0 + 100 * 60),
        999_999,
        7.0,
        None,
    );
    w
}

/// What a build must give, the slow way: every sample in a map, in the order added, a later or
/// equal collection replacing an earlier one; then the ticks after `from`.
fn naive(samples: &[(u32, i64, i64, f64)], from: i64) -> Vec<(u32, i64, i64, f64)> {
    let mut map = std::collections::BTreeMap::new();
    for &(s, t, c, p) in samples {
        let e = map.entry((s, t)).or_insert((c, p));
        if c >= e.0 {
            *e = (c, p);
        }
    }
    map.into_iter()
        .filter(|((_, t), _)| *t > from)
        .map(|((s, t), (c, p))| (s, t, c, p))
        .collect()
}

/// A window's rows as (series index, tick, collected, price).
fn rows(w: &Window) -> Vec<(u32, i64, i64, f64)> {
    let f = w.frame();
    let col = |name| f.column(name).unwrap().clone();
    let sid = col(cols::SID);
    let tick = col(cols::TICK);
    let collected = col(cols::COLLECTED_AT);
    let price = col(cols::PRICE);
    sid.u32()
        .unwrap()
        .into_no_null_iter()
        .zip(tick.i64().unwrap().into_no_null_iter())
        .zip(collected.i64().unwrap().into_no_null_iter())
        .zip(price.f64().unwrap().into_no_null_iter())
        .map(|(((s, t), c), p)| (s, t, c, p))
        .collect()
}

/// A backfilled sample's collection in the slow way's map: below every snapshot's, so any
/// snapshot's sample wins over it, while two backfills still compare by collection.
const BACKFILL: i64 = 1 << 40;

proptest::proptest! {
    /// Windows taken in and samples pushed (collected or backfilled), in any order, late,
    /// repeated or collected twice, build what the slow way gives, trimmed or not.
    #[test]
    fn a_build_is_the_slow_way(
        parts in proptest::collection::vec(
            (0u8..4, proptest::collection::vec((0u32..3, 0i64..12, 0i64..4), 0..30)),
            1..4,
        ),
        trim in proptest::option::of(1u32..10),
    ) {
        let source = SourceName::new("kraken").unwrap();
        let pairs = ["BTC-USD", "ETH-USD", "SOL-USD"].map(|p| Pair::new(p).unwrap());
        let mut b = WindowBuilder::new();
        // The windows' rows in the order taken in, then the backfilled samples, then the
        // collected ones: on a tie, the later wins.
        let (mut all, mut backfilled, mut pushed) = (Vec::new(), Vec::new(), Vec::new());
        for (n, (kind, samples)) in parts.iter().enumerate() {
            // Prices tell the samples apart: which one won is visible.
            let samples: Vec<_> = samples
                .iter()
                .enumerate()
                .map(|(i, &(s, m, c))| (s, T0 + m * 60, c, (n * 100 + i) as f64 + 1.0))
                .collect();
            let backfill = matches!(kind, 2 | 3);
            let put = |w: &mut WindowBuilder, &(s, t, c, p): &(u32, i64, i64, f64)| {
                let (pair, tick) = (&pairs[s as usize], Tick::from_unix(t));
                if backfill {
                    w.push_backfill(&source, pair, tick, c, p, volume_of(p));
                } else {
                    w.push(&source, pair, tick, c, p, volume_of(p));
                }
            };
            let keyed: Vec<_> = samples
                .iter()
                .map(|&(s, t, c, p)| (s, t, if backfill { c - BACKFILL } else { c }, p))
                .collect();
            match kind {
                0 | 3 => {
                    let mut w = WindowBuilder::new();
                    for sample in &samples {
                        put(&mut w, sample);
                    }
                    b.push_window(w.build().unwrap()).unwrap();
                    // A window holds one row a tick already: only those count.
                    all.append(&mut naive(&keyed, i64::MIN));
                }
                1 => {
                    samples.iter().for_each(|s| put(&mut b, s));
                    pushed.extend(keyed);
                }
                _ => {
                    samples.iter().for_each(|s| put(&mut b, s));
                    backfilled.extend(keyed);
                }
            }
        }
        all.append(&mut backfilled);
        all.append(&mut pushed);
        let latest = all.iter().map(|r| r.1).max();
        let (built, from) = match trim {
            Some(m) => (b.build_last(m).unwrap(), latest.map_or(i64::MIN, |l| l - i64::from(m) * 60)),
            None => (b.build().unwrap(), i64::MIN),
        };
        let got: Vec<_> = rows(&built)
            .into_iter()
            .map(|(s, t, c, p)| (built.series()[s as usize].pair.clone(), t, c, p))
            .collect();
        let want: Vec<_> = naive(&all, from)
            .into_iter()
            .map(|(s, t, c, p)| (pairs[s as usize].clone(), t, if c < 0 { c + BACKFILL } else { c }, p))
            .collect();
        proptest::prop_assert_eq!(got, want.clone());
        // Each row's volume is its sample's, null where that one's was, and its origin is
        // the winning sample's.
        let f = built.frame();
        let volumes: Vec<_> = f.column(cols::VOLUME).unwrap().f64().unwrap().iter().collect();
        let prices: Vec<_> = f.column(cols::PRICE).unwrap().f64().unwrap().into_no_null_iter().collect();
        let want_volumes: Vec<_> = prices.iter().map(|&p| volume_of(p)).collect();
        proptest::prop_assert_eq!(volumes, want_volumes);
        let origins: Vec<bool> = f.column(cols::BACKFILL).unwrap().bool().unwrap().iter().map(|b| b == Some(true)).collect();
        let want_origins: Vec<bool> = naive(&all, from).iter().map(|r| r.2 < 0).collect();
        proptest::prop_assert_eq!(origins, want_origins);
    }
}

/// The volume of the proptest's sample of price `p`: every third one has none.
fn volume_of(p: f64) -> Option<f64> {
    (!(p as u64).is_multiple_of(3)).then_some(p * 2.0)
}

#[test]
fn samples_pushed_a_snapshot_at_a_time_are_the_samples_pushed_one_by_one() {
    let (kraken, coinbase) = (
        SourceName::new("kraken").unwrap(),
        SourceName::new("coinbase").unwrap(),
    );
    let snapshots: Vec<(&SourceName, i64, Vec<&str>)> = vec![
        (&kraken, 0, vec!["BTC-USD", "ETH-USD", "SOL-USD"]),
        (&coinbase, 0, vec!["ETH-USD", "BTC-USD"]),
        (&kraken, 1, vec!["BTC-USD", "ETH-USD", "SOL-USD"]),
        (&kraken, 2, vec!["ETH-USD", "BTC-USD", "SOL-USD", "ADA-USD"]),
        (&coinbase, 1, vec!["ETH-USD", "BTC-USD"]),
        (&kraken, 3, vec!["BTC-USD", "SOL-USD"]),
        (&kraken, 4, vec!["BTC-USD", "SOL-USD", "ETH-USD"]),
    ];
    let (mut at_once, mut one_by_one) = (WindowBuilder::new(), WindowBuilder::new());
    for (n, (source, minute, pairs)) in snapshots.iter().enumerate() {
        let tick = Tick::from_unix(T0 + minute * 60);
        let samples: Vec<(&str, f64, Option<f64>)> = pairs
            .iter()
            .enumerate()
            .map(|(i, &p)| (p, (n * 10 + i + 1) as f64, (i % 2 == 0).then_some(i as f64)))
            .collect();
        at_once
            .push_samples(source, tick, 7, samples.iter().copied())
            .unwrap();
        for (pair, price, volume) in samples {
            one_by_one.push(source, &Pair::new(pair).unwrap(), tick, 7, price, volume);
        }
    }
    let (a, b) = (at_once.build().unwrap(), one_by_one.build().unwrap());
    assert_eq!(a.series(), b.series());
    assert!(a.frame().equals_missing(b.frame()));
    assert_eq!(a.len(), 19);

    let mut bad = WindowBuilder::new();
    let err = bad
        .push_samples(
            &kraken,
            Tick::from_unix(T0),
            7,
            [("BTC-USD", 1.0, None), ("BTCUSD", 2.0, None)],
        )
        .unwrap_err();
    assert!(err.to_string().contains("BTCUSD"), "{err}");
}

#[test]
fn build_last_is_build_then_trim() {
    let latest = Tick::from_unix(T0 + 179 * 60);
    let full = builder().build().unwrap();
    assert_eq!(full.len(), 180 + 30);
    let trimmed = full.trimmed(latest, 60).unwrap();
    let last = builder().build_last(60).unwrap();
    assert_eq!(last.series(), trimmed.series());
    assert!(last.frame().equals_missing(trimmed.frame()));
    assert_eq!(last.len(), 60 + 30);
    // Only the last 20 minutes: the late series' first 10 minutes are gone too.
    let short = builder().build_last(20).unwrap();
    assert_eq!(short.len(), 40);
}

#[test]
fn the_later_collection_of_a_tick_wins_and_rows_are_sorted() {
    let w = builder().build().unwrap();
    // (pair, source) order: coinbase before kraken.
    assert_eq!(w.series()[0].source.as_str(), "coinbase");
    let kraken = w
        .frame()
        .filter(&w.frame().column(cols::SID).unwrap().u32().unwrap().equal(1))
        .unwrap();
    let price = kraken.column(cols::PRICE).unwrap().f64().unwrap();
    assert_eq!(price.get(100), Some(7.0));
    let merged = {
        let mut b = WindowBuilder::new();
        b.push_window(w.clone()).unwrap();
        let pair = Pair::new("BTC-USD").unwrap();
        let kraken = SourceName::new("kraken").unwrap();
        // An older collection of minute 5 loses; a newer one of minute 6 wins; a new tick.
        b.push(&kraken, &pair, Tick::from_unix(T0 + 5 * 60), 0, 1.0, None);
        b.push(
            &kraken,
            &pair,
            Tick::from_unix(T0 + 6 * 60),
            1_000_000,
            2.0,
            None,
        );
        b.push(
            &kraken,
            &pair,
            Tick::from_unix(T0 + 180 * 60),
            180_000,
            3.0,
            None,
        );
        b.build().unwrap()
    };
    let kraken = merged
        .frame()
        .filter(
            &merged
                .frame()
                .column(cols::SID)
                .unwrap()
                .u32()
                .unwrap()
                .equal(1),
        )
        .unwrap();
    let price = kraken.column(cols::PRICE).unwrap().f64().unwrap();
    assert_eq!(
        (price.get(5), price.get(6), price.get(180)),
        (Some(105.0), Some(2.0), Some(3.0))
    );
    assert_eq!(kraken.height(), 181);
}

/// A stored window is checked row by row: out of order, a row twice, or a series the table
/// does not name, it is refused (and the state rebuilt from raw).
#[test]
fn a_stored_window_out_of_order_or_range_is_refused() {
    let window = builder().build().unwrap();
    let stored = |series: &[SeriesKey], frame: DataFrame| {
        let w = Window {
            series: series.to_vec(),
            frame,
            index: Default::default(),
        };
        Window::from_parquet(&w.to_parquet(None).unwrap()).map(|(w, _)| w.len())
    };
    assert_eq!(
        stored(&window.series, window.frame.clone()).unwrap(),
        window.len()
    );
    let twice = window.frame.slice(0, 1).vstack(&window.frame).unwrap();
    let swapped = window
        .frame
        .slice(1, 1)
        .vstack(&window.frame.slice(0, 1))
        .unwrap()
        .vstack(&window.frame.slice(2, window.len()))
        .unwrap();
    for (what, series, frame) in [
        ("reversed", &window.series[..], window.frame.reverse()),
        ("a row twice", &window.series[..], twice),
        ("two rows swapped", &window.series[..], swapped),
        (
            "a series missing",
            &window.series[..1],
            window.frame.clone(),
        ),
    ] {
        let err = stored(series, frame).unwrap_err().to_string();
        assert!(
            err.contains("out of order or out of range"),
            "{what}: {err}"
        );
    }
}

/// A stored window with prices an older writer took (finite and positive, outside the
/// accepted range) loses those rows, and a series left with none; the others stand
/// (issue 20).
#[test]
fn a_stored_window_with_extreme_prices_loses_those_rows_only() {
    let (kraken, coinbase) = (
        SourceName::new("kraken").unwrap(),
        SourceName::new("coinbase").unwrap(),
    );
    let (btc, dust) = (
        Pair::new("BTC-USD").unwrap(),
        Pair::new("DUST-USD").unwrap(),
    );
    let mut b = WindowBuilder::new();
    for m in 0..10 {
        let t = Tick::from_unix(T0 + m * 60);
        b.push(&kraken, &btc, t, 0, 100.0 + m as f64, None);
        // A bad print at minute 3.
        let price = if m == 3 { 1e300 } else { 200.0 };
        b.push(&coinbase, &btc, t, 0, price, None);
        b.push(&kraken, &dust, t, 0, 1e-320, None);
    }
    let bytes = b.build().unwrap().to_parquet(None).unwrap();
    let (read, _) = Window::from_parquet(&bytes).unwrap();
    let names: Vec<String> = read
        .series()
        .iter()
        .map(|k| format!("{}:{}", k.source, k.pair))
        .collect();
    assert_eq!(names, ["coinbase:BTC-USD", "kraken:BTC-USD"]);
    assert_eq!(read.offsets(), &[0, 9, 19]);
}

/// Malformed files on which polars panics (a footer in polars-parquet, a bitmap in
/// polars-arrow) are an error, not a panic (found by the `window_state` fuzz target; the
/// inputs are in `fuzz/regressions/window_state/`).
#[test]
fn fuzz_window_state_malformed_file_is_an_error_not_a_panic() {
    let inputs: [&[u8]; 2] = [
        include_bytes!(
            "../../../../fuzz/regressions/window_state/crash-a09df59592beafc27d3ff77df83bdd47143d1b05"
        ),
        include_bytes!(
            "../../../../fuzz/regressions/window_state/crash-9b4280481c52da77779f63e764eb10139b045d9a"
        ),
    ];
    for input in inputs {
        let err = Window::from_parquet(input).unwrap_err().to_string();
        assert!(err.contains("window state"), "{err}");
    }
}

/// A window and an empty one (a head right after a new base) read back as written: rows,
/// series, metadata, and the index derived from them.
#[test]
fn parquet_round_trips_a_window_and_an_empty_one() {
    for window in [builder().build().unwrap(), Window::empty().unwrap()] {
        let bytes = window.to_parquet(Some("meta".into())).unwrap();
        let (read, meta) = Window::from_parquet(&bytes).unwrap();
        assert_eq!(meta.as_deref(), Some("meta"));
        assert_eq!(read.series(), window.series());
        assert!(read.frame().equals_missing(window.frame()));
        assert_eq!(read.offsets(), window.offsets());
        assert_eq!(read.latest_tick().unwrap(), window.latest_tick().unwrap());
        assert_eq!(read.index.ticks, window.index.ticks);
    }
    let window = builder().build().unwrap();
    // Two series: kraken over 3 h, coinbase over the last 30 min.
    assert_eq!(window.offsets(), &[0, 30, 210]);
    assert_eq!(window.index.ticks, Some((T0, T0 + 179 * 60)));
}
