//! Lambda entry point: configuration, logging, adapters, then serve. No logic here.
use latchkey::{Config, Services};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let config = Config::from_env()?;
    latchkey::logging::init(&config.log_filter);
    let services = Services::from_config(&config).await?;
    lambda_http::run(latchkey_auth::app(services)).await
}
