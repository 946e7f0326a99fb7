//! Extractors whose rejections are wire-format errors, and the Server API's secret-key auth.
use crate::domain::tenants::{Principal, authenticate};
use crate::http::error::ApiError;
use crate::runtime::Services;
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

/// The caller of the Server API: `Authorization: Basic base64(<secret key>:)` (API.md §2.1).
/// A missing, malformed, wrong or revoked key is one and the same 401.
pub struct SecretKey(pub Principal);

impl FromRequestParts<Arc<Services>> for SecretKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        services: &Arc<Services>,
    ) -> Result<Self, Self::Rejection> {
        let secret = basic_username(parts).ok_or_else(ApiError::unauthorized)?;
        authenticate(services, &secret)
            .await
            .map(SecretKey)
            .map_err(ApiError::from)
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
