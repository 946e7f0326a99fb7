//! The demo page (`/demo`) and the few server-side calls it needs, for the development tenant
//! only. A real deployment's backend does these with its secret key through the Server API;
//! here the local gateway plays that backend so a person can try passkeys with nothing else.
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use latchkey::Services;
use latchkey::domain::actions::{self, TrackAttributes};
use latchkey::domain::audit::AuditContext;
use latchkey::domain::tenants::{Tenant, get_tenant};
use latchkey::http::{ApiError, RequestMeta, WireJson};
use latchkey::ports::random::RandomExt as _;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

const PAGE: &str = include_str!("../static/demo.html");

#[derive(Clone)]
struct Demo {
    services: Arc<Services>,
    tenant_id: String,
}

impl Demo {
    async fn tenant(&self) -> Result<Tenant, ApiError> {
        get_tenant(&self.services, &self.tenant_id)
            .await?
            .ok_or_else(ApiError::not_found)
    }
}

fn ctx(meta: &RequestMeta) -> AuditContext {
    AuditContext {
        actor: "system:demo".into(),
        request_id: meta.request_id.clone(),
        source_ip: meta.source_ip.clone(),
    }
}

pub fn routes(services: Arc<Services>, tenant_id: String) -> Router {
    Router::new()
        .route("/demo", get(page))
        .route("/demo/api/config", get(config))
        .route("/demo/api/sign-up", post(sign_up))
        .route("/demo/api/validate", post(validate))
        .with_state(Demo {
            services,
            tenant_id,
        })
}

async fn page() -> Response {
    let mut response = PAGE.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; script-src 'unsafe-inline' 'self'; style-src 'unsafe-inline' 'self'"),
    );
    response
}

async fn config(State(d): State<Demo>) -> Json<Value> {
    Json(json!({ "tenantId": d.tenant_id }))
}

async fn sign_up(
    State(d): State<Demo>,
    Extension(meta): Extension<RequestMeta>,
) -> Result<Json<Value>, ApiError> {
    let tenant = d.tenant().await?;
    let user_id = format!("demo-{}", d.services.random.hex_id(6));
    let tracked = actions::track(
        &d.services,
        &tenant,
        &ctx(&meta),
        &user_id,
        "signUp",
        TrackAttributes::default(),
    )
    .await?;
    Ok(Json(
        json!({ "tenantId": tenant.id, "token": tracked.token, "userId": user_id }),
    ))
}

#[derive(Deserialize)]
struct ValidateBody {
    token: Option<String>,
}

async fn validate(
    State(d): State<Demo>,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<ValidateBody>,
) -> Result<Json<actions::Validation>, ApiError> {
    let tenant = d.tenant().await?;
    let token = body
        .token
        .ok_or_else(|| ApiError::invalid("token is required."))?;
    Ok(Json(
        actions::validate(&d.services, &tenant, &ctx(&meta), &token, None, None).await?,
    ))
}
