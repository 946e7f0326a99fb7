//! Handlers: parse the wire, call the domain, shape the response. No business rules here.
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use latchkey::Services;
use latchkey::domain::actions::{self, TrackAttributes};
use latchkey::domain::authenticators;
use latchkey::domain::enrollment::{self, EnrollVerified};
use latchkey::domain::users;
use latchkey::http::{ApiError, PublicBase, RequestMeta, SecretKey, WireJson, WirePath, WireQuery};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

type Result<T> = std::result::Result<T, ApiError>;
type Svc = State<Arc<Services>>;

/// Where the pre-built UI for a token lives: this deployment's configured public URL.
fn ui_url(base: &PublicBase, token: &str) -> String {
    base.url(&format!("/ui/challenge?token={token}"))
}

pub async fn track(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    Extension(base): Extension<PublicBase>,
    WirePath((user_id, action)): WirePath<(String, String)>,
    WireJson(attrs): WireJson<TrackAttributes>,
) -> Result<Json<Value>> {
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    let result = actions::track(&s, &p.tenant, &ctx, &user_id, &action, attrs).await?;
    let url = ui_url(&base, &result.token);
    let mut body = serde_json::to_value(&result)
        .map_err(|e| ApiError::from(latchkey::domain::Error::Internal(e.to_string())))?;
    if let Value::Object(map) = &mut body {
        map.insert("url".into(), Value::String(url));
    }
    Ok(Json(body))
}

pub async fn get_action(
    State(s): Svc,
    SecretKey(p): SecretKey,
    WirePath((user_id, action, key)): WirePath<(String, String, String)>,
) -> Result<Json<actions::ActionView>> {
    Ok(Json(
        actions::get(&s, &p.tenant, &user_id, &action, &key).await?,
    ))
}

#[derive(Deserialize)]
pub struct StateBody {
    state: Option<String>,
}

pub async fn update_action(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WirePath((user_id, action, key)): WirePath<(String, String, String)>,
    WireJson(body): WireJson<StateBody>,
) -> Result<Json<actions::ActionView>> {
    let state = body
        .state
        .ok_or_else(|| ApiError::invalid("state is required."))?;
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    Ok(Json(
        actions::update_state(&s, &p.tenant, &ctx, &user_id, &action, &key, &state).await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionsQuery {
    from_date: Option<String>,
    codes: Option<String>,
    state: Option<String>,
}

pub async fn query_actions(
    State(s): Svc,
    SecretKey(p): SecretKey,
    WirePath(user_id): WirePath<String>,
    WireQuery(q): WireQuery<ActionsQuery>,
) -> Result<Json<Vec<actions::ActionView>>> {
    let codes: Vec<String> = q
        .codes
        .map(|c| {
            c.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Ok(Json(
        actions::query(
            &s,
            &p.tenant,
            &user_id,
            q.from_date.as_deref(),
            &codes,
            q.state.as_deref(),
        )
        .await?,
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidateBody {
    token: Option<String>,
    user_id: Option<String>,
    action: Option<String>,
}

pub async fn validate(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<ValidateBody>,
) -> Result<Json<actions::Validation>> {
    let token = body
        .token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::invalid("token is required."))?;
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    Ok(Json(
        actions::validate(
            &s,
            &p.tenant,
            &ctx,
            &token,
            body.user_id.as_deref(),
            body.action.as_deref(),
        )
        .await?,
    ))
}

async fn user_body(
    s: &Services,
    p: &latchkey::domain::tenants::Principal,
    user_id: &str,
) -> Result<Value> {
    Ok(latchkey::domain::profile::profile(s, &p.tenant, user_id).await?)
}

pub async fn get_user(
    State(s): Svc,
    SecretKey(p): SecretKey,
    WirePath(user_id): WirePath<String>,
) -> Result<Json<Value>> {
    Ok(Json(user_body(&s, &p, &user_id).await?))
}

pub async fn update_user(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WirePath(user_id): WirePath<String>,
    WireJson(patch): WireJson<Map<String, Value>>,
) -> Result<Json<users::UserAttributes>> {
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    Ok(Json(
        users::update_user(&s, &p.tenant, &ctx, &user_id, &patch).await?,
    ))
}

pub async fn delete_user(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WirePath(user_id): WirePath<String>,
    WireQuery(q): WireQuery<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let with_actions = match q.get("actions").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("actions must be true or false.")),
    };
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    users::delete_user(&s, &p.tenant, &ctx, &user_id, with_actions).await?;
    Ok(Json(json!({})))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersQuery {
    email: Option<String>,
    phone_number: Option<String>,
    username: Option<String>,
    limit: Option<String>,
    last_evaluated_user_id: Option<String>,
}

/// `GET /v1/users?email=&phoneNumber=&username=&limit=&lastEvaluatedUserId=`: the users whose
/// attributes match every filter given (each through its blind index, case-insensitive), or
/// with no filter every user of the tenant, in user-id order, `limit` (1–100, default 100) at a
/// time after `lastEvaluatedUserId`, with `lastEvaluatedUserId` in the answer when more follow.
pub async fn query_users(
    State(s): Svc,
    SecretKey(p): SecretKey,
    WireQuery(q): WireQuery<UsersQuery>,
) -> Result<Json<Value>> {
    let filters: Vec<(users::Lookup, &str)> = [
        (users::Lookup::Email, q.email.as_deref()),
        (users::Lookup::PhoneNumber, q.phone_number.as_deref()),
        (users::Lookup::Username, q.username.as_deref()),
    ]
    .into_iter()
    .filter_map(|(l, v)| v.filter(|v| !v.trim().is_empty()).map(|v| (l, v)))
    .collect();
    let limit = match q.limit.as_deref() {
        None => 100,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| ApiError::invalid("limit must be a whole number from 1 to 100."))?,
    };
    let after = q.last_evaluated_user_id.unwrap_or_default();
    let (found, last) = users::search(&s, &p.tenant, filters, limit, &after).await?;
    let mut answer = json!({ "users": found });
    if let Some(last) = last {
        answer["lastEvaluatedUserId"] = json!(last);
    }
    Ok(Json(answer))
}

pub async fn list_authenticators(
    State(s): Svc,
    SecretKey(p): SecretKey,
    WirePath(user_id): WirePath<String>,
) -> Result<Json<Vec<authenticators::Authenticator>>> {
    Ok(Json(authenticators::list(&s, &p.tenant, &user_id).await?))
}

pub async fn enroll_authenticator(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WirePath(user_id): WirePath<String>,
    WireJson(body): WireJson<Value>,
) -> Result<Json<Value>> {
    let req: EnrollVerified = serde_json::from_value(body)
        .map_err(|_| ApiError::invalid("verificationMethod is required."))?;
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    let (authenticator, codes) =
        enrollment::enroll_verified(&s, &p.tenant, &ctx, &user_id, req).await?;
    let mut out = json!({ "authenticator": authenticator });
    if let Some(codes) = codes {
        out["recoveryCodes"] = json!(codes);
    }
    Ok(Json(out))
}

pub async fn delete_authenticator(
    State(s): Svc,
    SecretKey(p): SecretKey,
    Extension(meta): Extension<RequestMeta>,
    WirePath((user_id, authenticator_id)): WirePath<(String, String)>,
) -> Result<Json<Value>> {
    let ctx = p.audit(&meta.request_id, meta.source_ip);
    enrollment::delete(&s, &p.tenant, &ctx, &user_id, &authenticator_id).await?;
    Ok(Json(json!({})))
}

pub async fn openapi() -> Response {
    let mut response = crate::OPENAPI.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
