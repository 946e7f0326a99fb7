//! Lambda entry point: configuration, logging, adapters, then run. No logic here.
use lambda_runtime::{LambdaEvent, service_fn};
use latchkey::domain::backups::BackupPolicy;
use latchkey::{Config, Services};
use latchkey_backup::Backups;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = Services::from_config(&config).await?;
    let backups = std::sync::Arc::new(Backups {
        target: latchkey::runtime::backup_target(&config).await?,
        policy: BackupPolicy::from(&config.backup),
    });
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let (services, backups) = (services.clone(), backups.clone());
        async move { latchkey_backup::handle(&services, &backups, event.payload).await }
    }))
    .await
}
