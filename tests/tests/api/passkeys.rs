//! Passkey ceremonies end to end through the gateway, with webauthn-authenticator-rs's
//! software passkey standing in for the browser's authenticator.
use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Method, Request, StatusCode, header};
use latchkey_tests::{ORIGIN, World, example_settings};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt as _;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{
    CreationChallengeResponse, PublicKeyCredential, RequestChallengeResponse,
};

async fn world() -> World {
    World::setup()
        .tenant("t-pk", example_settings("Example"))
        .build()
        .await
}

/// The ceremonies, on the shared world (the management API's tests sign in with them too).
pub(crate) trait Passkeys {
    async fn register(&self, auth: &mut SoftPasskey, token: &str) -> (Value, String);
    async fn assertion(
        &self,
        auth_header: &str,
        body: Value,
        authenticator: &mut SoftPasskey,
        allow: Option<&str>,
    ) -> (String, PublicKeyCredential);
    async fn verify(
        &self,
        auth_header: &str,
        challenge: &str,
        credential: &Value,
    ) -> (StatusCode, Value);
}

impl Passkeys for World {
    /// Registers a passkey with `token`; returns the finish response and the user handle.
    async fn register(&self, auth: &mut SoftPasskey, token: &str) -> (Value, String) {
        let bearer = format!("Bearer {token}");
        let (status, o) = self
            .post(
                &bearer,
                "/v1/client/user-authenticators/passkey/registration-options",
                json!({"username": "jane"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{o}");
        let handle = o["options"]["user"]["id"].as_str().unwrap().to_owned();
        // Discoverable, for usernameless sign-in; user verification required.
        assert_eq!(
            o["options"]["authenticatorSelection"]["residentKey"],
            "required"
        );
        assert_eq!(
            o["options"]["authenticatorSelection"]["userVerification"],
            "required"
        );
        let credential = auth
            .do_registration(Url::parse(ORIGIN).unwrap(), soft(&o["options"]))
            .unwrap();
        let (status, r) = self
            .post(
                &bearer,
                "/v1/client/user-authenticators/passkey",
                json!({"challengeId": o["challengeId"], "registrationCredential": credential}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{r}");
        // The software passkey's AAGUID is zero: it gets the generic name and no AAGUID.
        let view = &r["userAuthenticator"]["webauthnCredential"];
        assert_eq!(view["name"], "Passkey");
        assert!(view.get("aaguid").is_none());
        (r, handle)
    }

    /// Starts a sign-in and has the authenticator answer it.
    async fn assertion(
        &self,
        auth_header: &str,
        body: Value,
        authenticator: &mut SoftPasskey,
        allow: Option<&str>,
    ) -> (String, PublicKeyCredential) {
        let (status, o) = self
            .post(
                auth_header,
                "/v1/client/user-authenticators/passkey/authentication-options",
                body,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{o}");
        let mut options = o["options"].clone();
        if let Some(id) = allow {
            // A browser picks a discoverable credential itself; the software passkey needs it named.
            options["allowCredentials"] = json!([{ "type": "public-key", "id": id }]);
        }
        let rcr: RequestChallengeResponse =
            serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let credential = authenticator
            .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
            .unwrap();
        (o["challengeId"].as_str().unwrap().to_owned(), credential)
    }

    async fn verify(
        &self,
        auth_header: &str,
        challenge: &str,
        credential: &Value,
    ) -> (StatusCode, Value) {
        self.post(
            auth_header,
            "/v1/client/verify/passkey",
            json!({"challengeId": challenge, "authenticationCredential": credential}),
        )
        .await
    }
}

/// The software passkey keeps no resident keys: it is asked for a plain one, and the tests
/// supply the user handle and credential id a browser's discoverable credential would.
pub(crate) fn soft(options: &Value) -> CreationChallengeResponse {
    let mut options = options.clone();
    options["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["authenticatorSelection"]["requireResidentKey"] = json!(false);
    serde_json::from_value(json!({ "publicKey": options })).unwrap()
}

/// The credential id of a registration's answer.
pub(crate) fn credential_id_of(registered: &Value) -> String {
    registered["userAuthenticator"]["webauthnCredential"]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned()
}

pub(crate) fn with_user_handle(credential: &PublicKeyCredential, handle: &str) -> Value {
    let mut v = serde_json::to_value(credential).unwrap();
    v["response"]["userHandle"] = json!(handle);
    v
}

#[tokio::test]
async fn register_sign_in_with_a_token_and_usernameless_then_validate() {
    let w = world().await;
    let mut authenticator = SoftPasskey::new(true);

    let signup = w.track("u1", "signUp").await.token;
    assert_eq!(w.validate(&signup).await["isValid"], false);
    let (registered, handle) = w.register(&mut authenticator, &signup).await;
    assert_eq!(
        (
            registered["isVerified"].clone(),
            registered["userId"].clone()
        ),
        (json!(true), json!("u1"))
    );
    // The first strong authenticator comes with ten recovery codes, shown this once.
    assert_eq!(registered["recoveryCodes"].as_array().unwrap().len(), 10);
    let v = w.validate(&signup).await;
    assert_eq!(
        (v["isValid"].clone(), v["state"].clone()),
        (json!(true), json!("CHALLENGE_SUCCEEDED"))
    );
    let cred_id = credential_id_of(&registered);

    // Sign in with a token from track.
    let token = w.track("u1", "withdraw").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w
        .assertion(&bearer, json!({}), &mut authenticator, None)
        .await;
    let (status, ok) = w
        .verify(
            &bearer,
            &challenge,
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(
        (ok["isVerified"].clone(), ok["userId"].clone()),
        (json!(true), json!("u1"))
    );
    assert_eq!(ok["userAuthenticatorId"], registered["userAuthenticatorId"]);
    let v = w.validate(&token).await;
    assert_eq!(
        (v["isValid"].clone(), v["action"].clone()),
        (json!(true), json!("withdraw"))
    );

    // Usernameless, for a named action: the server learns the user from the credential.
    let (_, c) = w
        .post(
            &w.tenant_basic(),
            "/v1/client/challenge",
            json!({"action": "login"}),
        )
        .await;
    let (challenge, credential) = w
        .assertion(
            &w.tenant_basic(),
            json!({"challengeId": c["challengeId"]}),
            &mut authenticator,
            Some(&cred_id),
        )
        .await;
    let (status, ok) = w
        .verify(
            &w.tenant_basic(),
            &challenge,
            &with_user_handle(&credential, &handle),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(ok["userId"], "u1");
    let v = w.validate(ok["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        (
            v["isValid"].clone(),
            v["state"].clone(),
            v["action"].clone()
        ),
        (json!(true), json!("CHALLENGE_SUCCEEDED"), json!("login"))
    );

    // Registration excluded the existing credential next time.
    let again = w.track("u1", "addPasskey").await.token;
    let (status, _) = w
        .post(
            &format!("Bearer {again}"),
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "another authenticator needs add:authenticators"
    );
    let again = w.track_to_add("u1", "addPasskey").await.token;
    let (_, o) = w
        .post(
            &format!("Bearer {again}"),
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    assert_eq!(o["options"]["excludeCredentials"][0]["id"], json!(cred_id));

    let report = w.audit("t-pk").await;
    assert_eq!(report.broken, None);
    let (events, _) = w
        .services
        .journal
        .events("t-pk", 1000, None, false)
        .await
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "passkey.register")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "passkey.verify")
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ceremony_finishes_once_even_when_twenty_race() {
    let w = Arc::new(world().await);
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("u2", "signUp").await.token;
    w.register(&mut authenticator, &signup).await;
    let token = w.track("u2", "withdraw").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w
        .assertion(&bearer, json!({}), &mut authenticator, None)
        .await;
    let credential = serde_json::to_value(&credential).unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (w, bearer, challenge, credential) = (
            Arc::clone(&w),
            bearer.clone(),
            challenge.clone(),
            credential.clone(),
        );
        tasks.push(tokio::spawn(async move {
            w.verify(&bearer, &challenge, &credential).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::OK {
            ok += 1;
        } else {
            // The ceremony is gone (400), or the action has already succeeded (403).
            assert!(
                body["errorCode"] == "invalid_request" || body["errorCode"] == "forbidden",
                "{body}"
            );
        }
    }
    assert_eq!(ok, 1, "exactly one finish wins");
    let (status, _) = w.verify(&bearer, &challenge, &credential).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "finishing twice is refused");
}

#[tokio::test]
async fn refused_expired_tampered_foreign_and_other_users_credentials() {
    let w = world().await;
    let mut alice = SoftPasskey::new(true);
    let mut bob = SoftPasskey::new(true);
    let a = w.track("alice", "signUp").await.token;
    let (ra, alice_handle) = w.register(&mut alice, &a).await;
    let b = w.track("bob", "signUp").await.token;
    let (rb, _) = w.register(&mut bob, &b).await;
    let alice_cred = ra["userAuthenticator"]["webauthnCredential"]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_cred = rb["userAuthenticator"]["webauthnCredential"]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned();

    // Expired: the clock moves past the ceremony's life.
    let token = w.track("alice", "late").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w.assertion(&bearer, json!({}), &mut alice, None).await;
    w.clock.advance(time::Duration::minutes(6));
    let (status, _) = w
        .verify(
            &bearer,
            &challenge,
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v = w.validate(&token).await;
    assert_eq!(v["isValid"], false);

    // Tampered clientDataJSON (origin rewritten) and tampered signature.
    let token = w.track("alice", "tamper").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w.assertion(&bearer, json!({}), &mut alice, None).await;
    let mut forged = serde_json::to_value(&credential).unwrap();
    let cdj = String::from_utf8(
        URL_SAFE_NO_PAD
            .decode(forged["response"]["clientDataJSON"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    forged["response"]["clientDataJSON"] =
        json!(URL_SAFE_NO_PAD.encode(cdj.replace(ORIGIN, "https://evil-example.com")));
    let (status, _) = w.verify(&bearer, &challenge, &forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The refusal failed the action, for good: its token may not start another ceremony.
    let (status, _) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/passkey/authentication-options",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(w.validate(&token).await["state"], "CHALLENGE_FAILED");
    let token = w.track("alice", "tamper-signature").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w.assertion(&bearer, json!({}), &mut alice, None).await;
    let mut forged = serde_json::to_value(&credential).unwrap();
    let mut sig = URL_SAFE_NO_PAD
        .decode(forged["response"]["signature"].as_str().unwrap())
        .unwrap();
    let last = sig.len() - 1;
    sig[last] ^= 1;
    forged["response"]["signature"] = json!(URL_SAFE_NO_PAD.encode(sig));
    let (status, _) = w.verify(&bearer, &challenge, &forged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let events = w
        .services
        .journal
        .events("t-pk", 1000, None, false)
        .await
        .unwrap()
        .0;
    assert!(
        events.iter().any(|e| e.action == "passkey.verify.failed"),
        "failures are audited"
    );

    // Bob's credential in Alice's (token) flow.
    let token = w.track("alice", "mixup").await.token;
    let bearer = format!("Bearer {token}");
    let (status, o) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/passkey/authentication-options",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut options = o["options"].clone();
    options["allowCredentials"] = json!([{ "type": "public-key", "id": bob_cred }]);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let credential = bob
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let (status, _) = w
        .verify(
            &bearer,
            o["challengeId"].as_str().unwrap(),
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v = w.validate(&token).await;
    assert_eq!(
        (v["isValid"].clone(), v["state"].clone()),
        (json!(false), json!("CHALLENGE_FAILED"))
    );

    // Usernameless: Bob's credential presented with Alice's user handle.
    let (challenge, credential) = w
        .assertion(&w.tenant_basic(), json!({}), &mut bob, Some(&bob_cred))
        .await;
    let (status, _) = w
        .verify(
            &w.tenant_basic(),
            &challenge,
            &with_user_handle(&credential, &alice_handle),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "credential and user handle must belong to one user"
    );
    let _ = alice_cred;

    // A page on an origin the tenant did not allow is refused before any ceremony.
    let req = Request::post("/v1/client/user-authenticators/passkey/authentication-options")
        .header(header::AUTHORIZATION, w.tenant_basic())
        .header(header::ORIGIN, "https://evil-example.com")
        .body(Body::from("{}"))
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}

/// The relying party matches origins exactly: a subdomain of the RP id is a valid WebAuthn
/// origin for the authenticator, but not one the tenant allowed.
#[tokio::test]
async fn origins_are_matched_exactly_not_by_suffix() {
    let w = world().await;
    let mut authenticator = SoftPasskey::new(true);
    let token = w.track("u3", "signUp").await.token;
    let bearer = format!("Bearer {token}");
    let (_, o) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    let credential = authenticator
        .do_registration(
            Url::parse("https://sub.example.com").unwrap(),
            soft(&o["options"]),
        )
        .unwrap();
    let (status, body) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/passkey",
            json!({"challengeId": o["challengeId"], "registrationCredential": credential}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(w.validate(&token).await["state"], "CHALLENGE_FAILED");
}

#[tokio::test]
async fn preflight_and_missing_tokens() {
    let w = world().await;
    let req = Request::builder()
        .method(Method::OPTIONS)
        .uri("/v1/client/verify/passkey")
        .header(header::ORIGIN, ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .body(Body::empty())
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    assert!(res.status().is_success());
    assert_eq!(res.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], ORIGIN);
    assert!(
        res.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    let (status, body) = w
        .post(
            &w.tenant_basic(),
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let (status, _) = w
        .post("Bearer nonsense", "/v1/client/verify/passkey", json!({}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = w.track("u4", "x").await.token;
    w.clock.advance(time::Duration::minutes(11));
    let (status, body) = w
        .post(
            &format!("Bearer {token}"),
            "/v1/client/user-authenticators/passkey/authentication-options",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (StatusCode::UNAUTHORIZED, json!("expired_token"))
    );
}

/// One CORS policy, fed by the tenants' allowed origins: the world's tenant allows
/// `https://example.com`, another tenant `https://b.example` and `http://localhost:*`.
#[tokio::test]
async fn cors_follows_the_tenants_origins_and_disallowed_origins_get_no_cors_headers() {
    use latchkey::domain::authz::CLIENT_ROUTES;
    use latchkey::domain::tenants::TenantSettings;
    let w = World::setup()
        .tenant("t-pk", example_settings("Example"))
        .other_tenant(
            "t-b",
            TenantSettings {
                rp_id: "b.example".into(),
                allowed_origins: vec!["https://b.example".into(), "http://localhost:*".into()],
                ..Default::default()
            },
        )
        .build()
        .await;
    let send = |method: Method, path: &str, origin: &str, auth: Option<String>, preflight: bool| {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::ORIGIN, origin)
            .header(header::CONTENT_TYPE, "application/json");
        if preflight {
            req = req.header("access-control-request-method", "POST").header(
                "access-control-request-headers",
                "authorization, content-type",
            );
        }
        if let Some(auth) = auth {
            req = req.header(header::AUTHORIZATION, auth);
        }
        let req = req.body(Body::from("{}")).unwrap();
        let app = w.app.clone();
        async move { app.oneshot(req).await.unwrap() }
    };
    let cors_headers = |res: &http::Response<Body>| -> Vec<String> {
        res.headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k.starts_with("access-control-"))
            .collect()
    };
    let allows = |res: &http::Response<Body>, origin: &str| {
        res.headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap())
            == Some(origin)
            && res.headers()[header::ACCESS_CONTROL_ALLOW_CREDENTIALS] == "true"
    };

    // Preflights, on every path of the matrix and on an unknown one: an origin some tenant
    // allows gets the CORS answer; any other origin gets none of its headers.
    let mut paths: Vec<&str> = CLIENT_ROUTES.iter().map(|r| r.path).collect();
    paths.push("/v1/client/no-such-route");
    for path in paths {
        for origin in [ORIGIN, "https://b.example", "http://localhost:5173"] {
            let res = send(Method::OPTIONS, path, origin, None, true).await;
            assert_eq!(res.status(), StatusCode::NO_CONTENT, "{path} {origin}");
            assert!(allows(&res, origin), "preflight {path} from {origin}");
            assert!(
                res.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
                    .to_str()
                    .unwrap()
                    .contains("POST")
            );
            assert!(
                res.headers()[header::VARY]
                    .to_str()
                    .unwrap()
                    .contains("Origin")
            );
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://localhost.evil.example",
            "https://example.com.evil.example",
            "http://localhost:*",
        ] {
            let res = send(Method::OPTIONS, path, origin, None, true).await;
            assert_eq!(
                cors_headers(&res),
                Vec::<String>::new(),
                "preflight {path} from {origin}"
            );
        }
    }

    // Real requests that name the tenant follow that tenant's list alone.
    let options = "/v1/client/user-authenticators/passkey/authentication-options";
    let res = send(Method::POST, options, ORIGIN, Some(w.tenant_basic()), false).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(allows(&res, ORIGIN));
    assert_eq!(
        res.headers()[header::ACCESS_CONTROL_EXPOSE_HEADERS],
        "x-request-id"
    );
    for origin in [
        "https://evil.example",
        "https://b.example",
        "http://localhost:5173",
    ] {
        let res = send(Method::POST, options, origin, Some(w.tenant_basic()), false).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{origin}");
        assert_eq!(cors_headers(&res), Vec::<String>::new(), "{origin}");
        assert!(
            res.headers()[header::VARY]
                .to_str()
                .unwrap()
                .contains("Origin")
        );
    }

    // Answers with no tenant (an unknown route, a bad credential) are readable by origins some
    // tenant allows, in the wire format, and by no other.
    for (path, auth, status) in [
        (
            "/v1/client/no-such-route",
            Some(w.tenant_basic()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/client/user-authenticators/nope/x",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "/v1/client/verify/passkey",
            Some("Bearer nonsense".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
        (
            options,
            Some("Basic bm8tc3VjaC10ZW5hbnQ=".to_owned()),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let res = send(Method::POST, path, "https://b.example", auth.clone(), false).await;
        assert_eq!(res.status(), status, "{path}");
        assert!(allows(&res, "https://b.example"), "{path}");
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert!(body["errorCode"].is_string(), "{path}: {body}");
        let res = send(Method::POST, path, "https://evil.example", auth, false).await;
        assert_eq!(res.status(), status, "{path}");
        assert_eq!(cors_headers(&res), Vec::<String>::new(), "{path}");
    }

    // A request without Origin (a server, curl) is not a CORS request: no headers added.
    let req = Request::post(options)
        .header(header::AUTHORIZATION, w.tenant_basic())
        .body(Body::from("{}"))
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(cors_headers(&res), Vec::<String>::new());
}

/// Starts a passkey sign-in with a token and lets `edit` change the options the authenticator
/// sees (as a compromised or misbehaving client could); returns the challenge and assertion.
async fn edited_assertion(
    w: &World,
    bearer: &str,
    authenticator: &mut SoftPasskey,
    edit: impl FnOnce(&mut Value),
) -> (String, Value) {
    let (status, o) = w
        .post(
            bearer,
            "/v1/client/user-authenticators/passkey/authentication-options",
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{o}");
    let mut options = o["options"].clone();
    edit(&mut options);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let credential = authenticator
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    (
        o["challengeId"].as_str().unwrap().to_owned(),
        serde_json::to_value(&credential).unwrap(),
    )
}

fn auth_data_flags(assertion: &Value) -> u8 {
    URL_SAFE_NO_PAD
        .decode(assertion["response"]["authenticatorData"].as_str().unwrap())
        .unwrap()[32]
}

/// Passkeys require user verification: an assertion whose authenticator data lacks the UV flag
/// is refused even though its signature is valid, and the tracked action fails.
#[tokio::test]
async fn an_assertion_without_user_verification_is_refused() {
    let w = world().await;
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("uv", "signUp").await.token;
    w.register(&mut authenticator, &signup).await;

    let token = w.track("uv", "pay").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, assertion) = edited_assertion(&w, &bearer, &mut authenticator, |o| {
        assert_eq!(o["userVerification"], "required");
        // The software authenticator sets UV only when asked to.
        o["userVerification"] = json!("discouraged");
    })
    .await;
    assert_eq!(auth_data_flags(&assertion) & 0x04, 0, "no UV flag");
    assert_eq!(auth_data_flags(&assertion) & 0x01, 1, "user present");
    let (status, body) = w.verify(&bearer, &challenge, &assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let v = w.validate(&token).await;
    assert_eq!(
        (v["isValid"].clone(), v["state"].clone()),
        (json!(false), json!("CHALLENGE_FAILED"))
    );

    // The same authenticator, verifying the user, is accepted: the refusal was the flag.
    let token = w.track("uv", "pay").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, assertion) = edited_assertion(&w, &bearer, &mut authenticator, |_| {}).await;
    assert_eq!(auth_data_flags(&assertion) & 0x04, 0x04);
    let (status, body) = w.verify(&bearer, &challenge, &assertion).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An assertion signed for another RP id (a valid signature over the wrong rpIdHash) is
/// refused: the RP id is the tenant's, exactly.
#[tokio::test]
async fn an_assertion_for_a_wrong_rp_id_is_refused() {
    let w = world().await;
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("rp", "signUp").await.token;
    w.register(&mut authenticator, &signup).await;

    let token = w.track("rp", "pay").await.token;
    let bearer = format!("Bearer {token}");
    let (challenge, assertion) = edited_assertion(&w, &bearer, &mut authenticator, |o| {
        assert_eq!(o["rpId"], "example.com");
        // A registrable suffix of the origin's host: the client allows it, the RP must not.
        o["rpId"] = json!("com");
    })
    .await;
    let auth_data = URL_SAFE_NO_PAD
        .decode(assertion["response"]["authenticatorData"].as_str().unwrap())
        .unwrap();
    use sha2::Digest as _;
    assert_eq!(&auth_data[..32], sha2::Sha256::digest(b"com").as_slice());
    let (status, body) = w.verify(&bearer, &challenge, &assertion).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let v = w.validate(&token).await;
    assert_eq!(v["state"], "CHALLENGE_FAILED");
}

/// Security keys (docs/wire.md §5.1): bare options and bare credentials, the ceremony found from the
/// token; enroll, then verify a later action, which validate then reports.
#[tokio::test]
async fn security_keys_enroll_and_verify_with_bare_objects() {
    let w = world().await;
    // A security key need not verify the user: this software key cannot.
    let mut key = SoftPasskey::new(false);
    let t = w.track("sk", "addKey").await.token;
    let bearer = format!("Bearer {t}");
    let p = "/v1/client/user-authenticators/security-key";
    let (status, options) = w
        .post(&bearer, &format!("{p}/registration-options"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert!(options.get("challengeId").is_none() && options.get("options").is_none());
    assert!(options["challenge"].is_string() && options["user"]["id"].is_string());
    assert_eq!(options["rp"]["id"], "example.com");
    assert_ne!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    // No credProtect request: with residentKey "discouraged" Chromium refuses it
    // (NotSupportedError, "Requested protection policy is inconsistent").
    assert_eq!(
        options["authenticatorSelection"]["residentKey"],
        "discouraged"
    );
    assert!(
        options["extensions"]
            .get("credentialProtectionPolicy")
            .is_none(),
        "{options}"
    );
    assert!(
        options["extensions"]
            .get("enforceCredentialProtectionPolicy")
            .is_none()
    );
    let credential = key
        .do_registration(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(json!({ "publicKey": options })).unwrap(),
        )
        .unwrap();
    let bare = serde_json::to_value(&credential).unwrap();
    let (status, r) = w.post(&bearer, p, bare.clone()).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["isVerified"], true);
    assert!(r["accessToken"].is_string());
    let ua = &r["userAuthenticator"];
    assert_eq!(ua["verificationMethod"], "SECURITY_KEY");
    assert_eq!(ua["webauthnCredential"]["name"], "Security key");
    // The same registration again, with the token it returned: the ceremony is gone.
    let after = format!("Bearer {}", r["accessToken"].as_str().unwrap());
    let (status, _) = w.post(&after, p, bare).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v = w.validate(&t).await;
    assert_eq!(v["state"], "CHALLENGE_SUCCEEDED");

    // Listed by the Server API with its WebAuthn view.
    let (status, list) = w.get(&w.server(), "/v1/users/sk/authenticators").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list[0]["verificationMethod"], "SECURITY_KEY");
    let cred_id = list[0]["webauthnCredential"]["credentialId"].clone();
    assert!(cred_id.is_string());

    // Verify a later action with the key.
    let t = w.track("sk", "withdraw").await.token;
    let bearer = format!("Bearer {t}");
    let (status, options) = w
        .post(&bearer, &format!("{p}/authentication-options"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{options}");
    assert!(options.get("challengeId").is_none());
    assert_eq!(options["allowCredentials"][0]["id"], cred_id);
    let assertion = key
        .do_authentication(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(json!({ "publicKey": options })).unwrap(),
        )
        .unwrap();
    let bare = serde_json::to_value(&assertion).unwrap();
    let (status, ok) = w
        .post(&bearer, "/v1/client/verify/security-key", bare.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(
        (ok["isVerified"].clone(), ok["userId"].clone()),
        (json!(true), json!("sk"))
    );
    let v = w.validate(ok["accessToken"].as_str().unwrap()).await;
    assert_eq!(
        (v["isValid"].clone(), v["action"].clone()),
        (json!(true), json!("withdraw"))
    );
    // Replayed: refused (the action is spent, and the ceremony gone).
    let (status, _) = w
        .post(&bearer, "/v1/client/verify/security-key", bare)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A passkey registration for the same user excludes the security key.
    let t = w.track_to_add("sk", "addPasskey").await.token;
    let (_, o) = w
        .post(
            &format!("Bearer {t}"),
            "/v1/client/user-authenticators/passkey/registration-options",
            json!({}),
        )
        .await;
    assert_eq!(o["options"]["excludeCredentials"][0]["id"], cred_id);

    // Security keys need a token; the tenant id alone is not enough.
    let (status, _) = w
        .post(
            &w.tenant_basic(),
            &format!("{p}/authentication-options"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (events, _) = w
        .services
        .journal
        .events("t-pk", 1000, None, false)
        .await
        .unwrap();
    for what in ["security_key.register", "security_key.verify"] {
        assert_eq!(
            events.iter().filter(|e| e.action == what).count(),
            1,
            "{what}"
        );
    }
}

/// Another user's security key, presented in this user's security-key ceremony, is refused.
#[tokio::test]
async fn another_users_security_key_is_refused() {
    let w = world().await;
    let p = "/v1/client/user-authenticators/security-key";
    let mut keys = Vec::new();
    for user in ["ska", "skb"] {
        let mut key = SoftPasskey::new(false);
        let t = w.track(user, "addKey").await.token;
        let bearer = format!("Bearer {t}");
        let (_, options) = w
            .post(&bearer, &format!("{p}/registration-options"), json!({}))
            .await;
        let credential = key
            .do_registration(
                Url::parse(ORIGIN).unwrap(),
                serde_json::from_value(json!({ "publicKey": options })).unwrap(),
            )
            .unwrap();
        let (status, r) = w
            .post(&bearer, p, serde_json::to_value(&credential).unwrap())
            .await;
        assert_eq!(status, StatusCode::OK, "{r}");
        keys.push((
            key,
            r["userAuthenticator"]["webauthnCredential"]["credentialId"].clone(),
        ));
    }
    let t = w.track("ska", "withdraw").await.token;
    let bearer = format!("Bearer {t}");
    let (_, mut options) = w
        .post(&bearer, &format!("{p}/authentication-options"), json!({}))
        .await;
    options["allowCredentials"] = json!([{ "type": "public-key", "id": keys[1].1 }]);
    let assertion = keys[1]
        .0
        .do_authentication(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(json!({ "publicKey": options })).unwrap(),
        )
        .unwrap();
    let (status, _) = w
        .post(
            &bearer,
            "/v1/client/verify/security-key",
            serde_json::to_value(&assertion).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(w.validate(&t).await["state"], "CHALLENGE_FAILED");
}

/// The store round trips of a passkey sign-in and of track and validate, counted by a store
/// decorator (each is a network call on DynamoDB). A ratchet: today's counts are the ceiling, so
/// a change that adds a round trip fails here, naming the calls.
///
/// Each request's tenant comes from the 30-second record cache (no call); a secret key is read
/// on every Server API request (a revocation holds at once everywhere). Track: the key, the
/// user's authenticators, then one transaction (the action under an absence condition, its
/// event). Options with a token: the token's action and the user's authenticators (the
/// authorization; the passkeys to offer), the ceremony, which records the facts the decision
/// was made on. Verify: the ceremony (its facts decide the token's access,
/// `authz::Facts::Ceremony`), the credential record (owner, user handle, public key, counter,
/// registered name), one transaction (the ceremony's conditional delete, the record under its
/// version, the authenticator item updated in place, the action at the version the options
/// read, the event). Usernameless: options is the ceremony and the anonymous counts in one
/// transaction; verify as with a token. Validate: the key, the action, one transaction. Was 7,
/// 4, 9, 4 (2026-12-01).
#[tokio::test]
async fn a_sign_in_costs_no_more_store_round_trips_than_today() {
    let w = World::setup()
        .tenant("t-pk", example_settings("Example"))
        .count_store_calls()
        .build()
        .await;
    let calls = w.store_calls.clone().unwrap();
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("u1", "signUp").await.token;
    let (registered, handle) = w.register(&mut authenticator, &signup).await;
    let credential_id = credential_id_of(&registered);

    calls.take();
    let token = w.track("u1", "withdraw").await.token;
    let track = calls.take();
    let bearer = format!("Bearer {token}");
    let (challenge, credential) = w
        .assertion(&bearer, json!({}), &mut authenticator, None)
        .await;
    let options = calls.take();
    let (status, ok) = w
        .verify(
            &bearer,
            &challenge,
            &serde_json::to_value(&credential).unwrap(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    let verify = calls.take();
    assert_eq!(w.validate(&token).await["isValid"], true);
    let validate = calls.take();

    let basic = w.tenant_basic();
    let (challenge, credential) = w
        .assertion(&basic, json!({}), &mut authenticator, Some(&credential_id))
        .await;
    let discover_options = calls.take();
    let (status, ok) = w
        .verify(&basic, &challenge, &with_user_handle(&credential, &handle))
        .await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!(
        ok["username"], "jane",
        "the name it was registered under: {ok}"
    );
    let discover_verify = calls.take();

    let counts = [
        ("track", track.len(), 3),
        ("authentication options", options.len(), 2),
        ("verify", verify.len(), 3),
        ("validate", validate.len(), 3),
        ("usernameless options", discover_options.len(), 1),
        ("usernameless verify", discover_verify.len(), 3),
    ];
    for (route, n, _) in counts {
        println!("{route}: {n} store calls");
    }
    let over: Vec<_> = counts.iter().filter(|(_, n, c)| n > c).collect();
    assert!(
        over.is_empty(),
        "more round trips than before: {over:?}\ntrack {track:#?}\noptions {options:#?}\nverify {verify:#?}\nvalidate {validate:#?}\nusernameless {discover_options:#?} {discover_verify:#?}"
    );
}

/// A token's verify is judged on the facts its options recorded (`authz::Facts::Ceremony`);
/// the commit writes the action only at the version those facts were read at. So an action
/// the backend moved on between options and verify (here to `BLOCK`) is refused as a fresh
/// read would refuse it: 403 with the rule in words, audited, the action left as the backend
/// set it, and no token.
#[tokio::test]
async fn a_verify_after_the_backend_changed_the_action_is_refused_as_its_new_state_says() {
    let w = World::setup()
        .tenant("t-pk", example_settings("Example"))
        .build()
        .await;
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("u1", "signUp").await.token;
    w.register(&mut authenticator, &signup).await;

    for state in ["BLOCK", "REVIEW_REQUIRED", "ALLOW"] {
        let tracked = w.track("u1", "withdraw").await;
        let (challenge, credential) = w
            .assertion(&tracked.bearer, json!({}), &mut authenticator, None)
            .await;
        let (status, a) = w
            .send(
                Method::PATCH,
                Some(&w.server()),
                &format!("/v1/users/u1/actions/withdraw/{}", tracked.idempotency_key),
                Some(json!({ "state": state })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{a}");
        let (status, e) = w
            .verify(
                &tracked.bearer,
                &challenge,
                &serde_json::to_value(&credential).unwrap(),
            )
            .await;
        assert_eq!(
            (status, e["errorCode"].clone()),
            (StatusCode::FORBIDDEN, json!("forbidden")),
            "{state}: {e}"
        );
        assert!(e.get("accessToken").is_none(), "{e}");
        let v = w.validate(&tracked.token).await;
        assert_eq!(v["state"], state, "{v}");
    }
    let refusals = w
        .events("t-pk")
        .await
        .into_iter()
        .filter(|e| e.action == "client.refused")
        .count();
    assert_eq!(refusals, 3, "each refusal audited once");

    // The same, with a body too broken to name a ceremony: the refusal is told first.
    let tracked = w.track("u1", "withdraw").await;
    let (status, a) = w
        .send(
            Method::PATCH,
            Some(&w.server()),
            &format!("/v1/users/u1/actions/withdraw/{}", tracked.idempotency_key),
            Some(json!({ "state": "BLOCK" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{a}");
    for body in [
        json!({}),
        json!({ "challengeId": "made-up", "authenticationCredential": 7 }),
    ] {
        let (status, _) = w
            .post(&tracked.bearer, "/v1/client/verify/passkey", body)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

/// Deleting a passkey deletes its credential record, which is what a sign-in reads: the
/// credential no longer signs in (with or without a token), is no longer reported as
/// registered, and can be registered again. Deleting the user removes the records and the
/// user-handle index that lead to them.
#[tokio::test]
async fn a_deleted_passkey_or_user_leaves_no_credential_record_to_sign_in_with() {
    let w = World::setup()
        .tenant("t-pk", example_settings("Example"))
        .build()
        .await;
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("u1", "signUp").await.token;
    let (registered, handle) = w.register(&mut authenticator, &signup).await;
    let aid = registered["userAuthenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cred_id = credential_id_of(&registered);
    let basic = w.tenant_basic();
    let available = format!("/v1/client/user-authenticators/passkey?credentialIds={cred_id}");
    assert_eq!(w.get(&basic, &available).await.0, StatusCode::OK);
    let cred_pk = format!("T#t-pk#CRED#{cred_id}");
    assert!(
        w.services
            .store
            .get(&cred_pk, "CRED")
            .await
            .unwrap()
            .is_some()
    );

    // Options first, then the passkey is deleted, then the browser answers.
    let (challenge, credential) = w
        .assertion(&basic, json!({}), &mut authenticator, Some(&cred_id))
        .await;
    let (status, d) = w
        .send(
            Method::DELETE,
            Some(&w.server()),
            &format!("/v1/users/u1/authenticators/{aid}"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status} {d}");
    assert_eq!(w.services.store.get(&cred_pk, "CRED").await.unwrap(), None);
    let (status, e) = w
        .verify(&basic, &challenge, &with_user_handle(&credential, &handle))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(w.get(&basic, &available).await.0, StatusCode::NOT_FOUND);

    // Registered again (same authenticator, same credential), then the user deleted.
    let again = w.track("u1", "again").await.token;
    let mut fresh = SoftPasskey::new(true);
    let (registered, handle) = w.register(&mut fresh, &again).await;
    let cred_id = credential_id_of(&registered);
    let cred_pk = format!("T#t-pk#CRED#{cred_id}");
    // The handle on the wire is the UUID's 16 bytes, base64url; the index is keyed by the UUID.
    let b = URL_SAFE_NO_PAD.decode(&handle).unwrap();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    );
    let handle_pk = format!("T#t-pk#UH#{uuid}");
    assert!(
        w.services
            .store
            .get(&cred_pk, "CRED")
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        w.services
            .store
            .get(&handle_pk, "UH")
            .await
            .unwrap()
            .is_some()
    );
    let (status, d) = w
        .send(Method::DELETE, Some(&w.server()), "/v1/users/u1", None)
        .await;
    assert!(status.is_success(), "{status} {d}");
    assert_eq!(w.services.store.get(&cred_pk, "CRED").await.unwrap(), None);
    assert_eq!(w.services.store.get(&handle_pk, "UH").await.unwrap(), None);
}

/// A credential record in the earlier format (owner and authenticator id only) still signs in,
/// completed from the authenticator item (and the user-handle index), and is rewritten whole by
/// that sign-in.
#[tokio::test]
async fn a_credential_record_of_the_earlier_format_still_signs_in_and_is_completed() {
    use latchkey::ports::store::{Condition, Item};
    let w = World::setup()
        .tenant("t-pk", example_settings("Example"))
        .build()
        .await;
    let mut authenticator = SoftPasskey::new(true);
    let signup = w.track("u1", "signUp").await.token;
    let (registered, handle) = w.register(&mut authenticator, &signup).await;
    let aid = registered["userAuthenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    let cred_id = credential_id_of(&registered);
    let cred_pk = format!("T#t-pk#CRED#{cred_id}");
    let old = Item::new(&cred_pk, "CRED")
        .with("userId", "u1")
        .with("authenticatorId", aid.clone());
    w.services.store.put(old, Condition::None).await.unwrap();

    let basic = w.tenant_basic();
    for round in 0..2 {
        let (challenge, credential) = w
            .assertion(&basic, json!({}), &mut authenticator, Some(&cred_id))
            .await;
        let (status, ok) = w
            .verify(&basic, &challenge, &with_user_handle(&credential, &handle))
            .await;
        assert_eq!(status, StatusCode::OK, "round {round}: {ok}");
        assert_eq!(ok["userAuthenticatorId"], aid.as_str());
        let record = w
            .services
            .store
            .get(&cred_pk, "CRED")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(record.str("kind"), Some("passkey"), "{record:?}");
        assert!(record.attrs.contains_key("passkey"));
    }
    // A handle of another user is still refused on such a record.
    let other = w.track("u2", "signUp").await.token;
    let (_, other_handle) = w.register(&mut SoftPasskey::new(true), &other).await;
    let old = Item::new(&cred_pk, "CRED")
        .with("userId", "u1")
        .with("authenticatorId", aid);
    w.services.store.put(old, Condition::None).await.unwrap();
    let (challenge, credential) = w
        .assertion(&basic, json!({}), &mut authenticator, Some(&cred_id))
        .await;
    let (status, _) = w
        .verify(
            &basic,
            &challenge,
            &with_user_handle(&credential, &other_handle),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// Origins are checked when a tenant is created (`*`, `null`, a path, plain http: refused). A
/// tenant stored before that check with such an origin keeps working on its valid ones, and one
/// with none left gets a 400 in the wire format, not the 500 of every passkey call.
#[tokio::test]
async fn bad_origins_are_refused_at_creation_and_never_fail_a_ceremony_with_a_500() {
    use latchkey::domain::Error;
    use latchkey::domain::audit::AuditContext;
    use latchkey::domain::tenants::{TenantSettings, create_tenant, tenant_pk};
    use latchkey::ports::store::{Condition, WriteOp};

    let w = world().await;
    let ctx = AuditContext::system("test", "r-origins");
    for bad in ["*", "null", "https://a.example/path", "http://a.example"] {
        let settings = TenantSettings {
            rp_id: "a.example".into(),
            allowed_origins: vec![bad.into()],
            ..Default::default()
        };
        let err = create_tenant(&w.services, &ctx, "t-bad-origin", settings, vec![])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{bad}: {err:?}");
    }

    let options = "/v1/client/user-authenticators/passkey/authentication-options";
    let store_origins = |origins: Value| {
        let services = w.services.clone();
        let tenant = w.tenant.clone();
        async move {
            let set = serde_json::Map::from_iter([("allowedOrigins".to_owned(), origins)]);
            services
                .store
                .transact(vec![WriteOp::Update {
                    pk: tenant_pk(&tenant),
                    sk: "TENANT".into(),
                    set,
                    condition: Condition::Exists,
                }])
                .await
                .unwrap();
            services.records.forget(&tenant_pk(&tenant), "TENANT");
        }
    };
    store_origins(json!(["*", "null", ORIGIN])).await;
    let (status, body) = w.post(&w.tenant_basic(), options, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    store_origins(json!(["*", "null"])).await;
    let req = Request::post(options)
        .header(header::AUTHORIZATION, w.tenant_basic())
        .body(Body::from("{}"))
        .unwrap();
    let res = w.app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}
