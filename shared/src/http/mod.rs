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
        .route("/health", get(move || health(name)))
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            edge,
            middleware::entry,
        ))
}

async fn health(name: &'static str) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "service": name,
        "version": env!("CARGO_PKG_VERSION"),
    }))
}
