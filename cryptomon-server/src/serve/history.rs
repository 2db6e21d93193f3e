//! Demo history: on an empty store, 24 hours of snapshots written before the first scheduled
//! run, so the dashboard is full at once.

use std::time::Duration;

use cryptomon_core::keys::RAW_PREFIX;
use cryptomon_core::{DynSource, Result, Store, Tick, WINDOW_MINUTES, collect_all};
use futures::{StreamExt, stream};
use indicatif::{ProgressBar, ProgressStyle};

/// Ticks collected at once: enough to keep both cores busy, few enough to stay small.
const CONCURRENCY: usize = 8;

/// Writes one snapshot per source for every tick of the 24 hours before `until` (excluded),
/// unless the store already holds snapshots. Returns the number of ticks written.
///
/// Only sources that answer for any tick (synthetic ones) make sense here.
pub async fn seed_history(
    store: &dyn Store,
    sources: &[DynSource],
    until: Tick,
    interval: Duration,
) -> Result<usize> {
    if sources.is_empty() || !store.list(RAW_PREFIX).await?.is_empty() {
        return Ok(0);
    }
    let step = interval.as_secs().max(1) as i64;
    let ticks: Vec<Tick> = (1..=i64::from(WINDOW_MINUTES) * 60 / step)
        .rev()
        .map(|i| until.add_secs(-i * step))
        .collect();
    tracing::info!(ticks = ticks.len(), "writing 24 h of demo history");
    let bar = ProgressBar::new(ticks.len() as u64).with_style(
        ProgressStyle::with_template("demo history {bar:40} {pos}/{len} ticks, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut results = stream::iter(ticks.iter().copied())
        .map(|tick| async move { collect_all(sources, store, tick).await })
        .buffer_unordered(CONCURRENCY);
    while let Some(reports) = results.next().await {
        for (source, result) in reports {
            // A store failure here would fail every tick: stop rather than spin.
            if let Err(error) = result {
                bar.abandon();
                tracing::error!(%source, %error, "demo history failed");
                return Err(error);
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(ticks.len())
}
