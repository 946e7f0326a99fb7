//! Lambda entry point: configuration, logging, adapters, then run. No logic here.
use lambda_runtime::{LambdaEvent, service_fn};
use latchkey::{Config, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = wiring::services(&config).await?;
    let sealer = std::sync::Arc::new(wiring::sealer(&config, &services).await?);
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let sealer = sealer.clone();
        async move { latchkey_sealer::handle(&sealer, event.payload).await }
    }))
    .await
}
