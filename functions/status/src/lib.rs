//! The `latchkey-status` function: the public status page and its write side.
//!
//! Public, no authentication, cacheable (strong `ETag`, `Cache-Control: public, max-age=30`):
//! the HTML page at `/status` (no JavaScript, no external assets), an Atom feed at
//! `/status/feed.atom`, and JSON under `/status/api/v2/` shaped like Atlassian Statuspage's
//! public API v2, so Statuspage widgets and clients read it unchanged.
//!
//! For operators (`Authorization: Bearer lko_…`, see [`auth`]): components, incidents and their
//! updates, scheduled maintenances, under `/status/manage/`. Every write commits with its
//! audit event; updates that name tenants whose data is affected send their admin contacts an
//! urgent notice, once (`latchkey::domain::status::notices`).
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

pub mod atom;
pub mod auth;
pub mod html;
pub mod mail;
mod manage;
mod public;

pub use auth::{BearerTokens, OperatorAuth};

use axum::Router;
use axum::routing::{get, patch, post};
use latchkey::Services;
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub const NAME: &str = "latchkey-status";

/// Every route this function serves (method, path): the one table the router, the template
/// check and the tests read. `public` routes need no credential and are cacheable.
pub const ROUTES: [(&str, &str, Access); 18] = [
    ("GET", "/status", Access::Public),
    ("GET", "/status/feed.atom", Access::Public),
    ("GET", "/status/api/v2/summary.json", Access::Public),
    ("GET", "/status/api/v2/status.json", Access::Public),
    ("GET", "/status/api/v2/components.json", Access::Public),
    ("GET", "/status/api/v2/incidents.json", Access::Public),
    (
        "GET",
        "/status/api/v2/incidents/unresolved.json",
        Access::Public,
    ),
    (
        "GET",
        "/status/api/v2/scheduled-maintenances.json",
        Access::Public,
    ),
    (
        "GET",
        "/status/api/v2/scheduled-maintenances/upcoming.json",
        Access::Public,
    ),
    (
        "GET",
        "/status/api/v2/scheduled-maintenances/active.json",
        Access::Public,
    ),
    ("POST", "/status/manage/components", Access::Operator),
    ("PATCH", "/status/manage/components/{id}", Access::Operator),
    ("POST", "/status/manage/incidents", Access::Operator),
    ("PATCH", "/status/manage/incidents/{id}", Access::Operator),
    (
        "POST",
        "/status/manage/incidents/{id}/updates",
        Access::Operator,
    ),
    ("POST", "/status/manage/maintenances", Access::Operator),
    (
        "POST",
        "/status/manage/maintenances/{id}/updates",
        Access::Operator,
    ),
    ("GET", "/status/manage/whoami", Access::Operator),
];

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Operator,
}

/// What the handlers share: the services, and how operators are recognised.
#[derive(Clone)]
pub struct StatusState {
    pub services: Arc<Services>,
    pub auth: Arc<dyn OperatorAuth>,
}

/// This function's routes, without the shared layers (the local gateway merges them), with
/// operators recognised by their bearer tokens.
pub fn routes(services: &Arc<Services>) -> Router {
    routes_with_auth(services, Arc::new(BearerTokens))
}

/// The same routes with another way to recognise operators (the admin plane's sign-in, or a
/// test double).
pub fn routes_with_auth(services: &Arc<Services>, auth: Arc<dyn OperatorAuth>) -> Router {
    let state = StatusState {
        services: Arc::clone(services),
        auth,
    };
    Router::new()
        .route("/status", get(public::page))
        .route("/status/feed.atom", get(public::feed))
        .route("/status/api/v2/summary.json", get(public::summary))
        .route("/status/api/v2/status.json", get(public::status))
        .route("/status/api/v2/components.json", get(public::components))
        .route("/status/api/v2/incidents.json", get(public::incidents))
        .route(
            "/status/api/v2/incidents/unresolved.json",
            get(public::unresolved),
        )
        .route(
            "/status/api/v2/scheduled-maintenances.json",
            get(public::maintenances),
        )
        .route(
            "/status/api/v2/scheduled-maintenances/upcoming.json",
            get(public::upcoming),
        )
        .route(
            "/status/api/v2/scheduled-maintenances/active.json",
            get(public::active),
        )
        .route("/status/manage/components", post(manage::create_component))
        .route(
            "/status/manage/components/{id}",
            patch(manage::update_component),
        )
        .route("/status/manage/incidents", post(manage::create_incident))
        .route(
            "/status/manage/incidents/{id}",
            patch(manage::patch_incident),
        )
        .route(
            "/status/manage/incidents/{id}/updates",
            post(manage::post_update),
        )
        .route(
            "/status/manage/maintenances",
            post(manage::schedule_maintenance),
        )
        .route(
            "/status/manage/maintenances/{id}/updates",
            post(manage::post_update),
        )
        .route("/status/manage/whoami", get(manage::whoami))
        .with_state(state)
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>, settings: HttpSettings) -> Router {
    latchkey::http::service(routes(&services), &services, settings, NAME)
}
