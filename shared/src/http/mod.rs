//! The HTTP layer every function shares: the wire error table, request ids, security headers,
//! the body limit, JSON logs per request, and `/health`.
pub mod cors;
pub mod error;
pub mod extract;
pub mod json;
pub mod middleware;
pub mod routes;

pub use error::ApiError;
pub use extract::{Authorized, SecretKey, WirePath, WireQuery};
pub use json::WireJson;
pub use middleware::{HttpSettings, PublicBase, RequestMeta};

use crate::domain::Services;
use axum::Router;
use axum::routing::get;
use std::sync::Arc;

/// Wraps a function's routes with what every Latchkey endpoint has: `/health`, wire-format 404
/// and 405, and the request middleware with `settings`. `name` identifies the function in
/// `/health`.
pub fn service(
    routes: Router,
    services: &Services,
    settings: HttpSettings,
    name: &'static str,
) -> Router {
    let edge = middleware::Edge {
        random: Arc::clone(&services.random),
        settings,
    };
    routes
        .route(
            "/health",
            get(health).with_state(Health::new(services, name)),
        )
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            edge,
            middleware::entry,
        ))
}

/// What `/health` checks: the function, and the store, key vault and secrets it runs on.
#[derive(Clone)]
struct Health {
    name: &'static str,
    store: Arc<dyn crate::ports::store::Store>,
    vault: Arc<dyn crate::ports::keys::KeyVault>,
    secrets: Arc<dyn crate::ports::secrets::Secrets>,
    clock: Arc<dyn crate::ports::clock::Clock>,
    last: Arc<tokio::sync::Mutex<Option<(time::OffsetDateTime, Checked)>>>,
}

/// One run of the checks: each dependency's state, `ok`, `unavailable` (may pass) or
/// `misconfigured` (a missing table, key or secret, a disabled key, a missing permission:
/// it will not pass by itself).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Checked {
    store: &'static str,
    keys: &'static str,
    secrets: &'static str,
}

/// Checks run at most this often per process: `/health` is public and must not become a way
/// to flood the backends.
const HEALTH_CHECKED_FOR: time::Duration = time::Duration::seconds(10);

impl Health {
    fn new(services: &Services, name: &'static str) -> Self {
        Self {
            name,
            store: Arc::clone(&services.store),
            vault: Arc::clone(&services.vault),
            secrets: Arc::clone(&services.secrets),
            clock: Arc::clone(&services.clock),
            last: Arc::default(),
        }
    }

    async fn check(&self) -> Checked {
        let mut last = self.last.lock().await;
        let now = self.clock.now();
        if let Some((at, checked)) = *last
            && now - at < HEALTH_CHECKED_FOR
        {
            return checked;
        }
        let checked = Checked {
            store: state("store", self.store.get("HEALTH", "PROBE").await.map(drop)),
            keys: state("keys", self.vault.probe().await),
            secrets: state(
                "secrets",
                crate::domain::keyring::root_readable(self.secrets.as_ref()).await,
            ),
        };
        *last = Some((now, checked));
        checked
    }
}

/// A check's outcome as `/health` names it; the detail goes to the log only.
fn state<E: Into<crate::domain::Error>>(what: &'static str, result: Result<(), E>) -> &'static str {
    match result.map_err(Into::into) {
        Ok(()) => "ok",
        Err(crate::domain::Error::Misconfigured(detail)) => {
            tracing::error!(
                check = what,
                misconfigured = true,
                detail = %detail,
                "health: the deployment is misconfigured; retrying will not help"
            );
            "misconfigured"
        }
        Err(e) => {
            tracing::warn!(check = what, detail = %e, "health: a dependency is unavailable");
            "unavailable"
        }
    }
}

/// `/health`: 200 when the store, the key vault and the secrets answer; 503 naming which does
/// not, and whether it is misconfigured (no retry helps) or unavailable.
async fn health(
    axum::extract::State(health): axum::extract::State<Health>,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let checked = health.check().await;
    let states = [checked.store, checked.keys, checked.secrets];
    let status = if states.contains(&"misconfigured") {
        "misconfigured"
    } else if states.contains(&"unavailable") {
        "unavailable"
    } else {
        "ok"
    };
    let code = if status == "ok" {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::SERVICE_UNAVAILABLE
    };
    let body = axum::Json(serde_json::json!({
        "status": status,
        "service": health.name,
        "version": env!("CARGO_PKG_VERSION"),
        "checks": {
            "store": checked.store,
            "keys": checked.keys,
            "secrets": checked.secrets,
        },
    }));
    (code, body).into_response()
}
