//! Handlers: parse the wire, call the domain, shape the response.
use axum::extract::State;
use axum::{Extension, Json};
use latchkey::Services;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::passkeys;
use latchkey::http::{ApiError, Authorized, RequestMeta, WireJson, WireQuery};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ApiError>;
type Svc = State<Arc<Services>>;

pub(crate) fn ctx(meta: &RequestMeta, auth: &Authorized) -> AuditContext {
    AuditContext {
        actor: if auth.access.claims.is_some() {
            "client:token".into()
        } else {
            "client:anonymous".into()
        },
        request_id: meta.request_id.clone(),
        source_ip: meta.source_ip.clone(),
    }
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::from(latchkey::domain::Error::Internal(e.to_string()))
}

#[derive(Deserialize)]
pub struct RegistrationOptionsBody {
    username: Option<String>,
}

pub async fn registration_options(
    State(s): Svc,
    auth: Authorized,
    WireJson(body): WireJson<RegistrationOptionsBody>,
) -> Result<Json<Value>> {
    let (id, options) =
        passkeys::registration_options(&s, &auth.tenant, &auth.access, body.username.as_deref())
            .await?;
    let options = serde_json::to_value(&options).map_err(internal)?;
    Ok(Json(
        json!({ "challengeId": id, "options": options["publicKey"] }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddPasskeyBody {
    registration_credential: Value,
    challenge_id: Option<String>,
}

pub async fn add_passkey(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<AddPasskeyBody>,
) -> Result<Json<Value>> {
    let credential = serde_json::from_value(body.registration_credential).map_err(|_| {
        ApiError::invalid("registrationCredential is not a WebAuthn registration response.")
    })?;
    let challenge = body.challenge_id.unwrap_or_default();
    let (verified, authenticator) = passkeys::finish_registration(
        &s,
        &auth.tenant,
        &ctx(&meta, &auth),
        &auth.access,
        &challenge,
        &credential,
    )
    .await?;
    let mut out = serde_json::to_value(&verified).map_err(internal)?;
    out["userAuthenticator"] = authenticator;
    Ok(Json(out))
}

#[derive(Deserialize)]
pub struct ChallengeBody {
    action: Option<String>,
}

pub async fn challenge(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<ChallengeBody>,
) -> Result<Json<Value>> {
    let action = body
        .action
        .ok_or_else(|| ApiError::invalid("action is required."))?;
    let id = passkeys::challenge_for_action(&s, &auth.tenant, &ctx(&meta, &auth), &action).await?;
    Ok(Json(json!({ "challengeId": id })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationOptionsBody {
    challenge_id: Option<String>,
}

/// The body of a request on a row whose token is judged after the handler starts
/// (`authz::Facts::Ceremony`, `authz::Facts::Written`): a body error is told only once the
/// token has been judged afresh, so that a caller the route refuses learns that first, as on
/// every other row.
async fn judged_body<T>(
    s: &Services,
    auth: &Authorized,
    ctx: &AuditContext,
    body: std::result::Result<WireJson<T>, ApiError>,
) -> Result<T> {
    match body {
        Ok(WireJson(b)) => Ok(b),
        Err(e) => {
            auth.access.confirm(s, &auth.tenant, ctx).await?;
            Err(e)
        }
    }
}

pub async fn authentication_options(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    body: std::result::Result<WireJson<AuthenticationOptionsBody>, ApiError>,
) -> Result<Json<Value>> {
    let ctx = ctx(&meta, &auth);
    let body = judged_body(&s, &auth, &ctx, body).await?;
    let (id, options) = passkeys::authentication_options(
        &s,
        &auth.tenant,
        &ctx,
        &auth.access,
        body.challenge_id.as_deref(),
    )
    .await?;
    let options = serde_json::to_value(&options).map_err(internal)?;
    Ok(Json(
        json!({ "challengeId": id, "options": options["publicKey"] }),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyBody {
    authentication_credential: Value,
    challenge_id: Option<String>,
}

pub async fn verify(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    body: std::result::Result<WireJson<VerifyBody>, ApiError>,
) -> Result<Json<passkeys::Verified>> {
    let ctx = ctx(&meta, &auth);
    let parsed = body.and_then(|WireJson(body)| {
        let credential = serde_json::from_value(body.authentication_credential).map_err(|_| {
            ApiError::invalid("authenticationCredential is not a WebAuthn assertion.")
        })?;
        Ok(WireJson((
            credential,
            body.challenge_id.unwrap_or_default(),
        )))
    });
    let (credential, challenge) = judged_body(&s, &auth, &ctx, parsed).await?;
    Ok(Json(
        passkeys::verify_authentication(
            &s,
            &auth.tenant,
            &ctx,
            &auth.access,
            &challenge,
            &credential,
        )
        .await?,
    ))
}

pub async fn passkey_available(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireQuery(q): WireQuery<HashMap<String, String>>,
) -> Result<Json<Value>> {
    if auth.access.claims.is_none() {
        latchkey::domain::limits::take_anonymous(&s, &auth.tenant.id, meta.source_ip.as_deref())
            .await?;
    }
    let ids: Vec<String> = q
        .get("credentialIds")
        .map(|c| {
            c.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if passkeys::any_registered(&s, &auth.tenant, &ids).await? {
        Ok(Json(json!({})))
    } else {
        Err(ApiError::not_found())
    }
}

/// `POST /client/user-authenticators/security-key/registration-options`: the **bare**
/// creation options (no wrapper, no challenge id; docs/wire.md §5.1). The body (`{}`) is not read.
pub async fn security_key_registration_options(
    State(s): Svc,
    auth: Authorized,
) -> Result<Json<Value>> {
    let options =
        passkeys::security_key_registration_options(&s, &auth.tenant, &auth.access).await?;
    let options = serde_json::to_value(&options).map_err(internal)?;
    Ok(Json(options["publicKey"].clone()))
}

/// `POST /client/user-authenticators/security-key` with the bare registration response.
pub async fn add_security_key(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<Value>,
) -> Result<Json<Value>> {
    let credential = serde_json::from_value(body)
        .map_err(|_| ApiError::invalid("The body is not a WebAuthn registration response."))?;
    let (verified, authenticator) = passkeys::finish_security_key_registration(
        &s,
        &auth.tenant,
        &ctx(&meta, &auth),
        &auth.access,
        &credential,
    )
    .await?;
    let mut out = serde_json::to_value(&verified).map_err(internal)?;
    out["userAuthenticator"] = authenticator;
    Ok(Json(out))
}

/// `POST /client/user-authenticators/security-key/authentication-options`: the bare request
/// options.
pub async fn security_key_authentication_options(
    State(s): Svc,
    auth: Authorized,
) -> Result<Json<Value>> {
    let options =
        passkeys::security_key_authentication_options(&s, &auth.tenant, &auth.access).await?;
    let options = serde_json::to_value(&options).map_err(internal)?;
    Ok(Json(options["publicKey"].clone()))
}

/// `POST /client/verify/security-key` with the bare assertion.
pub async fn verify_security_key(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<Value>,
) -> Result<Json<passkeys::Verified>> {
    let credential = serde_json::from_value(body)
        .map_err(|_| ApiError::invalid("The body is not a WebAuthn assertion."))?;
    Ok(Json(
        passkeys::verify_security_key(
            &s,
            &auth.tenant,
            &ctx(&meta, &auth),
            &auth.access,
            &credential,
        )
        .await?,
    ))
}
