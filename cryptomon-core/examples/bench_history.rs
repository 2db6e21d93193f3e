//! Cold and warm latency of a candle range over history: `scripts/bench-history.sh` runs it.
//!
//! `bench_history DIR [DAYS] [PAIRS]` writes DAYS days of history of PAIRS pairs (one source,
//! every minute) into the file store DIR through the core's own writer, unless already there,
//! then times one series' hourly candles over the whole range: cold (a new cache) and warm.

use std::time::Instant;

use bytes::Bytes;
use cryptomon_core::engine::history::{day_table, to_parquet};
use cryptomon_core::keys::history_key;
use cryptomon_core::pipeline::{HistoryCache, range_candles};
use cryptomon_core::{CandleInterval, FsStore, Pair, SourceName, StoreExt, Tick, WindowBuilder};

/// 2026-11-01T00:00:00Z: the first day written.
const FIRST_DAY: i64 = 1_793_491_200;
const WARM_RUNS: usize = 50;

fn pair(p: usize) -> Pair {
    Pair::new(&format!("A{p:04}-USD")).unwrap()
}

async fn write_day(store: &FsStore, day: Tick, pairs: usize) -> cryptomon_core::Result<()> {
    let source = SourceName::new("bench").unwrap();
    let mut b = WindowBuilder::new();
    let mut state = 0x2545_f491_4f6c_dd1du64 ^ day.unix() as u64;
    for p in 0..pairs {
        let pair = pair(p);
        let mut price = 100.0;
        for m in 0..1440 {
            // xorshift: a cheap deterministic walk
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            price *= 1.0 + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2e-3;
            b.push(&source, &pair, day.add_secs(m * 60), 0, price, Some(1000.0));
        }
    }
    let mut table = day_table(&b.build()?, day)?;
    store
        .put(
            &history_key(&day.date()),
            Bytes::from(to_parquet(&mut table)?),
        )
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> cryptomon_core::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = args
        .get(1)
        .expect("usage: bench_history DIR [DAYS] [PAIRS]");
    let days: i64 = args.get(2).map_or(30, |d| d.parse().unwrap());
    let pairs: usize = args.get(3).map_or(2000, |p| p.parse().unwrap());
    let store = FsStore::create(dir)?;
    let started = Instant::now();
    let mut written = 0;
    for d in 0..days {
        let day = Tick::from_unix(FIRST_DAY + d * 86_400);
        if store.get(&history_key(&day.date())).await?.is_none() {
            write_day(&store, day, pairs).await?;
            written += 1;
        }
    }
    eprintln!(
        "{written} of {days} days of {pairs} pairs written in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let source = SourceName::new("bench").unwrap();
    let series = pair(pairs / 2);
    let (from, to) = (
        Tick::from_unix(FIRST_DAY),
        Tick::from_unix(FIRST_DAY + days * 86_400 - 60),
    );
    let cache = HistoryCache::default();
    let query = || {
        range_candles(
            &store,
            &cache,
            None,
            &source,
            &series,
            CandleInterval::H1,
            from,
            to,
        )
    };
    let t = Instant::now();
    let cold = query().await?;
    let cold_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(cold.candles.len() as i64, days * 24);
    assert!(cold.skipped_days.is_empty(), "{:?}", cold.skipped_days);
    let mut warm = Vec::with_capacity(WARM_RUNS);
    for _ in 0..WARM_RUNS {
        let t = Instant::now();
        let again = query().await?;
        warm.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(again, cold);
    }
    warm.sort_by(f64::total_cmp);
    let size: u64 = std::fs::read_dir(std::path::Path::new(dir).join("history"))
        .map_err(|e| cryptomon_core::Error::Config(e.to_string()))?
        .filter_map(|d| std::fs::metadata(d.ok()?.path().join("samples.parquet")).ok())
        .map(|m| m.len())
        .sum();
    println!("| days x pairs | history on disk | cold | warm (median) | warm (p95) | cache |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| {days} x {pairs} | {:.0} MB | {cold_ms:.0} ms | {:.2} ms | {:.2} ms | {:.1} MB |",
        size as f64 / 1e6,
        warm[WARM_RUNS / 2],
        warm[WARM_RUNS * 95 / 100],
        cache.bytes() as f64 / 1e6,
    );
    Ok(())
}
