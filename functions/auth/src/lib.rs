//! The `latchkey-auth` function: the Server API (track, validate, actions, users, authenticators): `/v1/...`.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires. Until its own issue lands it serves `/health` alone.
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

use axum::Router;
use latchkey::Services;
use std::sync::Arc;

pub const NAME: &str = "latchkey-auth";

/// This function's routes, without the shared layers (the local gateway merges them).
pub fn routes(services: &Arc<Services>) -> Router {
    Router::new().with_state(Arc::clone(services))
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>) -> Router {
    latchkey::http::service(routes(&services), services, NAME)
}
