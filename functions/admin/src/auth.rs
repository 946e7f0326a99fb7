//! Who is calling, and whether the route's row lets them: the one extractor every handler
//! takes ([`Allowed`]).
//!
//! **Credentials.** `Authorization: Bearer lkm_…` (a management key) or the session cookie
//! (`__Host-lk_session`; `lk_session` on a localhost console; `lks_…`, set by
//! `POST /v1/admin/session`).
//!
//! **Cross-site requests.** The cookie is `SameSite=Strict`; on top of that, a request that
//! changes anything and is authenticated by the cookie must carry an `Origin` that is one of
//! the console tenant's allowed origins, or it is refused before any handler runs.
use crate::{AdminState, Need, row};
use axum::extract::{FromRequestParts, MatchedPath, RawPathParams};
use axum::http::request::Parts;
use axum::http::{Method, header};
use latchkey::domain::Error;
use latchkey::domain::admin::{self, Basis, Caller, Session, accounts};
use latchkey::domain::tenants::{self, Tenant};
use latchkey::http::{ApiError, RequestMeta};

/// What the route's row allowed.
pub struct Allowed {
    pub meta: RequestMeta,
    pub who: Who,
}

pub enum Who {
    Public,
    /// A signed-in person, on a route of [`Need::Person`].
    Person(Session),
    /// A caller allowed on the tenant the path names.
    Tenant {
        tenant: Box<Tenant>,
        basis: Basis,
        caller: Caller,
    },
}

impl Allowed {
    pub fn session(&self) -> Result<&Session, ApiError> {
        match &self.who {
            Who::Person(s) => Ok(s),
            Who::Tenant {
                caller: Caller::Session(s),
                ..
            } => Ok(s),
            _ => Err(Error::Unauthorized.into()),
        }
    }

    pub fn tenant(&self) -> Result<(&Tenant, &Basis), ApiError> {
        match &self.who {
            Who::Tenant { tenant, basis, .. } => Ok((tenant, basis)),
            _ => Err(Error::Internal("a tenant route without its tenant".into()).into()),
        }
    }

    /// The audit context of this request: the basis's actor on a tenant route, the person's
    /// account otherwise.
    pub fn ctx(&self) -> latchkey::domain::audit::AuditContext {
        let actor = match &self.who {
            Who::Tenant { basis, .. } => basis.actor(),
            Who::Person(s) => format!("admin:{}", s.account.id),
            Who::Public => "anonymous".to_owned(),
        };
        latchkey::domain::audit::AuditContext {
            actor,
            request_id: self.meta.request_id.clone(),
            source_ip: self.meta.source_ip.clone(),
        }
    }
}

/// The session cookie's value, if the request carries one under the console's cookie name.
pub fn session_cookie<'a>(parts: &'a Parts, console: &Tenant) -> Option<&'a str> {
    accounts::session_cookie(
        console,
        parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Refuses a state-changing request authenticated by the cookie unless its `Origin` is the
/// console's.
fn check_origin(console: &Tenant, parts: &Parts) -> Result<(), Error> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let origin = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::Refused("a request that changes anything must carry Origin".into())
        })?;
    if accounts::console_allows(console, origin) {
        Ok(())
    } else {
        Err(Error::Refused(
            "the request's Origin is not the console's".into(),
        ))
    }
}

/// A public request a browser makes (sign-in, accepting an invite) is refused when it comes
/// from another site's page (login CSRF); a client that sends no `Origin` (no browser) is let
/// through, its body being its proof.
async fn check_public_origin(state: &AdminState, parts: &Parts) -> Result<(), Error> {
    if matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let Some(origin) = parts.headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let console = accounts::console(&state.services).await?;
    if accounts::console_allows(&console, origin.to_str().unwrap_or_default()) {
        Ok(())
    } else {
        Err(Error::Refused(
            "the request's Origin is not the console's".into(),
        ))
    }
}

/// The caller behind the request's credentials; `Unauthorized` when there are none or they
/// do not check out (every failure alike).
async fn caller(state: &AdminState, parts: &Parts) -> Result<Caller, Error> {
    if let Some(token) = bearer(parts) {
        return admin::keys::authenticate(&state.services, token)
            .await
            .map(Caller::Key);
    }
    let console = accounts::console(&state.services).await?;
    let cookie = session_cookie(parts, &console).ok_or(Error::Unauthorized)?;
    let session = accounts::authenticate(&state.services, cookie).await?;
    check_origin(&console, parts)?;
    Ok(Caller::Session(session))
}

impl FromRequestParts<AdminState> for Allowed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let meta = parts
            .extensions
            .get::<RequestMeta>()
            .cloned()
            .unwrap_or_else(|| RequestMeta {
                request_id: "none".into(),
                source_ip: None,
            });
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let (_, need) = row(parts.method.as_str(), &matched)
            .ok_or_else(|| ApiError::from(Error::Internal(format!("no row for {matched}"))))?;
        let who = match need {
            Need::Public => {
                check_public_origin(state, parts).await?;
                Who::Public
            }
            Need::Person => match caller(state, parts).await? {
                Caller::Session(s) => Who::Person(s),
                // A management key is no person.
                Caller::Key(_) => return Err(Error::Forbidden.into()),
            },
            Need::Tenant(perm) => {
                let params = RawPathParams::from_request_parts(parts, state)
                    .await
                    .map_err(|_| ApiError::invalid("A path segment is not valid."))?;
                let tenant_id = params
                    .iter()
                    .find(|(k, _)| *k == "tenantId")
                    .map(|(_, v)| v.to_owned())
                    .ok_or_else(|| ApiError::from(Error::Internal("no tenantId".into())))?;
                let caller = caller(state, parts).await?;
                let ctx = latchkey::domain::audit::AuditContext {
                    actor: String::new(),
                    request_id: meta.request_id.clone(),
                    source_ip: meta.source_ip.clone(),
                };
                let route = format!("{} {matched}", parts.method);
                let basis =
                    admin::authorize(&state.services, &caller, &tenant_id, perm, &route, &ctx)
                        .await?;
                let tenant = tenants::get_tenant(&state.services, &tenant_id)
                    .await?
                    .ok_or(Error::NotFound("tenant"))?;
                Who::Tenant {
                    tenant: Box::new(tenant),
                    basis,
                    caller,
                }
            }
        };
        Ok(Allowed { meta, who })
    }
}
