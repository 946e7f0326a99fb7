//! Lambda entry point: configuration, logging, adapters, then serve. No logic here.
use latchkey::{Config, wiring};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = wiring::services(&config).await?;
    lambda_http::run(latchkey_status::app(
        services,
        wiring::http_settings(&config),
        config.security_txt.clone(),
    ))
    .await
}
