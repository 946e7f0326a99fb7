//! Handlers for the Client API's one-time-code routes (docs/wire.md §5.1): authenticator-app TOTP,
//! email OTP and recovery codes. Every route needs the Bearer token from track (or a previous
//! verify); the ceremony is the token's.
use crate::handlers::ctx;
use axum::extract::State;
use axum::{Extension, Json};
use latchkey::Services;
use latchkey::domain::otp::{self, EmailEnrollment, TotpEnrollment, VerifyResponse};
use latchkey::http::{ApiError, Authorized, RequestMeta, WireJson};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type Result<T> = std::result::Result<T, ApiError>;
type Svc = State<Arc<Services>>;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeBody {
    verification_code: Option<String>,
}

impl CodeBody {
    fn code(self) -> Result<String> {
        self.verification_code
            .filter(|c| c.len() <= 64)
            .ok_or_else(|| ApiError::invalid("verificationCode is required."))
    }
}

#[derive(Deserialize)]
pub struct EmailBody {
    email: Option<String>,
}

/// `POST /client/user-authenticators/totp` (no body).
pub async fn enroll_totp(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
) -> Result<Json<TotpEnrollment>> {
    Ok(Json(
        otp::enroll_totp(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access).await?,
    ))
}

/// `POST /client/verify/totp {verificationCode}`.
pub async fn verify_totp(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<CodeBody>,
) -> Result<Json<VerifyResponse>> {
    let code = body.code()?;
    Ok(Json(
        otp::verify_totp(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access, &code).await?,
    ))
}

/// `POST /client/user-authenticators/email-otp {email}`.
pub async fn enroll_email(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<EmailBody>,
) -> Result<Json<EmailEnrollment>> {
    let email = body
        .email
        .ok_or_else(|| ApiError::invalid("email is required."))?;
    Ok(Json(
        otp::enroll_email(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access, &email).await?,
    ))
}

/// `POST /client/challenge/email-otp` (no body).
pub async fn challenge_email(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
) -> Result<Json<Value>> {
    let id = otp::challenge_email(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access).await?;
    Ok(Json(json!({ "challengeId": id })))
}

/// `POST /client/verify/email-otp {verificationCode}`.
pub async fn verify_email(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<CodeBody>,
) -> Result<Json<VerifyResponse>> {
    let code = body.code()?;
    Ok(Json(
        otp::verify_email(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access, &code).await?,
    ))
}

/// `POST /client/verify/recovery-code {verificationCode}`.
pub async fn verify_recovery_code(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
    WireJson(body): WireJson<CodeBody>,
) -> Result<Json<VerifyResponse>> {
    let code = body.code()?;
    Ok(Json(
        otp::verify_recovery_code(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access, &code)
            .await?,
    ))
}

/// `POST /client/user-authenticators/recovery-codes`: a new set; the old codes stop working.
pub async fn regenerate_recovery_codes(
    State(s): Svc,
    auth: Authorized,
    Extension(meta): Extension<RequestMeta>,
) -> Result<Json<Value>> {
    let codes =
        otp::regenerate_recovery_codes(&s, &auth.tenant, &ctx(&meta, &auth), &auth.access).await?;
    Ok(Json(json!({ "recoveryCodes": codes })))
}
