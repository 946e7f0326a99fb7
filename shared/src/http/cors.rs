//! The Client API's one CORS policy, fed by the tenants' allowed origins (docs/wire.md §2.2).
//!
//! - **A request that names its tenant** (`Bearer` token, `Basic <tenant id>`): its `Origin` is
//!   allowed when that tenant lists it. [`Authorized`](crate::http::Authorized) decides, once, and
//!   leaves its verdict in the request's [`CorsVerdict`]; the same check refuses the request
//!   itself with a 403.
//! - **A preflight, or a request whose tenant is unknown** (no or bad credential, an unknown
//!   route): the browser sends no credential before a preflight, so the `Origin` is allowed when
//!   some tenant of this deployment lists it — the origin index written with each tenant
//!   ([`crate::domain::tenants::origin_known`]). A 401 or 404 an allowed page provoked is then
//!   readable by that page, not a `TypeError: Failed to fetch`.
//! - **A disallowed origin gets no CORS header at all**, on preflights and on answers alike;
//!   every answer to a request with an `Origin` carries `Vary: Origin`.
//!
//! Hand-written rather than tower-http's `CorsLayer`: its origin predicate may be async, but its
//! `Allow-Credentials`, `Allow-Methods` and `Allow-Headers` are added whatever the predicate
//! says, and the tenant's verdict is known only inside our extractor.
use crate::domain::Services;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::{Arc, OnceLock};

/// Methods and headers the Client API takes from browsers.
pub const ALLOW_METHODS: &str = "GET, POST";
pub const ALLOW_HEADERS: &str = "authorization, content-type, x-request-id";
/// How long a browser may reuse a preflight's answer.
pub const MAX_AGE_SECONDS: &str = "600";

/// Where [`Authorized`](crate::http::Authorized) records whether the tenant it found allows the
/// request's `Origin`. Empty when no tenant was found.
#[derive(Clone, Default)]
pub struct CorsVerdict(Arc<OnceLock<bool>>);

impl CorsVerdict {
    pub fn record(&self, allowed: bool) {
        // The first verdict stands: one request has one tenant.
        let _ = self.0.set(allowed);
    }

    fn get(&self) -> Option<bool> {
        self.0.get().copied()
    }
}

fn is_preflight(req: &Request) -> bool {
    req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// Whether some tenant allows `origin`; a store failure allows nothing (and is logged).
async fn known(services: &Services, origin: &str) -> bool {
    match crate::domain::tenants::origin_known(services, origin).await {
        Ok(known) => known,
        Err(e) => {
            tracing::warn!(error = %e, "origin index unavailable; no CORS headers");
            false
        }
    }
}

fn vary(headers: &mut HeaderMap, preflight: bool) {
    let value = if preflight {
        "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    } else {
        "Origin"
    };
    headers.append(header::VARY, HeaderValue::from_static(value));
}

fn allow(headers: &mut HeaderMap, origin: HeaderValue) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("x-request-id"),
    );
}

/// The middleware: answers preflights, and adds the CORS headers to answers for allowed origins.
pub async fn client_cors(
    State(services): State<Arc<Services>>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(origin) = req.headers().get(header::ORIGIN).cloned() else {
        return next.run(req).await;
    };
    let origin_text = origin.to_str().unwrap_or_default().to_owned();
    if is_preflight(&req) {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        vary(headers, true);
        if known(&services, &origin_text).await {
            allow(headers, origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(ALLOW_METHODS),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOW_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static(MAX_AGE_SECONDS),
            );
        }
        return response;
    }
    let verdict = CorsVerdict::default();
    req.extensions_mut().insert(verdict.clone());
    let mut response = next.run(req).await;
    let allowed = match verdict.get() {
        Some(allowed) => allowed,
        None => known(&services, &origin_text).await,
    };
    let headers = response.headers_mut();
    vary(headers, false);
    if allowed {
        allow(headers, origin);
    }
    response
}
