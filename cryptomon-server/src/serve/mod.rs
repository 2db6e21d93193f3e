//! `cryptomon serve`: the API and dashboard, and (unless read-only) collection and transform on
//! the schedule, in one process.
//!
//! [`serve()`] takes the listener and the shutdown signal as arguments, so a test binds
//! `127.0.0.1:0` and stops the server with a channel.

mod demo;
mod history;
mod prometheus;
mod scheduler;

use std::future::Future;
use std::time::Duration;

use std::sync::Arc;

use axum::routing::get;
use cryptomon_core::pipeline::{self, Alerting};
use cryptomon_core::{DynSource, DynStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use demo::demo_sources;
pub use history::seed_history;

use crate::api::{ApiOptions, AppState, app};

/// Requests the standalone server handles at once.
pub const MAX_IN_FLIGHT: usize = 1024;

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Only serve: no collection, no transform (something else writes the store). New
    /// aggregates are picked up as they land.
    pub read_only: bool,
    /// The collection interval; runs are aligned to its multiples since the epoch.
    pub interval: Duration,
    /// On an empty store, first write 24 h of history from the sources (synthetic ones).
    pub seed_history: bool,
    /// How often the store is checked for aggregates written by someone else.
    pub watch_every: Duration,
    /// After the shutdown signal, how long open connections may take to finish.
    pub grace: Duration,
    /// The API's options.
    pub api: ApiOptions,
    /// The alert rules evaluated at every transform, and where their events are delivered.
    pub alerting: Alerting,
    /// How far ahead of the clock a snapshot's tick may be to be taken in.
    pub max_clock_skew: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            read_only: false,
            interval: Duration::from_secs(60),
            seed_history: false,
            watch_every: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            api: ApiOptions::default(),
            alerting: Alerting::default(),
            max_clock_skew: cryptomon_core::pipeline::DEFAULT_MAX_CLOCK_SKEW,
        }
    }
}

/// Why `serve` stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The listener failed.
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the API and the dashboard on `listener` over `store` and, unless
/// [`ServeOptions::read_only`], collects `sources` and transforms on the schedule, until
/// `shutdown` completes. Then it stops accepting, ends event streams, lets requests and the
/// run in progress finish, and returns.
pub async fn serve(
    listener: TcpListener,
    store: DynStore,
    sources: Vec<DynSource>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let state = AppState::with_options(store, options.api.clone());
    if let Err(error) = state.refresh().await {
        tracing::warn!(%error, "cannot read the stored aggregates yet");
    }
    let handle = prometheus::handle();
    let metrics_state = state.clone();
    let router = app(state.clone())
        .route(
            "/metrics",
            get(move || prometheus::render(handle.clone(), metrics_state.clone())),
        )
        .layer(axum::middleware::from_fn(prometheus::track))
        // Requests in flight at once; the rest wait their turn. Event streams hold no permit
        // once their response has started.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            MAX_IN_FLIGHT,
        ));

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut workers = vec![tokio::spawn(watch_store(
        state.clone(),
        options.watch_every,
        stop_rx.clone(),
    ))];
    if !options.read_only {
        let transformed = Arc::new(tokio::sync::Notify::new());
        if !options.alerting.notifiers.is_empty() {
            workers.push(tokio::spawn(deliver_alerts(
                state.clone(),
                options.alerting.clone(),
                transformed.clone(),
                stop_rx.clone(),
            )));
        }
        let schedule = scheduler::Schedule {
            state: state.clone(),
            sources,
            interval: options.interval,
            seed_history: options.seed_history,
            alerting: options.alerting.clone(),
            max_clock_skew: options.max_clock_skew,
            transformed,
            cache: Arc::new(cryptomon_core::pipeline::TransformCache::new()),
        };
        // The scheduler drives the core's pipelines, whose futures rustc cannot always prove
        // `Send` (a known limitation with closures returning futures that borrow), so it runs
        // on a thread of its own and needs no `Send`.
        let runtime = tokio::runtime::Handle::current();
        let stop = stop_rx.clone();
        workers.push(tokio::task::spawn_blocking(move || {
            runtime.block_on(schedule.run(stop));
        }));
    }

    let graceful = {
        let state = state.clone();
        async move {
            shutdown.await;
            tracing::info!("shutting down: finishing the run in progress and open requests");
            stop_tx.send_replace(true);
            state.close_streams();
        }
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(graceful);
    let mut stopped = stop_rx.clone();
    let grace = options.grace;
    tokio::select! {
        result = server => result?,
        _ = async {
            let _ = stopped.wait_for(|&s| s).await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("connections still open after the grace period: closing them"),
    }
    for worker in workers {
        if let Err(error) = worker.await {
            tracing::error!(%error, "a background task panicked");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Delivers queued alert events after each transform, on a task of its own: a slow or failing
/// receiver never delays the schedule. Rounds never overlap; transforms that land during a
/// round are coalesced into the next one.
async fn deliver_alerts(
    state: AppState,
    alerting: Alerting,
    transformed: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            () = transformed.notified() => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        match alerting
            .deliver(state.store().as_ref(), pipeline::DEFAULT_DELIVERY_BUDGET)
            .await
        {
            Ok(report) if !report.failed.is_empty() => tracing::warn!(
                delivered = report.delivered,
                queued = report.pending,
                "some alert deliveries failed; retrying after the next transform"
            ),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "alert delivery round failed"),
        }
    }
}

/// Picks up aggregates that another writer (a Lambda, another process) lands in the store.
async fn watch_store(state: AppState, every: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|&s| s) => return,
        }
        if let Err(error) = state.refresh().await {
            tracing::debug!(%error, "store check failed");
        }
    }
}
