//! [`AppState`]: what every handler shares: the store and the aggregates cache.

use std::sync::Arc;
use std::time::Duration;

use cryptomon_core::pipeline::HistoryCache;
use cryptomon_core::{DynStore, Error};
use tokio::sync::watch;

use super::aggregates::{Aggregates, Cache};
use super::alert_log::AlertLog;
use super::errors::ApiError;
use super::market_metrics::MarketExport;

/// Tunables of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// A request checks the store for new aggregates at most this often (a conditional read).
    pub check_every: Duration,
    /// A source whose last snapshot is older than this is reported stale by `/api/health`.
    pub stale_after: Duration,
    /// Which series the market gauges of `/metrics` export.
    pub market: MarketExport,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            check_every: Duration::from_secs(1),
            // Three missed one-minute collections.
            stale_after: Duration::from_secs(180),
            market: MarketExport::default(),
        }
    }
}

/// The state of the router: cheap to clone, shared by every request.
///
/// It holds only what any host of the router has (a store, a cache), so the same router runs
/// in `cryptomon serve` and on Lambda.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: DynStore,
    cache: Cache,
    alerts: AlertLog,
    options: ApiOptions,
    /// Decoded history days, for candle ranges.
    history: HistoryCache,
    /// `true` once the host shuts down: ends the event streams so connections can close.
    closing: watch::Sender<bool>,
}

impl AppState {
    /// A state reading aggregates from `store`, with default options.
    pub fn new(store: DynStore) -> Self {
        Self::with_options(store, ApiOptions::default())
    }

    /// A state reading aggregates from `store`.
    pub fn with_options(store: DynStore, options: ApiOptions) -> Self {
        AppState {
            inner: Arc::new(Inner {
                store,
                cache: Cache::new(options.check_every),
                alerts: AlertLog::new(options.check_every),
                options,
                history: HistoryCache::default(),
                closing: watch::Sender::new(false),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &DynStore {
        &self.inner.store
    }

    /// The options.
    pub fn options(&self) -> &ApiOptions {
        &self.inner.options
    }

    /// Checks the store for new aggregates now (a writer calls this right after a transform, so
    /// event streams see it at once); `true` when new ones were loaded.
    pub async fn refresh(&self) -> Result<bool, Error> {
        let store = self.inner.store.as_ref();
        let changed = self.inner.cache.refresh(store).await?;
        // New aggregates come with the events their transform recorded: pick those up too, so
        // event streams push them.
        self.inner
            .alerts
            .after_refresh(store, changed, self.loaded_as_of())
            .await?;
        Ok(changed)
    }

    /// Ends every open event stream, and refuses new ones: a graceful shutdown waits for
    /// connections to finish, and an event stream never would.
    pub fn close_streams(&self) {
        self.inner.closing.send_replace(true);
    }

    /// The `as_of` of the loaded aggregates, if any (does not touch the store).
    pub fn loaded_as_of(&self) -> Option<cryptomon_core::Tick> {
        self.inner.cache.current().map(|a| a.summary.as_of)
    }

    pub(crate) async fn aggregates(&self) -> Result<Arc<Aggregates>, ApiError> {
        self.inner.cache.get(self.inner.store.as_ref()).await
    }

    pub(crate) fn history(&self) -> &HistoryCache {
        &self.inner.history
    }

    pub(crate) fn alert_log(&self) -> &AlertLog {
        &self.inner.alerts
    }

    pub(crate) fn cache(&self) -> &Cache {
        &self.inner.cache
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.inner.closing.subscribe()
    }
}
