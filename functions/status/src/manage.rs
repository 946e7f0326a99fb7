//! The operators' write side: parse the wire, call the domain, send the notices, shape the
//! answer. No business rules here.
//!
//! Writes that add an update require an `Idempotency-Key` header: a retry with the same key
//! returns what the first request made (`200`, `Idempotent-Replayed: true`) and sends only
//! the notices that were not sent yet. When a notice cannot be sent now the answer is `503`
//! saying so: the update is saved, and retrying with the same key finishes the job.
use crate::StatusState;
use crate::auth::OperatorCaller;
use crate::mail::NoticeMail;
use crate::public::Page;
use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use latchkey::domain::Error;
use latchkey::domain::status::notices::{self, NoticeReport};
use latchkey::domain::status::views::{self, PageInfo};
use latchkey::domain::status::{
    self, ComponentPatch, IncidentPatch, Kind, NewComponent, NewIncident, NewMaintenance,
    NewUpdate, Recorded,
};
use latchkey::http::error::ErrorKind;
use latchkey::http::{ApiError, RequestMeta, WireJson, WirePath};
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, ApiError>;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    headers
        .get(&IDEMPOTENCY_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::invalid(
                "An Idempotency-Key header is required: a retry with the same key never adds a \
                 second update or sends a notice twice.",
            )
        })
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::from(Error::Internal(e.to_string()))
}

async fn component_view(st: &StatusState, info: &PageInfo, id: &str) -> Result<Value> {
    let s = status::snapshot(&st.services).await?;
    let c = s
        .component(id)
        .ok_or_else(|| internal("component missing after write"))?;
    serde_json::to_value(views::component(&s, info, c)).map_err(internal)
}

pub async fn create_component(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<NewComponent>,
) -> Result<Response> {
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let c = status::create_component(&st.services, &ctx, body).await?;
    let view = component_view(&st, &info, &c.id).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

pub async fn update_component(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    WirePath(id): WirePath<String>,
    WireJson(body): WireJson<ComponentPatch>,
) -> Result<Json<Value>> {
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let c = status::update_component(&st.services, &ctx, &id, body).await?;
    Ok(Json(component_view(&st, &info, &c.id).await?))
}

pub async fn patch_incident(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    WirePath(id): WirePath<String>,
    WireJson(body): WireJson<IncidentPatch>,
) -> Result<Json<Value>> {
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let incident = status::patch_incident(&st.services, &ctx, &id, body).await?;
    let s = status::snapshot(&st.services).await?;
    Ok(Json(incident_json(&s, &info, &incident)?))
}

pub async fn create_incident(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    WireJson(body): WireJson<NewIncident>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let recorded = status::create_incident(&st.services, &ctx, &key, body).await?;
    finish(&st, &ctx, &info, recorded).await
}

pub async fn post_update(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    WirePath(id): WirePath<String>,
    WireJson(body): WireJson<NewUpdate>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let recorded = status::post_update(&st.services, &ctx, &key, &id, body).await?;
    finish(&st, &ctx, &info, recorded).await
}

pub async fn schedule_maintenance(
    State(st): State<StatusState>,
    OperatorCaller(op): OperatorCaller,
    Page(info): Page,
    Extension(meta): Extension<RequestMeta>,
    headers: HeaderMap,
    WireJson(body): WireJson<NewMaintenance>,
) -> Result<Response> {
    let key = idempotency_key(&headers)?;
    let ctx = op.audit(&meta.request_id, meta.source_ip);
    let recorded = status::schedule_maintenance(&st.services, &ctx, &key, body).await?;
    finish(&st, &ctx, &info, recorded).await
}

/// Who the credential belongs to: lets a script check its token before an incident.
pub async fn whoami(OperatorCaller(op): OperatorCaller) -> Json<Value> {
    Json(json!({ "operator_id": op.id, "name": op.name }))
}

fn incident_json(
    s: &status::Snapshot,
    info: &PageInfo,
    incident: &status::Incident,
) -> Result<Value> {
    match incident.kind {
        Kind::Incident => serde_json::to_value(views::incident(s, info, incident)),
        Kind::Maintenance => serde_json::to_value(views::maintenance(s, info, incident)),
    }
    .map_err(internal)
}

/// Sends the update's notices (those not sent yet) and answers with the incident as the
/// public API shows it, plus what happened to the notices.
async fn finish(
    st: &StatusState,
    ctx: &latchkey::domain::audit::AuditContext,
    info: &PageInfo,
    recorded: Recorded,
) -> Result<Response> {
    let reports = notices::deliver(
        &st.services,
        ctx,
        &recorded.incident,
        recorded.seq,
        &info.url,
        &NoticeMail,
    )
    .await?;
    let pending: usize = reports.iter().map(|r| r.pending).sum();
    if pending > 0 {
        return Err(ApiError {
            description: Some(format!(
                "The update was saved, but {pending} urgent notice(s) are not sent yet. Retry \
                 the request with the same Idempotency-Key to send them."
            )),
            ..ApiError::new(ErrorKind::Unavailable)
        });
    }
    let s = status::snapshot(&st.services).await?;
    let mut body = incident_json(&s, info, &recorded.incident)?;
    if let Value::Object(map) = &mut body {
        map.insert(
            "notices".into(),
            serde_json::to_value::<&[NoticeReport]>(&reports).map_err(internal)?,
        );
    }
    let status = if recorded.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, Json(body)).into_response();
    if recorded.replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}
