//! The api function's router: the server's and `/metrics`, answered within the invocation's
//! deadline.
//!
//! The server bounds a request by [`cryptomon_server::api::REQUEST_TIMEOUT`], which does not
//! know Lambda's deadline: a request still waiting on S3 when the invocation times out would get
//! API Gateway's bare 503 and leave nothing in the log. Here the answer is a JSON 503 sent
//! [`ANSWER_MARGIN`] before the deadline.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cryptomon_server::api::{ErrorBody, market_metrics_response};
use cryptomon_server::{AppState, app};
use lambda_http::RequestExt;

use crate::budget;

/// The time kept, before the invocation's deadline, to send the answer.
pub const ANSWER_MARGIN: Duration = Duration::from_millis(500);

/// The server's router, each request answered by the invocation's deadline less
/// [`ANSWER_MARGIN`], with `/metrics`: the market gauges built from the summary (the
/// operational metrics of a function instance are CloudWatch's, not Prometheus's).
pub fn router(state: AppState) -> axum::Router {
    let metrics_state = state.clone();
    app(state)
        .route(
            "/metrics",
            get(move || market_metrics_response(metrics_state.clone())),
        )
        .layer(axum::middleware::from_fn(within_deadline))
}

async fn within_deadline(request: Request, next: Next) -> Response {
    let stop = request
        .lambda_context_ref()
        .and_then(|context| budget::stop_at(context, ANSWER_MARGIN));
    let Some(stop) = stop else {
        return next.run(request).await;
    };
    let path = request.uri().path().to_owned();
    match tokio::time::timeout_at(stop, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(path, "no answer before the invocation's deadline");
            let body = ErrorBody {
                error: "the request ran out of time; try again".into(),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, "1")],
                Json(body),
            )
                .into_response()
        }
    }
}
