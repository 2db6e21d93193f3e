//! What protects the router from its clients: request size and time limits, an explicit CORS
//! policy, and JSON bodies for the errors those layers answer with.
//!
//! The API is read-only (`GET` and `HEAD`; anything else is a JSON 405), so a request has no use
//! for a body: one over [`MAX_BODY`] is refused before a handler runs. A handler that has not
//! produced its response within [`REQUEST_TIMEOUT`] is answered 408 (an event stream's
//! response starts at once, so the limit never cuts it). Browsers on any origin may read the
//! API (the data is public), without credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, Response, StatusCode};
use axum::response::IntoResponse;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::IntoResponses;
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, ResponsesBuilder};

use super::errors::ErrorBody;

/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024;
/// How long a handler may take to start its response.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `router` with the limits and the CORS policy.
pub(crate) fn protect(router: Router) -> Router {
    // Layers wrap what is above them: the JSON rewrite sees what the limits answer.
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY))
        .layer(axum::middleware::map_response(json_errors))
        .layer(
            CorsLayer::new()
                .allow_methods([Method::GET, Method::HEAD])
                .allow_origin(Any)
                .max_age(Duration::from_secs(3600)),
        )
}

/// The layers answer 408 and 413 with empty or plain-text bodies; the API promises JSON.
async fn json_errors(response: Response<Body>) -> Response<Body> {
    let message = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => format!("request body over {MAX_BODY} bytes"),
        StatusCode::REQUEST_TIMEOUT => {
            format!("no response within {} s", REQUEST_TIMEOUT.as_secs())
        }
        _ => return response,
    };
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    (response.status(), axum::Json(ErrorBody { error: message })).into_response()
}

/// The answers of these layers, which any route can give, for the OpenAPI document.
pub(crate) struct LimitErrors;

impl IntoResponses for LimitErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let error = |description: String| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        ResponsesBuilder::new()
            .response(
                "408",
                error(format!(
                    "No response within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )),
            )
            .response(
                "413",
                error(format!("A request body over {MAX_BODY} bytes")),
            )
            .build()
            .into()
    }
}
