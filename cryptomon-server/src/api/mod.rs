//! The HTTP API and the dashboard: one axum [`Router`], built by [`app`], that any host runs
//! (`cryptomon serve`, a Lambda function, a test calling `oneshot`).
//!
//! Handlers answer from memory: the [`AppState`] keeps the latest aggregates and re-reads the
//! store only when the stored objects' versions change.

mod aggregates;
mod alert_log;
mod dashboard;
mod errors;
mod http_cache;
mod limits;
mod market_metrics;
mod model;
mod openapi;
mod params;
mod routes;
mod sse;
mod state;

use axum::Router;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use tower_http::compression::CompressionLayer;

pub use errors::{ApiError, ErrorBody};
pub use limits::{MAX_BODY, REQUEST_TIMEOUT};
pub(crate) use market_metrics::alert_event_metrics;
pub use market_metrics::{
    DEFAULT_MAX_SERIES, MarketExport, TEXT_FORMAT, market_metrics, market_metrics_response,
    render_market,
};
pub use model::{Health, MetricDetail, MetricInfo, MetricStats, SourceHealth};
pub use state::{ApiOptions, AppState};

/// The router of every route of the API and the dashboard, over `state`.
///
/// Routes: `/api/health`, `/api/summary`, `/api/metrics`, `/api/metrics/{id}`, `/api/candles`,
/// `/api/alerts`, `/api/events`, `/openapi.json`, `/` and `/assets/*`. Anything else is a JSON
/// 404. Responses are compressed (gzip, br) when the client accepts it. A request body over
/// [`MAX_BODY`] gets a 413, a handler slower than [`REQUEST_TIMEOUT`] a 408 (both JSON); CORS
/// lets any origin `GET` and `HEAD`, without credentials.
pub fn app(state: AppState) -> Router {
    let (router, doc) = openapi::router().split_for_parts();
    // Serialized once: the document is fixed for the life of the process.
    let doc = Bytes::from(doc.to_json().unwrap_or_default());
    let router = router
        .route(
            "/openapi.json",
            get(move |_: HeaderMap| {
                let doc = doc.clone();
                async move { ([(CONTENT_TYPE, "application/json")], doc).into_response() }
            }),
        )
        .route("/assets/{*path}", get(dashboard::file))
        .fallback(errors::not_found)
        .method_not_allowed_fallback(errors::method_not_allowed);
    limits::protect(router.with_state(state)).layer(CompressionLayer::new())
}

/// The OpenAPI document of [`app`], as JSON.
pub fn openapi_json() -> String {
    openapi::router()
        .split_for_parts()
        .1
        .to_pretty_json()
        .unwrap_or_default()
}
