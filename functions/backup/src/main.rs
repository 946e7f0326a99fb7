//! Lambda entry point: configuration, logging, adapters, then run. No logic here.
use lambda_runtime::{LambdaEvent, service_fn};
use latchkey::{Config, wiring};
use latchkey_backup::Backups;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = wiring::services(&config).await?;
    let backups = std::sync::Arc::new(Backups {
        target: wiring::backup_target(&config).await?,
        policy: wiring::backup_policy(&config),
    });
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (services, backups) = (services.clone(), backups.clone());
        async move { latchkey_backup::handle(&services, &backups, event.payload).await }
    }))
    .await
}
