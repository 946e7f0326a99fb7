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
pub mod atom;
pub mod auth;
pub mod html;
pub mod mail;
mod manage;
mod public;

pub use auth::{BearerTokens, OperatorAuth, SessionsOrTokens};

use axum::Router;
use axum::routing::{MethodRouter, get, patch, post};
use latchkey::Services;
use latchkey::domain::status::disclosure::SecurityTxt;
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub const NAME: &str = "latchkey-status";

/// The routes of this function; an exhaustive match gives each its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Page,
    Feed,
    Summary,
    Status,
    Components,
    Incidents,
    Unresolved,
    Maintenances,
    Upcoming,
    Active,
    CreateComponent,
    UpdateComponent,
    CreateIncident,
    PatchIncident,
    PostIncidentUpdate,
    ScheduleMaintenance,
    PostMaintenanceUpdate,
    Whoami,
    SecurityTxt,
}

/// Every route this function serves: the one table the router is built from, and that the
/// tests check against `template.yaml`. `Public` routes need no credential and are cacheable.
#[rustfmt::skip]
pub const TABLE: [(RouteId, &str, &str, Access); 19] = {
    use Access::*;
    use RouteId::*;
    [
        (Page,                  "GET",   "/status",                                             Public),
        (Feed,                  "GET",   "/status/feed.atom",                                   Public),
        (Summary,               "GET",   "/status/api/v2/summary.json",                         Public),
        (Status,                "GET",   "/status/api/v2/status.json",                          Public),
        (Components,            "GET",   "/status/api/v2/components.json",                      Public),
        (Incidents,             "GET",   "/status/api/v2/incidents.json",                       Public),
        (Unresolved,            "GET",   "/status/api/v2/incidents/unresolved.json",            Public),
        (Maintenances,          "GET",   "/status/api/v2/scheduled-maintenances.json",          Public),
        (Upcoming,              "GET",   "/status/api/v2/scheduled-maintenances/upcoming.json", Public),
        (Active,                "GET",   "/status/api/v2/scheduled-maintenances/active.json",   Public),
        (CreateComponent,       "POST",  "/status/manage/components",                           Operator),
        (UpdateComponent,       "PATCH", "/status/manage/components/{id}",                      Operator),
        (CreateIncident,        "POST",  "/status/manage/incidents",                            Operator),
        (PatchIncident,         "PATCH", "/status/manage/incidents/{id}",                       Operator),
        (PostIncidentUpdate,    "POST",  "/status/manage/incidents/{id}/updates",               Operator),
        (ScheduleMaintenance,   "POST",  "/status/manage/maintenances",                         Operator),
        (PostMaintenanceUpdate, "POST",  "/status/manage/maintenances/{id}/updates",            Operator),
        (Whoami,                "GET",   "/status/manage/whoami",                               Operator),
        (SecurityTxt,           "GET",   "/.well-known/security.txt",                           Public),
    ]
};

/// [`TABLE`] as (method, path, access).
pub const ROUTES: [(&str, &str, Access); TABLE.len()] = {
    let mut out = [("", "", Access::Public); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = (TABLE[i].1, TABLE[i].2, TABLE[i].3);
        i += 1;
    }
    out
};

/// The handler of each route. The match is exhaustive: a route cannot be in the table
/// without a handler. A test checks that each handler's method is the row's.
fn handler(id: RouteId) -> MethodRouter<StatusState> {
    use RouteId::*;
    match id {
        Page => get(public::page),
        Feed => get(public::feed),
        Summary => get(public::summary),
        Status => get(public::status),
        Components => get(public::components),
        Incidents => get(public::incidents),
        Unresolved => get(public::unresolved),
        Maintenances => get(public::maintenances),
        Upcoming => get(public::upcoming),
        Active => get(public::active),
        CreateComponent => post(manage::create_component),
        UpdateComponent => patch(manage::update_component),
        CreateIncident => post(manage::create_incident),
        PatchIncident => patch(manage::patch_incident),
        PostIncidentUpdate => post(manage::post_update),
        ScheduleMaintenance => post(manage::schedule_maintenance),
        PostMaintenanceUpdate => post(manage::post_update),
        Whoami => get(manage::whoami),
        SecurityTxt => get(public::security_txt),
    }
}

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
    /// `/.well-known/security.txt`, if the deployment configured one.
    pub security_txt: Option<Arc<SecurityTxt>>,
}

/// This function's routes, without the shared layers (the local gateway merges them), with
/// operators recognised by their bearer tokens or their passkey sessions.
/// `/.well-known/security.txt` answers 404 here: see [`routes_configured`].
pub fn routes(services: &Arc<Services>) -> Router {
    routes_with_auth(services, Arc::new(SessionsOrTokens), None)
}

/// [`routes`] with the deployment's `/.well-known/security.txt` (`Config::security_txt`).
pub fn routes_configured(services: &Arc<Services>, security_txt: Option<SecurityTxt>) -> Router {
    routes_with_auth(services, Arc::new(SessionsOrTokens), security_txt)
}

/// The same routes with another way to recognise operators (the admin plane's sign-in, or a
/// test double).
pub fn routes_with_auth(
    services: &Arc<Services>,
    auth: Arc<dyn OperatorAuth>,
    security_txt: Option<SecurityTxt>,
) -> Router {
    let state = StatusState {
        services: Arc::clone(services),
        auth,
        security_txt: security_txt.map(Arc::new),
    };
    latchkey::http::routes::from_table(TABLE.iter().map(|(id, _, path, _)| (*path, handler(*id))))
        .with_state(state)
}

/// The whole function as the Lambda runtime serves it.
pub fn app(
    services: Arc<Services>,
    settings: HttpSettings,
    security_txt: Option<SecurityTxt>,
) -> Router {
    latchkey::http::service(
        routes_configured(&services, security_txt),
        &services,
        settings,
        NAME,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey::http::routes::{router_mismatches, template_mismatches};

    fn table() -> Vec<(&'static str, &'static str)> {
        ROUTES.iter().map(|(m, p, _)| (*m, *p)).collect()
    }

    #[test]
    fn the_template_sends_exactly_the_tables_routes_here() {
        let template = include_str!("../../../template.yaml");
        let problems = template_mismatches(template, "StatusFunction", &table(), &[]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_table() {
        // Configured: an unconfigured security.txt answers 404, which reads as "not served".
        let txt = SecurityTxt::from_settings(
            "mailto:security@example.com",
            "2027-06-01T00:00:00Z",
            None,
            None,
            None,
        )
        .unwrap();
        let router = routes_configured(&latchkey::testing::services().unwrap(), Some(txt));
        assert_eq!(
            router_mismatches(&router, &table()).await,
            Vec::<String>::new()
        );
    }
}
