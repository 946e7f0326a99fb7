//! Short-lived tokens that track returns and validate checks: JWTs signed with HMAC-SHA256 under
//! the token-signing purpose key (from the Secrets Manager root), with a `kid` naming the key so
//! that tokens signed just before a rotation still validate. Expiry is checked against the
//! injected clock, not the wall clock.
use crate::crypto::keys::{Purpose, PurposeKey, purpose_keys};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::machine::VerificationMethod;
use crate::ports::random::RandomExt as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// How long a token from track stays valid.
pub const TOKEN_TTL_SECONDS: i64 = 10 * 60;
const ISSUER: &str = "latchkey";

/// The ceremony that issued a token, if one did: its method and when it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    pub method: VerificationMethod,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The tenant.
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The action code.
    pub act: String,
    /// The action's idempotency key.
    pub idk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The method of the ceremony that issued this token (absent on tokens from track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<VerificationMethod>,
    /// When that ceremony verified the user (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vat: Option<i64>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

impl Claims {
    /// The ceremony this token proves, if it was issued by one.
    pub fn proof(&self) -> Option<Proof> {
        Some(Proof {
            method: self.amr?,
            at: self.vat?,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// Not a token of ours: malformed, unknown key, bad signature, another tenant's.
    Invalid,
    Expired,
}

fn kid(key: &PurposeKey) -> String {
    // The id is a MAC of a fixed label, so it names the key without revealing it.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key.as_slice()) else {
        return String::new();
    };
    m.update(b"latchkey/kid");
    crate::crypto::hex(&m.finalize().into_bytes()[..6])
}

pub async fn issue(
    services: &Services,
    tenant_id: &str,
    user_id: &str,
    action: &str,
    idempotency_key: &str,
    scope: Option<String>,
    proof: Option<Proof>,
) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::TokenSigning).await?;
    let now = services.clock.now().unix_timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        aud: tenant_id.into(),
        sub: user_id.into(),
        act: action.into(),
        idk: idempotency_key.into(),
        scope,
        amr: proof.map(|p| p.method),
        vat: proof.map(|p| p.at),
        iat: now,
        exp: now + TOKEN_TTL_SECONDS,
        jti: services.random.token(12),
    };
    crate::crypto::jwt::install();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid(&keys.current));
    let key = EncodingKey::from_secret(keys.current.as_slice())
        .map_err(|e| Error::Internal(format!("token key: {e}")))?;
    jsonwebtoken::encode(&header, &claims, &key)
        .map_err(|e| Error::Internal(format!("token signing: {e}")))
}

/// Checks signature, issuer, tenant and expiry.
pub async fn verify(
    services: &Services,
    tenant_id: &str,
    token: &str,
) -> Result<Result<Claims, TokenError>, Error> {
    Ok(match verify_any(services, token).await? {
        Ok(claims) if claims.aud != tenant_id => Err(TokenError::Invalid),
        other => other,
    })
}

/// Checks signature, issuer and expiry, whatever the tenant (the Client API learns the tenant
/// from the token itself).
pub async fn verify_any(
    services: &Services,
    token: &str,
) -> Result<Result<Claims, TokenError>, Error> {
    crate::crypto::jwt::install();
    let Ok(header) = jsonwebtoken::decode_header(token) else {
        return Ok(Err(TokenError::Invalid));
    };
    if header.alg != Algorithm::HS256 {
        return Ok(Err(TokenError::Invalid));
    }
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::TokenSigning).await?;
    let Some(key) = std::iter::once(&keys.current)
        .chain(keys.previous.as_ref())
        .find(|k| header.kid.as_deref() == Some(kid(k).as_str()))
    else {
        return Ok(Err(TokenError::Invalid));
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false; // checked below against the injected clock
    validation.validate_aud = false; // checked below, with a clear outcome
    validation.set_required_spec_claims(&["exp", "aud", "sub", "iss"]);
    validation.set_issuer(&[ISSUER]);
    let key = DecodingKey::from_secret(key.as_slice())
        .map_err(|e| Error::Internal(format!("token key: {e}")))?;
    let claims = match jsonwebtoken::decode::<Claims>(token, &key, &validation) {
        Ok(data) => data.claims,
        Err(_) => return Ok(Err(TokenError::Invalid)),
    };
    if claims.exp <= services.clock.now().unix_timestamp() {
        return Ok(Err(TokenError::Expired));
    }
    Ok(Ok(claims))
}
