//! The aggregates cache: the summary and the window state read once from the store, re-read only
//! when their stored [`Version`] changes, and the per-series views computed from them on first
//! request and then kept, so requests are answered from memory.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderValue;
use bytes::Bytes;
use cryptomon_core::keys::{SUMMARY_KEY, WINDOW_KEY};
use cryptomon_core::pipeline::WindowState;
use cryptomon_core::{
    CandleInterval, Error, Fetch, Measure, Store, Summary, Version, Window, pipeline,
};
use tokio::sync::watch;

use super::errors::ApiError;
use super::http_cache::weak_etag;
use super::model::MetricInfo;

/// Views kept per generation of aggregates before the memo starts over: bounds memory when a
/// client walks every series and interval.
const MAX_VIEWS: usize = 4096;

/// A metric of the summary: which series, which measure.
#[derive(Debug, Clone)]
pub(crate) struct MetricEntry {
    /// Index into `summary.series`.
    pub(crate) series: usize,
    /// Price or volume.
    pub(crate) measure: Measure,
}

/// A view computed from the window and kept as its JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ViewKey {
    /// Candles of one series of the window.
    Candles(u32, CandleInterval),
    /// The detail of one metric.
    Metric(String),
}

/// One generation of aggregates: what one transform wrote, parsed and pre-serialized.
#[derive(Debug)]
pub(crate) struct Aggregates {
    /// The summary.
    pub(crate) summary: Summary,
    /// The summary as stored (served verbatim: fields a newer writer adds pass through).
    pub(crate) summary_json: Bytes,
    /// `GET /api/metrics`.
    pub(crate) metrics_json: Bytes,
    /// Metrics by id.
    pub(crate) metrics: HashMap<String, MetricEntry>,
    /// How many series each rank ranks (its denominator).
    pub(crate) ranked: Ranked,
    /// The validator of every response drawn from this generation.
    pub(crate) etag: HeaderValue,
    summary_version: Version,
    /// The window state as read, so the next refresh reads only what changed.
    window_state: Option<WindowState>,
    views: Mutex<HashMap<ViewKey, Bytes>>,
}

/// How many series have each rank: a rank's denominator.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Ranked {
    /// Series with a price std.
    pub(crate) price: u32,
    /// Series with a volume std.
    pub(crate) volume: u32,
    /// Series with a `volatility_pct`.
    pub(crate) volatility: u32,
}

/// The id of a metric: `source:pair:measure`.
pub(crate) fn metric_id(source: &str, pair: &str, measure: Measure) -> String {
    format!("{source}:{pair}:{measure}")
}

impl Aggregates {
    /// The window, when the store has a readable one.
    pub(crate) fn window(&self) -> Option<&Arc<Window>> {
        self.window_state.as_ref().map(|w| &w.window)
    }

    fn build(
        summary: Summary,
        summary_json: Bytes,
        summary_version: Version,
        window_state: Option<WindowState>,
    ) -> Result<Self, Error> {
        let mut metrics = HashMap::with_capacity(summary.series.len() * 2);
        let mut list = Vec::with_capacity(summary.series.len() * 2);
        let mut ranked = Ranked::default();
        for (i, s) in summary.series.iter().enumerate() {
            ranked.price += u32::from(s.price_std.is_some());
            ranked.volume += u32::from(s.volume_std.is_some());
            ranked.volatility += u32::from(s.volatility_pct.is_some());
            for (measure, last, rank, volatility_rank) in [
                (
                    Measure::Price,
                    Some(s.last),
                    s.price_rank,
                    s.volatility_rank,
                ),
                (Measure::Volume, s.volume_last, s.volume_rank, None),
            ] {
                // A series without any volume (CoinGecko) has no volume metric.
                let Some(last) = last else { continue };
                let id = metric_id(s.source.as_str(), s.pair.as_str(), measure);
                list.push(MetricInfo {
                    id: id.clone(),
                    source: s.source.to_string(),
                    pair: s.pair.to_string(),
                    measure: measure.to_string(),
                    last,
                    rank,
                    volatility_rank,
                });
                metrics.insert(id, MetricEntry { series: i, measure });
            }
        }
        let metrics_json = json_bytes(&list)?;
        let mut h = DefaultHasher::new();
        // The version of the server is in the tag: an upgrade may change a response's shape.
        env!("CARGO_PKG_VERSION").hash(&mut h);
        summary_version.hash(&mut h);
        window_state.as_ref().map(|w| &w.version).hash(&mut h);
        Ok(Aggregates {
            summary,
            summary_json,
            metrics_json,
            metrics,
            ranked,
            etag: weak_etag(h.finish()),
            summary_version,
            window_state,
            views: Mutex::new(HashMap::new()),
        })
    }

    /// A view's JSON: from the memo, or computed on a blocking thread (polars must not run on
    /// an async worker) and remembered.
    pub(crate) async fn view(
        &self,
        key: ViewKey,
        compute: impl FnOnce(&Window) -> Result<Bytes, Error> + Send + 'static,
    ) -> Result<Bytes, ApiError> {
        if let Some(body) = self.lock_views().get(&key) {
            return Ok(body.clone());
        }
        let window = self.window().cloned().ok_or(ApiError::NoData)?;
        let body = pipeline::blocking(move || compute(&window))
            .await
            .map_err(|e| match e {
                Error::UnknownSeries {
                    source_name, pair, ..
                } => ApiError::NotFound(format!("unknown series {source_name}:{pair}")),
                e => ApiError::internal(&e),
            })?;
        let mut views = self.lock_views();
        if views.len() >= MAX_VIEWS {
            views.clear();
        }
        views.insert(key, body.clone());
        Ok(body)
    }

    fn lock_views(&self) -> std::sync::MutexGuard<'_, HashMap<ViewKey, Bytes>> {
        // A poisoned memo is still a valid memo: every write is a single insert.
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Plain data as JSON bytes.
pub(crate) fn json_bytes<T: serde::Serialize + ?Sized>(value: &T) -> Result<Bytes, Error> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| Error::Engine(format!("cannot encode a response: {e}")))
}

/// The latest aggregates and the machinery to keep them current.
#[derive(Debug)]
pub(crate) struct Cache {
    latest: watch::Sender<Option<Arc<Aggregates>>>,
    /// One refresh at a time; others keep serving what is there.
    refreshing: tokio::sync::Mutex<()>,
    started: Instant,
    /// Milliseconds after `started` of the last store check, plus one (0: never checked).
    last_check: AtomicU64,
    check_every: Duration,
}

impl Cache {
    pub(crate) fn new(check_every: Duration) -> Self {
        Cache {
            latest: watch::Sender::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            started: Instant::now(),
            last_check: AtomicU64::new(0),
            check_every,
        }
    }

    /// What is loaded now, without touching the store.
    pub(crate) fn current(&self) -> Option<Arc<Aggregates>> {
        self.latest.borrow().clone()
    }

    /// A receiver that sees every new generation.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Arc<Aggregates>>> {
        self.latest.subscribe()
    }

    /// The aggregates for a request. Checks the store when the last check is older than
    /// `check_every` (a conditional read: cheap when nothing changed); while a check runs, other
    /// requests are served what is loaded rather than wait.
    pub(crate) async fn get(&self, store: &dyn Store) -> Result<Arc<Aggregates>, ApiError> {
        let current = self.current();
        if !self.due() {
            return current.ok_or(ApiError::NoData);
        }
        match current {
            Some(current) => {
                if let Ok(_guard) = self.refreshing.try_lock()
                    && let Err(error) = self.refresh_locked(store).await
                {
                    tracing::warn!(%error, "cannot refresh aggregates; serving the loaded ones");
                }
                Ok(self.current().unwrap_or(current))
            }
            None => {
                let _guard = self.refreshing.lock().await;
                if self.current().is_none() {
                    self.refresh_locked(store)
                        .await
                        .map_err(|e| ApiError::unavailable(&e))?;
                }
                self.current().ok_or(ApiError::NoData)
            }
        }
    }

    /// Checks the store now; `true` when new aggregates were loaded.
    pub(crate) async fn refresh(&self, store: &dyn Store) -> Result<bool, Error> {
        let _guard = self.refreshing.lock().await;
        self.refresh_locked(store).await
    }

    fn due(&self) -> bool {
        let last = self.last_check.load(Ordering::Relaxed);
        last == 0 || self.now_ms() + 1 >= last + self.check_every.as_millis() as u64
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn refresh_locked(&self, store: &dyn Store) -> Result<bool, Error> {
        self.last_check.store(self.now_ms() + 1, Ordering::Relaxed);
        let current = self.current();
        let known = current.as_ref().map(|a| &a.summary_version);
        let object = match store.get_opts(SUMMARY_KEY, known).await? {
            Fetch::Found(object) => object,
            // A summary that disappears is kept: better stale numbers than none.
            Fetch::NotModified | Fetch::Missing => return Ok(false),
        };
        let (summary, degraded) =
            Summary::from_json(&object.body).map_err(|reason| Error::Decode {
                key: SUMMARY_KEY.into(),
                reason,
            })?;
        // A part left out is not served either: the stored text is served only when whole.
        let summary_json = if degraded.is_empty() {
            object.body
        } else {
            for part in &degraded {
                tracing::warn!(key = SUMMARY_KEY, %part, "left out of the served summary");
            }
            json_bytes(&summary)?
        };
        // The window state: nothing read if the head is unchanged, only the head if its base is
        // the one held.
        let known = current.as_ref().and_then(|a| a.window_state.as_ref());
        let window_state = match pipeline::load_window(store, known).await {
            Ok(state) => state,
            Err(error @ Error::Decode { .. }) => {
                // The summary still serves; charts answer 503 until a good window lands.
                tracing::warn!(%error, key = WINDOW_KEY, "unreadable window state");
                None
            }
            // A store that fails now may answer next time: keep what is loaded.
            Err(error) => return Err(error),
        };
        let aggregates = Aggregates::build(summary, summary_json, object.version, window_state)?;
        tracing::info!(
            as_of = %aggregates.summary.as_of,
            series = aggregates.summary.series.len(),
            "loaded new aggregates"
        );
        self.latest.send_replace(Some(Arc::new(aggregates)));
        Ok(true)
    }
}
