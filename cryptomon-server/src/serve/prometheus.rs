//! Prometheus metrics of the server: the `/metrics` route and the HTTP request counter.
//!
//! Server only: on Lambda, CloudWatch does this job, so the shared router knows nothing of it.

use std::sync::OnceLock;

use axum::extract::{MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

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
            metrics::set_global_recorder(recorder).ok().map(|()| handle)
        })
        .clone()
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn render(handle: Option<PrometheusHandle>) -> Response {
    let body = handle
        .map(|h| {
            h.run_upkeep();
            h.render()
        })
        .unwrap_or_default();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        body,
    )
        .into_response()
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
