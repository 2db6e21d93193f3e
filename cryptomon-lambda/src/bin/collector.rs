//! The collector function: reads its settings, config and secrets once, then collects on every
//! invocation (see [`cryptomon_lambda::Collector`]).

use std::sync::Arc;

use cryptomon_lambda::{Collector, ParameterStore, Settings, settings, sources};
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
    let setup = sources::from_config(config.as_deref(), &secrets)?;
    let collector = Collector::new(store, setup.sources, setup.interval_secs)
        .with_max_clock_skew(settings::max_clock_skew(config.as_deref())?);
    run(service_fn(|event| collector.handle(event))).await
}
