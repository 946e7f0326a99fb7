//! Lambda entry point: configuration, logging, adapters, then serve. No logic here.
use latchkey::{Config, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = wiring::services(&config).await?;
    let signer = wiring::signer(&config, &services).await?;
    lambda_http::run(latchkey_admin_api::app(
        services,
        signer,
        wiring::http_settings(&config),
    ))
    .await
}
