//! The Client API's authorization matrix, cell by cell through the real router, and the
//! regressions of issue #11 (each failed on the code before the matrix): recovery codes minted
//! with a bare track token, ceremonies that moved any state to CHALLENGE_SUCCEEDED, pending
//! enrollments that answered later challenges, `crossOrigin` assertions, unlimited email sends.
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use latchkey::domain::authz::CLIENT_ROUTES;
use latchkey::domain::limits::AnonymousLimits;
use latchkey::domain::rules::{ActionConfig, Outcome};
use latchkey_tests::{ORIGIN, Tracked, World, example_settings};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use time::Duration;
use url::Url;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_authenticator_rs::{
    AuthenticatorBackendHashedClientData as _, WebauthnAuthenticator as _,
};
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

const TENANT: &str = "t-az";
/// The TOTP secret every enrolled user's authenticator app holds (base32).
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

/// A tenant with two actions configured to block and to review.
fn setup() -> latchkey_tests::Setup {
    let settings = latchkey::domain::tenants::TenantSettings {
        actions: BTreeMap::from([
            (
                "blocked".to_owned(),
                ActionConfig {
                    default_outcome: Outcome::Block,
                    rules: vec![],
                },
            ),
            (
                "reviewed".to_owned(),
                ActionConfig {
                    default_outcome: Outcome::Review,
                    rules: vec![],
                },
            ),
        ]),
        ..example_settings("Example")
    };
    World::setup().tenant(TENANT, settings)
}

async fn world() -> World {
    setup().build().await
}

/// An authenticator app holding `secret` (base32), as the user's phone would.
fn app(secret: &str) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
}

fn totp() -> totp_rs::Totp {
    app(SECRET)
}

/// What these tests do often, on the shared world.
trait Authz {
    async fn track_in(&self, user: &str, action: &str, state: &str) -> String;
    async fn action(&self, user: &str, action: &str, key: &str) -> Value;
    async fn enrolled(&self, user: &str);
    fn next_code(&self) -> String;
    async fn pass_totp(&self, bearer: &str) -> String;
    fn mails_to(&self, address: &str) -> usize;
}

impl Authz for World {
    /// Tracks, then sets the state through the Server API.
    async fn track_in(&self, user: &str, action: &str, state: &str) -> String {
        let Tracked {
            bearer,
            idempotency_key: key,
            ..
        } = self.track(user, action).await;
        let (status, a) = self
            .send(
                Method::PATCH,
                Some(&self.server()),
                &format!("/v1/users/{user}/actions/{action}/{key}"),
                Some(json!({ "state": state })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        bearer
    }

    async fn action(&self, user: &str, action: &str, key: &str) -> Value {
        self.send(
            Method::GET,
            Some(&self.server()),
            &format!("/v1/users/{user}/actions/{action}/{key}"),
            None,
        )
        .await
        .1
    }

    /// A user with an authenticator app (the secret [`SECRET`]) and an email address, both
    /// enrolled as verified by the tenant's backend.
    async fn enrolled(&self, user: &str) {
        let uri = format!("otpauth://totp/Example:{user}?secret={SECRET}&issuer=Example");
        for body in [
            json!({ "verificationMethod": "AUTHENTICATOR_APP", "otpUri": uri }),
            json!({ "verificationMethod": "EMAIL_OTP", "email": format!("{user}@example.com") }),
        ] {
            let (status, e) = self
                .post(
                    &self.server(),
                    &format!("/v1/users/{user}/authenticators"),
                    body,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{e}");
        }
    }

    /// A fresh TOTP code (the clock moves on a step, so no step is used twice).
    fn next_code(&self) -> String {
        self.clock.advance(Duration::seconds(30));
        totp().generate(self.now()).to_string()
    }

    /// Passes `bearer`'s challenge with the authenticator app; returns the token it gives.
    async fn pass_totp(&self, bearer: &str) -> String {
        let code = self.next_code();
        let (status, v) = self
            .post(
                bearer,
                "/v1/client/verify/totp",
                json!({ "verificationCode": code }),
            )
            .await;
        assert_eq!(
            (status, v["isVerified"].clone()),
            (StatusCode::OK, json!(true)),
            "{v}"
        );
        format!("Bearer {}", v["accessToken"].as_str().unwrap())
    }

    fn mails_to(&self, address: &str) -> usize {
        self.outbox
            .sent()
            .iter()
            .filter(|m| m.to == address)
            .count()
    }
}

/// The credential kinds of the matrix, in the columns' order.
const KINDS: [&str; 13] = [
    "none",
    "expired",
    "tenant id",
    "BLOCK",
    "REVIEW_REQUIRED",
    "ALLOW, enrolled",
    "CHALLENGE_REQUIRED, new user",
    "CHALLENGE_REQUIRED, enrolled",
    "CHALLENGE_REQUIRED + add:authenticators",
    "after a ceremony",
    "after a ceremony, 6 min later",
    "after validate",
    "ALLOW, new user",
];

/// Every Client API route and, per column of [`KINDS`], whether it is allowed (`Y`) or
/// refused (`.`). Written out by hand from the rules in `domain/authz.rs`, not derived from
/// the table: the test compares the two.
const EXPECTED: &[(&str, &str, &str)] = &[
    (
        "POST",
        "/v1/client/user-authenticators/passkey/registration-options",
        "......Y.YY..Y",
    ),
    (
        "POST",
        "/v1/client/user-authenticators/passkey/registration-options/web",
        "......Y.YY..Y",
    ),
    (
        "POST",
        "/v1/client/user-authenticators/passkey",
        "......Y.YY..Y",
    ),
    (
        "GET",
        "/v1/client/user-authenticators/passkey",
        "..Y..YYYYYY.Y",
    ),
    ("POST", "/v1/client/challenge", "..Y.........."),
    ("POST", "/v1/client/challenge/web", "..Y.........."),
    (
        "POST",
        "/v1/client/user-authenticators/passkey/authentication-options",
        "..Y...YYY....",
    ),
    (
        "POST",
        "/v1/client/user-authenticators/passkey/authentication-options/web",
        "..Y...YYY....",
    ),
    ("POST", "/v1/client/verify/passkey", "..Y...YYY...."),
    (
        "POST",
        "/v1/client/user-authenticators/security-key/registration-options",
        "......Y.YY..Y",
    ),
    (
        "POST",
        "/v1/client/user-authenticators/security-key",
        "......Y.YY..Y",
    ),
    (
        "POST",
        "/v1/client/user-authenticators/security-key/authentication-options",
        "......YYY....",
    ),
    ("POST", "/v1/client/verify/security-key", "......YYY...."),
    (
        "POST",
        "/v1/client/user-authenticators/totp",
        "......Y.YY..Y",
    ),
    ("POST", "/v1/client/verify/totp", "......YYYY..Y"),
    (
        "POST",
        "/v1/client/user-authenticators/email-otp",
        "......Y.YY..Y",
    ),
    ("POST", "/v1/client/challenge/email-otp", "......YYY...."),
    ("POST", "/v1/client/verify/email-otp", "......YYYY..Y"),
    ("POST", "/v1/client/verify/recovery-code", "......YYY...."),
    (
        "POST",
        "/v1/client/user-authenticators/recovery-codes",
        "........YY...",
    ),
];

/// The credential of column `kind` for cell `n`: each cell gets its own action (and, where
/// the column says so, its own user), so no cell's side effects reach another.
async fn credential(w: &World, kind: usize, n: usize, expired: &[String]) -> Option<String> {
    let enrolled = "enrolled-user";
    let fresh = format!("new-{kind}-{n}");
    let act = format!("a{kind}x{n}");
    Some(match kind {
        0 => return None,
        1 => expired[n].clone(),
        2 => w.tenant_basic(),
        3 => w.track(enrolled, "blocked").await.bearer,
        4 => w.track(enrolled, "reviewed").await.bearer,
        5 => w.track_in(enrolled, &act, "ALLOW").await,
        6 => w.track(&fresh, &act).await.bearer,
        7 => w.track(enrolled, &act).await.bearer,
        8 => w.track_to_add(enrolled, &act).await.bearer,
        9 => {
            let b = w.track(enrolled, &act).await.bearer;
            w.pass_totp(&b).await
        }
        10 => {
            let b = w.track(enrolled, &act).await.bearer;
            let after = w.pass_totp(&b).await;
            w.clock.advance(Duration::minutes(6));
            after
        }
        11 => {
            let b = w.track(enrolled, &act).await.bearer;
            let after = w.pass_totp(&b).await;
            assert_eq!(w.validate(&after).await["isValid"], true);
            after
        }
        12 => w.track_in(&fresh, &act, "ALLOW").await,
        _ => unreachable!(),
    })
}

#[tokio::test]
async fn every_cell_of_the_client_api_matrix() {
    // The expectations name exactly the routes of the table, no more, no fewer.
    let table: Vec<(&str, &str)> = CLIENT_ROUTES.iter().map(|r| (r.method, r.path)).collect();
    let expected: Vec<(&str, &str)> = EXPECTED.iter().map(|(m, p, _)| (*m, *p)).collect();
    assert_eq!(
        table, expected,
        "a route without a row of expectations (or the reverse)"
    );

    let w = world().await;
    w.enrolled("enrolled-user").await;
    // Tokens that will have expired: issued first, then the clock passes their 10 minutes.
    let mut expired = Vec::new();
    for n in 0..EXPECTED.len() {
        expired.push(w.track("enrolled-user", &format!("exp{n}")).await.bearer);
    }
    w.clock.advance(Duration::minutes(11));

    let mut wrong = Vec::new();
    for (kind, name) in KINDS.iter().enumerate() {
        for (n, (method, path, cells)) in EXPECTED.iter().enumerate() {
            let allowed = cells.as_bytes()[kind] == b'Y';
            let auth = credential(&w, kind, n, &expired).await;
            let (uri, body) = if *method == "GET" {
                (format!("{path}?credentialIds=AAAA"), None)
            } else {
                (path.to_string(), Some(json!({})))
            };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let (status, body) = w.send(method.clone(), auth.as_deref(), &uri, body).await;
            let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
            if refused == allowed {
                wrong.push(format!(
                    "{method} {path} with [{name}]: expected {}, got {status} {body}",
                    if allowed { "allowed" } else { "refused" }
                ));
            }
            // How a refusal is told: no credential or a bad one is 401, a good credential
            // that does not reach this far is 403 with the rule in words.
            if refused {
                let code = body["errorCode"].as_str().unwrap_or_default();
                let want = match kind {
                    1 => "expired_token",
                    0 | 2 => "unauthorized",
                    _ if CLIENT_ROUTES[n].token.is_none() => "unauthorized",
                    _ => "forbidden",
                };
                if code != want {
                    wrong.push(format!("{path} with [{name}]: {code}, not {want}: {body}"));
                }
                if want == "forbidden" {
                    assert!(
                        body["errorDescription"].as_str().unwrap().len() > 20,
                        "{body}"
                    );
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} cells wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // Nothing outside the table is served under /v1/client/.
    for path in [
        "/v1/client/user-authenticators/sms",
        "/v1/client/verify/push",
        "/v1/client/challenge/qr-code",
        "/v1/client/user-authenticators",
    ] {
        let (status, _) = w.post(&w.tenant_basic(), path, json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_readme_states_the_matrix_as_the_table_says_it() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("<!-- authz-matrix -->").expect("README marker") + 21;
    let end = readme
        .find("<!-- /authz-matrix -->")
        .expect("README end marker");
    assert_eq!(
        readme[start..end].trim(),
        latchkey::domain::authz::markdown().trim(),
        "README's Client API matrix differs from domain::authz::CLIENT_ROUTES"
    );
}

// ---------------------------------------------------------------------------------------
// Regressions, one per bypass of issue #11
// ---------------------------------------------------------------------------------------

/// (1) A fresh track token cannot regenerate recovery codes, and a code cannot pass the
/// challenge of the action it was minted on.
#[tokio::test]
async fn a_track_token_cannot_mint_recovery_codes_nor_answer_with_them() {
    let w = world().await;
    w.enrolled("victim").await;
    let Tracked { bearer, state, .. } = w.track("victim", "stepUp").await;
    assert_eq!(state, "CHALLENGE_REQUIRED");
    let (status, e) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/recovery-codes",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(w.validate(&bearer).await["isValid"], false);

    // Granted by the backend (add:authenticators), codes are minted, but not for this action.
    let scoped = w.track_to_add("victim", "settings").await.bearer;
    let (status, r) = w
        .post(
            &scoped,
            "/v1/client/user-authenticators/recovery-codes",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let code = r["recoveryCodes"][0].as_str().unwrap().to_owned();
    let (status, e) = w
        .post(
            &scoped,
            "/v1/client/verify/recovery-code",
            json!({ "verificationCode": code }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert_eq!(w.validate(&scoped).await["isValid"], false);
    // A fresh proof of a strong factor on the action is the other way.
    let b = w.track("victim", "rotate").await.bearer;
    let after = w.pass_totp(&b).await;
    let (status, _) = w
        .post(
            &after,
            "/v1/client/user-authenticators/recovery-codes",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // ... within five minutes.
    let b = w.track("victim", "rotate-late").await.bearer;
    let after = w.pass_totp(&b).await;
    w.clock.advance(Duration::seconds(301));
    let (status, _) = w
        .post(
            &after,
            "/v1/client/user-authenticators/recovery-codes",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// (2) BLOCK and REVIEW_REQUIRED actions answered with a correct code keep their state.
#[tokio::test]
async fn block_and_review_actions_are_never_changed_by_a_ceremony() {
    let w = world().await;
    w.enrolled("u").await;
    for (action, state) in [("blocked", "BLOCK"), ("reviewed", "REVIEW_REQUIRED")] {
        let Tracked {
            bearer,
            idempotency_key: key,
            state: tracked,
            ..
        } = w.track("u", action).await;
        assert_eq!(tracked, state);
        let code = w.next_code();
        let (status, e) = w
            .post(
                &bearer,
                "/v1/client/verify/totp",
                json!({ "verificationCode": code }),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
        assert_eq!(w.action("u", action, &key).await["state"], state);
        let v = w.validate(&bearer).await;
        assert_eq!(
            (v["isValid"].clone(), v["state"].clone()),
            (json!(false), json!(state))
        );
    }
    // ALLOW, set by the backend, is not a challenge either.
    let bearer = w.track_in("u", "allowed", "ALLOW").await;
    let code = w.next_code();
    let (status, _) = w
        .post(
            &bearer,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(w.validate(&bearer).await["state"], "ALLOW");
}

/// (3) After CHALLENGE_FAILED, another method on the same action is refused.
#[tokio::test]
async fn a_failed_challenge_is_final_for_every_method() {
    let w = world().await;
    w.enrolled("u").await;
    let Tracked {
        bearer,
        idempotency_key: key,
        ..
    } = w.track("u", "pay").await;
    let right = w.next_code();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..5 {
        w.post(
            &bearer,
            "/v1/client/verify/totp",
            json!({ "verificationCode": wrong }),
        )
        .await;
    }
    assert_eq!(
        w.action("u", "pay", &key).await["state"],
        "CHALLENGE_FAILED"
    );
    let sent = w.mails_to("u@example.com");
    let (status, _) = w
        .post(&bearer, "/v1/client/challenge/email-otp", json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        w.mails_to("u@example.com"),
        sent,
        "no code is sent for a failed action"
    );
    let (status, _) = w
        .post(
            &bearer,
            "/v1/client/verify/totp",
            json!({ "verificationCode": right }),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let v = w.validate(&bearer).await;
    assert_eq!(
        (v["isValid"].clone(), v["state"].clone()),
        (json!(false), json!("CHALLENGE_FAILED"))
    );
    // The Server API may not revive it either; the refusal is audited.
    let (status, e) = w
        .send(
            Method::PATCH,
            Some(&w.server()),
            &format!("/v1/users/u/actions/pay/{key}"),
            Some(json!({ "state": "CHALLENGE_SUCCEEDED" })),
        )
        .await;
    assert_eq!(
        (status, e["errorCode"].clone()),
        (StatusCode::CONFLICT, json!("conflict")),
        "{e}"
    );
    let events = w
        .services
        .journal
        .events(TENANT, 1000, None, false)
        .await
        .unwrap()
        .0;
    assert!(events.iter().any(|e| e.action == "action.update.refused"));
    // Each refused route is audited once for the action, however often it is retried.
    let refused = |events: &[latchkey::domain::audit::AuditEvent]| {
        events
            .iter()
            .filter(|e| e.action == "client.refused")
            .count()
    };
    assert_eq!(refused(&events), 2, "challenge/email-otp and verify/totp");
    for _ in 0..5 {
        w.post(
            &bearer,
            "/v1/client/verify/totp",
            json!({ "verificationCode": right }),
        )
        .await;
    }
    let events = w
        .services
        .journal
        .events(TENANT, 1000, None, false)
        .await
        .unwrap()
        .0;
    assert_eq!(refused(&events), 2);
}

/// The software passkey keeps no resident keys: it is asked for a plain one.
fn soft(options: &Value) -> CreationChallengeResponse {
    let mut options = options.clone();
    options["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["authenticatorSelection"]["requireResidentKey"] = json!(false);
    serde_json::from_value(json!({ "publicKey": options })).unwrap()
}

async fn register_passkey(w: &World, bearer: &str, authenticator: &mut SoftPasskey) -> Value {
    let (status, o) = w
        .post(
            bearer,
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{o}");
    let credential = authenticator
        .do_registration(Url::parse(ORIGIN).unwrap(), soft(&o["options"]))
        .unwrap();
    let (status, r) = w
        .post(
            bearer,
            "/v1/client/user-authenticators/passkey",
            json!({ "challengeId": o["challengeId"], "registrationCredential": credential }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    r
}

/// (4) A pending TOTP enrollment started before the user's passkey cannot answer a later
/// challenge, and a pending email address never receives a challenge code.
#[tokio::test]
async fn stale_pending_enrollments_never_answer_challenges() {
    let w = world().await;
    // The attacker holds a token for a user who has not enrolled anything yet.
    let attacker = w.track("victim", "signUp").await.bearer;
    let (status, t) = w
        .post(&attacker, "/v1/client/user-authenticators/totp", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let secret = t["secret"].as_str().unwrap().to_owned();
    let (status, _) = w
        .post(
            &attacker,
            "/v1/client/user-authenticators/email-otp",
            json!({ "email": "mallory@evil.example" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        w.mails_to("mallory@evil.example"),
        1,
        "the enrollment's own code"
    );

    // The user signs up with a passkey on their own action.
    let own = w.track("victim", "signUp2").await.bearer;
    let mut passkey = SoftPasskey::new(true);
    let r = register_passkey(&w, &own, &mut passkey).await;
    assert!(r["recoveryCodes"].is_array());
    let (_, list) = w
        .send(
            Method::GET,
            Some(&w.server()),
            "/v1/users/victim/authenticators",
            None,
        )
        .await;
    assert_eq!(
        list.as_array().unwrap().len(),
        1,
        "only the passkey: {list}"
    );
    // The pending enrollments went with the passkey's verification, not only from view.
    let stored = w
        .services
        .store
        .query(
            latchkey::ports::store::Query::partition(latchkey::domain::users::user_pk(
                TENANT, "victim",
            ))
            .prefix("AUTH#")
            .limit(100),
        )
        .await
        .unwrap()
        .items;
    assert_eq!(stored.len(), 1, "{stored:?}");

    // The stale TOTP secret does not answer a later challenge.
    let later = w.track("victim", "withdraw").await.bearer;
    let stolen = app(&secret);
    let code = stolen.generate(w.now()).to_string();
    let (status, v) = w
        .post(
            &later,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert!(v["isVerified"] != true, "{status} {v}");
    assert_eq!(w.validate(&later).await["isValid"], false);
    // Nor on the action that started it: the user has a factor now, so completing needs the
    // enroll right the token no longer has (and the enrollment was removed anyway).
    let (status, v) = w
        .post(
            &attacker,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert!(v["isVerified"] != true, "{status} {v}");

    // The pending address receives nothing for a challenge.
    let (status, _) = w
        .post(&later, "/v1/client/challenge/email-otp", json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(w.mails_to("mallory@evil.example"), 1);
    let (_, list) = w
        .send(
            Method::GET,
            Some(&w.server()),
            "/v1/users/victim/authenticators",
            None,
        )
        .await;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

/// Pending enrollments are bound to the action that started them and expire.
#[tokio::test]
async fn a_pending_enrollment_completes_only_on_its_own_action_in_time() {
    let w = world().await;
    let Tracked {
        bearer: a,
        idempotency_key: key,
        ..
    } = w.track("u", "signUp").await;
    let (_, t) = w
        .post(&a, "/v1/client/user-authenticators/totp", json!({}))
        .await;
    let app = app(t["secret"].as_str().unwrap());
    // Another action of the same user does not complete it.
    let b = w.track("u", "other").await.bearer;
    let (status, v) = w
        .post(
            &b,
            "/v1/client/verify/totp",
            json!({ "verificationCode": app.generate(w.now()).to_string() }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    // Ten minutes on it has expired, even for its own action: tracked again with the same
    // idempotency key, the action gets a new token, and the enrollment is no candidate.
    w.clock.advance(Duration::seconds(601));
    let (status, t) = w
        .post(
            &w.server(),
            "/v1/users/u/actions/signUp",
            json!({ "idempotencyKey": key }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let again = format!("Bearer {}", t["token"].as_str().unwrap());
    let (status, v) = w
        .post(
            &again,
            "/v1/client/verify/totp",
            json!({ "verificationCode": app.generate(w.now()).to_string() }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (_, list) = w
        .send(
            Method::GET,
            Some(&w.server()),
            "/v1/users/u/authenticators",
            None,
        )
        .await;
    assert_eq!(list, json!([]));
}

/// Answers a token sign-in's options with an assertion whose client data says
/// `crossOrigin`, signed by the software passkey (its hashed-client-data interface signs
/// whatever client data it is given, as a browser inside a cross-origin iframe would).
fn assertion_with(authenticator: &mut SoftPasskey, options: &Value, cross_origin: bool) -> Value {
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let client_data = json!({
        "type": "webauthn.get",
        "challenge": options["challenge"],
        "origin": ORIGIN,
        "crossOrigin": cross_origin,
    })
    .to_string();
    let hash = Sha256::digest(client_data.as_bytes()).to_vec();
    let mut credential = authenticator
        .perform_auth(hash, rcr.public_key, 60_000)
        .unwrap();
    credential.response.client_data_json = client_data.into_bytes();
    serde_json::to_value(&credential).unwrap()
}

/// (5) A `crossOrigin: true` assertion is refused; the same assertion made top-level passes.
#[tokio::test]
async fn a_cross_origin_assertion_is_refused() {
    let w = world().await;
    let signup = w.track("u", "signUp").await.bearer;
    let mut passkey = SoftPasskey::new(true);
    register_passkey(&w, &signup, &mut passkey).await;
    for (cross, expect) in [(true, StatusCode::BAD_REQUEST), (false, StatusCode::OK)] {
        let bearer = w.track("u", &format!("pay{cross}")).await.bearer;
        let (status, o) = w
            .post(
                &bearer,
                "/v1/client/user-authenticators/passkey/authentication-options",
                json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{o}");
        let credential = assertion_with(&mut passkey, &o["options"], cross);
        let (status, v) = w
            .post(
                &bearer,
                "/v1/client/verify/passkey",
                json!({ "challengeId": o["challengeId"], "authenticationCredential": credential }),
            )
            .await;
        assert_eq!(status, expect, "crossOrigin {cross}: {v}");
        if cross {
            let valid = w.validate(&bearer).await;
            assert!(
                v["errorDescription"]
                    .as_str()
                    .unwrap()
                    .contains("cross-origin"),
                "{v}"
            );
            assert_eq!(valid["state"], "CHALLENGE_FAILED");
        } else {
            // The verify response names the user as the browser SDK shows it.
            assert_eq!(v["username"], "u", "{v}");
            assert_eq!(v["userDisplayName"], "u", "{v}");
            assert_eq!(
                w.validate(&format!("Bearer {}", v["accessToken"].as_str().unwrap()))
                    .await["isValid"],
                true
            );
        }
    }
}

/// (6) Twenty tracks send at most five codes to one user; twenty sign-ups send at most ten
/// to one address.
#[tokio::test]
async fn email_sends_are_limited_per_user_and_per_address() {
    let w = world().await;
    w.enrolled("u").await;
    let mut ok = 0;
    for n in 0..20 {
        let bearer = w.track("u", &format!("t{n}")).await.bearer;
        let (status, body) = w
            .post(&bearer, "/v1/client/challenge/email-otp", json!({}))
            .await;
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => assert_eq!(body["errorCode"], "too_many_requests"),
            other => panic!("{other} {body}"),
        }
    }
    assert_eq!((ok, w.mails_to("u@example.com")), (5, 5));
    // Twenty minutes on, the window has passed.
    w.clock.advance(Duration::minutes(21));
    let bearer = w.track("u", "later").await.bearer;
    let (status, _) = w
        .post(&bearer, "/v1/client/challenge/email-otp", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Sign-ups of twenty new users naming one address.
    let mut ok = 0;
    for n in 0..20 {
        let bearer = w.track(&format!("new{n}"), "signUp").await.bearer;
        let (status, _) = w
            .post(
                &bearer,
                "/v1/client/user-authenticators/email-otp",
                json!({ "email": "Target@Example.org" }),
            )
            .await;
        if status == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!((ok, w.mails_to("Target@Example.org")), (10, 10));
}

/// Usernameless sign-in with only the tenant id is rate-limited per tenant and per client
/// address, and its failures do not grow the audit log one event per request.
#[tokio::test]
async fn anonymous_calls_are_bounded() {
    // Low limits on anonymous calls.
    let w = setup()
        .limits(AnonymousLimits {
            per_client_per_minute: 10,
            per_tenant_per_minute: 16,
            ..AnonymousLimits::default()
        })
        .build()
        .await;
    let services = w.services.clone();
    // `Basic <tenant id>` and JSON, without an `Origin`.
    let world = &w;
    let call = |uri: &'static str, body: Value| {
        let req = Request::post(uri)
            .header(header::AUTHORIZATION, world.tenant_basic())
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        async move {
            let r = world.request(req).await;
            (r.status, r.json())
        }
    };
    let mut ok = 0;
    let mut failed = 0;
    for _ in 0..40 {
        let (status, o) = call(
            "/v1/client/user-authenticators/passkey/authentication-options",
            json!({}),
        )
        .await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(o["errorCode"], "too_many_requests");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{o}");
        ok += 1;
        // A broken assertion: an anonymous failure (finishing is not counted: it needs the
        // ceremony id a counted call handed out).
        let (status, _) = call(
            "/v1/client/verify/passkey",
            json!({ "challengeId": o["challengeId"], "authenticationCredential": {
                "id": "AAAA", "rawId": "AAAA", "type": "public-key",
                "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA" },
                "extensions": {} } }),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        failed += 1;
    }
    assert_eq!(ok, 16, "the tenant's 16 a minute (8 shards of 2)");
    // A verify without a ceremony from a counted call creates nothing.
    let (status, _) = call(
        "/v1/client/verify/passkey",
        json!({ "challengeId": "made-up", "authenticationCredential": {
            "id": "AAAA", "rawId": "AAAA", "type": "public-key",
            "response": { "authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA" },
            "extensions": {} } }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A minute later (and the one before it gone), the tenant may sign in again.
    w.clock.advance(Duration::minutes(2));
    let (status, _) = call("/v1/client/challenge", json!({ "action": "signIn" })).await;
    assert_eq!(status, StatusCode::OK);

    // Per client address: ten a minute each, whatever the others do.
    for n in 0..10 {
        latchkey::domain::limits::take_anonymous(&services, TENANT, Some("203.0.113.9"))
            .await
            .unwrap_or_else(|e| panic!("call {n}: {e}"));
    }
    let over =
        latchkey::domain::limits::take_anonymous(&services, TENANT, Some("203.0.113.9")).await;
    assert!(matches!(
        over,
        Err(latchkey::domain::Error::TooManyRequests)
    ));
    latchkey::domain::limits::take_anonymous(&services, TENANT, Some("198.51.100.7"))
        .await
        .unwrap();

    // The raw store names no client address: counters are keyed by a keyed hash.
    let page = services
        .store
        .query(
            latchkey::ports::store::Query::partition(format!("T#{TENANT}#FAIL"))
                .prefix("")
                .limit(10),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "one counter for the hour");
    let events = services
        .journal
        .events(TENANT, 1000, None, false)
        .await
        .unwrap()
        .0;
    let failures = events
        .iter()
        .filter(|e| e.action == "passkey.verify.failed")
        .count();
    assert_eq!(failed, 16);
    assert_eq!(
        failures, 2,
        "16 anonymous failures, audited at the 1st and 10th"
    );
}

/// A factor enrolled on an action (with `add:authenticators`) does not answer that action's
/// challenge: otherwise the scope would be a way past the challenge. It answers later ones.
#[tokio::test]
async fn a_factor_enrolled_on_an_action_cannot_answer_its_challenge() {
    let w = world().await;
    let (status, _) = w
        .post(
            &w.server(),
            "/v1/users/u/authenticators",
            json!({ "verificationMethod": "EMAIL_OTP", "email": "u@example.com" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let a = w.track_to_add("u", "stepUp").await.bearer;
    let (_, t) = w
        .post(&a, "/v1/client/user-authenticators/totp", json!({}))
        .await;
    let app = app(t["secret"].as_str().unwrap());
    let code = app.generate(w.now()).to_string();
    let (status, v) = w
        .post(
            &a,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["userAuthenticator"]["verificationMethod"],
        "AUTHENTICATOR_APP"
    );
    // Enrolled, but the action's challenge is still open: not the user's first factor.
    let v = w.validate(&a).await;
    assert_eq!(
        (v["isValid"].clone(), v["state"].clone()),
        (json!(false), json!("CHALLENGE_REQUIRED"))
    );
    w.clock.advance(Duration::seconds(30));
    let code = app.generate(w.now()).to_string();
    let (status, v) = w
        .post(
            &a,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert!(v["isVerified"] != true, "{status} {v}");
    assert_eq!(w.validate(&a).await["isValid"], false);
    // On a later action it is a factor like any other.
    let b = w.track("u", "pay").await.bearer;
    let (status, v) = w
        .post(
            &b,
            "/v1/client/verify/totp",
            json!({ "verificationCode": code }),
        )
        .await;
    assert_eq!(
        (status, v["isVerified"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );
}

/// A caller cannot take (and so delete) a ceremony item of another kind by naming its id:
/// the one-time-code challenges live under token-bound ids anyone holding the token can
/// compute, and deleting one would reset its attempt count.
#[tokio::test]
async fn a_challenge_cannot_be_deleted_through_another_ceremony() {
    let w = world().await;
    w.enrolled("u").await;
    let Tracked {
        bearer,
        idempotency_key: key,
        ..
    } = w.track("u", "pay").await;
    let right = w.next_code();
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for _ in 0..4 {
        let (_, v) = w
            .post(
                &bearer,
                "/v1/client/verify/totp",
                json!({ "verificationCode": wrong }),
            )
            .await;
        assert_eq!(v["failureReason"], "CODE_INVALID_OR_EXPIRED");
    }
    // The TOTP challenge's id, as `ceremony::bound_id` derives it from the token's claims.
    let claims =
        latchkey::domain::tokens::verify_any(&w.services, bearer.trim_start_matches("Bearer "))
            .await
            .unwrap()
            .unwrap();
    let mut h = Sha256::new();
    for part in [TENANT, &claims.sub, &claims.act, &claims.idk] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest[..20].iter().map(|b| format!("{b:02x}")).collect();
    for id in [format!("totp.{hex}"), format!("totp.{hex}")] {
        let (status, _) = w
            .post(
                &w.tenant_basic(),
                "/v1/client/user-authenticators/passkey/authentication-options",
                json!({ "challengeId": id }),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    // The fifth wrong code still exhausts the challenge and fails the action.
    let (_, v) = w
        .post(
            &bearer,
            "/v1/client/verify/totp",
            json!({ "verificationCode": wrong }),
        )
        .await;
    assert_eq!(v["failureReason"], "MAX_ATTEMPTS_EXCEEDED", "{v}");
    assert_eq!(
        w.action("u", "pay", &key).await["state"],
        "CHALLENGE_FAILED"
    );
}
