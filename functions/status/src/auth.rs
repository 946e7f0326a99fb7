//! How the write side recognises an operator: one small trait, so that the admin plane's
//! operator sign-in (passkeys, sessions) can replace the bearer tokens without touching a
//! handler. Handlers take [`OperatorCaller`]; they never look at credentials themselves.
use crate::StatusState;
use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use latchkey::Services;
use latchkey::domain::Error;
use latchkey::domain::admin::accounts;
use latchkey::domain::status::operators::{self, Operator};
use latchkey::http::ApiError;

/// Decides who the operator behind a request is, or refuses it with
/// [`Error::Unauthorized`] (every failure alike, so a caller learns nothing).
#[async_trait]
pub trait OperatorAuth: Send + Sync {
    async fn authorize(&self, services: &Services, parts: &Parts) -> Result<Operator, Error>;
}

/// `Authorization: Bearer lko_<id>_<secret>`, minted with `latchkey-admin operator create`
/// and checked against its keyed hash ([`operators::authenticate`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct BearerTokens;

#[async_trait]
impl OperatorAuth for BearerTokens {
    async fn authorize(&self, services: &Services, parts: &Parts) -> Result<Operator, Error> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(Error::Unauthorized)?;
        let (scheme, token) = value.split_once(' ').ok_or(Error::Unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Error::Unauthorized);
        }
        operators::authenticate(services, token.trim()).await
    }
}

/// How the status function recognises operators by default: a bearer token (automation), or
/// the management plane's session cookie of an account with the operator role (a person who
/// signed in with a passkey). A write made with the cookie must come from the console's
/// `Origin`, as on `/v1/admin`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionsOrTokens;

#[async_trait]
impl OperatorAuth for SessionsOrTokens {
    async fn authorize(&self, services: &Services, parts: &Parts) -> Result<Operator, Error> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return BearerTokens.authorize(services, parts).await;
        }
        // No console, no sessions: only tokens.
        let console = accounts::console(services)
            .await
            .map_err(|_| Error::Unauthorized)?;
        let cookie = accounts::session_cookie(
            &console,
            parts
                .headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
        .ok_or(Error::Unauthorized)?;
        let session = accounts::authenticate(services, cookie).await?;
        if !session.account.operator {
            return Err(Error::Forbidden);
        }
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let origin = parts
                .headers
                .get(header::ORIGIN)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !accounts::console_allows(&console, origin) {
                return Err(Error::Refused(
                    "a write made with the session cookie must come from the console's Origin"
                        .into(),
                ));
            }
        }
        Ok(Operator {
            id: session.account.id.clone(),
            name: "operator (passkey session)".into(),
        })
    }
}

/// The operator calling a write route.
pub struct OperatorCaller(pub Operator);

impl FromRequestParts<StatusState> for OperatorCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &StatusState,
    ) -> Result<Self, Self::Rejection> {
        state
            .auth
            .authorize(&state.services, parts)
            .await
            .map(OperatorCaller)
            .map_err(ApiError::from)
    }
}
