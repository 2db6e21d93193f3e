//! Benchmarks of the metric engine (divan): `cargo bench -p cryptomon-core --bench engine`.
//!
//! The window is 3 sources x 100 pairs x 24 h of one-minute samples (432,000 rows), the size of
//! the end-to-end target, so these numbers explain the end-to-end ones.

use cryptomon_core::{
    Aggregator, CandleInterval, Pair, PolarsAggregator, SourceName, Tick, Window, WindowBuilder,
    engine,
};

fn main() {
    divan::main();
}

const AS_OF: i64 = 1_796_040_000;

fn window(sources: usize, pairs: usize) -> Window {
    let mut b = WindowBuilder::new();
    let names: Vec<SourceName> = (0..sources)
        .map(|s| SourceName::new(&format!("src{s}")).unwrap())
        .collect();
    let pairs: Vec<Pair> = (0..pairs)
        .map(|p| Pair::new(&format!("A{p}-USD")).unwrap())
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for source in &names {
        for pair in &pairs {
            let mut price = 100.0;
            for m in 0..1440 {
                // xorshift: a cheap deterministic walk
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                price *= 1.0 + ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 2e-3;
                let tick = Tick::from_unix(AS_OF - (1439 - m) * 60);
                b.push(source, pair, tick, 0, price, Some(1000.0 + m as f64));
            }
        }
    }
    b.build().unwrap()
}

#[divan::bench(sample_count = 10)]
fn aggregate_300_series(bencher: divan::Bencher<'_, '_>) {
    let w = window(3, 100);
    let agg = PolarsAggregator::default();
    bencher.bench_local(|| agg.aggregate(&w, Tick::from_unix(AS_OF)).unwrap());
}

#[divan::bench(sample_count = 10)]
fn window_to_parquet_300_series(bencher: divan::Bencher<'_, '_>) {
    let w = window(3, 100);
    bencher.bench_local(|| w.to_parquet(None).unwrap());
}

#[divan::bench(sample_count = 10)]
fn window_from_parquet_300_series(bencher: divan::Bencher<'_, '_>) {
    let bytes = window(3, 100).to_parquet(None).unwrap();
    bencher.bench_local(|| Window::from_parquet(&bytes).unwrap());
}

#[divan::bench(sample_count = 20)]
fn candles_5m_one_series(bencher: divan::Bencher<'_, '_>) {
    let w = window(3, 100);
    let (s, p) = (
        SourceName::new("src1").unwrap(),
        Pair::new("A50-USD").unwrap(),
    );
    bencher.bench_local(|| engine::candles(&w, &s, &p, CandleInterval::M5).unwrap());
}

/// What an incremental transform does with one new tick: merge 300 samples into the window,
/// dropping the minute that left it. The window is given up to the merge, as a transform's is,
/// so the merge works in its columns (each sample gets a window of its own, made untimed).
#[divan::bench(sample_count = 10)]
fn merge_one_tick_300_series(bencher: divan::Bencher<'_, '_>) {
    let next = Tick::from_unix(AS_OF + 60);
    let series = window(3, 100).series().to_vec();
    bencher
        .with_inputs(|| window(3, 100))
        .bench_local_values(|w| {
            let mut b = WindowBuilder::new();
            for (i, key) in series.iter().enumerate() {
                b.push(&key.source, &key.pair, next, 0, 100.0 + i as f64, Some(1.0));
            }
            b.push_window(w).unwrap();
            // Trimmed as it is built, as a transform does (`build_last`), not filtered after.
            b.build_last(1440).unwrap()
        });
}
