//! The `latchkey-client` function: the Client API (docs/wire.md §5.1, §5.2) — passkey and
//! security-key ceremonies, authenticator-app TOTP, email OTP and recovery codes — with CORS
//! for browsers calling from the tenant's own origins.
//!
//! A library so that the local gateway and the tests mount the same routes the Lambda serves;
//! `main.rs` only wires.
mod handlers;
mod otp;

use axum::Router;
use axum::routing::{MethodRouter, any, get, post};
use latchkey::Services;
use latchkey::domain::authz::{CLIENT_ROUTES, RouteId, RouteRule};
use latchkey::http::HttpSettings;
use std::sync::Arc;

pub const NAME: &str = "latchkey-client";

/// The handler of each route of the matrix. The match is exhaustive, so a route cannot be in
/// the table without a handler, nor served without its row.
fn handler(rule: &'static RouteRule) -> MethodRouter<Arc<Services>> {
    use RouteId::*;
    use handlers::*;
    let route = match rule.id {
        PasskeyRegistrationOptions | PasskeyRegistrationOptionsWeb => post(registration_options),
        AddPasskey => post(add_passkey),
        PasskeyAvailable => get(passkey_available),
        NameAction | NameActionWeb => post(challenge),
        PasskeyAuthenticationOptions | PasskeyAuthenticationOptionsWeb => {
            post(authentication_options)
        }
        VerifyPasskey => post(verify),
        SecurityKeyRegistrationOptions => post(security_key_registration_options),
        AddSecurityKey => post(add_security_key),
        SecurityKeyAuthenticationOptions => post(security_key_authentication_options),
        VerifySecurityKey => post(verify_security_key),
        EnrollTotp => post(otp::enroll_totp),
        VerifyTotp => post(otp::verify_totp),
        EnrollEmailOtp => post(otp::enroll_email),
        ChallengeEmailOtp => post(otp::challenge_email),
        VerifyEmailOtp => post(otp::verify_email),
        VerifyRecoveryCode => post(otp::verify_recovery_code),
        RegenerateRecoveryCodes => post(otp::regenerate_recovery_codes),
    };
    // The row travels with the request to the `Authorized` extractor.
    route.layer(axum::Extension(rule))
}

/// This function's routes, without the shared layers (the local gateway merges them): built
/// from the authorization matrix, with a wire-format 404 for any other `/v1/client/` path, all
/// behind the one CORS policy ([`latchkey::http::cors`]), which answers preflights too.
pub fn routes(services: &Arc<Services>) -> Router {
    let rows = CLIENT_ROUTES.iter().map(|rule| (rule.path, handler(rule)));
    // An OPTIONS route on each path, so that preflights reach the CORS layer (which answers
    // them) rather than the router's 405.
    let mut paths: Vec<&'static str> = CLIENT_ROUTES.iter().map(|r| r.path).collect();
    paths.sort_unstable();
    paths.dedup();
    let preflights = paths.into_iter().map(|path| {
        (
            path,
            MethodRouter::new().options(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
    });
    latchkey::http::routes::from_table(rows.chain(preflights))
        .route(
            "/v1/client/{*rest}",
            any(|| async { latchkey::http::ApiError::not_found() }),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(services),
            latchkey::http::cors::client_cors,
        ))
        .with_state(Arc::clone(services))
}

/// The whole function as the Lambda runtime serves it.
pub fn app(services: Arc<Services>, settings: HttpSettings) -> Router {
    latchkey::http::service(routes(&services), &services, settings, NAME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use latchkey::http::routes::{router_mismatches, template_mismatches};

    fn table() -> Vec<(&'static str, &'static str)> {
        CLIENT_ROUTES.iter().map(|r| (r.method, r.path)).collect()
    }

    #[test]
    fn the_template_sends_exactly_the_tables_routes_here() {
        let template = include_str!("../../../template.yaml");
        let problems = template_mismatches(template, "ClientFunction", &table(), &[]);
        assert_eq!(problems, Vec::<String>::new());
    }

    #[tokio::test]
    async fn the_router_serves_exactly_the_table() {
        let router = routes(&latchkey::testing::services().unwrap());
        assert_eq!(
            router_mismatches(&router, &table()).await,
            Vec::<String>::new()
        );
    }

    #[tokio::test]
    async fn every_path_of_the_table_answers_a_cors_preflight() {
        let router = routes(&latchkey::testing::services().unwrap());
        for (_, path) in table() {
            let status = latchkey::http::routes::answer(&router, "OPTIONS", path).await;
            assert!(
                status.is_some_and(|s| s.is_success()),
                "OPTIONS {path}: {status:?}"
            );
        }
    }
}
