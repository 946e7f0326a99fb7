//! The Server API on the embedded store, route by route: success, bad input, wrong keys, and a
//! second tenant reaching for the first tenant's data. Plus what the raw store holds.
use axum::body::Body;
use http::{Method, Request, StatusCode, header};
use latchkey::domain::audit::AuditContext;
use latchkey::domain::rules::ActionConfig;
use latchkey::domain::tenants::{TenantSettings, revoke_api_key};
use latchkey::ports::store::Query;
use latchkey_tests::{World, basic};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower::ServiceExt as _;

const UNAUTHORIZED: &str = "The request is unauthorized. Check that your API key and region base URL are correctly configured.";

/// `tenant-a` with rules on `withdraw`, and `tenant-b` reaching for its data, on a SQLite file
/// (the tests read its raw bytes). Server SDKs send no `Origin`.
async fn world() -> World {
    let rules: ActionConfig = serde_json::from_value(json!({
        "defaultOutcome": "CHALLENGE",
        "rules": [
            {"id": "office", "name": "Office", "priority": 10, "outcome": "ALLOW",
             "conditions": [{"type": "ipInCidr", "cidrs": ["10.0.0.0/8"]}]},
            {"id": "new-device", "name": "New device", "priority": 20, "outcome": "REVIEW",
             "conditions": [{"type": "newDevice", "value": true}]},
            {"id": "bot", "name": "Bot", "priority": 1, "outcome": "BLOCK",
             "conditions": [{"type": "userAgentContains", "text": "badbot"}]}
        ]
    }))
    .unwrap();
    let settings = TenantSettings {
        name: "A".into(),
        rp_id: "a.example".into(),
        allowed_origins: vec!["https://a.example".into()],
        actions: BTreeMap::from([("withdraw".to_owned(), rules)]),
        ..Default::default()
    };
    World::setup()
        .tenant("tenant-a", settings)
        .other_tenant("tenant-b", TenantSettings::default())
        .origin(None)
        .on_disk()
        .build()
        .await
}

/// The Server API with either tenant's key; every answer is exactly `application/json`.
trait ServerApi {
    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value);
    async fn a(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value);
    async fn b(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value);
}

impl ServerApi for World {
    async fn call(
        &self,
        key: Option<&str>,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let auth = key.map(basic);
        let r = self.reply(method, auth.as_deref(), uri, body).await;
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/json", "{uri}");
        (r.status, r.json())
    }

    async fn a(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Some(&self.key), method, uri, body).await
    }

    async fn b(&self, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.call(Some(self.key_of("tenant-b")), method, uri, body)
            .await
    }
}

fn assert_error(status: StatusCode, body: &Value, expected: StatusCode, code: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["errorCode"], code, "{body}");
}

fn concrete(path: &str) -> String {
    path.replace("{userId}", "u1")
        .replace("{action}", "signIn")
        .replace("{idempotencyKey}", "k1")
        .replace("{userAuthenticatorId}", "a1")
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_served() {
    let w = world().await;
    let doc: Value = serde_json::from_str(latchkey_auth::OPENAPI).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    let mut routes: Vec<(String, String)> = latchkey_auth::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routes.sort();
    assert_eq!(documented, routes);
    // Every listed route is really routed: without a key it is refused, not "not found".
    for (method, path) in latchkey_auth::ROUTES {
        let (status, body) = w
            .call(
                None,
                Method::from_bytes(method.as_bytes()).unwrap(),
                &concrete(path),
                None,
            )
            .await;
        if path == "/openapi.json" {
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["info"]["title"], "Latchkey Server API");
        } else {
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
        }
    }
}

#[tokio::test]
async fn missing_wrong_and_revoked_keys_get_the_exact_401() {
    let w = world().await;
    let wrong_secret = format!("lk_{}_{}", w.key_id, "x".repeat(43));
    let (ok, _) = w.a(Method::GET, "/v1/users/u1", None).await;
    assert_eq!(ok, StatusCode::OK);
    revoke_api_key(
        &w.services,
        &AuditContext::system("test", "revoke"),
        &w.key_id,
    )
    .await
    .unwrap();
    for key in [
        None,
        Some("garbage"),
        Some("lk_0000000000000000_unknownunknownunknown00"),
        Some(wrong_secret.as_str()),
        Some(w.key.as_str()),
    ] {
        for (method, path) in latchkey_auth::ROUTES
            .iter()
            .filter(|(_, p)| *p != "/openapi.json")
        {
            let (status, body) = w
                .call(
                    key,
                    Method::from_bytes(method.as_bytes()).unwrap(),
                    &concrete(path),
                    Some(json!({})),
                )
                .await;
            assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
            assert_eq!(body["errorDescription"], UNAUTHORIZED);
            // A new minute each time: this walk is not the guessing the limit stops
            // (guessing_secret_keys_is_rate_limited_per_address_and_never_locks_out_a_right_key).
            w.clock.advance(time::Duration::seconds(61));
        }
    }
    // A bearer token is not a secret key.
    let req = Request::get("/v1/users/u1")
        .header(header::AUTHORIZATION, "Bearer x")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        w.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn track_is_idempotent_and_follows_the_rules() {
    let w = world().await;
    let (status, t) = w
        .a(
            Method::POST,
            "/v1/users/jane%40example.com/actions/signIn",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["state"], "CHALLENGE_REQUIRED");
    assert_eq!(t["isEnrolled"], false);
    assert_eq!(
        t["allowedVerificationMethods"],
        json!(["PASSKEY", "AUTHENTICATOR_APP", "EMAIL_OTP"])
    );
    assert!(t["url"].as_str().unwrap().contains("?token="));
    assert_eq!(t["token"].as_str().unwrap().split('.').count(), 3);

    // Same key twice: the same action.
    let body = json!({"idempotencyKey": "idem-1", "ipAddress": "10.1.2.3"});
    let (_, first) = w
        .a(
            Method::POST,
            "/v1/users/u1/actions/withdraw",
            Some(body.clone()),
        )
        .await;
    assert_eq!(first["state"], "ALLOW");
    assert_eq!(first["ruleIds"], json!(["office"]));
    // The same client as a dual-stack Node server reports it: the same rule.
    let (_, mapped) = w
        .a(
            Method::POST,
            "/v1/users/u-mapped/actions/withdraw",
            Some(json!({"idempotencyKey": "idem-mapped", "ipAddress": "::ffff:10.1.2.3"})),
        )
        .await;
    assert_eq!(mapped["state"], "ALLOW", "{mapped}");
    assert_eq!(mapped["ruleIds"], json!(["office"]));
    w.a(
        Method::PATCH,
        "/v1/users/u1/actions/withdraw/idem-1",
        Some(json!({"state": "REVIEW_REQUIRED"})),
    )
    .await;
    let (_, again) = w
        .a(Method::POST, "/v1/users/u1/actions/withdraw", Some(body))
        .await;
    assert_eq!(again["idempotencyKey"], "idem-1");
    assert_eq!(
        again["state"], "REVIEW_REQUIRED",
        "a repeated key returns the stored action"
    );
    let (_, listed) = w
        .a(Method::GET, "/v1/users/u1/actions?codes=withdraw", None)
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);

    // New device → review; the same device next time → default (challenge); a bot → block.
    let (_, d1) = w
        .a(
            Method::POST,
            "/v1/users/u1/actions/withdraw",
            Some(json!({"deviceId": "dev-1"})),
        )
        .await;
    assert_eq!(
        (d1["state"].clone(), d1["ruleIds"].clone()),
        (json!("REVIEW_REQUIRED"), json!(["new-device"]))
    );
    let (_, d2) = w
        .a(
            Method::POST,
            "/v1/users/u1/actions/withdraw",
            Some(json!({"deviceId": "dev-1"})),
        )
        .await;
    assert_eq!(d2["state"], "CHALLENGE_REQUIRED");
    let (_, bot) = w
        .a(
            Method::POST,
            "/v1/users/u1/actions/withdraw",
            Some(json!({"userAgent": "BadBot/1.0"})),
        )
        .await;
    assert_eq!(bot["state"], "BLOCK");

    for (uri, body, why) in [
        ("/v1/users/u1/actions/bad%20code!", json!({}), "action code"),
        (
            &*format!("/v1/users/u1/actions/{}", "a".repeat(65)),
            json!({}),
            "long code",
        ),
        (
            "/v1/users/u1/actions/signIn",
            json!({"idempotencyKey": "has space"}),
            "idempotency key",
        ),
        (
            "/v1/users/u1/actions/signIn",
            json!({"ipAddress": "not-an-ip"}),
            "ip",
        ),
        (
            "/v1/users/u1/actions/signIn",
            json!({"custom": "not an object"}),
            "custom",
        ),
        (
            &*format!("/v1/users/{}/actions/signIn", "u".repeat(256)),
            json!({}),
            "user id",
        ),
    ] {
        let (status, e) = w.a(Method::POST, uri, Some(body)).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
        assert!(!e["errorDescription"].as_str().unwrap().is_empty(), "{why}");
    }
    let req = Request::post("/v1/users/u1/actions/signIn")
        .header(header::AUTHORIZATION, basic(&w.key))
        .body(Body::from("{nope"))
        .unwrap();
    assert_eq!(
        w.app.clone().oneshot(req).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn actions_can_be_read_updated_and_queried() {
    let w = world().await;
    let (_, t) = w
        .a(
            Method::POST,
            "/v1/users/u2/actions/signIn",
            Some(json!({"idempotencyKey": "k1"})),
        )
        .await;
    assert_eq!(t["idempotencyKey"], "k1");
    let (status, a) = w
        .a(Method::GET, "/v1/users/u2/actions/signIn/k1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (a["state"].clone(), a["output"].clone()),
        (json!("CHALLENGE_REQUIRED"), json!({}))
    );
    assert!(
        a["createdAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-29T12:00")
    );

    w.clock.advance(time::Duration::hours(1));
    let (status, u) = w
        .a(
            Method::PATCH,
            "/v1/users/u2/actions/signIn/k1",
            Some(json!({"state": "CHALLENGE_SUCCEEDED"})),
        )
        .await;
    assert_eq!(
        (status, u["state"].clone()),
        (StatusCode::OK, json!("CHALLENGE_SUCCEEDED"))
    );
    assert!(
        u["stateUpdatedAt"]
            .as_str()
            .unwrap()
            .starts_with("2026-11-29T13:00")
    );
    w.a(
        Method::POST,
        "/v1/users/u2/actions/payment",
        Some(json!({"idempotencyKey": "p1"})),
    )
    .await;

    let (_, all) = w.a(Method::GET, "/v1/users/u2/actions", None).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    assert_eq!(all[0]["actionCode"], "payment", "newest first");
    let (_, one) = w
        .a(
            Method::GET,
            "/v1/users/u2/actions?codes=signIn%2Cother&state=CHALLENGE_SUCCEEDED",
            None,
        )
        .await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (_, none) = w
        .a(
            Method::GET,
            "/v1/users/u2/actions?fromDate=2026-11-29T12%3A30%3A00Z",
            None,
        )
        .await;
    assert_eq!(none.as_array().unwrap().len(), 1, "only the later action");

    for (method, uri, body) in [
        (
            Method::PATCH,
            "/v1/users/u2/actions/signIn/k1",
            Some(json!({"state": "DONE"})),
        ),
        (
            Method::PATCH,
            "/v1/users/u2/actions/signIn/k1",
            Some(json!({})),
        ),
        (Method::GET, "/v1/users/u2/actions?fromDate=yesterday", None),
        (Method::GET, "/v1/users/u2/actions?state=NOPE", None),
        (Method::GET, "/v1/users/u2/actions?codes=bad!code", None),
    ] {
        let (status, e) = w.a(method, uri, body).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, e) = w
        .a(Method::GET, "/v1/users/u2/actions/signIn/missing", None)
        .await;
    assert_error(status, &e, StatusCode::NOT_FOUND, "not_found");
    let (status, e) = w
        .a(
            Method::PATCH,
            "/v1/users/u2/actions/signIn/missing",
            Some(json!({"state": "ALLOW"})),
        )
        .await;
    assert_error(status, &e, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_succeeded_token_validates_once_even_under_races() {
    let w = world().await;
    let (_, t) = w
        .a(
            Method::POST,
            "/v1/users/u3/actions/signIn",
            Some(json!({"idempotencyKey": "v1"})),
        )
        .await;
    let token = t["token"].as_str().unwrap().to_owned();
    let (status, v) = w
        .a(Method::POST, "/v1/validate", Some(json!({"token": token})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["isValid"], false);
    assert_eq!(v["state"], "CHALLENGE_REQUIRED");
    assert_eq!(
        (
            v["userId"].clone(),
            v["action"].clone(),
            v["idempotencyKey"].clone()
        ),
        (json!("u3"), json!("signIn"), json!("v1"))
    );

    w.a(
        Method::PATCH,
        "/v1/users/u3/actions/signIn/v1",
        Some(json!({"state": "CHALLENGE_SUCCEEDED"})),
    )
    .await;
    let mut tasks = Vec::new();
    let w = Arc::new(w);
    for _ in 0..8 {
        let w = Arc::clone(&w);
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            w.a(
                Method::POST,
                "/v1/validate",
                Some(json!({"token": token, "userId": "u3", "action": "signIn"})),
            )
            .await
        }));
    }
    let mut valid = 0;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["state"], "CHALLENGE_SUCCEEDED");
        if v["isValid"] == true {
            valid += 1;
        }
    }
    assert_eq!(valid, 1, "exactly one validation succeeds");
    // A second token for the same action (tracked again with its key) is no way around it.
    let (_, again) = w
        .a(
            Method::POST,
            "/v1/users/u3/actions/signIn",
            Some(json!({"idempotencyKey": "v1"})),
        )
        .await;
    let (_, v) = w
        .a(
            Method::POST,
            "/v1/validate",
            Some(json!({"token": again["token"]})),
        )
        .await;
    assert_eq!(v["isValid"], false);

    for body in [
        json!({"token": token, "userId": "someone-else"}),
        json!({"token": token, "action": "otherAction"}),
        json!({"token": "not.a.token"}),
        json!({"token": format!("{token}x")}),
        json!({}),
    ] {
        let (status, e) = w.a(Method::POST, "/v1/validate", Some(body)).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Tenant B cannot use tenant A's token.
    let (status, e) = w
        .b(Method::POST, "/v1/validate", Some(json!({"token": token})))
        .await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");

    let (_, t) = w
        .a(Method::POST, "/v1/users/u3/actions/late", Some(json!({})))
        .await;
    w.clock.advance(time::Duration::minutes(11));
    let (status, v) = w
        .a(
            Method::POST,
            "/v1/validate",
            Some(json!({"token": t["token"]})),
        )
        .await;
    assert_eq!(
        (status, v["isValid"].clone()),
        (StatusCode::OK, json!(false))
    );
    assert!(v["error"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn users_and_authenticators_round_trip() {
    let w = world().await;
    let (status, u) = w.a(Method::GET, "/v1/users/nobody", None).await;
    assert_eq!(
        (status, u["isEnrolled"].clone(), u.get("email")),
        (StatusCode::OK, json!(false), None)
    );

    let attrs = json!({"email": "jane@example.com", "phoneNumber": "+64211234567", "username": "jane", "displayName": "Jane Doe", "custom": {"tier": "gold"}, "emailVerified": true});
    let (status, u) = w.a(Method::PATCH, "/v1/users/u4", Some(attrs)).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    assert_eq!(
        (
            u["email"].clone(),
            u["displayName"].clone(),
            u["custom"]["tier"].clone(),
            u["emailVerified"].clone()
        ),
        (
            json!("jane@example.com"),
            json!("Jane Doe"),
            json!("gold"),
            json!(true)
        )
    );
    let (_, u) = w
        .a(
            Method::PATCH,
            "/v1/users/u4",
            Some(json!({"displayName": null})),
        )
        .await;
    assert_eq!(
        (u["email"].clone(), u.get("displayName")),
        (json!("jane@example.com"), None),
        "a patch merges"
    );
    let (_, found) = w
        .a(Method::GET, "/v1/users?email=JANE%40example.com", None)
        .await;
    assert_eq!(found["users"][0]["userId"], "u4");

    for body in [
        json!({"email": "not-an-email"}),
        json!({"phoneNumber": "12345"}),
        json!({"custom": [1]}),
        json!({"emailVerified": "yes"}),
        json!({"username": 7}),
    ] {
        let (status, e) = w.a(Method::PATCH, "/v1/users/u4", Some(body)).await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    }

    let (_, list) = w.a(Method::GET, "/v1/users/u4/authenticators", None).await;
    assert_eq!(list, json!([]));
    let (status, e) = w
        .a(
            Method::POST,
            "/v1/users/u4/authenticators",
            Some(json!({"verificationMethod": "EMAIL_OTP", "email": "jane@example.com"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let email_id = e["authenticator"]["userAuthenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        (
            e["authenticator"]["isDefault"].clone(),
            e["authenticator"]["email"].clone()
        ),
        (json!(true), json!("jane@example.com"))
    );
    let uri = "otpauth://totp/Acme:jane?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Acme&digits=6&period=30";
    let (status, app) = w.a(Method::POST, "/v1/users/u4/authenticators", Some(json!({"verificationMethod": "AUTHENTICATOR_APP", "otpUri": uri, "isDefault": true}))).await;
    assert_eq!(status, StatusCode::OK, "{app}");
    let (_, sms) = w
        .a(
            Method::POST,
            "/v1/users/u4/authenticators",
            Some(json!({"verificationMethod": "SMS", "phoneNumber": "+64211234567"})),
        )
        .await;
    assert_eq!(sms["authenticator"]["isDefault"], false);
    let (_, list) = w.a(Method::GET, "/v1/users/u4/authenticators", None).await;
    let defaults: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["isDefault"] == true)
        .collect();
    assert_eq!((list.as_array().unwrap().len(), defaults.len()), (3, 1));
    assert_eq!(defaults[0]["verificationMethod"], "AUTHENTICATOR_APP");
    let (_, u) = w.a(Method::GET, "/v1/users/u4", None).await;
    assert_eq!(u["isEnrolled"], true);
    assert_eq!(
        u["enrolledVerificationMethods"],
        json!(["AUTHENTICATOR_APP", "EMAIL_OTP", "SMS"])
    );

    for body in [
        json!({"verificationMethod": "EMAIL_OTP"}),
        json!({"verificationMethod": "SMS", "phoneNumber": "nope"}),
        json!({"verificationMethod": "AUTHENTICATOR_APP", "otpUri": "https://x"}),
        json!({"verificationMethod": "PIGEON"}),
        json!({}),
    ] {
        let (status, e) = w
            .a(Method::POST, "/v1/users/u4/authenticators", Some(body))
            .await;
        assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    }
    let (status, _) = w
        .a(
            Method::DELETE,
            &format!("/v1/users/u4/authenticators/{email_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = w
        .a(
            Method::DELETE,
            &format!("/v1/users/u4/authenticators/{email_id}"),
            None,
        )
        .await;
    assert_error(status, &e, StatusCode::NOT_FOUND, "not_found");

    w.a(
        Method::POST,
        "/v1/users/u4/actions/signIn",
        Some(json!({"idempotencyKey": "keep"})),
    )
    .await;
    let (status, e) = w
        .a(Method::DELETE, "/v1/users/u4?actions=maybe", None)
        .await;
    assert_error(status, &e, StatusCode::BAD_REQUEST, "invalid_request");
    let (status, _) = w.a(Method::DELETE, "/v1/users/u4", None).await;
    assert_eq!(status, StatusCode::OK);
    let (_, u) = w.a(Method::GET, "/v1/users/u4", None).await;
    assert_eq!(
        (u["isEnrolled"].clone(), u.get("email")),
        (json!(false), None)
    );
    let (_, kept) = w.a(Method::GET, "/v1/users/u4/actions", None).await;
    assert_eq!(
        kept.as_array().unwrap().len(),
        1,
        "actions kept unless asked"
    );
    w.a(Method::DELETE, "/v1/users/u4?actions=true", None).await;
    let (_, gone) = w.a(Method::GET, "/v1/users/u4/actions", None).await;
    assert_eq!(gone, json!([]));
    let (_, found) = w
        .a(Method::GET, "/v1/users?email=jane%40example.com", None)
        .await;
    assert_eq!(found["users"], json!([]));

    // Every change went through the journal, as the key that made it.
    let report = w.audit("tenant-a").await;
    assert_eq!(report.broken, None);
    let (events, _) = w
        .services
        .journal
        .events("tenant-a", 1000, None, false)
        .await
        .unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "user.update",
        "authenticator.enroll",
        "authenticator.delete",
        "action.track",
        "user.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert!(
        events
            .iter()
            .filter(|e| e.action != "tenant.create" && e.action != "api_key.create")
            .all(|e| e.actor == format!("apikey:{}", w.key_id))
    );
    let log = serde_json::to_string(&events).unwrap();
    assert!(
        !log.contains("jane@example.com") && !log.contains("u4"),
        "the audit log names users by keyed hash only"
    );
}

#[tokio::test]
async fn another_tenants_key_reaches_nothing() {
    let w = world().await;
    w.a(
        Method::PATCH,
        "/v1/users/shared-id",
        Some(json!({"email": "jane@example.com"})),
    )
    .await;
    let (_, t) = w
        .a(
            Method::POST,
            "/v1/users/shared-id/actions/signIn",
            Some(json!({"idempotencyKey": "a-1"})),
        )
        .await;
    let (_, e) = w
        .a(
            Method::POST,
            "/v1/users/shared-id/authenticators",
            Some(json!({"verificationMethod": "EMAIL_OTP", "email": "jane@example.com"})),
        )
        .await;
    let aid = e["authenticator"]["userAuthenticatorId"]
        .as_str()
        .unwrap()
        .to_owned();

    let (status, u) = w.b(Method::GET, "/v1/users/shared-id", None).await;
    assert_eq!(
        (status, u["isEnrolled"].clone(), u.get("email")),
        (StatusCode::OK, json!(false), None)
    );
    let (status, _) = w
        .b(Method::GET, "/v1/users/shared-id/actions/signIn/a-1", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = w.b(Method::GET, "/v1/users/shared-id/actions", None).await;
    assert_eq!(list, json!([]));
    let (_, list) = w
        .b(Method::GET, "/v1/users/shared-id/authenticators", None)
        .await;
    assert_eq!(list, json!([]));
    let (_, found) = w
        .b(Method::GET, "/v1/users?email=jane%40example.com", None)
        .await;
    assert_eq!(found["users"], json!([]));
    let (status, _) = w
        .b(
            Method::PATCH,
            "/v1/users/shared-id/actions/signIn/a-1",
            Some(json!({"state": "CHALLENGE_SUCCEEDED"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .b(
            Method::DELETE,
            &format!("/v1/users/shared-id/authenticators/{aid}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w
        .b(
            Method::POST,
            "/v1/validate",
            Some(json!({"token": t["token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    w.b(Method::DELETE, "/v1/users/shared-id?actions=true", None)
        .await;

    // Tenant A's data is untouched.
    let (_, u) = w.a(Method::GET, "/v1/users/shared-id", None).await;
    assert_eq!(
        (u["email"].clone(), u["isEnrolled"].clone()),
        (json!("jane@example.com"), json!(true))
    );
    let (_, a) = w
        .a(Method::GET, "/v1/users/shared-id/actions/signIn/a-1", None)
        .await;
    assert_eq!(a["state"], "CHALLENGE_REQUIRED");
}

#[tokio::test]
async fn path_segments_are_percent_decoded_alike() {
    let w = world().await;
    w.a(
        Method::PATCH,
        "/v1/users/jane%40example.com",
        Some(json!({"displayName": "Jane"})),
    )
    .await;
    let (_, raw) = w.a(Method::GET, "/v1/users/jane@example.com", None).await;
    assert_eq!(raw["displayName"], "Jane");
}

/// The raw store, file and all, never holds the personal data in the clear: not after an
/// update, not after the delete.
#[tokio::test]
async fn raw_store_holds_no_plaintext_personal_data() {
    let w = world().await;
    let (email, phone, name) = (
        "raw.check@example.com",
        "+64219876543",
        "Rawname Checkperson",
    );
    w.a(
        Method::PATCH,
        "/v1/users/u9",
        Some(json!({"email": email, "phoneNumber": phone, "displayName": name})),
    )
    .await;
    w.a(
        Method::POST,
        "/v1/users/u9/authenticators",
        Some(json!({"verificationMethod": "SMS", "phoneNumber": phone})),
    )
    .await;
    w.a(
        Method::POST,
        "/v1/users/u9/actions/signIn",
        Some(json!({"ipAddress": "203.0.113.77", "userAgent": "RawAgent/9"})),
    )
    .await;
    let (_, u) = w.a(Method::GET, "/v1/users/u9", None).await;
    assert_eq!(u["email"], email, "the API reads it back");

    let needles = [email, phone, name, "raw.check", "203.0.113.77", "RawAgent"];
    let check = |when: &str| {
        let mut bytes = std::fs::read(w.db()).unwrap();
        if let Ok(wal) = std::fs::read(w.db().with_extension("db-wal")) {
            bytes.extend(wal);
        }
        let text = String::from_utf8_lossy(&bytes);
        for n in needles {
            assert!(!text.contains(n), "{n:?} in the store file {when}");
        }
    };
    check("after the update");
    let items = w
        .services
        .store
        .query(Query::partition("T#tenant-a#U#u9").limit(100))
        .await
        .unwrap();
    assert!(items.items.len() >= 3);
    let dump =
        serde_json::to_string(&items.items.iter().map(|i| &i.attrs).collect::<Vec<_>>()).unwrap();
    for n in needles {
        assert!(!dump.contains(n), "{n:?} in a stored item");
    }

    w.a(Method::DELETE, "/v1/users/u9?actions=true", None).await;
    let left = w
        .services
        .store
        .query(Query::partition("T#tenant-a#U#u9").limit(100))
        .await
        .unwrap();
    assert!(left.items.is_empty(), "{:?}", left.items);
    check("after the delete");
}

/// Racing tracks for a user seen for the first time all succeed; racing tracks with one key
/// make one action.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_tracks_for_a_new_user_all_succeed_and_one_key_makes_one_action() {
    let w = Arc::new(world().await);
    let mut tasks = Vec::new();
    for i in 0..16 {
        let w = Arc::clone(&w);
        tasks.push(tokio::spawn(async move {
            let key = if i % 2 == 0 {
                "same-key".to_owned()
            } else {
                format!("key-{i}")
            };
            w.a(
                Method::POST,
                "/v1/users/brand-new/actions/signIn",
                Some(json!({"idempotencyKey": key})),
            )
            .await
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, list) = w.a(Method::GET, "/v1/users/brand-new/actions", None).await;
    assert_eq!(
        list.as_array().unwrap().len(),
        9,
        "8 distinct keys and one shared key"
    );
}

/// Deleting a user but keeping the history strips what identified them from the actions.
#[tokio::test]
async fn kept_action_history_loses_the_personal_fields() {
    let w = world().await;
    w.a(Method::POST, "/v1/users/u10/actions/signIn", Some(json!({"idempotencyKey": "h1", "ipAddress": "203.0.113.5", "userAgent": "Agent/1", "deviceId": "d1"}))).await;
    let before = w
        .services
        .store
        .get("T#tenant-a#U#u10", "ACT#signIn#h1")
        .await
        .unwrap()
        .unwrap();
    assert!(before.attrs.contains_key("ipAddress") && before.attrs.contains_key("deviceRef"));
    let (status, _) = w.a(Method::DELETE, "/v1/users/u10", None).await;
    assert_eq!(status, StatusCode::OK);
    let after = w
        .services
        .store
        .get("T#tenant-a#U#u10", "ACT#signIn#h1")
        .await
        .unwrap()
        .unwrap();
    for field in ["ipAddress", "userAgent", "deviceRef"] {
        assert!(!after.attrs.contains_key(field), "{field} kept");
    }
    assert_eq!(after.str("state"), Some("CHALLENGE_REQUIRED"));
    let left = w
        .services
        .store
        .query(Query::partition("T#tenant-a#U#u10").limit(100))
        .await
        .unwrap();
    assert!(
        left.items.iter().all(|i| i.sk.starts_with("ACT#")),
        "only the history is left"
    );
}

/// Secret-key guessing is rate-limited per client address: past
/// `SECRET_KEY_FAILURES_PER_MINUTE` wrong keys in a minute the address's wrong keys answer 429;
/// a right key is never refused by it; the next minute starts afresh.
#[tokio::test]
async fn guessing_secret_keys_is_rate_limited_per_address_and_never_locks_out_a_right_key() {
    use latchkey::domain::limits::SECRET_KEY_FAILURES_PER_MINUTE;
    let w = world().await;
    let path = "/v1/users/u-guess";
    let guess = |n: usize| basic(&format!("lk_5e1f0c2a9b3d4e67_guess{n:0>20}"));
    let mut statuses = Vec::new();
    for n in 0..(SECRET_KEY_FAILURES_PER_MINUTE as usize + 5) {
        let (status, body) = w.get(&guess(n), path).await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert_eq!(body["errorCode"], "too_many_requests");
        }
        statuses.push(status.as_u16());
    }
    let limit = SECRET_KEY_FAILURES_PER_MINUTE as usize;
    assert_eq!(statuses[..limit], vec![401; limit]);
    assert_eq!(statuses[limit..], vec![429; 5]);
    // No credential at all counts the same.
    let (status, _) = w.send(Method::GET, None, path, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The tenant's own key still works from the same address.
    let (status, body) = w.get(&w.server(), path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A new minute, a new count.
    w.clock.advance(time::Duration::seconds(61));
    let (status, _) = w.get(&guess(0), path).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `GET /v1/users` finds users by email, phone number or username (each through its blind
/// index, case-insensitive), by several at once (all must match), a page at a time; a changed
/// or deleted user leaves no index entry behind.
#[tokio::test]
async fn users_are_found_by_email_phone_number_or_username_a_page_at_a_time() {
    let w = world().await;
    for (n, username) in [(1, "Alice"), (2, "Bob"), (3, "Carol")] {
        let (status, v) = w
            .a(
                Method::PATCH,
                &format!("/v1/users/lookup-user-{n}"),
                Some(
                    json!({"email": "team@example.com", "phoneNumber": format!("+642100000{n}"),
                            "username": username}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let ids = |v: &Value| -> Vec<String> {
        v["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userId"].as_str().unwrap().to_owned())
            .collect()
    };
    let get = |uri: &'static str| w.a(Method::GET, uri, None);

    let (status, v) = get("/v1/users?username=%20ALICE%20").await;
    assert_eq!(
        (status, ids(&v)),
        (StatusCode::OK, vec!["lookup-user-1".to_owned()])
    );
    assert_eq!(v["users"][0]["username"], "Alice");
    assert_eq!(v["users"][0]["phoneNumber"], "+6421000001");
    let (_, v) = get("/v1/users?phoneNumber=%2B6421000002").await;
    assert_eq!(ids(&v), ["lookup-user-2"]);
    let (_, v) = get("/v1/users?email=TEAM%40example.com&phoneNumber=%2B6421000003").await;
    assert_eq!(ids(&v), ["lookup-user-3"], "every filter must match");
    let (_, v) = get("/v1/users?email=team%40example.com&username=bob").await;
    assert_eq!(ids(&v), ["lookup-user-2"]);
    let (_, v) = get("/v1/users?email=team%40example.com&username=nobody").await;
    assert!(ids(&v).is_empty());

    // Pages in user-id order.
    let (_, v) = get("/v1/users?email=team%40example.com&limit=2").await;
    assert_eq!(ids(&v), ["lookup-user-1", "lookup-user-2"]);
    assert_eq!(v["lastEvaluatedUserId"], "lookup-user-2");
    let (_, v) =
        get("/v1/users?email=team%40example.com&limit=2&lastEvaluatedUserId=lookup-user-2").await;
    assert_eq!(ids(&v), ["lookup-user-3"]);
    assert!(v.get("lastEvaluatedUserId").is_none(), "{v}");

    // No filter: every user of the tenant, a page at a time.
    let (_, v) = get("/v1/users?limit=2").await;
    assert_eq!(ids(&v), ["lookup-user-1", "lookup-user-2"]);
    assert_eq!(v["lastEvaluatedUserId"], "lookup-user-2");
    let (_, v) = get("/v1/users?limit=2&lastEvaluatedUserId=lookup-user-2").await;
    assert_eq!(ids(&v), ["lookup-user-3"]);
    assert!(v.get("lastEvaluatedUserId").is_none(), "{v}");
    let (_, v) = w.b(Method::GET, "/v1/users", None).await;
    assert!(ids(&v).is_empty(), "tenant-b has no users: {v}");

    for bad in [
        "/v1/users?email=team%40example.com&limit=0",
        "/v1/users?username=bob&limit=101",
    ] {
        let (status, v) = get(bad).await;
        assert_error(status, &v, StatusCode::BAD_REQUEST, "invalid_request");
    }
    // Another tenant's key finds nothing of tenant-a's.
    let (_, v) = w.b(Method::GET, "/v1/users?username=alice", None).await;
    assert!(ids(&v).is_empty());

    // A changed username moves its index entry; the old one no longer finds the user.
    w.a(
        Method::PATCH,
        "/v1/users/lookup-user-1",
        Some(json!({"username": "Alicia"})),
    )
    .await;
    let (_, v) = get("/v1/users?username=alice").await;
    assert!(ids(&v).is_empty(), "{v}");
    let (_, v) = get("/v1/users?username=alicia").await;
    assert_eq!(ids(&v), ["lookup-user-1"]);

    // Deleted: found by nothing, and no item anywhere names the user.
    w.a(Method::DELETE, "/v1/users/lookup-user-1?actions=true", None)
        .await;
    let (_, v) = get("/v1/users").await;
    assert_eq!(ids(&v), ["lookup-user-2", "lookup-user-3"]);
    for uri in [
        "/v1/users?username=alicia",
        "/v1/users?phoneNumber=%2B6421000001",
    ] {
        let (_, v) = get(uri).await;
        assert!(ids(&v).is_empty(), "{uri}: {v}");
    }
    let mut cursor = None;
    loop {
        let page = w.services.store.scan(cursor, 1000).await.unwrap();
        for item in &page.items {
            let text = format!(
                "{} {} {}",
                item.pk,
                item.sk,
                serde_json::to_string(&item.attrs).unwrap()
            );
            assert!(!text.contains("lookup-user-1"), "left behind: {text}");
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
}

/// A settings change is a new version: the next track follows the new rules at once, the
/// history keeps what each version set, the origin index follows the origins, the audit event
/// names the fields (not their values); a refused change writes nothing.
#[tokio::test]
async fn a_settings_change_is_a_new_version_the_next_track_follows() {
    use latchkey::domain::tenants::{SettingsChange, origin_known, update_settings};
    let w = world().await;
    let ctx = AuditContext::system("test", "settings");
    let office = json!({"ipAddress": "10.1.2.3"});
    let t = w
        .track_with("settings-user", "withdraw", office.clone())
        .await;
    assert_eq!(t.state, "ALLOW", "the office rule");

    let block: ActionConfig =
        serde_json::from_value(json!({"defaultOutcome": "BLOCK", "rules": []})).unwrap();
    let change = SettingsChange {
        actions: BTreeMap::from([("withdraw".to_owned(), Some(block))]),
        allowed_origins: Some(vec!["https://b.example".to_owned()]),
        ..Default::default()
    };
    let version = update_settings(&w.services, &ctx, "tenant-a", change.clone())
        .await
        .unwrap();
    assert_eq!(version, 2);
    let t = w
        .track_with("settings-user", "withdraw", office.clone())
        .await;
    assert_eq!(
        t.state, "BLOCK",
        "the new version's rules, on the next track"
    );
    assert!(
        origin_known(&w.services, "https://b.example")
            .await
            .unwrap()
    );
    assert!(
        !origin_known(&w.services, "https://a.example")
            .await
            .unwrap()
    );
    // The same change again is no change.
    assert_eq!(
        update_settings(&w.services, &ctx, "tenant-a", change)
            .await
            .unwrap(),
        2
    );

    // Deleting the code's configuration: the default (challenge) again.
    let change = SettingsChange {
        actions: BTreeMap::from([("withdraw".to_owned(), None)]),
        name: Some("A, renamed".to_owned()),
        ..Default::default()
    };
    assert_eq!(
        update_settings(&w.services, &ctx, "tenant-a", change)
            .await
            .unwrap(),
        3
    );
    let t = w.track_with("settings-user", "withdraw", office).await;
    assert_eq!(t.state, "CHALLENGE_REQUIRED");

    let history = w
        .services
        .store
        .query(Query::partition("T#tenant-a#SETTINGS").limit(10))
        .await
        .unwrap()
        .items;
    let versions: Vec<(u64, Value)> = history
        .iter()
        .map(|i| {
            (
                i.attrs["version"].as_u64().unwrap(),
                i.attrs["fields"].clone(),
            )
        })
        .collect();
    assert_eq!(
        versions,
        vec![
            (2, json!(["allowedOrigins", "actions.withdraw"])),
            (3, json!(["name", "actions.withdraw"])),
        ]
    );
    assert_eq!(
        history[0].attrs["actions"]["withdraw"]["defaultOutcome"],
        "BLOCK"
    );
    let events: Vec<_> = w
        .events("tenant-a")
        .await
        .into_iter()
        .filter(|e| e.action == "tenant.settings.update")
        .collect();
    assert_eq!(events.len(), 2);
    // Both at one instant of the test clock: found by version, not by order.
    let second = events.iter().find(|e| e.summary["version"] == 2).unwrap();
    assert_eq!(
        second.summary["fields"],
        json!(["allowedOrigins", "actions.withdraw"])
    );
    assert!(
        !second.summary.to_string().contains("b.example"),
        "names, not values"
    );

    // Refused changes write nothing.
    for bad in [
        SettingsChange {
            allowed_origins: Some(vec!["*".to_owned()]),
            ..Default::default()
        },
        SettingsChange {
            actions: BTreeMap::from([("a#b".to_owned(), None)]),
            ..Default::default()
        },
        SettingsChange {
            name: Some(" ".to_owned()),
            ..Default::default()
        },
    ] {
        let e = update_settings(&w.services, &ctx, "tenant-a", bad)
            .await
            .unwrap_err();
        assert!(matches!(e, latchkey::domain::Error::Invalid(_)), "{e}");
    }
    let e = update_settings(
        &w.services,
        &ctx,
        "no-such-tenant",
        SettingsChange::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(e, latchkey::domain::Error::NotFound(_)));
    let after = w
        .services
        .store
        .query(Query::partition("T#tenant-a#SETTINGS").limit(10))
        .await
        .unwrap()
        .items;
    assert_eq!(after.len(), 2);
}

/// A tenant lists its secret keys (never a secret nor a hash); a rotation gives a new key
/// and lets the old one work for the overlap only; a key made before keys were listed is
/// listed by the re-key job.
#[tokio::test]
async fn keys_are_listed_and_a_rotation_overlaps_then_ends() {
    use latchkey::domain::tenants::{
        create_api_key, key_list_pk, list_api_keys, revoke_api_key, rotate_api_key,
    };
    let w = world().await;
    let ctx = AuditContext::system("test", "keys");
    let listed = list_api_keys(&w.services, "tenant-a").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key_id, w.key_id);
    assert_eq!(listed[0].state, "active");
    assert!(w.key.starts_with(&listed[0].prefix));
    let shown = serde_json::to_string(&listed).unwrap();
    assert!(
        !shown.contains(&w.key) && !shown.contains("hash"),
        "{shown}"
    );

    // Rotate with a one-hour overlap: both work, then only the new one.
    let (new_id, new_secret) =
        rotate_api_key(&w.services, &ctx, &w.key_id, time::Duration::hours(1))
            .await
            .unwrap();
    let old_secret = w.key.clone();
    let (status, _) = w
        .call(Some(&old_secret), Method::GET, "/v1/users/u1", None)
        .await;
    assert_eq!(status, StatusCode::OK, "the old key in its overlap");
    let (status, _) = w
        .call(Some(&new_secret), Method::GET, "/v1/users/u1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<(String, &str)> = list_api_keys(&w.services, "tenant-a")
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.key_id, k.state))
        .collect();
    assert!(
        states.contains(&(w.key_id.clone(), "expiring")),
        "{states:?}"
    );
    assert!(states.contains(&(new_id.clone(), "active")), "{states:?}");
    assert!(matches!(
        rotate_api_key(&w.services, &ctx, &w.key_id, time::Duration::hours(1)).await,
        Err(latchkey::domain::Error::Conflict(_))
    ));
    assert!(matches!(
        rotate_api_key(&w.services, &ctx, &new_id, time::Duration::days(8)).await,
        Err(latchkey::domain::Error::Invalid(_))
    ));

    w.clock.advance(time::Duration::minutes(61));
    let (status, body) = w
        .call(Some(&old_secret), Method::GET, "/v1/users/u1", None)
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "unauthorized");
    let (status, _) = w
        .call(Some(&new_secret), Method::GET, "/v1/users/u1", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let listed = list_api_keys(&w.services, "tenant-a").await.unwrap();
    let old = listed.iter().find(|k| k.key_id == w.key_id).unwrap();
    assert_eq!(old.state, "expired");
    assert!(old.expires_at.is_some());
    let rotated = w
        .events("tenant-a")
        .await
        .into_iter()
        .filter(|e| e.action == "api_key.rotate")
        .count();
    assert_eq!(rotated, 1);

    // Revoked keys are listed as revoked; another tenant's keys are not in this list.
    let (spare, _) = create_api_key(&w.services, &ctx, "tenant-a", None)
        .await
        .unwrap();
    revoke_api_key(&w.services, &ctx, &spare).await.unwrap();
    let listed = list_api_keys(&w.services, "tenant-a").await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(
        listed.iter().find(|k| k.key_id == spare).unwrap().state,
        "revoked"
    );
    assert!(
        listed
            .iter()
            .all(|k| k.key_id != w.key_of("tenant-b")[3..19])
    );

    // A key of the earlier format has no list entry until the re-key job adds it.
    let b_id = w.key_of("tenant-b")[3..19].to_owned();
    w.services
        .store
        .delete(
            &key_list_pk("tenant-b"),
            &format!("KEY#{b_id}"),
            latchkey::ports::store::Condition::Exists,
        )
        .await
        .unwrap()
        .unwrap();
    let store = &w.services.store;
    let mut record = store
        .get(&format!("KEY#{b_id}"), "KEY")
        .await
        .unwrap()
        .unwrap();
    record.attrs.remove("listed");
    let v = record.version;
    store
        .put(
            record.with_version(v + 1),
            latchkey::ports::store::Condition::Version(v),
        )
        .await
        .unwrap();
    assert!(
        list_api_keys(&w.services, "tenant-b")
            .await
            .unwrap()
            .is_empty()
    );
    let report = latchkey::domain::rekey::rekey(&w.services, &ctx)
        .await
        .unwrap();
    assert_eq!(report.keys_listed, 1, "{report:?}");
    let again = latchkey::domain::rekey::rekey(&w.services, &ctx)
        .await
        .unwrap();
    assert_eq!(again.keys_listed, 0, "listed once");
    assert_eq!(
        list_api_keys(&w.services, "tenant-b").await.unwrap()[0].key_id,
        b_id
    );
}

/// A user's data export holds what Latchkey keeps about them, opened (attributes,
/// authenticators, actions with the caller's address and user agent), never a secret, and
/// is audited.
#[tokio::test]
async fn a_users_data_export_holds_their_data_opened_and_no_secret() {
    let w = world().await;
    let ctx = AuditContext::system("test", "export");
    let (email, phone) = ("export.me@example.com", "+64211112222");
    w.a(
        Method::PATCH,
        "/v1/users/export-user",
        Some(json!({"email": email, "phoneNumber": phone, "displayName": "Ex Port"})),
    )
    .await;
    let totp_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let (status, v) = w
        .a(
            Method::POST,
            "/v1/users/export-user/authenticators",
            Some(json!({"verificationMethod": "AUTHENTICATOR_APP",
                        "otpUri": format!("otpauth://totp/A:x?secret={totp_secret}&issuer=A")})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    w.a(
        Method::POST,
        "/v1/users/export-user/actions/signIn",
        Some(json!({"ipAddress": "203.0.113.50", "userAgent": "ExportAgent/1"})),
    )
    .await;

    let tenant = latchkey::domain::tenants::get_tenant(&w.services, "tenant-a")
        .await
        .unwrap()
        .unwrap();
    let export = latchkey::domain::export::export_user(&w.services, &ctx, &tenant, "export-user")
        .await
        .unwrap();
    assert_eq!(export["userId"], "export-user");
    assert_eq!(export["attributes"]["email"], email);
    assert_eq!(export["attributes"]["phoneNumber"], phone);
    assert_eq!(export["attributes"]["displayName"], "Ex Port");
    assert_eq!(
        export["authenticators"][0]["verificationMethod"],
        "AUTHENTICATOR_APP"
    );
    assert_eq!(export["actions"][0]["actionCode"], "signIn");
    assert_eq!(export["actions"][0]["ipAddress"], "203.0.113.50");
    assert_eq!(export["actions"][0]["userAgent"], "ExportAgent/1");
    let text = export.to_string();
    for secret in [totp_secret, "otpauth", "hash", "dataKey"] {
        assert!(!text.contains(secret), "{secret:?} in the export: {text}");
    }
    let exported = w
        .events("tenant-a")
        .await
        .into_iter()
        .filter(|e| e.action == "user.export")
        .count();
    assert_eq!(exported, 1);
    let missing =
        latchkey::domain::export::export_user(&w.services, &ctx, &tenant, "nobody-here").await;
    assert!(matches!(missing, Err(latchkey::domain::Error::NotFound(_))));
}

/// The audit log lists newest first, filtered by action (exactly or by prefix), actor, target
/// and time, and pages through every match exactly once.
#[tokio::test]
async fn the_audit_log_lists_filtered_events_a_page_at_a_time() {
    use latchkey::domain::audit::list::{EventFilter, list};
    use latchkey::ports::Clock as _;
    let w = world().await;
    let start = w.clock.now();
    for n in 0..5 {
        w.clock.advance(time::Duration::minutes(1));
        w.a(
            Method::PATCH,
            &format!("/v1/users/audit-user-{n}"),
            Some(json!({"displayName": format!("User {n}")})),
        )
        .await;
        w.a(
            Method::POST,
            &format!("/v1/users/audit-user-{n}/actions/signIn"),
            Some(json!({})),
        )
        .await;
    }
    let store = &*w.services.store;
    let all = |filter: EventFilter| async move {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = list(store, "tenant-a", &filter, 2, cursor).await.unwrap();
            assert!(page.len() <= 2);
            out.extend(page);
            match next {
                Some(c) => cursor = Some(c),
                None => return out,
            }
        }
    };
    let users = all(EventFilter {
        action: Some("user.".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(users.len(), 5, "{users:?}");
    assert!(users.iter().all(|e| e.action == "user.update"));
    assert!(
        users.windows(2).all(|p| p[0].time >= p[1].time),
        "newest first"
    );
    let tracked = all(EventFilter {
        action: Some("action.track".into()),
        ..Default::default()
    })
    .await;
    let everything = all(EventFilter::default()).await;
    let mut ids: Vec<&str> = everything.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), everything.len(), "no event twice across pages");
    assert!(everything.len() >= users.len() + tracked.len());

    // Between minutes 2 and 4 (exclusive): the second and third users' events.
    let window = all(EventFilter {
        action: Some("user.update".into()),
        since: Some(start + time::Duration::minutes(2)),
        until: Some(start + time::Duration::minutes(4)),
        ..Default::default()
    })
    .await;
    assert_eq!(window.len(), 2, "{window:?}");
    let one = all(EventFilter {
        target: Some(users[0].target.clone()),
        ..Default::default()
    })
    .await;
    assert!(one.iter().all(|e| e.target == users[0].target));
    assert!(!one.is_empty());
    assert!(
        list(store, "tenant-a", &EventFilter::default(), 0, None)
            .await
            .is_err()
    );
}
