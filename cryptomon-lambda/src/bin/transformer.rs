//! The transformer function: reads its settings, alert rules, secrets and the candle sources of
//! a startup backfill once (an invalid rule or a missing secret stops it here, naming it), then
//! runs the transform on every invocation (see [`cryptomon_lambda::Transformer`]).

use std::sync::Arc;

use cryptomon_lambda::{ParameterStore, Settings, Transformer, alerts, settings, startup_backfill};
use lambda_runtime::{Error, run, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // JSON lines when the function's log format is JSON (AWS_LAMBDA_LOG_FORMAT=JSON).
    tracing::init_default_subscriber();
    let settings = Settings::from_env()?;
    // One AWS configuration (region, endpoint, credentials) for every client.
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = Arc::new(settings.store(&aws));
    let parameters = ParameterStore::from_sdk_config(&aws);
    let config = settings.config.load(store.as_ref(), &parameters).await?;
    let secrets = settings.secrets(&parameters).await?;
    let alerting = alerts::from_config(
        config.as_deref(),
        std::env::var(alerts::TOPIC_ENV).ok(),
        &secrets,
        &aws,
    )?;
    let max_clock_skew = settings::max_clock_skew(config.as_deref())?;
    let mut transformer = Transformer::new(store, Some(settings.bucket_and_prefix()))
        .with_alerting(alerting)
        .with_max_clock_skew(max_clock_skew);
    if let Some((sources, backfill)) = startup_backfill::from_config(config.as_deref(), &secrets)? {
        transformer = transformer.with_backfill(sources, backfill);
    }
    run(service_fn(|event| transformer.handle(event))).await
}
