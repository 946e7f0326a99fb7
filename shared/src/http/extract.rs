//! Extractors whose rejections are wire-format errors, and the Server API's secret-key auth.
use crate::domain::Services;
use crate::domain::tenants::{Principal, authenticate};
use crate::http::error::ApiError;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::header;
use axum::http::request::Parts;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Path parameters, percent-decoded; a bad segment is a 400 in the wire format.
pub struct WirePath<T>(pub T);

impl<T, S> FromRequestParts<S> for WirePath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| WirePath(v))
            .map_err(|_| {
                ApiError::invalid("A path segment is not valid (percent-encoded UTF-8 expected).")
            })
    }
}

/// A query string; a malformed one is a 400 in the wire format.
pub struct WireQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for WireQuery<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| WireQuery(v))
            .map_err(|_| ApiError::invalid("The query string is not valid."))
    }
}

/// The caller of the Server API: `Authorization: Basic base64(<secret key>:)` (docs/wire.md §2.1).
/// A missing, malformed, wrong or revoked key is one and the same 401.
pub struct SecretKey(pub Principal);

impl FromRequestParts<Arc<Services>> for SecretKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Self::Rejection> {
        let result = match basic_username(parts) {
            Some(secret) => authenticate(services, &secret).await,
            None => Err(crate::domain::Error::Unauthorized),
        };
        match result {
            Ok(principal) => Ok(SecretKey(principal)),
            // Each wrong key counts against the caller's address (limits::count_key_failure):
            // past the limit the answer is 429, not 401.
            Err(crate::domain::Error::Unauthorized) => {
                let client = parts
                    .extensions
                    .get::<crate::http::RequestMeta>()
                    .and_then(|m| m.source_ip.as_deref());
                crate::domain::limits::count_key_failure(services, client).await?;
                Err(ApiError::unauthorized())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The text before the first `:` of a Basic credential (or all of it, with no colon).
pub fn basic_username(parts: &Parts) -> Option<String> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(u, _)| u);
    (!user.is_empty()).then(|| user.to_owned())
}

/// The caller of the Client API (docs/wire.md §2.2), authorized by its route's row of the matrix
/// ([`crate::domain::authz::CLIENT_ROUTES`]): `Bearer <token>` from track or a previous
/// verify, or `Basic base64(<tenant id>[:])` for token-less sign-in. A browser's `Origin`, when
/// sent, must be one of the tenant's allowed origins.
///
/// The row comes from the route itself (the Client API router puts it in the request's
/// extensions); a handler mounted without one refuses every request, so no route can be served
/// unauthorized by mistake.
pub struct Authorized {
    pub tenant: crate::domain::tenants::Tenant,
    pub access: crate::domain::authz::Access,
}

impl FromRequestParts<Arc<Services>> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Self::Rejection> {
        use crate::domain::authz::{RouteRule, authorize};
        use crate::domain::tenants::get_tenant;
        use crate::domain::tokens::{TokenError, verify_any};
        use crate::http::error::ErrorKind;
        let rule = *parts
            .extensions
            .get::<&'static RouteRule>()
            .ok_or_else(|| {
                ApiError::from(crate::domain::Error::Internal(
                    "route mounted without an authorization rule".into(),
                ))
            })?;
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(ApiError::unauthorized)?;
        let (tenant_id, claims) = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                match verify_any(services, token.trim()).await? {
                    Ok(claims) => (claims.aud.clone(), Some(claims)),
                    Err(TokenError::Expired) => return Err(ApiError::new(ErrorKind::ExpiredToken)),
                    Err(TokenError::Invalid) => return Err(ApiError::unauthorized()),
                }
            }
            _ => (
                basic_username(parts).ok_or_else(ApiError::unauthorized)?,
                None,
            ),
        };
        let tenant = get_tenant(services, &tenant_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if let Some(origin) = parts.headers.get(header::ORIGIN) {
            let allowed = origin
                .to_str()
                .is_ok_and(|o| origin_allowed(&tenant.settings.allowed_origins, o));
            // The CORS layer's answer follows this tenant's verdict (crate::http::cors).
            if let Some(verdict) = parts.extensions.get::<crate::http::cors::CorsVerdict>() {
                verdict.record(allowed);
            }
            if !allowed {
                return Err(ApiError::new(ErrorKind::Forbidden));
            }
        }
        let meta = parts.extensions.get::<crate::http::RequestMeta>();
        let ctx = crate::domain::audit::AuditContext {
            actor: if claims.is_some() {
                "client:token".into()
            } else {
                "client:anonymous".into()
            },
            request_id: meta.map(|m| m.request_id.clone()).unwrap_or_default(),
            source_ip: meta.and_then(|m| m.source_ip.clone()),
        };
        let access = authorize(services, &tenant, &ctx, rule, claims).await?;
        Ok(Authorized { tenant, access })
    }
}

/// Exact origin match; `http://localhost:*` allows any port on localhost.
pub fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed.iter().any(|a| match a.strip_suffix(":*") {
        Some(base) => {
            origin == base
                || origin
                    .strip_prefix(base)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .is_some_and(|port| {
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
                    })
        }
        None => a == origin,
    })
}
