//! The public read side: no credential, the same body for everyone, so it is cacheable.
//!
//! Every answer carries a strong `ETag` (a hash of the body) and `Cache-Control: public,
//! max-age=30`; a request whose `If-None-Match` names the current tag gets `304` and no body.
//! Setting `Cache-Control` here is what overrides the shared middleware's `no-store` default,
//! which only fills the header in when a handler left it empty. JSON and the feed are readable
//! cross-origin (`Access-Control-Allow-Origin: *`): Statuspage widgets fetch them from other
//! sites, and they hold nothing private.
use crate::StatusState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use latchkey::domain::Error;
use latchkey::domain::status::views::{self, PageInfo, Which};
use latchkey::domain::status::{self, Snapshot};
use latchkey::http::{ApiError, PublicBase};
use serde::Serialize;
use sha2::{Digest, Sha256};

type Result<T> = std::result::Result<T, ApiError>;

pub const CACHE_CONTROL: &str = "public, max-age=30";
const PAGE_ID: &str = "latchkey";
const PAGE_NAME: &str = "Latchkey";

/// The page as this deployment's configured public URL names it (`<base>/status`), never from
/// the request's `Host`: these bodies are cacheable by shared caches (`public, max-age=30`).
pub fn page_info(base: &PublicBase) -> PageInfo {
    PageInfo {
        id: PAGE_ID.into(),
        name: PAGE_NAME.into(),
        url: base.url("/status"),
    }
}

/// The page's identity, from the [`PublicBase`] the shared middleware puts on every request.
pub struct Page(pub PageInfo);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Page {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self> {
        parts
            .extensions
            .get::<PublicBase>()
            .map(|base| Page(page_info(base)))
            .ok_or_else(|| ApiError::from(Error::Internal("no public base URL".into())))
    }
}

/// A strong validator: the first 128 bits of the body's SHA-256.
pub fn etag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]))
}

/// Whether `If-None-Match` names `tag` (weak comparison, as RFC 9110 asks for this header).
fn not_modified(request: &HeaderMap, tag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
}

/// The answer for a public body: 200 with it, or 304 when the client has it already.
pub fn cached(request: &HeaderMap, content_type: &'static str, body: Vec<u8>) -> Response {
    let tag = etag(&body);
    let mut response = if not_modified(request, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, v);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

fn json<T: Serialize>(request: &HeaderMap, doc: &T) -> Result<Response> {
    let body =
        serde_json::to_vec(doc).map_err(|e| ApiError::from(Error::Internal(e.to_string())))?;
    Ok(cached(request, "application/json", body))
}

async fn snapshot(state: &StatusState) -> Result<Snapshot> {
    Ok(status::snapshot(&state.services).await?)
}

pub async fn summary(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    let s = snapshot(&st).await?;
    json(&headers, &views::summary(&s, &info))
}

pub async fn status(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    let s = snapshot(&st).await?;
    json(
        &headers,
        &views::StatusDoc {
            page: views::page(&s, &info),
            status: views::status(&s),
        },
    )
}

pub async fn components(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    let s = snapshot(&st).await?;
    json(
        &headers,
        &views::ComponentsDoc {
            page: views::page(&s, &info),
            components: views::components(&s, &info),
        },
    )
}

async fn incidents_doc(
    st: &StatusState,
    info: PageInfo,
    headers: &HeaderMap,
    which: Which,
) -> Result<Response> {
    let s = snapshot(st).await?;
    json(
        headers,
        &views::IncidentsDoc {
            page: views::page(&s, &info),
            incidents: views::incidents(&s, &info, which),
        },
    )
}

pub async fn incidents(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    incidents_doc(&st, info, &headers, Which::All).await
}

pub async fn unresolved(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    incidents_doc(&st, info, &headers, Which::Unresolved).await
}

async fn maintenances_doc(
    st: &StatusState,
    info: PageInfo,
    headers: &HeaderMap,
    which: Which,
) -> Result<Response> {
    let s = snapshot(st).await?;
    json(
        headers,
        &views::MaintenancesDoc {
            page: views::page(&s, &info),
            scheduled_maintenances: views::maintenances(&s, &info, which),
        },
    )
}

pub async fn maintenances(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    maintenances_doc(&st, info, &headers, Which::All).await
}

pub async fn upcoming(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    maintenances_doc(&st, info, &headers, Which::Upcoming).await
}

pub async fn active(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    maintenances_doc(&st, info, &headers, Which::Active).await
}

pub async fn page(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    let s = snapshot(&st).await?;
    let body = crate::html::render(&s, &info).into_bytes();
    let mut response = cached(&headers, "text/html; charset=utf-8", body);
    response
        .headers_mut()
        .remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    if let Ok(csp) = HeaderValue::from_str(&crate::html::content_security_policy()) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(response)
}

pub async fn feed(
    State(st): State<StatusState>,
    Page(info): Page,
    headers: HeaderMap,
) -> Result<Response> {
    let s = snapshot(&st).await?;
    let body = crate::atom::render(&s, &info).map_err(|e| ApiError::from(Error::Internal(e)))?;
    Ok(cached(&headers, "application/atom+xml", body))
}

/// `GET /.well-known/security.txt` (RFC 9116), from the deployment's configuration; 404 in the
/// wire format when none is configured. Cacheable like the rest of the public side.
pub async fn security_txt(State(state): State<StatusState>, headers: HeaderMap) -> Response {
    match &state.security_txt {
        Some(txt) => cached(
            &headers,
            "text/plain; charset=utf-8",
            txt.render().into_bytes(),
        ),
        None => ApiError::from(Error::NotFound("security.txt file")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_accepts_lists_weak_tags_and_star() {
        let tag = etag(b"body");
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(not_modified(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(not_modified(&h, &tag));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"other\""));
        assert!(!not_modified(&h, &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
        assert_ne!(etag(b"body"), etag(b"body2"));
    }

    #[test]
    fn page_url_is_the_configured_base_whatever_the_host() {
        let base = PublicBase::parse("https://status.example.com").unwrap();
        assert_eq!(page_info(&base).url, "https://status.example.com/status");
        assert_eq!(
            page_info(&PublicBase::local(8787)).url,
            "http://localhost:8787/status"
        );
    }
}
