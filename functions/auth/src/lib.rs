//! The `latchkey-auth` function: the Server API, wire-compatible with Authsignal's
//! (`../shared/API.md` §4): track, actions, validate, users, authenticators, and its OpenAPI
//! description at `/openapi.json`.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::await_holding_lock,
    clippy::dbg_macro
)]

mod handlers;

use axum::Router;
use axum::routing::{get, post};
use latchkey::Services;
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub const NAME: &str = "latchkey-auth";

/// The OpenAPI 3.1 description of this function's routes; a test keeps it in step with
/// [`ROUTES`].
pub const OPENAPI: &str = include_str!("../openapi.json");

/// Every route this function serves (method, path), the one table the router and the OpenAPI
/// test both read.
pub const ROUTES: [(&str, &str); 13] = [
    ("POST", "/v1/users/{userId}/actions/{action}"),
    (
        "GET",
        "/v1/users/{userId}/actions/{action}/{idempotencyKey}",
    ),
    (
        "PATCH",
        "/v1/users/{userId}/actions/{action}/{idempotencyKey}",
    ),
    ("GET", "/v1/users/{userId}/actions"),
    ("POST", "/v1/validate"),
    ("GET", "/v1/users"),
    ("GET", "/v1/users/{userId}"),
    ("PATCH", "/v1/users/{userId}"),
    ("DELETE", "/v1/users/{userId}"),
    ("GET", "/v1/users/{userId}/authenticators"),
    ("POST", "/v1/users/{userId}/authenticators"),
    (
        "DELETE",
        "/v1/users/{userId}/authenticators/{userAuthenticatorId}",
    ),
    ("GET", "/openapi.json"),
];

/// This function's routes, without the shared layers (the local gateway merges them).
pub fn routes(services: &Arc<Services>) -> Router {
    use handlers::*;
    Router::new()
        .route("/v1/users/{user_id}/actions/{action}", post(track))
        .route(
            "/v1/users/{user_id}/actions/{action}/{idempotency_key}",
            get(get_action).patch(update_action),
        )
        .route("/v1/users/{user_id}/actions", get(query_actions))
        .route("/v1/validate", post(validate))
        .route("/v1/users", get(query_users))
        .route(
            "/v1/users/{user_id}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route(
            "/v1/users/{user_id}/authenticators",
            get(list_authenticators).post(enroll_authenticator),
        )
        .route(
            "/v1/users/{user_id}/authenticators/{authenticator_id}",
            axum::routing::delete(delete_authenticator),
        )
        .route("/openapi.json", get(openapi))
        .with_state(Arc::clone(services))
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>, settings: HttpSettings) -> Router {
    latchkey::http::service(routes(&services), &services, settings, NAME)
}
