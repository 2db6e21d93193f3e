//! The schedule: collect every source, then transform, at each interval boundary (the minute).
//!
//! One loop runs one run at a time; the next boundary is taken after a run ends, so a slow run
//! makes the schedule skip ticks rather than pile runs up. Shutdown is only looked at between
//! runs: a write in progress always finishes. Collecting gets three quarters of the interval
//! (every source's retries and timeouts end by then), so the transform still fits in the tick.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use cryptomon_core::pipeline::{self, Alerting, TransformMode};
use cryptomon_core::{DynSource, PolarsAggregator, Tick};
use tokio::sync::watch;

use super::history::seed_history;
use super::prometheus::{
    COLLECTION_FAILURES, COLLECTIONS, OBJECTS_SKIPPED, TRANSFORM_FAILURES, TRANSFORM_SECONDS,
};
use crate::api::AppState;

/// What the scheduler runs.
#[derive(Debug)]
pub(crate) struct Schedule {
    pub(crate) state: AppState,
    pub(crate) sources: Vec<DynSource>,
    pub(crate) interval: Duration,
    pub(crate) seed_history: bool,
    /// The alert rules evaluated at each transform.
    pub(crate) alerting: Alerting,
    /// How far ahead of the clock a snapshot's tick may be to be taken in.
    pub(crate) max_clock_skew: Duration,
    /// Woken after each transform: the alert delivery task runs a round.
    pub(crate) transformed: Arc<tokio::sync::Notify>,
    /// The window state the last transform wrote, so the next one reads neither head nor base
    /// unless another process wrote meanwhile.
    pub(crate) cache: Arc<pipeline::TransformCache>,
}

fn interval_secs(interval: Duration) -> u32 {
    interval.as_secs().clamp(1, u64::from(u32::MAX)) as u32
}

/// How long until the next multiple of `interval` since the epoch.
pub(crate) fn until_next_boundary(interval: Duration) -> Duration {
    let step = i64::from(interval_secs(interval)) * 1000;
    let now = Utc::now().timestamp_millis();
    let next = (now.div_euclid(step) + 1) * step;
    Duration::from_millis((next - now) as u64)
}

impl Schedule {
    /// Runs until `stop` turns `true`: seeds the demo history if asked, runs once at once, then
    /// at every boundary.
    pub(crate) async fn run(self, mut stop: watch::Receiver<bool>) {
        let secs = interval_secs(self.interval);
        // One clock reading for the history and the first run, so a minute boundary passing in
        // between cannot leave a hole between them.
        let mut tick = Tick::floor(Utc::now(), secs);
        // Counters start at 0, so a query for failures has a series before the first failure.
        metrics::counter!(TRANSFORM_FAILURES).absolute(0);
        for source in &self.sources {
            metrics::counter!(COLLECTION_FAILURES, "source" => source.name().to_string())
                .absolute(0);
        }
        if self.seed_history {
            match seed_history(
                self.state.store().as_ref(),
                &self.sources,
                tick,
                self.interval,
            )
            .await
            {
                Ok(0) => tracing::info!("the store already holds snapshots: no demo history"),
                Ok(n) => tracing::info!(ticks = n, "demo history written"),
                Err(error) => tracing::error!(%error, "cannot write the demo history"),
            }
        }
        loop {
            self.run_once(tick).await;
            if *stop.borrow() {
                break;
            }
            // A little past the boundary: waking a hair early would floor to the old tick.
            let wait = until_next_boundary(self.interval) + Duration::from_millis(50);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|&s| s) => break,
            }
            tick = Tick::floor(Utc::now(), secs);
        }
        tracing::info!("scheduler stopped");
    }

    /// One collection and one transform for `tick`; the transform's report, if it ran.
    pub(crate) async fn run_once(&self, tick: Tick) -> Option<pipeline::TransformReport> {
        let started = Instant::now();
        let store = self.state.store().as_ref();
        // Three quarters of the tick for collecting, so the transform runs before the next one.
        let collect_by = tokio::time::Instant::from_std(started) + self.interval * 3 / 4;
        // The keys collected are handed to the transform, which then lists nothing (see
        // `TransformOptions::handoff`).
        let mut collected = Vec::new();
        for (source, result) in
            pipeline::collect_all_until(&self.sources, store, tick, collect_by).await
        {
            let source = source.to_string();
            match result {
                Ok(report) => {
                    metrics::counter!(COLLECTIONS, "source" => source.clone(), "outcome" => "ok")
                        .increment(1);
                    tracing::info!(
                        %source, %tick, quotes = report.quotes, written = report.written,
                        problems = report.problems.len(), "collected"
                    );
                    collected.push(report.key);
                }
                Err(error) => {
                    metrics::counter!(COLLECTIONS, "source" => source.clone(), "outcome" => "failed")
                        .increment(1);
                    metrics::counter!(COLLECTION_FAILURES, "source" => source.clone()).increment(1);
                    tracing::warn!(%source, %tick, %error, "collection failed");
                }
            }
        }
        let options = pipeline::TransformOptions {
            cache: Some(self.cache.clone()),
            max_clock_skew: self.max_clock_skew,
            handoff: Some(collected),
            ..self.alerting.options(TransformMode::Incremental)
        };
        let transformed = pipeline::transform(store, &PolarsAggregator::default(), &options).await;
        match &transformed {
            Ok(report) => {
                if let Some(error) = &report.alert_error {
                    tracing::warn!(%error, "alert rules not evaluated");
                }
                metrics::histogram!(TRANSFORM_SECONDS).record(report.elapsed.as_secs_f64());
                metrics::counter!(OBJECTS_SKIPPED).increment(report.skipped.len() as u64);
                tracing::info!(
                    as_of = %report.as_of, series = report.series, alerts = report.alerts,
                    skipped = report.skipped.len(), seconds = report.elapsed.as_secs_f64(),
                    warm = report.warm, reconciled = report.reconciled, "transformed"
                );
            }
            Err(cryptomon_core::Error::NoData { .. }) => {
                tracing::info!("nothing to transform yet");
            }
            Err(error) => {
                metrics::counter!(TRANSFORM_FAILURES).increment(1);
                tracing::error!(%error, "transform failed");
            }
        }
        if let Err(error) = self.state.refresh().await {
            tracing::warn!(%error, "cannot load the new aggregates");
        }
        self.transformed.notify_one();
        let took = started.elapsed();
        if took > self.interval {
            tracing::warn!(
                seconds = took.as_secs_f64(),
                "run longer than the interval: ticks skipped, not queued"
            );
        }
        transformed.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptomon_core::{SourceName, Store};
    use cryptomon_mock::{FaultyStore, MemoryStore, SyntheticSource};

    /// The scheduler hands the keys it collected to the transform: after the first run (a
    /// rebuild, which lists), a tick's transform reads its two new snapshots and lists nothing.
    #[tokio::test]
    async fn a_scheduled_tick_hands_its_keys_to_the_transform() {
        let store = Arc::new(FaultyStore::new(MemoryStore::new()));
        let sources: Vec<DynSource> = ["alpha", "beta"]
            .iter()
            .map(|n| Arc::new(SyntheticSource::new(SourceName::new(n).unwrap(), 3, 7)) as _)
            .collect();
        let schedule = Schedule {
            state: AppState::new(store.clone()),
            sources,
            interval: Duration::from_secs(60),
            seed_history: false,
            alerting: Alerting::default(),
            max_clock_skew: pipeline::DEFAULT_MAX_CLOCK_SKEW,
            transformed: Arc::new(tokio::sync::Notify::new()),
            cache: Arc::new(pipeline::TransformCache::new()),
        };
        let now = Tick::floor(Utc::now(), 60);
        let first = schedule.run_once(now.add_secs(-60)).await.unwrap();
        assert!(first.reconciled, "the first run rebuilds");
        let told = schedule.run_once(now).await.unwrap();
        assert_eq!(
            (told.reconciled, told.lists, told.new_objects),
            (false, 0, 2),
            "{told:?}"
        );
        assert_eq!(store.inner().list("raw/").await.unwrap().len(), 4);
        assert_eq!(
            schedule.state.loaded_as_of(),
            Some(now),
            "the tick is served"
        );
    }

    #[test]
    fn next_boundary_is_within_one_interval() {
        let wait = until_next_boundary(Duration::from_secs(60));
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
    }
}
