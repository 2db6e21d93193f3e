//! The transformer function: reads its settings and alert rules once (an invalid rule stops it
//! here, naming the rule), then runs the transform on every invocation (see
//! [`cryptomon_lambda::Transformer`]).

use std::sync::Arc;

use cryptomon_core::secrets::Secrets;
use cryptomon_lambda::{Settings, Transformer, alerts, settings};
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON lines when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT=JSON).
    tracing::init_default_subscriber();
    let settings = Settings::from_env()?;
    let store = Arc::new(settings.store().await);
    let config = settings.config.load(store.as_ref()).await?;
    let alerting = alerts::from_config(
        config.as_deref(),
        std::env::var(alerts::TOPIC_ENV).ok(),
        &Secrets::default(),
    )
    .await?;
    let max_clock_skew = settings::max_clock_skew(config.as_deref())?;
    let transformer = Transformer::new(store, Some(settings.bucket_and_prefix()))
        .with_alerting(alerting)
        .with_max_clock_skew(max_clock_skew);
    run(service_fn(|event| transformer.handle(event))).await
}
