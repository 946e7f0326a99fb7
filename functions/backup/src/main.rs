//! Lambda entry point: configuration, logging, adapters, then run. No logic here.
use lambda_runtime::{LambdaEvent, service_fn};
use latchkey::{Config, Services};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = Services::from_config(&config).await?;
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let services = std::sync::Arc::clone(&services);
        async move { latchkey_backup::handle(&services, event.payload).await }
    }))
    .await
}
