//! `latchkey-local`: every function's routes on one socket, on whatever adapters the
//! configuration names (the embedded ones by default), so a laptop runs the code that ships.
use axum::Router;
use latchkey::Services;
use latchkey::config::Config;
use latchkey::domain::tenants::{DevTenant, TenantSettings, ensure_dev_tenant};
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub mod demo;

pub const NAME: &str = "latchkey-local";

/// The routes of every HTTP function, behind the shared layers.
pub fn gateway(services: Arc<Services>, settings: HttpSettings) -> Router {
    latchkey::http::service(function_routes(&services), &services, settings, NAME)
}

/// [`gateway`] plus the demo page for the development tenant.
pub fn gateway_with_demo(
    services: Arc<Services>,
    settings: HttpSettings,
    dev_tenant_id: String,
) -> Router {
    let routes =
        function_routes(&services).merge(demo::routes(Arc::clone(&services), dev_tenant_id));
    latchkey::http::service(routes, &services, settings, NAME)
}

fn function_routes(services: &Arc<Services>) -> Router {
    Router::new()
        .merge(latchkey_auth::routes(services))
        .merge(latchkey_client::routes(services))
        .merge(latchkey_status::routes(services))
}

/// Creates the development tenant on first start (see `ensure_dev_tenant`).
pub async fn bootstrap(
    services: &Services,
    config: &Config,
) -> Result<DevTenant, latchkey::domain::Error> {
    let settings = TenantSettings {
        name: "Development".to_owned(),
        rp_id: "localhost".to_owned(),
        allowed_origins: config.local.dev_origins.clone(),
        ..Default::default()
    };
    ensure_dev_tenant(
        services,
        settings,
        config.local.dev_tenant_id.as_deref(),
        config.local.dev_secret_key.as_ref().map(|s| s.as_str()),
    )
    .await
}
