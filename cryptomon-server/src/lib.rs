//! The standalone cryptomon: the HTTP API and dashboard ([`app`]), the `serve` loop that
//! collects, transforms and serves on one machine ([`serve()`]), and the `cryptomon` CLI.
//!
//! # Layout
//!
//! - [`api`]: the axum router ([`app`] over an [`AppState`]): JSON routes, server-sent events,
//!   the OpenAPI document and the embedded dashboard. Free of server-only state, so the api
//!   Lambda runs it unchanged. Also the market gauges of `/metrics`, built from the summary.
//! - [`serve`]: the scheduler (collect and transform aligned to the minute), the demo history,
//!   the Prometheus `/metrics` route and graceful shutdown.
//! - `main.rs` and `commands/`: the `cryptomon` binary, a shell over the above.
//!
//! # Example
//!
//! Answer a request without a socket:
//!
//! ```
//! use std::sync::Arc;
//! use axum::body::Body;
//! use axum::http::{Request, StatusCode};
//! use cryptomon_mock::MemoryStore;
//! use cryptomon_server::{AppState, app};
//! use tower::ServiceExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let router = app(AppState::new(Arc::new(MemoryStore::new())));
//! let request = Request::get("/api/summary").body(Body::empty()).unwrap();
//! let response = router.oneshot(request).await.unwrap();
//! // No transform has run on this empty store yet.
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! # });
//! ```

pub mod api;
pub mod serve;

pub use api::{ApiOptions, AppState, app};
pub use serve::{ServeError, ServeOptions, demo_sources, seed_history, serve};
