//! The `latchkey-auth` function: the Server API, wire-compatible with Authsignal's
//! (`docs/wire.md` §4): track, actions, validate, users, authenticators, and its OpenAPI
//! description at `/openapi.json`.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires.
mod handlers;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};
use latchkey::Services;
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub const NAME: &str = "latchkey-auth";

/// The OpenAPI 3.1 description of this function's routes; a test keeps it in step with
/// [`ROUTES`].
pub const OPENAPI: &str = include_str!("../openapi.json");

/// The routes of this function; an exhaustive match gives each its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    Track,
    GetAction,
    UpdateAction,
    QueryActions,
    Validate,
    QueryUsers,
    GetUser,
    UpdateUser,
    DeleteUser,
    ListAuthenticators,
    EnrollAuthenticator,
    DeleteAuthenticator,
    OpenApi,
}

/// Every route this function serves: the one table the router is built from, and that the
/// tests check against the OpenAPI description and `template.yaml`.
#[rustfmt::skip]
pub const TABLE: [(RouteId, &str, &str); 13] = {
    use RouteId::*;
    [
        (Track,               "POST",   "/v1/users/{userId}/actions/{action}"),
        (GetAction,           "GET",    "/v1/users/{userId}/actions/{action}/{idempotencyKey}"),
        (UpdateAction,        "PATCH",  "/v1/users/{userId}/actions/{action}/{idempotencyKey}"),
        (QueryActions,        "GET",    "/v1/users/{userId}/actions"),
        (Validate,            "POST",   "/v1/validate"),
        (QueryUsers,          "GET",    "/v1/users"),
        (GetUser,             "GET",    "/v1/users/{userId}"),
        (UpdateUser,          "PATCH",  "/v1/users/{userId}"),
        (DeleteUser,          "DELETE", "/v1/users/{userId}"),
        (ListAuthenticators,  "GET",    "/v1/users/{userId}/authenticators"),
        (EnrollAuthenticator, "POST",   "/v1/users/{userId}/authenticators"),
        (DeleteAuthenticator, "DELETE", "/v1/users/{userId}/authenticators/{userAuthenticatorId}"),
        (OpenApi,             "GET",    "/openapi.json"),
    ]
};

/// [`TABLE`] as (method, path) pairs.
pub const ROUTES: [(&str, &str); TABLE.len()] = {
    let mut out = [("", ""); TABLE.len()];
    let mut i = 0;
    while i < TABLE.len() {
        out[i] = (TABLE[i].1, TABLE[i].2);
        i += 1;
    }
    out
};

/// The handler of each route. The match is exhaustive: a route cannot be in the table
/// without a handler. A test checks that each handler's method is the row's.
fn handler(id: RouteId) -> MethodRouter<Arc<Services>> {
    use RouteId::*;
    use handlers::*;
    match id {
        Track => post(track),
        GetAction => get(get_action),
        UpdateAction => patch(update_action),
        QueryActions => get(query_actions),
        Validate => post(validate),
        QueryUsers => get(query_users),
        GetUser => get(get_user),
        UpdateUser => patch(update_user),
        DeleteUser => delete(delete_user),
        ListAuthenticators => get(list_authenticators),
        EnrollAuthenticator => post(enroll_authenticator),
        DeleteAuthenticator => delete(delete_authenticator),
        OpenApi => get(openapi),
    }
}

/// This function's routes, without the shared layers (the local gateway merges them).
pub fn routes(services: &Arc<Services>) -> Router {
    latchkey::http::routes::from_table(TABLE.iter().map(|(id, _, path)| (*path, handler(*id))))
        .with_state(Arc::clone(services))
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>, settings: HttpSettings) -> Router {
    latchkey::http::service(routes(&services), &services, settings, NAME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey::http::routes::{openapi_operations, router_mismatches, template_mismatches};

    #[test]
    fn the_openapi_document_describes_exactly_the_table() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut table: Vec<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        table.sort();
        assert_eq!(openapi_operations(&doc), table);
    }

    #[test]
    fn the_template_sends_exactly_the_tables_routes_here() {
        let template = include_str!("../../../template.yaml");
        let problems =
            template_mismatches(template, "AuthFunction", &ROUTES, &[("GET", "/health")]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_table() {
        let router = routes(&latchkey::testing::services().unwrap());
        assert_eq!(
            router_mismatches(&router, &ROUTES).await,
            Vec::<String>::new()
        );
    }
}
