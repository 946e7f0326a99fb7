//! Handlers: parse the wire, call the domain, shape the response. Who may call each is the
//! route table's business ([`crate::auth::Allowed`]); no handler checks a credential.
use crate::AdminState;
use crate::auth::Allowed;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use latchkey::domain::Error;
use latchkey::domain::admin::accounts::{self, Invitee, Session};
use latchkey::domain::admin::{self, Basis, Role, Scope, grants};
use latchkey::domain::audit::{list as audit_list, verify};
use latchkey::domain::rules::ActionConfig;
use latchkey::domain::tenants::{self, SettingsChange, Tenant};
use latchkey::domain::{actions, authenticators, export, users};
use latchkey::http::{ApiError, WireJson, WirePath, WireQuery};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

type Result<T> = std::result::Result<T, ApiError>;
type St = State<AdminState>;

pub async fn openapi() -> Response {
    let mut response = crate::OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteBody {
    invite: String,
}

/// `POST /v1/admin/invites/accept`: a live invite gives an account id and a console token to
/// register a passkey with (Client API, on the console tenant).
pub async fn accept_invite(
    State(s): St,
    _allowed: Allowed,
    WireJson(body): WireJson<InviteBody>,
) -> Result<Json<accounts::Enrollment>> {
    Ok(Json(
        accounts::begin_enrollment(&s.services, &body.invite).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignInBody {
    token: String,
    #[serde(default)]
    invite: Option<String>,
}

/// The session cookie: HttpOnly, SameSite=Strict, and Secure unless the console runs on
/// localhost (a browser keeps no Secure cookie from plain http).
fn cookie(console: &Tenant, value: &str, max_age: i64) -> Result<HeaderValue> {
    let secure = if console.settings.rp_id == "localhost" {
        ""
    } else {
        "; Secure"
    };
    let name = accounts::cookie_name(console);
    HeaderValue::from_str(&format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    ))
    .map_err(|_| Error::Internal("cookie".into()).into())
}

fn with_cookie(body: Value, cookie: HeaderValue) -> Response {
    let mut response = Json(body).into_response();
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn session_json(session: &Session) -> Value {
    serde_json::to_value(session).unwrap_or(Value::Null)
}

/// `POST /v1/admin/session`: a console token whose passkey ceremony succeeded (and, for a
/// first sign-in, the invite it was begun for) opens a session.
pub async fn sign_in(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<SignInBody>,
) -> Result<Response> {
    let ctx = allowed.ctx();
    let (session, token) =
        accounts::sign_in(&s.services, &ctx, &body.token, body.invite.as_deref()).await?;
    let console = accounts::console(&s.services).await?;
    let cookie = cookie(&console, &token, accounts::ABSOLUTE_HOURS * 3600)?;
    Ok(with_cookie(session_json(&session), cookie))
}

pub async fn who_am_i(allowed: Allowed) -> Result<Json<Value>> {
    Ok(Json(session_json(allowed.session()?)))
}

pub async fn sign_out(State(s): St, allowed: Allowed) -> Result<Response> {
    let session = allowed.session()?;
    accounts::sign_out(&s.services, &allowed.ctx(), session).await?;
    let console = accounts::console(&s.services).await?;
    Ok(with_cookie(json!({}), cookie(&console, "", 0)?))
}

/// `POST /v1/admin/session/reauth`: a console token to prove the passkey again with (before
/// deleting a tenant, or to add another passkey: the fresh proof lets the Client API enroll).
pub async fn reauth(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let session = allowed.session()?;
    let token = accounts::begin_reauth(&s.services, session).await?;
    let console = accounts::console_id(&s.services).await?;
    Ok(Json(json!({ "token": token, "consoleTenantId": console })))
}

pub async fn join_signed_in(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<InviteBody>,
) -> Result<Json<Value>> {
    let session = allowed.session()?;
    let account =
        accounts::accept_signed_in(&s.services, &allowed.ctx(), session, &body.invite).await?;
    Ok(Json(serde_json::to_value(&account).unwrap_or(Value::Null)))
}

/// `GET /v1/admin/tenants`: the tenants the person is a member of.
pub async fn my_tenants(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let session = allowed.session()?;
    let mut out = Vec::new();
    for (tenant_id, role) in &session.account.memberships {
        if let Some(t) = tenants::get_tenant(&s.services, tenant_id).await? {
            out.push(json!({ "tenantId": t.id, "name": t.settings.name, "role": role }));
        }
    }
    Ok(Json(
        json!({ "tenants": out, "operator": session.account.operator }),
    ))
}

fn settings_json(tenant: &Tenant) -> Value {
    let st = &tenant.settings;
    json!({
        "tenantId": tenant.id,
        "name": st.name,
        "rpId": st.rp_id,
        "allowedOrigins": st.allowed_origins,
        "allowedMethods": st.methods(),
        "actions": st.actions,
    })
}

pub async fn get_tenant(allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(settings_json(tenant)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingsBody {
    name: Option<String>,
    rp_id: Option<String>,
    allowed_origins: Option<Vec<String>>,
    allowed_methods: Option<Vec<String>>,
    /// Per action code: its new configuration, or `null` to delete it.
    #[serde(default)]
    actions: BTreeMap<String, Option<ActionConfig>>,
}

/// `PATCH /v1/admin/tenants/{tenantId}`: one new settings version, audited with the names of
/// the fields that changed.
pub async fn update_tenant(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<SettingsBody>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let change = SettingsChange {
        name: body.name,
        rp_id: body.rp_id,
        allowed_origins: body.allowed_origins,
        allowed_methods: body.allowed_methods,
        actions: body.actions,
    };
    let version = tenants::update_settings(&s.services, &allowed.ctx(), &tenant.id, change).await?;
    let updated = tenants::get_tenant(&s.services, &tenant.id)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    let mut body = settings_json(&updated);
    body["version"] = json!(version);
    Ok(Json(body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeleteTenantBody {
    /// A console token of a fresh passkey check (`POST /v1/admin/session/reauth`, then the
    /// Client API's passkey verify).
    token: String,
}

/// `DELETE /v1/admin/tenants/{tenantId}`: an owner, after a fresh passkey check, deletes the
/// tenant: its own key is destroyed first (every sealed field unreadable, in the table and in
/// every backup; a tenant made before tenants had their own key has none, which the receipt's
/// `keyDestroyed: false` says), the record becomes a tombstone, and a job purges its items.
/// 202 with the receipt (the platform journal's event).
pub async fn delete_tenant(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<DeleteTenantBody>,
) -> Result<Response> {
    let (tenant, _) = allowed.tenant()?;
    let session = allowed.session()?;
    let ctx = allowed.ctx();
    accounts::check_reauth(&s.services, &ctx, session, &body.token).await?;
    let receipt = latchkey::domain::shred::delete_tenant(&s.services, &ctx, &tenant.id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::to_value(&receipt).unwrap_or(Value::Null)),
    )
        .into_response())
}

pub async fn list_keys(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        json!({ "keys": tenants::list_api_keys(&s.services, &tenant.id).await? }),
    ))
}

pub async fn create_key(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let (key_id, secret) =
        tenants::create_api_key(&s.services, &allowed.ctx(), &tenant.id, None).await?;
    Ok(Json(json!({ "keyId": key_id, "secret": secret })))
}

/// The key `key_id` if it is this tenant's (another tenant's key is not found).
async fn own_key(s: &AdminState, tenant: &Tenant, key_id: &str) -> Result<()> {
    let item = s
        .services
        .store
        .get(&tenants::key_pk(key_id), "KEY")
        .await
        .map_err(Error::from)?;
    match item {
        Some(i) if i.str("tenantId") == Some(tenant.id.as_str()) => Ok(()),
        _ => Err(Error::NotFound("api key").into()),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateBody {
    #[serde(default)]
    overlap_hours: Option<i64>,
}

pub async fn rotate_key(
    State(s): St,
    allowed: Allowed,
    WirePath((_, key_id)): WirePath<(String, String)>,
    WireJson(body): WireJson<RotateBody>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    own_key(&s, tenant, &key_id).await?;
    let overlap = time::Duration::hours(body.overlap_hours.unwrap_or(24));
    let (new_id, secret) =
        tenants::rotate_api_key(&s.services, &allowed.ctx(), &key_id, overlap).await?;
    Ok(Json(
        json!({ "keyId": new_id, "secret": secret, "replaces": key_id }),
    ))
}

pub async fn revoke_key(
    State(s): St,
    allowed: Allowed,
    WirePath((_, key_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    own_key(&s, tenant, &key_id).await?;
    tenants::revoke_api_key(&s.services, &allowed.ctx(), &key_id).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UsersQuery {
    user_id: Option<String>,
    email: Option<String>,
    phone_number: Option<String>,
    username: Option<String>,
    limit: Option<String>,
    last_evaluated_user_id: Option<String>,
}

/// `GET /v1/admin/tenants/{tenantId}/users`: by user id, email, username or phone number (each
/// exact, the last three through their blind indexes), or a page of every user.
pub async fn list_users(
    State(s): St,
    allowed: Allowed,
    WireQuery(q): WireQuery<UsersQuery>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit must be a whole number from 1 to 100."))?,
    };
    if let Some(id) = q.user_id.filter(|v| !v.trim().is_empty()) {
        users::check_user_id(&id)?;
        let found = match users::get_user(&s.services, tenant, &id).await? {
            Some(_) => vec![latchkey::domain::profile::profile(&s.services, tenant, &id).await?],
            None => Vec::new(),
        };
        return Ok(Json(json!({ "users": found })));
    }
    let filters: Vec<(users::Lookup, &str)> = [
        (users::Lookup::Email, q.email.as_deref()),
        (users::Lookup::PhoneNumber, q.phone_number.as_deref()),
        (users::Lookup::Username, q.username.as_deref()),
    ]
    .into_iter()
    .filter_map(|(l, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (l, v)))
    .collect();
    let after = q.last_evaluated_user_id.unwrap_or_default();
    let (found, last) = users::search(&s.services, tenant, filters, limit, &after).await?;
    let mut answer = json!({ "users": found });
    if let Some(last) = last {
        answer["lastEvaluatedUserId"] = json!(last);
    }
    Ok(Json(answer))
}

/// `GET /v1/admin/tenants/{tenantId}/users/{userId}`: the user, their authenticators and their
/// most recent actions.
pub async fn get_user(
    State(s): St,
    allowed: Allowed,
    WirePath((_, user_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    users::check_user_id(&user_id)?;
    if users::get_user(&s.services, tenant, &user_id)
        .await?
        .is_none()
    {
        return Err(Error::NotFound("user").into());
    }
    let profile = latchkey::domain::profile::profile(&s.services, tenant, &user_id).await?;
    let authenticators = authenticators::list(&s.services, tenant, &user_id).await?;
    let mut recent = actions::query(&s.services, tenant, &user_id, None, &[], None).await?;
    recent.truncate(20);
    Ok(Json(json!({
        "user": profile,
        "authenticators": authenticators,
        "recentActions": recent,
    })))
}

pub async fn delete_user(
    State(s): St,
    allowed: Allowed,
    WirePath((_, user_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    users::delete_user(&s.services, tenant, &allowed.ctx(), &user_id, true).await?;
    Ok(Json(json!({})))
}

/// `POST /v1/admin/tenants/{tenantId}/users/{userId}/export`: everything held about one user
/// (an access request under GDPR), audited.
pub async fn export_user(
    State(s): St,
    allowed: Allowed,
    WirePath((_, user_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        export::export_user(&s.services, &allowed.ctx(), tenant, &user_id).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn instant(name: &str, v: Option<String>) -> Result<Option<time::OffsetDateTime>> {
    v.filter(|v| !v.is_empty())
        .map(|v| {
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 time.")))
        })
        .transpose()
}

/// `GET /v1/admin/tenants/{tenantId}/audit`: the tenant's events, newest first, filtered by
/// actor, action (exact, or a prefix ending in `.`: `user.` for every user event), target and
/// time range.
pub async fn list_audit(
    State(s): St,
    allowed: Allowed,
    WireQuery(q): WireQuery<AuditQuery>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("limit must be a whole number from 1 to 1000."))?,
    };
    let filter = audit_list::EventFilter {
        actor: q.actor.filter(|v| !v.is_empty()),
        action: q.action.filter(|v| !v.is_empty()),
        target: q.target.filter(|v| !v.is_empty()),
        since: instant("since", q.since)?,
        until: instant("until", q.until)?,
    };
    let (events, cursor) =
        audit_list::list(&*s.services.store, &tenant.id, &filter, limit, q.cursor).await?;
    Ok(Json(json!({ "events": events, "cursor": cursor })))
}

async fn public_key(s: &AdminState) -> Result<Vec<u8>> {
    s.signer
        .public_key()
        .await
        .map_err(|e| Error::Unavailable(format!("signing key: {e}")).into())
}

/// `GET /v1/admin/tenants/{tenantId}/audit/export`: NDJSON of the events, the sealed chain and
/// the signed checkpoints, the header carrying the public key (PEM) that verifies them;
/// `infra/audit/verify_export.py` checks it without Latchkey's code.
pub async fn export_audit(State(s): St, allowed: Allowed) -> Result<Response> {
    let (tenant, _) = allowed.tenant()?;
    let evidence = verify::collect(&*s.services.store, &tenant.id).await?;
    let mut lines = verify::export_lines(&evidence, s.signer.key_id(), s.services.clock.now());
    let pem = latchkey::crypto::signatures::public_key_pem(&public_key(&s).await?)
        .ok_or_else(|| Error::Internal("the signing key is not P-256".into()))?;
    if let Some(first) = lines.first_mut()
        && let Ok(Value::Object(mut header)) = serde_json::from_str::<Value>(first)
    {
        header.insert("publicKeyPem".into(), json!(pem));
        *first = Value::Object(header).to_string();
    }
    let mut text = lines.join("\n");
    text.push('\n');
    let mut response = (StatusCode::OK, text).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}

/// `GET /v1/admin/tenants/{tenantId}/audit/verify`: the sealed chain's state — events, sealed
/// entries, signed checkpoints, pending events, and the first break if there is one.
pub async fn verify_audit(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let evidence = verify::collect(&*s.services.store, &tenant.id).await?;
    let report = verify::check(&evidence, &public_key(&s).await?, s.services.clock.now());
    Ok(Json(serde_json::to_value(&report).unwrap_or(Value::Null)))
}

pub async fn list_grants(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        json!({ "grants": grants::list(&s.services, &tenant.id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantBody {
    scope: String,
    hours: i64,
    reason: String,
}

pub async fn create_grant(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<GrantBody>,
) -> Result<Json<grants::SupportGrant>> {
    let (tenant, _) = allowed.tenant()?;
    let scope = Scope::parse(&body.scope)?;
    Ok(Json(
        grants::create(
            &s.services,
            &allowed.ctx(),
            &tenant.id,
            scope,
            body.hours,
            &body.reason,
        )
        .await?,
    ))
}

pub async fn revoke_grant(
    State(s): St,
    allowed: Allowed,
    WirePath((_, grant_id)): WirePath<(String, String)>,
) -> Result<Json<grants::SupportGrant>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        grants::revoke(&s.services, &allowed.ctx(), &tenant.id, &grant_id).await?,
    ))
}

pub async fn list_members(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        json!({ "members": accounts::members(&s.services, &tenant.id).await? }),
    ))
}

/// Owners alone make or unmake owners: `Members` lets an admin handle admins and viewers.
fn may_handle(basis: &Basis, role: Role) -> Result<()> {
    if role == Role::Owner
        && !basis
            .role()
            .is_some_and(|r| admin::role_allows(r, admin::Perm::Own))
    {
        return Err(
            Error::Refused("only an owner may invite, remove or recover an owner".into()).into(),
        );
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InviteMemberBody {
    role: String,
    #[serde(default)]
    hours: Option<i64>,
}

/// `POST /v1/admin/tenants/{tenantId}/invites`: a one-time invite link (the token, shown once).
pub async fn invite_member(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<InviteMemberBody>,
) -> Result<Json<Value>> {
    let (tenant, basis) = allowed.tenant()?;
    let role = Role::parse(&body.role)?;
    may_handle(basis, role)?;
    let invitee = Invitee::Member {
        tenant_id: tenant.id.clone(),
        role,
    };
    let (info, token) = accounts::create_invite(
        &s.services,
        &allowed.ctx(),
        invitee,
        body.hours.unwrap_or(24),
    )
    .await?;
    let mut out = serde_json::to_value(&info).unwrap_or(Value::Null);
    out["invite"] = json!(token);
    Ok(Json(out))
}

pub async fn list_invites(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        json!({ "invites": accounts::list_invites(&s.services, &tenant.id).await? }),
    ))
}

/// `DELETE /v1/admin/tenants/{tenantId}/invites/{inviteId}`: an open invite stops working at
/// once (an owner's invite only by an owner).
pub async fn revoke_invite(
    State(s): St,
    allowed: Allowed,
    WirePath((_, invite_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, basis) = allowed.tenant()?;
    let role = accounts::invite_role(&s.services, &tenant.id, &invite_id).await?;
    if role == "owner" {
        may_handle(basis, Role::Owner)?;
    }
    accounts::revoke_invite(&s.services, &allowed.ctx(), &tenant.id, &invite_id).await?;
    Ok(Json(json!({})))
}

pub async fn remove_member(
    State(s): St,
    allowed: Allowed,
    WirePath((_, account_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, basis) = allowed.tenant()?;
    let role = accounts::role_of(&s.services, &tenant.id, &account_id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    may_handle(basis, role)?;
    accounts::remove_member(&s.services, &allowed.ctx(), &tenant.id, &account_id).await?;
    Ok(Json(json!({})))
}

/// `POST /v1/admin/tenants/{tenantId}/members/{accountId}/recovery`: a one-time recovery invite
/// for a member who lost their passkeys (the token, shown once, 24 hours). Accepting it signed
/// out registers a new passkey for the same account and retires the old ones. Owners are
/// recovered only by owners; an account that is also another tenant's is not recovered here.
pub async fn recover_member(
    State(s): St,
    allowed: Allowed,
    WirePath((_, account_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, basis) = allowed.tenant()?;
    let role = accounts::role_of(&s.services, &tenant.id, &account_id)
        .await?
        .ok_or(Error::NotFound("member"))?;
    may_handle(basis, role)?;
    // An operator hands the invite to whoever asked: never for an admin's account, whose
    // rights (keys, members, support grants) go far beyond the operator's grant.
    if matches!(basis, Basis::Support { .. }) && role != Role::Viewer {
        return Err(Error::Refused(
            "an operator may recover a viewer's account only; an owner or admin recovers others"
                .into(),
        )
        .into());
    }
    let invitee = Invitee::Recovery {
        tenant_id: tenant.id.clone(),
        account_id,
    };
    let (info, token) = accounts::create_invite(&s.services, &allowed.ctx(), invitee, 24).await?;
    let mut out = serde_json::to_value(&info).unwrap_or(Value::Null);
    out["invite"] = json!(token);
    Ok(Json(out))
}

pub async fn list_management_keys(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    Ok(Json(
        json!({ "keys": admin::keys::list(&s.services, &tenant.id).await? }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagementKeyBody {
    role: String,
    name: String,
    #[serde(default)]
    days: Option<i64>,
}

pub async fn create_management_key(
    State(s): St,
    allowed: Allowed,
    WireJson(body): WireJson<ManagementKeyBody>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let role = Role::parse(&body.role)?;
    let (info, token) = admin::keys::create(
        &s.services,
        &allowed.ctx(),
        &tenant.id,
        role,
        &body.name,
        body.days.unwrap_or(90),
    )
    .await?;
    let mut out = serde_json::to_value(&info).unwrap_or(Value::Null);
    out["secret"] = json!(token);
    Ok(Json(out))
}

pub async fn revoke_management_key(
    State(s): St,
    allowed: Allowed,
    WirePath((_, key_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    admin::keys::revoke(&s.services, &allowed.ctx(), &tenant.id, &key_id).await?;
    Ok(Json(json!({})))
}

/// `GET /v1/admin/console`: what the console's sign-in page needs before anyone is signed in:
/// the console tenant (whose Client API runs the passkey ceremonies) and its RP id.
pub async fn console_info(State(s): St, _allowed: Allowed) -> Result<Json<Value>> {
    let console = accounts::console(&s.services).await?;
    Ok(Json(json!({
        "consoleTenantId": console.id,
        "rpId": console.settings.rp_id,
        "signInAction": accounts::SIGN_IN,
    })))
}

/// Counts stop here: the overview reads at most this many items per figure, and says when
/// there are more (`usersMore`, `actionsMore`) rather than reading a large tenant whole.
const OVERVIEW_CAP: usize = 10_000;

/// `GET /v1/admin/tenants/{tenantId}/overview`: the tenant's settings, its number of users and
/// of actions tracked in the last 24 hours (from the audit log's `action.track` events), each
/// counted up to [`OVERVIEW_CAP`].
pub async fn overview(State(s): St, allowed: Allowed) -> Result<Json<Value>> {
    let (tenant, _) = allowed.tenant()?;
    let mut users_count = 0usize;
    let mut after: Option<String> = None;
    let users_more = loop {
        let (ids, more) = users::list_user_ids(&s.services, tenant, 999, after.as_deref()).await?;
        users_count += ids.len();
        if !more {
            break false;
        }
        if users_count >= OVERVIEW_CAP {
            break true;
        }
        after = ids.last().cloned();
    };
    let now = s.services.clock.now();
    let filter = audit_list::EventFilter {
        actor: None,
        action: Some("action.track".into()),
        target: None,
        since: Some(now - time::Duration::hours(24)),
        until: None,
    };
    let mut actions_count = 0usize;
    let mut cursor = None;
    let actions_more = loop {
        let (events, next) =
            audit_list::list(&*s.services.store, &tenant.id, &filter, 1000, cursor).await?;
        actions_count += events.len();
        match next {
            None => break false,
            Some(_) if actions_count >= OVERVIEW_CAP => break true,
            next => cursor = next,
        }
    };
    let mut body = settings_json(tenant);
    body["users"] = json!(users_count);
    body["usersMore"] = json!(users_more);
    body["actionsLast24h"] = json!(actions_count);
    body["actionsMore"] = json!(actions_more);
    Ok(Json(body))
}
