//! The `latchkey-passkeys` function: the Client API (API.md §5.1, §5.2) — passkey and
//! security-key ceremonies, authenticator-app TOTP, email OTP and recovery codes — with CORS
//! for browsers calling from the tenant's own origins.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::await_holding_lock,
    clippy::dbg_macro
)]

mod handlers;
mod otp;

use axum::Router;
use axum::routing::post;
use latchkey::Services;
use std::sync::Arc;

pub const NAME: &str = "latchkey-passkeys";

/// This function's routes, without the shared layers (the local gateway merges them).
pub fn routes(services: &Arc<Services>) -> Router {
    use handlers::*;
    let p = "/v1/client/user-authenticators/passkey";
    let k = "/v1/client/user-authenticators/security-key";
    Router::new()
        .route(
            &format!("{p}/registration-options"),
            post(registration_options).options(preflight),
        )
        .route(
            &format!("{p}/registration-options/web"),
            post(registration_options).options(preflight),
        )
        .route(
            p,
            post(add_passkey).get(passkey_available).options(preflight),
        )
        .route("/v1/client/challenge", post(challenge).options(preflight))
        .route(
            "/v1/client/challenge/web",
            post(challenge).options(preflight),
        )
        .route(
            &format!("{p}/authentication-options"),
            post(authentication_options).options(preflight),
        )
        .route(
            &format!("{p}/authentication-options/web"),
            post(authentication_options).options(preflight),
        )
        .route("/v1/client/verify/passkey", post(verify).options(preflight))
        .route(
            &format!("{k}/registration-options"),
            post(security_key_registration_options).options(preflight),
        )
        .route(k, post(add_security_key).options(preflight))
        .route(
            &format!("{k}/authentication-options"),
            post(security_key_authentication_options).options(preflight),
        )
        .route(
            "/v1/client/verify/security-key",
            post(verify_security_key).options(preflight),
        )
        .route(
            "/v1/client/user-authenticators/totp",
            post(otp::enroll_totp).options(preflight),
        )
        .route(
            "/v1/client/verify/totp",
            post(otp::verify_totp).options(preflight),
        )
        .route(
            "/v1/client/user-authenticators/email-otp",
            post(otp::enroll_email).options(preflight),
        )
        .route(
            "/v1/client/challenge/email-otp",
            post(otp::challenge_email).options(preflight),
        )
        .route(
            "/v1/client/verify/email-otp",
            post(otp::verify_email).options(preflight),
        )
        .route(
            "/v1/client/verify/recovery-code",
            post(otp::verify_recovery_code).options(preflight),
        )
        .route(
            "/v1/client/user-authenticators/recovery-codes",
            post(otp::regenerate_recovery_codes).options(preflight),
        )
        .layer(axum::middleware::from_fn(cors))
        .with_state(Arc::clone(services))
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>) -> Router {
    latchkey::http::service(routes(&services), services, NAME)
}
