//! What happens to every request before and after its handler: a request id (the caller's
//! `x-request-id` when it is a plain token, else a new random one), the body limit (413 in the
//! wire format), the source address, one JSON log line per request, and security headers on
//! every response.
use crate::http::error::ApiError;
use crate::ports::Random;
use crate::ports::random::RandomExt as _;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument as _;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Who is asking, for audit events and logs. Handlers take it with `Extension<RequestMeta>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    pub request_id: String,
    pub source_ip: Option<String>,
}

fn caller_request_id(req: &Request) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = (8..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| v.to_owned())
}

/// The caller's address in canonical form (an IPv4-mapped IPv6 address is its IPv4 address:
/// latchkey-local listening on `[::]` sees IPv4 clients so).
fn source_ip(req: &Request) -> Option<String> {
    if let Some(ConnectInfo(addr)) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
        return Some(crate::domain::rules::canonical_ip(addr.ip()).to_string());
    }
    use lambda_http::request::RequestContext;
    match req.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(ctx) => ctx.http.source_ip.as_deref().map(|raw| {
            raw.parse().map_or_else(
                |_| raw.to_owned(),
                |ip| crate::domain::rules::canonical_ip(ip).to_string(),
            )
        }),
        _ => None,
    }
}

/// What the middleware needs: randomness for request ids, and the edge's settings.
#[derive(Clone)]
pub struct Edge {
    pub random: Arc<dyn Random>,
    pub settings: HttpSettings,
}

/// Settings of the HTTP edge alone (the domain never sees them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Largest request body read; a larger one is refused with 413.
    pub max_body_bytes: usize,
    /// Where this deployment is reached, for the URLs its answers carry.
    pub public_base: PublicBase,
    /// How long a request may take, body included, before it is answered 408. `None` on
    /// Lambda, where API Gateway (30 s) and the function's timeout bound a request;
    /// `latchkey-local` sets it (`LATCHKEY_LISTEN_REQUEST_TIMEOUT_SECS`).
    pub request_timeout: Option<std::time::Duration>,
}

impl Default for HttpSettings {
    /// 64 KiB: every Authsignal request body is a few kilobytes at most.
    fn default() -> Self {
        Self {
            max_body_bytes: 65_536,
            public_base: PublicBase::local(8787),
            request_timeout: None,
        }
    }
}

/// The deployment's public base URL (`https://auth.example.com`, no trailing slash), from
/// configuration (`LATCHKEY_PUBLIC_URL`), never from the request's `Host` or
/// `X-Forwarded-Host`: answers that embed it (track's `url`, the status page's cacheable
/// bodies) are then the same for every caller, so a shared cache cannot be poisoned with a
/// host the attacker named. Handlers take it with `Extension<PublicBase>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicBase(Arc<str>);

impl PublicBase {
    /// `base` as [`public_base`](crate::domain::status::disclosure::public_base) accepts it.
    pub fn parse(base: &str) -> Option<Self> {
        crate::domain::status::disclosure::public_base(base).map(|b| Self(b.into()))
    }

    /// `http://localhost:<port>`: latchkey-local's default.
    pub fn local(port: u16) -> Self {
        Self(format!("http://localhost:{port}").into())
    }

    /// `path` (starting with `/`) under the base.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

pub async fn entry(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = caller_request_id(&req).unwrap_or_else(|| edge.random.hex_id(16));
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("<unmatched>", |m| m.as_str())
        .to_owned();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = %route,
    );
    let meta = RequestMeta {
        request_id: request_id.clone(),
        source_ip: source_ip(&req),
    };
    let answer = async {
        match limit_body(req, edge.settings.max_body_bytes).await {
            Ok(mut req) => {
                req.extensions_mut().insert(meta);
                req.extensions_mut()
                    .insert(edge.settings.public_base.clone());
                next.run(req).await
            }
            Err(e) => e.into_response(),
        }
    }
    .instrument(span.clone());
    let mut response = match edge.settings.request_timeout {
        None => answer.await,
        Some(limit) => match tokio::time::timeout(limit, answer).await {
            Ok(response) => response,
            Err(_) => ApiError::request_timeout().into_response(),
        },
    };

    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID, v);
    }
    headers.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=63072000; includeSubDomains; preload"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let status = response.status().as_u16();
    let latency_us = started.elapsed().as_micros() as u64;
    span.in_scope(|| tracing::info!(status, latency_us, "request"));
    response
}

/// Reads the body up to `max` bytes; a declared or actual larger body is refused with 413.
async fn limit_body(req: Request, max: usize) -> Result<Request, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::too_large());
    }
    let (parts, body) = req.into_parts();
    let bytes = match Limited::new(body, max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => return Err(ApiError::too_large()),
        Err(_) => return Err(ApiError::invalid("The request body could not be read.")),
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}
