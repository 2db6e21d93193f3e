//! The api function: the same axum router as `cryptomon serve` (from `cryptomon-server`'s
//! library), answering by the invocation's deadline ([`cryptomon_lambda::api`]), run by
//! `lambda_http` behind the stack's HTTP API. The router keeps the aggregates in memory and refreshes them with a conditional read when they change, so a warm function
//! answers most requests without touching S3.

use std::sync::Arc;

use cryptomon_lambda::{Settings, api};
use cryptomon_server::AppState;
use lambda_http::{Error, run};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON lines when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT=JSON).
    lambda_runtime::tracing::init_default_subscriber();
    let settings = Settings::from_env()?;
    // One AWS configuration (region, endpoint, credentials) for every client.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(settings.store(&aws));
    run(api::router(AppState::new(store))).await
}
