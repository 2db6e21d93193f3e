//! Prometheus metrics of the server: the `/metrics` route and the HTTP request counter.
//!
//! `/metrics` holds the operational metrics of this process (collections, transforms, HTTP
//! requests, alert events read), then the market gauges built from the loaded summary
//! ([`crate::api::market_metrics`]). On Lambda, CloudWatch has the operational ones, and the api
//! function's `/metrics` has only the market gauges.

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use crate::api::{self, AppState};

/// Snapshots stored, by source and outcome (`ok`, `failed`).
pub(crate) const COLLECTIONS: &str = "cryptomon_collections_total";
/// Failed collections, by source.
pub(crate) const COLLECTION_FAILURES: &str = "cryptomon_collection_failures_total";
/// Wall time of each transform.
pub(crate) const TRANSFORM_SECONDS: &str = "cryptomon_transform_duration_seconds";
/// Objects a transform skipped (corrupt, foreign).
pub(crate) const OBJECTS_SKIPPED: &str = "cryptomon_transform_objects_skipped_total";
/// Failed transforms.
pub(crate) const TRANSFORM_FAILURES: &str = "cryptomon_transform_failures_total";
/// HTTP requests, by route template and status.
pub(crate) const HTTP_REQUESTS: &str = "cryptomon_http_requests_total";

/// Installs the process-wide recorder once (a process may run several servers, as tests do)
/// and returns its handle; `None` if another recorder was installed first.
pub(crate) fn handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            let installed = metrics::set_global_recorder(recorder).ok().map(|()| handle);
            describe();
            installed
        })
        .clone()
}

/// The help text of each operational metric.
fn describe() {
    use metrics::{describe_counter, describe_histogram};
    describe_counter!(
        COLLECTIONS,
        "Collections of a source, by outcome (ok, failed)."
    );
    describe_counter!(COLLECTION_FAILURES, "Failed collections, by source.");
    describe_histogram!(
        TRANSFORM_SECONDS,
        metrics::Unit::Seconds,
        "Wall time of each transform."
    );
    describe_counter!(
        OBJECTS_SKIPPED,
        "Stored objects a transform skipped (unreadable, foreign, ahead of the clock)."
    );
    describe_counter!(TRANSFORM_FAILURES, "Failed transforms.");
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests, by route template and status."
    );
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn render(handle: Option<PrometheusHandle>, state: AppState) -> Response {
    let mut body = handle
        .map(|h| {
            h.run_upkeep();
            h.render()
        })
        .unwrap_or_default();
    body.push_str(&api::alert_event_metrics(&state).await);
    body.push_str(&api::market_metrics(&state).await);
    ([(CONTENT_TYPE, api::TEXT_FORMAT)], body).into_response()
}

/// Counts every request by its route template (not its path: ids would explode the series).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(request).await;
    metrics::counter!(
        HTTP_REQUESTS,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .increment(1);
    response
}
