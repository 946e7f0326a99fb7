//! Each HTTP function's IAM policy in `template.yaml` is what its code calls (issue #14): a
//! tour drives every route of the Server API, the Client API's ceremonies, the status
//! function's reads and writes, and the management API's routes (people signed in with a
//! passkey, an operator under a grant, a management key, a tenant's crypto-shredding), each through that function's own router on cold services (a
//! fresh process, as a Lambda instance is), records every store, key-vault, secrets and mail
//! call, turns them into the IAM actions the AWS adapters make for them, and compares the set
//! with the actions the function's policy grants: nothing the code calls may be missing (the
//! function would fail in production), and nothing granted may go unused.
//!
//! The backup and sealer functions are event handlers with their own exact checks in
//! `infra/ci/check_template.py` (`backup_allowed`, the sealer's stream and signing rules).
use axum::Router;
use http::{Method, StatusCode};
use latchkey::domain::admin::Role;
use latchkey::domain::admin::accounts::{self, Invitee};
use latchkey::domain::audit::AuditContext;
use latchkey::domain::status::operators::create_operator;
use latchkey::domain::tenants;
use latchkey::domain::tenants::{AdminContact, add_admin_contact};
use latchkey::domain::{CachePolicy, Services};
use latchkey::http::HttpSettings;
use latchkey::ports::signer::Signer;
use latchkey_tests::{Client, ORIGIN, TENANT, World};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use time::Duration;
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse};

const TEMPLATE: &str = include_str!("../../../template.yaml");
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const USER: &str = "iam-user";

/// The IAM actions one recorded store call needs on DynamoDB, as
/// `latchkey::adapters::dynamodb::DynamoStore` makes it: a transaction needs the per-item
/// action of each of its operations (IAM has no action of its own for TransactWriteItems), and
/// a transaction of one count is a single `UpdateItem`.
fn dynamodb_actions(call: &str) -> Vec<&'static str> {
    let (kind, rest) = call.split_once(' ').unwrap_or((call, ""));
    match kind {
        "get" => vec!["dynamodb:GetItem"],
        "put" => vec!["dynamodb:PutItem"],
        "delete" => vec!["dynamodb:DeleteItem"],
        "query" => vec!["dynamodb:Query"],
        "scan" => vec!["dynamodb:Scan"],
        "transact" => rest
            .trim_start_matches('[')
            .split(", ")
            .filter_map(|op| match op.split(' ').next() {
                Some("put") => Some("dynamodb:PutItem"),
                Some("delete") => Some("dynamodb:DeleteItem"),
                Some("check") => Some("dynamodb:ConditionCheckItem"),
                Some("count" | "update") => Some("dynamodb:UpdateItem"),
                _ => None, // a piece of a condition's text, not an operation
            })
            .collect(),
        other => panic!("a store call this test does not know: {other}"),
    }
}

/// The IAM actions of a key-vault, secrets or signer call, as the KMS and Secrets Manager
/// adapters make it.
fn port_actions(call: &str) -> Vec<&'static str> {
    match call {
        "vault.decrypt_data_key" => vec!["kms:Decrypt"],
        "vault.generate_data_key" => vec!["kms:GenerateDataKey"],
        "vault.probe" => vec!["kms:DescribeKey"],
        // CreateKey with tags needs TagResource as well.
        "vault.create_tenant_kek" => vec!["kms:CreateKey", "kms:TagResource"],
        "vault.destroy_tenant_kek" => vec!["kms:DisableKey", "kms:ScheduleKeyDeletion"],
        "secrets.get" => vec!["secretsmanager:GetSecretValue"],
        "signer.public_key" => vec!["kms:GetPublicKey"],
        other => panic!("a port call this test does not know: {other}"),
    }
}

/// The audit signing key, noting when its public key is read (`kms:GetPublicKey` on AWS).
struct RecordingSigner {
    inner: Arc<dyn Signer>,
    calls: Arc<latchkey_tests::counting::PortCalls>,
}

#[async_trait::async_trait]
impl Signer for RecordingSigner {
    fn key_id(&self) -> &str {
        self.inner.key_id()
    }
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, latchkey::ports::signer::SignerError> {
        self.calls.note("signer.sign");
        self.inner.sign(message).await
    }
    async fn public_key(&self) -> Result<Vec<u8>, latchkey::ports::signer::SignerError> {
        self.calls.note("signer.public_key");
        self.inner.public_key().await
    }
}

/// The `dynamodb:`, `kms:`, `secretsmanager:` and `ses:` actions a resource's policies grant.
/// A line scanner (see `latchkey::http::routes::template_routes` for why): a resource is a line
/// of two spaces and a name ending in `:`; an action is a `- service:Action` line inside it.
fn granted(template: &str, resource: &str) -> BTreeSet<String> {
    let mut current = "";
    let mut out = BTreeSet::new();
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 2 && text.ends_with(':') && !text.starts_with('#') {
            current = text.trim_end_matches(':');
            continue;
        }
        if current != resource {
            continue;
        }
        if let Some(action) = text.strip_prefix("- ")
            && ["dynamodb:", "kms:", "secretsmanager:", "ses:"]
                .iter()
                .any(|p| action.starts_with(p))
        {
            out.insert(action.to_owned());
        }
    }
    out
}

/// One function of the tour: its own router on services of its own, and what it called.
struct Function {
    client: Client,
    used: BTreeSet<String>,
}

/// The tour: the world's recorders, and the three HTTP functions.
struct Tour {
    w: World,
    functions: BTreeMap<&'static str, Function>,
}

impl Tour {
    async fn new() -> Self {
        let w = World::setup().record_port_calls().build().await;
        let ctx = AuditContext::system("test", "iam-setup");
        add_admin_contact(
            &w.services,
            &ctx,
            TENANT,
            AdminContact {
                first_name: "Ada".into(),
                last_name: "Admin".into(),
                email: "admin@example.com".into(),
                company: "Example".into(),
            },
        )
        .await
        .unwrap();
        let cold = |w: &World| {
            Arc::new(Services::new(
                latchkey::domain::Ports {
                    store: w.services.store.clone(),
                    vault: w.services.vault.clone(),
                    secrets: w.services.secrets.clone(),
                    clock: w.services.clock.clone(),
                    random: w.services.random.clone(),
                    mailer: w.services.mailer.clone(),
                },
                CachePolicy {
                    ttl: Duration::minutes(5),
                    capacity: 100,
                },
                latchkey::domain::limits::AnonymousLimits::default(),
            ))
        };
        let settings = HttpSettings::default;
        let signer: Arc<dyn Signer> = Arc::new(RecordingSigner {
            inner: w.sealer.signer().clone(),
            calls: w.port_calls.clone().unwrap(),
        });
        let apps: [(&'static str, Router); 4] = [
            (
                "AdminFunction",
                latchkey_admin_api::app(cold(&w), signer, settings()),
            ),
            ("AuthFunction", latchkey_auth::app(cold(&w), settings())),
            ("ClientFunction", latchkey_client::app(cold(&w), settings())),
            (
                "StatusFunction",
                latchkey_status::app(cold(&w), settings(), None),
            ),
        ];
        let functions = apps
            .into_iter()
            .map(|(name, app)| {
                let function = Function {
                    client: Client::new(app).with_origin(Some(ORIGIN)),
                    used: BTreeSet::new(),
                };
                (name, function)
            })
            .collect();
        // What setup did (tenant creation, contacts) is latchkey-admin's, not a function's.
        w.store_calls.as_ref().unwrap().take();
        w.port_calls.as_ref().unwrap().take();
        Self { w, functions }
    }

    /// Sends one request to `function` and notes the AWS actions it caused.
    async fn call(
        &mut self,
        function: &'static str,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.call_keyed(function, method, auth, uri, body, None)
            .await
    }

    /// [`Tour::call`] with an `Idempotency-Key` header when `key` is given.
    async fn call_keyed(
        &mut self,
        function: &'static str,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mails = self.w.outbox.sent().len();
        let f = self.functions.get_mut(function).unwrap();
        let answer = match key {
            None => f.client.send(method, auth, uri, body).await,
            Some(key) => {
                let mut req = http::Request::builder()
                    .method(method)
                    .uri(uri)
                    .header("idempotency-key", key)
                    .header(http::header::CONTENT_TYPE, "application/json");
                if let Some(auth) = auth {
                    req = req.header(http::header::AUTHORIZATION, auth);
                }
                let body = body.map(|b| b.to_string()).unwrap_or_default();
                let r = f
                    .client
                    .request(req.body(axum::body::Body::from(body)).unwrap())
                    .await;
                (r.status, r.json())
            }
        };
        for call in self.w.store_calls.as_ref().unwrap().take() {
            f.used
                .extend(dynamodb_actions(&call).into_iter().map(str::to_owned));
        }
        for call in self.w.port_calls.as_ref().unwrap().take() {
            f.used
                .extend(port_actions(call).into_iter().map(str::to_owned));
        }
        if self.w.outbox.sent().len() > mails {
            f.used.insert("ses:SendEmail".to_owned());
        }
        answer
    }

    async fn ok(
        &mut self,
        function: &'static str,
        method: Method,
        auth: Option<&str>,
        uri: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, v) = self.call(function, method.clone(), auth, uri, body).await;
        assert!(status.is_success(), "{method} {uri}: {status} {v}");
        v
    }

    async fn track(&mut self, action: &str) -> (String, String) {
        let server = self.w.server();
        let t = self
            .ok(
                "AuthFunction",
                Method::POST,
                Some(&server),
                &format!("/v1/users/{USER}/actions/{action}"),
                Some(json!({})),
            )
            .await;
        (
            format!("Bearer {}", t["token"].as_str().unwrap()),
            t["idempotencyKey"].as_str().unwrap().to_owned(),
        )
    }

    fn totp_code(&self) -> String {
        self.w.clock.advance(Duration::seconds(30));
        totp_rs::Builder::new()
            .with_secret(totp_rs::Secret::try_from_base32(TOTP_SECRET).unwrap())
            .build()
            .unwrap()
            .generate(self.w.now())
            .to_string()
    }

    /// A request to the management API with the session cookie (and the console's Origin);
    /// a success is expected unless `expect` says otherwise.
    async fn admin(
        &mut self,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value, http::HeaderMap) {
        let mut req = http::Request::builder()
            .method(method)
            .uri(uri)
            .header(http::header::ORIGIN, ORIGIN)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(c) = cookie {
            req = req.header(http::header::COOKIE, format!("__Host-lk_session={c}"));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let f = self.functions.get_mut("AdminFunction").unwrap();
        let r = f
            .client
            .request(req.body(axum::body::Body::from(body)).unwrap())
            .await;
        for call in self.w.store_calls.as_ref().unwrap().take() {
            f.used
                .extend(dynamodb_actions(&call).into_iter().map(str::to_owned));
        }
        for call in self.w.port_calls.as_ref().unwrap().take() {
            f.used
                .extend(port_actions(call).into_iter().map(str::to_owned));
        }
        (r.status, r.json(), r.headers)
    }

    async fn admin_ok(
        &mut self,
        method: Method,
        uri: &str,
        cookie: &str,
        body: Option<Value>,
    ) -> Value {
        let (status, v, _) = self.admin(method.clone(), uri, Some(cookie), body).await;
        assert!(status.is_success(), "{method} {uri}: {status} {v}");
        v
    }

    /// Accepts an invite: the management API's accept, a passkey registered through the
    /// Client API on the console tenant, then the session. Returns the cookie value, the
    /// passkey and its credential id.
    async fn person(&mut self, invite: &str) -> (String, SoftPasskey, String) {
        let (status, e, _) = self
            .admin(
                Method::POST,
                "/v1/admin/invites/accept",
                None,
                Some(json!({ "invite": invite })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{e}");
        let bearer = format!("Bearer {}", e["token"].as_str().unwrap());
        let mut passkey = SoftPasskey::new(true);
        let o = self
            .ok(
                "ClientFunction",
                Method::POST,
                Some(&bearer),
                "/v1/client/user-authenticators/passkey/registration-options",
                Some(json!({})),
            )
            .await;
        let mut options = o["options"].clone();
        options["authenticatorSelection"]["residentKey"] = json!("discouraged");
        options["authenticatorSelection"]["requireResidentKey"] = json!(false);
        let ccr: CreationChallengeResponse =
            serde_json::from_value(json!({ "publicKey": options })).unwrap();
        let credential = passkey
            .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
            .unwrap();
        let registered = self
            .ok(
                "ClientFunction",
                Method::POST,
                Some(&bearer),
                "/v1/client/user-authenticators/passkey",
                Some(json!({ "challengeId": o["challengeId"], "registrationCredential": credential })),
            )
            .await;
        let (status, v, headers) = self
            .admin(
                Method::POST,
                "/v1/admin/session",
                None,
                Some(json!({ "token": e["token"], "invite": invite })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        let cookie = headers[http::header::SET_COOKIE]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .trim_start_matches("__Host-lk_session=")
            .to_owned();
        let id = registered["userAuthenticator"]["webauthnCredential"]["credentialId"]
            .as_str()
            .unwrap()
            .to_owned();
        (cookie, passkey, id)
    }

    /// Tracks `action` and passes its challenge with the authenticator app.
    async fn after_totp(&mut self, action: &str) -> String {
        let (bearer, _) = self.track(action).await;
        let code = self.totp_code();
        let v = self
            .ok(
                "ClientFunction",
                Method::POST,
                Some(&bearer),
                "/v1/client/verify/totp",
                Some(json!({ "verificationCode": code })),
            )
            .await;
        assert_eq!(v["isVerified"], true, "{v}");
        format!("Bearer {}", v["accessToken"].as_str().unwrap())
    }
}

#[tokio::test]
async fn each_functions_iam_policy_is_what_its_code_calls() {
    let mut t = Tour::new().await;
    let server = t.w.server();
    let auth = Some(server.as_str());
    let user = format!("/v1/users/{USER}");
    use Method as M;

    // The Server API: enrolment by the backend, users, actions, validate.
    t.ok("AuthFunction", M::GET, None, "/health", None).await;
    t.ok("AuthFunction", M::GET, None, "/openapi.json", None)
        .await;
    let otp_uri = format!("otpauth://totp/Example:{USER}?secret={TOTP_SECRET}&issuer=Example");
    let uri = format!("{user}/authenticators");
    let totp = t
        .ok(
            "AuthFunction",
            M::POST,
            auth,
            &uri,
            Some(json!({ "verificationMethod": "AUTHENTICATOR_APP", "otpUri": otp_uri })),
        )
        .await;
    let body = json!({ "verificationMethod": "EMAIL_OTP", "email": "iam@example.com" });
    t.ok("AuthFunction", M::POST, auth, &uri, Some(body)).await;
    t.ok("AuthFunction", M::GET, auth, &uri, None).await;
    let body = json!({ "email": "iam@example.com", "displayName": "I. Am" });
    t.ok("AuthFunction", M::PATCH, auth, &user, Some(body))
        .await;
    t.ok("AuthFunction", M::GET, auth, &user, None).await;
    let by_email = "/v1/users?email=iam%40example.com";
    t.ok("AuthFunction", M::GET, auth, by_email, None).await;

    // The Client API: each ceremony kind, on tokens the Server API issued.
    let after = t.after_totp("enrol").await;
    let codes = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&after),
            "/v1/client/user-authenticators/recovery-codes",
            Some(json!({})),
        )
        .await;
    let mut passkey = SoftPasskey::new(true);
    let o = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&after),
            "/v1/client/user-authenticators/passkey/registration-options",
            Some(json!({})),
        )
        .await;
    let mut options = o["options"].clone();
    options["authenticatorSelection"]["residentKey"] = json!("discouraged");
    options["authenticatorSelection"]["requireResidentKey"] = json!(false);
    let ccr: CreationChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let credential = passkey
        .do_registration(Url::parse(ORIGIN).unwrap(), ccr)
        .unwrap();
    let registered = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&after),
            "/v1/client/user-authenticators/passkey",
            Some(json!({ "challengeId": o["challengeId"], "registrationCredential": credential })),
        )
        .await;
    let credential_id = registered["userAuthenticator"]["webauthnCredential"]["credentialId"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant = latchkey_tests::tenant_basic(TENANT);
    let uri = format!("/v1/client/user-authenticators/passkey?credentialIds={credential_id}");
    t.ok("ClientFunction", M::GET, Some(&tenant), &uri, None)
        .await;

    let (bearer, key) = t.track("signIn").await;
    let o = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&bearer),
            "/v1/client/user-authenticators/passkey/authentication-options",
            Some(json!({})),
        )
        .await;
    let mut options = o["options"].clone();
    options["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let assertion = passkey
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let v = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&bearer),
            "/v1/client/verify/passkey",
            Some(json!({ "challengeId": o["challengeId"], "authenticationCredential": assertion })),
        )
        .await;
    assert_eq!(v["isVerified"], true, "{v}");
    let token = v["accessToken"].as_str().unwrap().to_owned();

    let (bearer, _) = t.track("email").await;
    t.ok(
        "ClientFunction",
        M::POST,
        Some(&bearer),
        "/v1/client/challenge/email-otp",
        Some(json!({})),
    )
    .await;
    let mail = t.w.outbox.sent().last().unwrap().text.clone();
    let at = mail.find("code is ").unwrap() + "code is ".len();
    let code: String = mail[at..].chars().take(6).collect();
    let v = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&bearer),
            "/v1/client/verify/email-otp",
            Some(json!({ "verificationCode": code })),
        )
        .await;
    assert_eq!(v["isVerified"], true, "{v}");
    let (bearer, _) = t.track("recovery").await;
    let code = codes["recoveryCodes"][0].as_str().unwrap().to_owned();
    let v = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&bearer),
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": code })),
        )
        .await;
    assert_eq!(v["isVerified"], true, "{v}");

    // Back on the Server API: the results, the actions, a wrong key, and deletion.
    let v = t
        .ok(
            "AuthFunction",
            M::POST,
            auth,
            "/v1/validate",
            Some(json!({ "token": token })),
        )
        .await;
    assert_eq!(v["isValid"], true, "{v}");
    let uri = format!("{user}/actions/signIn/{key}");
    t.ok("AuthFunction", M::GET, auth, &uri, None).await;
    let body = json!({ "state": "REVIEW_REQUIRED" });
    t.ok("AuthFunction", M::PATCH, auth, &uri, Some(body)).await;
    let uri = format!("{user}/actions");
    t.ok("AuthFunction", M::GET, auth, &uri, None).await;
    let wrong = latchkey_tests::basic("lk_0011223344556677_not-the-key");
    let (status, _) = t
        .call("AuthFunction", M::GET, Some(&wrong), &user, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let id = totp["authenticator"]["userAuthenticatorId"]
        .as_str()
        .unwrap_or_else(|| panic!("{totp}"))
        .to_owned();
    let uri = format!("{user}/authenticators/{id}");
    t.ok("AuthFunction", M::DELETE, auth, &uri, None).await;
    t.ok("AuthFunction", M::DELETE, auth, &user, None).await;

    // The status function: the public documents, and an operator's writes with an urgent
    // notice to the tenant whose data is affected.
    let ctx = AuditContext::system("test", "iam-operator");
    let (_, operator) = create_operator(&t.w.services, &ctx, "on-call", 30)
        .await
        .unwrap();
    t.w.store_calls.as_ref().unwrap().take();
    t.w.port_calls.as_ref().unwrap().take();
    let op = format!("Bearer {operator}");
    let op = Some(op.as_str());
    for path in [
        "/status",
        "/status/feed.atom",
        "/status/api/v2/summary.json",
        "/status/api/v2/incidents/unresolved.json",
    ] {
        t.ok("StatusFunction", M::GET, None, path, None).await;
    }
    t.ok("StatusFunction", M::GET, op, "/status/manage/whoami", None)
        .await;
    let c = t
        .ok(
            "StatusFunction",
            M::POST,
            op,
            "/status/manage/components",
            Some(json!({ "name": "Core", "group": true })),
        )
        .await;
    let body = json!({ "name": "Server API", "group_id": c["id"] });
    let c = t
        .ok(
            "StatusFunction",
            M::POST,
            op,
            "/status/manage/components",
            Some(body),
        )
        .await;
    let uri = format!("/status/manage/components/{}", c["id"].as_str().unwrap());
    let body = json!({ "status": "degraded_performance" });
    t.ok("StatusFunction", M::PATCH, op, &uri, Some(body)).await;
    let body = json!({ "name": "Key exposure", "body": "A key was logged.",
                       "data_impact_tenants": [TENANT] });
    let (status, i) = t
        .call_keyed(
            "StatusFunction",
            M::POST,
            op,
            "/status/manage/incidents",
            Some(body),
            Some("iam-incident"),
        )
        .await;
    assert!(status.is_success(), "{status} {i}");
    let uri = format!(
        "/status/manage/incidents/{}/updates",
        i["id"].as_str().unwrap()
    );
    let body = json!({ "status": "resolved", "body": "Rotated." });
    let key = Some("iam-resolved");
    let (status, v) = t
        .call_keyed("StatusFunction", M::POST, op, &uri, Some(body), key)
        .await;
    assert!(status.is_success(), "{status} {v}");

    // The management API: people sign in with a passkey on the console tenant (the ceremonies
    // are the Client API's), then every kind of route, an operator under a grant, a management
    // key, and last the tenant's deletion.
    let ctx = AuditContext::system("test", "iam-admin");
    accounts::init_console(&t.w.services, &ctx, "console", vec![ORIGIN.to_owned()])
        .await
        .unwrap();
    let other = "t-iam-other";
    tenants::create_tenant(
        &t.w.services,
        &ctx,
        other,
        latchkey_tests::example_settings("O"),
        vec![],
    )
    .await
    .unwrap();
    let owner_invite = |tenant: &str| Invitee::Member {
        tenant_id: tenant.to_owned(),
        role: Role::Owner,
    };
    let (_, invite) = accounts::create_invite(&t.w.services, &ctx, owner_invite(TENANT), 24)
        .await
        .unwrap();
    let (_, join) = accounts::create_invite(&t.w.services, &ctx, owner_invite(other), 24)
        .await
        .unwrap();
    let (_, op_invite) = accounts::create_invite(&t.w.services, &ctx, Invitee::Operator, 24)
        .await
        .unwrap();
    t.w.store_calls.as_ref().unwrap().take();
    t.w.port_calls.as_ref().unwrap().take();
    t.track("adminTour").await;
    let body = json!({ "email": "iam@example.com" });
    t.ok("AuthFunction", M::PATCH, auth, &user, Some(body))
        .await;
    let (me, mut passkey, credential_id) = t.person(&invite).await;
    let me = me.as_str();
    let a = format!("/v1/admin/tenants/{TENANT}");
    t.admin_ok(M::GET, "/v1/admin/openapi.json", me, None).await;
    t.admin_ok(M::GET, "/v1/admin/session", me, None).await;
    t.admin_ok(M::GET, "/v1/admin/tenants", me, None).await;
    t.admin_ok(
        M::POST,
        "/v1/admin/session/invites",
        me,
        Some(json!({ "invite": join })),
    )
    .await;
    t.admin_ok(M::GET, &a, me, None).await;
    let body =
        json!({ "name": "Renamed", "actions": { "withdraw": { "defaultOutcome": "BLOCK" } } });
    t.admin_ok(M::PATCH, &a, me, Some(body)).await;
    t.admin_ok(M::GET, &format!("{a}/keys"), me, None).await;
    let k = t
        .admin_ok(M::POST, &format!("{a}/keys"), me, Some(json!({})))
        .await;
    let uri = format!("{a}/keys/{}/rotate", k["keyId"].as_str().unwrap());
    let r = t
        .admin_ok(M::POST, &uri, me, Some(json!({ "overlapHours": 1 })))
        .await;
    let uri = format!("{a}/keys/{}", r["keyId"].as_str().unwrap());
    t.admin_ok(M::DELETE, &uri, me, None).await;
    t.admin_ok(M::GET, &format!("{a}/users"), me, None).await;
    t.admin_ok(
        M::GET,
        &format!("{a}/users?email=iam%40example.com"),
        me,
        None,
    )
    .await;
    t.admin_ok(M::GET, &format!("{a}/users?userId={USER}"), me, None)
        .await;
    t.admin_ok(M::GET, &format!("{a}/users/{USER}"), me, None)
        .await;
    t.admin_ok(
        M::POST,
        &format!("{a}/users/{USER}/export"),
        me,
        Some(json!({})),
    )
    .await;
    t.admin_ok(M::DELETE, &format!("{a}/users/{USER}"), me, None)
        .await;
    t.admin_ok(M::GET, &format!("{a}/audit?action=tenant."), me, None)
        .await;
    t.admin_ok(M::GET, &format!("{a}/audit/verify"), me, None)
        .await;
    let (status, _, _) = t
        .admin(M::GET, &format!("{a}/audit/export"), Some(me), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let g = t
        .admin_ok(
            M::POST,
            &format!("{a}/grants"),
            me,
            Some(json!({ "scope": "read", "hours": 2, "reason": "iam tour" })),
        )
        .await;
    t.admin_ok(M::GET, &format!("{a}/grants"), me, None).await;
    t.admin_ok(M::GET, &format!("{a}/members"), me, None).await;
    t.admin_ok(
        M::POST,
        &format!("{a}/invites"),
        me,
        Some(json!({ "role": "viewer" })),
    )
    .await;
    let (status, _, _) = t
        .admin(
            M::DELETE,
            &format!("{a}/members/acct_nobody"),
            Some(me),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let m = t
        .admin_ok(
            M::POST,
            &format!("{a}/management-keys"),
            me,
            Some(json!({ "role": "viewer", "name": "iam" })),
        )
        .await;
    t.admin_ok(M::GET, &format!("{a}/management-keys"), me, None)
        .await;
    // The key at work, then revoked.
    let key = format!("Bearer {}", m["secret"].as_str().unwrap());
    let (status, v) = t.call("AdminFunction", M::GET, Some(&key), &a, None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let uri = format!("{a}/management-keys/{}", m["keyId"].as_str().unwrap());
    t.admin_ok(M::DELETE, &uri, me, None).await;
    // An operator reads under the grant; the grant is revoked; the operator signs out.
    let (op, _, _) = t.person(&op_invite).await;
    t.admin_ok(M::GET, &format!("{a}/users"), &op, None).await;
    let uri = format!("{a}/grants/{}", g["id"].as_str().unwrap());
    t.admin_ok(M::DELETE, &uri, me, None).await;
    t.admin_ok(M::DELETE, "/v1/admin/session", &op, None).await;
    // The owner's fresh passkey check, then the tenant's deletion.
    let re = t
        .admin_ok(M::POST, "/v1/admin/session/reauth", me, None)
        .await;
    let bearer = format!("Bearer {}", re["token"].as_str().unwrap());
    let o = t
        .ok(
            "ClientFunction",
            M::POST,
            Some(&bearer),
            "/v1/client/user-authenticators/passkey/authentication-options",
            Some(json!({})),
        )
        .await;
    let mut options = o["options"].clone();
    options["allowCredentials"] = json!([{ "type": "public-key", "id": credential_id }]);
    let rcr: RequestChallengeResponse =
        serde_json::from_value(json!({ "publicKey": options })).unwrap();
    let assertion = passkey
        .do_authentication(Url::parse(ORIGIN).unwrap(), rcr)
        .unwrap();
    let body = json!({ "challengeId": o["challengeId"], "authenticationCredential": assertion });
    t.ok(
        "ClientFunction",
        M::POST,
        Some(&bearer),
        "/v1/client/verify/passkey",
        Some(body),
    )
    .await;
    let (status, v, _) = t
        .admin(
            M::DELETE,
            &a,
            Some(me),
            Some(json!({ "token": re["token"] })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");

    let mut wrong = Vec::new();
    for (name, f) in &t.functions {
        let grants = granted(TEMPLATE, name);
        assert!(
            !grants.is_empty(),
            "{name}: no policy found in template.yaml"
        );
        let missing: Vec<_> = f.used.difference(&grants).collect();
        let unused: Vec<_> = grants.difference(&f.used).collect();
        if !missing.is_empty() {
            wrong.push(format!("{name} calls but is not granted: {missing:?}"));
        }
        if !unused.is_empty() {
            wrong.push(format!("{name} is granted but never calls: {unused:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
