//! [`ApiError`]: every failure of a request, mapped to a status and a short JSON message at the
//! edge. Details (store keys, backend messages) go to the log, never to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response: `{"error": "..."}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, in one line.
    pub error: String,
}

/// A request that could not be answered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// A parameter is missing or malformed (400).
    #[error("{0}")]
    BadRequest(String),
    /// The metric, series or route does not exist (404).
    #[error("{0}")]
    NotFound(String),
    /// The method is not allowed on the route (405).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No transform has written aggregates yet (503): retrying later helps.
    #[error("no aggregates yet: run a transform first (or wait for the first scheduled one)")]
    NoData,
    /// The store could not be read (503). The cause is logged where it happened.
    #[error("the store is unavailable")]
    Unavailable,
    /// A bug: something that valid input cannot cause (500). The cause is logged.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A store failure: logged in full, reported to the client as [`ApiError::Unavailable`].
    pub(crate) fn unavailable(error: &cryptomon_core::Error) -> Self {
        tracing::error!(%error, "store read failed");
        ApiError::Unavailable
    }

    /// An engine failure on valid input: logged in full, reported as [`ApiError::Internal`].
    pub(crate) fn internal(error: &cryptomon_core::Error) -> Self {
        tracing::error!(%error, "request failed");
        ApiError::Internal
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NoData | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (
            status,
            Json(ErrorBody {
                error: self.to_string(),
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // Aggregates land once a minute: tell pollers when trying again makes sense.
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("10"),
            );
        }
        response
    }
}

/// The answer to an unknown route.
pub(crate) async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

/// The answer to a known route with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
