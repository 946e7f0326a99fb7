//! The `latchkey-admin-api` function: the management plane under `/v1/admin`, for tenant
//! admins (passkey sessions), operators (passkey sessions, under a tenant's support-access
//! grant) and automation (management keys). Described in OpenAPI at `/v1/admin/openapi.json`.
//!
//! Every route's requirement is one cell of [`TABLE`] ([`Need`]); the [`auth::Allowed`]
//! extractor is the only place a request is authenticated and authorized, by the table's row
//! for the matched route, through `latchkey::domain::admin::authorize`. No handler checks a
//! credential itself.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires.
pub mod auth;
pub mod console;
mod handlers;

use axum::Router;
use axum::routing::{MethodRouter, delete, get, patch, post};
use latchkey::Services;
use latchkey::domain::admin::Perm;
use latchkey::http::HttpSettings;
use latchkey::ports::signer::Signer;
use std::sync::Arc;

pub const NAME: &str = "latchkey-admin-api";

/// The OpenAPI 3.1 description of this function's routes; a test keeps it in step with
/// [`TABLE`].
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What a route needs of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Nothing (the request carries its own proof: an invite, a console token).
    Public,
    /// A signed-in person (a session cookie), whatever their tenants.
    Person,
    /// A permission on the tenant the path names (`{tenantId}`), from a session or a
    /// management key.
    Tenant(Perm),
}

/// The routes of this function; an exhaustive match gives each its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    OpenApi,
    ConsolePage,
    ConsoleScript,
    ConsoleWebAuthn,
    ConsoleStyle,
    ConsoleInfo,
    AcceptInvite,
    SignIn,
    WhoAmI,
    SignOut,
    Reauth,
    JoinSignedIn,
    MyTenants,
    GetTenant,
    Overview,
    UpdateTenant,
    DeleteTenant,
    ListKeys,
    CreateKey,
    RotateKey,
    RevokeKey,
    ListUsers,
    GetUser,
    DeleteUser,
    ExportUser,
    ListAudit,
    ExportAudit,
    VerifyAudit,
    ListGrants,
    CreateGrant,
    RevokeGrant,
    ListMembers,
    InviteMember,
    ListInvites,
    RevokeInvite,
    RemoveMember,
    RecoverMember,
    ListManagementKeys,
    CreateManagementKey,
    RevokeManagementKey,
}

/// Every route this function serves, with what it needs: the one table the router is built
/// from, that the authorization extractor reads, and that the tests walk cell by cell.
#[rustfmt::skip]
pub const TABLE: [(RouteId, &str, &str, Need); 40] = {
    use Need::*;
    use RouteId::*;
    [
        (OpenApi,             "GET",    "/v1/admin/openapi.json",                                Public),
        (ConsolePage,         "GET",    "/console",                                              Public),
        (ConsoleScript,       "GET",    "/console/app.js",                                       Public),
        (ConsoleWebAuthn,     "GET",    "/console/webauthn.js",                                  Public),
        (ConsoleStyle,        "GET",    "/console/app.css",                                      Public),
        (ConsoleInfo,         "GET",    "/v1/admin/console",                                     Public),
        (AcceptInvite,        "POST",   "/v1/admin/invites/accept",                              Public),
        (SignIn,              "POST",   "/v1/admin/session",                                     Public),
        (WhoAmI,              "GET",    "/v1/admin/session",                                     Person),
        (SignOut,             "DELETE", "/v1/admin/session",                                     Person),
        (Reauth,              "POST",   "/v1/admin/session/reauth",                              Person),
        (JoinSignedIn,        "POST",   "/v1/admin/session/invites",                             Person),
        (MyTenants,           "GET",    "/v1/admin/tenants",                                     Person),
        (GetTenant,           "GET",    "/v1/admin/tenants/{tenantId}",                          Tenant(Perm::Read)),
        (Overview,            "GET",    "/v1/admin/tenants/{tenantId}/overview",                 Tenant(Perm::Read)),
        (UpdateTenant,        "PATCH",  "/v1/admin/tenants/{tenantId}",                          Tenant(Perm::Configure)),
        (DeleteTenant,        "DELETE", "/v1/admin/tenants/{tenantId}",                          Tenant(Perm::Own)),
        (ListKeys,            "GET",    "/v1/admin/tenants/{tenantId}/keys",                     Tenant(Perm::Read)),
        (CreateKey,           "POST",   "/v1/admin/tenants/{tenantId}/keys",                     Tenant(Perm::Keys)),
        (RotateKey,           "POST",   "/v1/admin/tenants/{tenantId}/keys/{keyId}/rotate",      Tenant(Perm::Keys)),
        (RevokeKey,           "DELETE", "/v1/admin/tenants/{tenantId}/keys/{keyId}",             Tenant(Perm::Keys)),
        (ListUsers,           "GET",    "/v1/admin/tenants/{tenantId}/users",                    Tenant(Perm::Read)),
        (GetUser,             "GET",    "/v1/admin/tenants/{tenantId}/users/{userId}",           Tenant(Perm::Read)),
        (DeleteUser,          "DELETE", "/v1/admin/tenants/{tenantId}/users/{userId}",           Tenant(Perm::Users)),
        (ExportUser,          "POST",   "/v1/admin/tenants/{tenantId}/users/{userId}/export",    Tenant(Perm::Users)),
        (ListAudit,           "GET",    "/v1/admin/tenants/{tenantId}/audit",                    Tenant(Perm::Read)),
        (ExportAudit,         "GET",    "/v1/admin/tenants/{tenantId}/audit/export",             Tenant(Perm::Read)),
        (VerifyAudit,         "GET",    "/v1/admin/tenants/{tenantId}/audit/verify",             Tenant(Perm::Read)),
        (ListGrants,          "GET",    "/v1/admin/tenants/{tenantId}/grants",                   Tenant(Perm::Read)),
        (CreateGrant,         "POST",   "/v1/admin/tenants/{tenantId}/grants",                   Tenant(Perm::Support)),
        (RevokeGrant,         "DELETE", "/v1/admin/tenants/{tenantId}/grants/{grantId}",         Tenant(Perm::Support)),
        (ListMembers,         "GET",    "/v1/admin/tenants/{tenantId}/members",                  Tenant(Perm::Read)),
        (InviteMember,        "POST",   "/v1/admin/tenants/{tenantId}/invites",                  Tenant(Perm::Members)),
        (ListInvites,         "GET",    "/v1/admin/tenants/{tenantId}/invites",                  Tenant(Perm::Read)),
        (RevokeInvite,        "DELETE", "/v1/admin/tenants/{tenantId}/invites/{inviteId}",       Tenant(Perm::Members)),
        (RemoveMember,        "DELETE", "/v1/admin/tenants/{tenantId}/members/{accountId}",      Tenant(Perm::Members)),
        (RecoverMember,       "POST",   "/v1/admin/tenants/{tenantId}/members/{accountId}/recovery", Tenant(Perm::Recover)),
        (ListManagementKeys,  "GET",    "/v1/admin/tenants/{tenantId}/management-keys",          Tenant(Perm::Read)),
        (CreateManagementKey, "POST",   "/v1/admin/tenants/{tenantId}/management-keys",          Tenant(Perm::Members)),
        (RevokeManagementKey, "DELETE", "/v1/admin/tenants/{tenantId}/management-keys/{keyId}",  Tenant(Perm::Members)),
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

/// The row of `(method, matched path)`, if the table has one.
pub fn row(method: &str, path: &str) -> Option<(RouteId, Need)> {
    TABLE
        .iter()
        .find(|(_, m, p, _)| *m == method && *p == path)
        .map(|(id, _, _, need)| (*id, *need))
}

/// The route table as README's table of who may call each route (a test keeps them equal).
pub fn markdown() -> String {
    use latchkey::domain::admin::{Role, Scope, key_allows, role_allows, scope_allows};
    let mut out = String::from(
        "| route | needs | owner | admin | viewer | operator, read grant | operator, configuration grant | key (admin / viewer) |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mark = |b: bool| if b { "✓" } else { "" };
    for (_, method, path, need) in TABLE {
        let cells = match need {
            Need::Public => "anyone | | | | | | ".to_owned(),
            Need::Person => "a signed-in person | ✓ | ✓ | ✓ | ✓ | ✓ | ".to_owned(),
            Need::Tenant(perm) => format!(
                "{} | {} | {} | {} | {} | {} | {}",
                perm.describe(),
                mark(role_allows(Role::Owner, perm)),
                mark(role_allows(Role::Admin, perm)),
                mark(role_allows(Role::Viewer, perm)),
                mark(scope_allows(Scope::Read, perm)),
                mark(scope_allows(Scope::Configuration, perm)),
                match (
                    key_allows(Role::Admin, perm),
                    key_allows(Role::Viewer, perm)
                ) {
                    (true, true) => "✓ / ✓",
                    (true, false) => "✓ / —",
                    _ => "",
                }
            ),
        };
        out.push_str(&format!("| `{method} {path}` | {cells} |\n"));
    }
    out
}

/// The handler of each route. The match is exhaustive: a route cannot be in the table
/// without a handler. A test checks that each handler's method is the row's.
fn handler(id: RouteId) -> MethodRouter<AdminState> {
    use RouteId::*;
    use handlers::*;
    match id {
        OpenApi => get(openapi),
        ConsolePage => get(crate::console::page),
        ConsoleScript => get(crate::console::script),
        ConsoleWebAuthn => get(crate::console::webauthn),
        ConsoleStyle => get(crate::console::style),
        ConsoleInfo => get(console_info),
        AcceptInvite => post(accept_invite),
        SignIn => post(sign_in),
        WhoAmI => get(who_am_i),
        SignOut => delete(sign_out),
        Reauth => post(reauth),
        JoinSignedIn => post(join_signed_in),
        MyTenants => get(my_tenants),
        GetTenant => get(get_tenant),
        Overview => get(overview),
        UpdateTenant => patch(update_tenant),
        DeleteTenant => delete(delete_tenant),
        ListKeys => get(list_keys),
        CreateKey => post(create_key),
        RotateKey => post(rotate_key),
        RevokeKey => delete(revoke_key),
        ListUsers => get(list_users),
        GetUser => get(get_user),
        DeleteUser => delete(delete_user),
        ExportUser => post(export_user),
        ListAudit => get(list_audit),
        ExportAudit => get(export_audit),
        VerifyAudit => get(verify_audit),
        ListGrants => get(list_grants),
        CreateGrant => post(create_grant),
        RevokeGrant => delete(revoke_grant),
        ListMembers => get(list_members),
        InviteMember => post(invite_member),
        ListInvites => get(list_invites),
        RevokeInvite => delete(revoke_invite),
        RemoveMember => delete(remove_member),
        RecoverMember => post(recover_member),
        ListManagementKeys => get(list_management_keys),
        CreateManagementKey => post(create_management_key),
        RevokeManagementKey => delete(revoke_management_key),
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    pub services: Arc<Services>,
    /// The audit checkpoints' signing key: its public key verifies a tenant's log.
    pub signer: Arc<dyn Signer>,
}

/// This function's routes, without the shared layers (the local gateway merges them).
pub fn routes(services: &Arc<Services>, signer: Arc<dyn Signer>) -> Router {
    let state = AdminState {
        services: Arc::clone(services),
        signer,
    };
    latchkey::http::routes::from_table(TABLE.iter().map(|(id, _, path, _)| (*path, handler(*id))))
        .with_state(state)
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>, signer: Arc<dyn Signer>, settings: HttpSettings) -> Router {
    latchkey::http::service(routes(&services, signer), &services, settings, NAME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey::http::routes::{openapi_operations, router_mismatches, template_mismatches};

    const T: &str = "/v1/admin/tenants/{tenantId}";

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
        let problems = template_mismatches(template, "AdminFunction", &ROUTES, &[]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[test]
    fn every_tenant_route_names_its_tenant_and_every_other_does_not() {
        for (id, _, path, need) in TABLE {
            assert_eq!(
                matches!(need, Need::Tenant(_)),
                path.starts_with(T),
                "{id:?} {path}"
            );
        }
    }

    #[test]
    fn the_readme_states_who_may_call_each_route_as_the_table_says() {
        let readme = include_str!("../../../README.md");
        let start = readme.find("<!-- admin-matrix -->").expect("README marker") + 21;
        let end = readme
            .find("<!-- /admin-matrix -->")
            .expect("README end marker");
        assert_eq!(readme[start..end].trim(), markdown().trim());
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_table() {
        let services = latchkey::testing::services().unwrap();
        let signer: Arc<dyn Signer> = Arc::new(
            latchkey::adapters::local_signer::LocalSigner::ephemeral(&*services.random).unwrap(),
        );
        let router = routes(&services, signer);
        assert_eq!(
            router_mismatches(&router, &ROUTES).await,
            Vec::<String>::new()
        );
    }
}
