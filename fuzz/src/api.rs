//! The API router on a store holding a day of the demo market: the input is a request target
//! (path and query), sent as `GET`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use cryptomon_core::pipeline::TransformOptions;
use cryptomon_core::{PolarsAggregator, Tick, transform};
use cryptomon_mock::MemoryStore;
use cryptomon_server::{AppState, app, demo_sources, seed_history};
use tokio::runtime::Runtime;
use tower::ServiceExt;

struct Api {
    runtime: Runtime,
    router: Router,
}

/// Built once per process: seeding and transforming a day takes seconds, a request microseconds.
fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let store = Arc::new(MemoryStore::new());
            let now = Tick::from_unix(1_795_000_000 / 300 * 300);
            // Every five minutes: the same routes and views as every minute, a fifth the start-up.
            seed_history(&*store, &demo_sources(), now, Duration::from_secs(300))
                .await
                .expect("demo history");
            transform(
                &*store,
                &PolarsAggregator::default(),
                &TransformOptions::default(),
            )
            .await
            .expect("transform");
            let state = AppState::new(store);
            state.refresh().await.expect("the API loads the summary");
            app(state)
        });
        Api { runtime, router }
    })
}

/// Sends `request` to the router and returns its status.
pub fn send(request: Request<Body>) -> axum::http::StatusCode {
    let api = api();
    api.runtime.block_on(async {
        api.router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible")
            .status()
    })
}

/// Sends `GET <target>`. Every answer is below 500, and a 4xx carries a JSON `error`.
pub fn check(data: &[u8]) {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    // What hyper would refuse before the router sees it is not the router's to handle.
    let Ok(request) = Request::get(target).body(Body::empty()) else {
        return;
    };
    let api = api();
    api.runtime.block_on(async {
        let response = api
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let event_stream = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/event-stream"));
        assert!(!status.is_server_error(), "GET {target:?}: HTTP {status}");
        if event_stream {
            // An open stream: its first bytes are the subject of the SSE tests, not this one.
            return;
        }
        let body = to_bytes(response.into_body(), 1 << 26)
            .await
            .expect("a body that reads to its end");
        if status.is_client_error() {
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|e| panic!("GET {target:?}: HTTP {status} without JSON: {e}"));
            assert!(
                json.get("error").is_some(),
                "GET {target:?}: HTTP {status} without an error: {json}"
            );
        }
    });
}
