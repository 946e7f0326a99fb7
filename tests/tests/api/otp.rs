//! Authenticator-app TOTP, email OTP and recovery codes through the local gateway, with the
//! controllable clock, and email read from the `.eml` outbox as a person would read it.
use http::{Method, StatusCode};
use latchkey::domain::audit::AuditContext;
use latchkey_tests::{World, example_settings, tenant_basic};
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;

/// The tenant `t-otp` ("Example Bank"), on a SQLite file, with mail as `.eml` files.
async fn world() -> World {
    World::setup()
        .tenant("t-otp", example_settings("Example Bank"))
        .on_disk()
        .eml_outbox()
        .build()
        .await
}

/// What these tests do often, on the shared world.
trait Otp {
    async fn enroll_email(&self, bearer: &str, address: &str) -> String;
    async fn verify_email(&self, bearer: &str, code: &str) -> (StatusCode, Value);
    async fn authenticators(&self, user: &str) -> Value;
    fn last_code(&self) -> (String, String);
}

impl Otp for World {
    /// Enrolls `address` as the bearer's email authenticator; returns the code mailed to it.
    async fn enroll_email(&self, bearer: &str, address: &str) -> String {
        let (status, e) = self
            .post(
                bearer,
                "/v1/client/user-authenticators/email-otp",
                Some(json!({ "email": address })),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{e}");
        let (code, to) = self.last_code();
        assert_eq!(to, format!("To: {address}"));
        code
    }

    async fn verify_email(&self, bearer: &str, code: &str) -> (StatusCode, Value) {
        self.post(
            bearer,
            "/v1/client/verify/email-otp",
            Some(json!({ "verificationCode": code })),
        )
        .await
    }

    async fn authenticators(&self, user: &str) -> Value {
        let (status, v) = self
            .get(&self.server(), &format!("/v1/users/{user}/authenticators"))
            .await;
        assert_eq!(status, StatusCode::OK, "{v}");
        v
    }

    /// The code in the newest message of the outbox, and that message's recipient line.
    fn last_code(&self) -> (String, String) {
        let files = self.eml().messages().unwrap();
        let text = std::fs::read_to_string(files.last().expect("a message in the outbox")).unwrap();
        let at = text.find("code is ").expect("a code in the message") + "code is ".len();
        let code: String = text[at..].chars().take(6).collect();
        assert!(code.bytes().all(|b| b.is_ascii_digit()), "{code}");
        let to = text
            .lines()
            .find(|l| l.starts_with("To: "))
            .unwrap()
            .to_owned();
        (code, to)
    }
}

fn totp_of(secret: &str) -> totp_rs::Totp {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(totp_rs::Secret::try_from_base32(secret).unwrap())
        .build()
        .unwrap()
}

fn code_at(t: &totp_rs::Totp, step: u64) -> String {
    t.generate(step * 30).to_string()
}

async fn verify_totp(w: &World, bearer: &str, code: &str) -> Value {
    let (status, v) = w
        .post(
            bearer,
            "/v1/client/verify/totp",
            Some(json!({ "verificationCode": code })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn totp_enrolls_on_the_first_code_and_accepts_one_step_either_side_once() {
    let w = world().await;
    let bearer = w.track("tia", "enroll").await.bearer;
    let (status, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let uri = e["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Example%20Bank:tia?"),
        "{uri}"
    );
    assert!(uri.contains("issuer=Example%20Bank"), "{uri}");
    // SHA1, 6 digits, 30 s: stated, or left to the otpauth defaults, which are the same.
    for (key, value) in [("algorithm", "SHA1"), ("digits", "6"), ("period", "30")] {
        assert!(
            !uri.contains(&format!("{key}=")) || uri.contains(&format!("{key}={value}")),
            "{uri}"
        );
    }
    let parsed = totp_rs::Totp::from_url(uri).unwrap();
    assert_eq!(parsed.secret().to_base32(), e["secret"].as_str().unwrap());
    let t = totp_of(e["secret"].as_str().unwrap());
    // 160-bit secret.
    assert_eq!(
        totp_rs::Secret::try_from_base32(e["secret"].as_str().unwrap())
            .unwrap()
            .as_ref()
            .len(),
        20
    );

    // Not enrolled until a code verifies.
    assert_eq!(w.authenticators("tia").await, json!([]));
    let v = verify_totp(&w, &bearer, "000000").await;
    let wrong = code_at(&t, w.now() / 30 + 5);
    let v2 = verify_totp(&w, &bearer, &wrong).await;
    for v in [v, v2] {
        assert_eq!(
            (v["isVerified"].clone(), v["failureReason"].clone()),
            (json!(false), json!("CODE_INVALID_OR_EXPIRED"))
        );
    }
    assert_eq!(w.authenticators("tia").await, json!([]));

    let step = w.now() / 30;
    let v = verify_totp(&w, &bearer, &code_at(&t, step)).await;
    assert_eq!(v["isVerified"], true, "{v}");
    assert_eq!(
        v["userAuthenticator"]["verificationMethod"],
        "AUTHENTICATOR_APP"
    );
    let codes = v["recoveryCodes"].as_array().unwrap();
    assert_eq!(codes.len(), 10);
    assert_eq!(
        w.validate(&format!("Bearer {}", v["accessToken"].as_str().unwrap()))
            .await["state"],
        "CHALLENGE_SUCCEEDED"
    );
    let list = w.authenticators("tia").await;
    assert_eq!(list[0]["verificationMethod"], "AUTHENTICATOR_APP");
    assert!(list[0]["verifiedAt"].is_string());

    // The same step again, for a new action: refused.
    let again = w.track("tia", "pay").await.bearer;
    let v = verify_totp(&w, &again, &code_at(&t, step)).await;
    assert_eq!(v["isVerified"], false);

    // Step −1, 0 and +1 accepted (each a step not used before).
    w.clock.advance(Duration::seconds(90));
    let now = w.now() / 30;
    for (offset, label) in [(-1i64, "previous"), (0, "current"), (1, "next")] {
        let s = (now as i64 + offset) as u64;
        let b = w.track("tia", label).await.bearer;
        let v = verify_totp(&w, &b, &code_at(&t, s)).await;
        assert_eq!(v["isVerified"], true, "step {offset}: {v}");
        assert!(v.get("userAuthenticator").is_none(), "already enrolled");
        assert!(
            v.get("recoveryCodes").is_none(),
            "codes only at first enrollment"
        );
        assert_eq!(w.validate(&b).await["state"], "CHALLENGE_SUCCEEDED");
    }
    // ±2 refused (after moving on, so the steps are fresh).
    w.clock.advance(Duration::seconds(300));
    let now = w.now() / 30;
    for s in [now - 2, now + 2] {
        let b = w.track("tia", "far").await.bearer;
        let v = verify_totp(&w, &b, &code_at(&t, s)).await;
        assert_eq!(v["isVerified"], false, "step {s} vs {now}");
    }
    let events = w
        .services
        .journal
        .events("t-otp", 1000, None, false)
        .await
        .unwrap()
        .0;
    assert_eq!(
        events.iter().filter(|e| e.action == "totp.enroll").count(),
        1
    );
    assert!(events.iter().any(|e| e.action == "totp.verify.failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_totp_code_raced_by_ten_requests_verifies_once() {
    let w = Arc::new(world().await);
    let bearer = w.track("race", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let t = totp_of(e["secret"].as_str().unwrap());
    let step = w.now() / 30;
    assert_eq!(
        verify_totp(&w, &bearer, &code_at(&t, step)).await["isVerified"],
        true
    );
    w.clock.advance(Duration::seconds(30));
    let code = code_at(&t, w.now() / 30);
    let mut tasks = Vec::new();
    for i in 0..10 {
        let w = Arc::clone(&w);
        let code = code.clone();
        tasks.push(tokio::spawn(async move {
            let b = w.track("race", &format!("a{i}")).await.bearer;
            w.post(
                &b,
                "/v1/client/verify/totp",
                Some(json!({ "verificationCode": code })),
            )
            .await
        }));
    }
    let mut verified = 0;
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["isVerified"] == true {
            verified += 1;
        }
    }
    assert_eq!(verified, 1);
}

#[tokio::test]
async fn email_otp_end_to_end_through_the_outbox() {
    let w = world().await;
    let bearer = w.track("eve", "enroll").await.bearer;
    let (status, e) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/email-otp",
            Some(json!({ "email": "eve@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    assert_eq!(e["userId"], "eve");
    let (code, to) = w.last_code();
    assert_eq!(to, "To: eve@example.com");
    let mail = std::fs::read_to_string(w.eml().messages().unwrap().last().unwrap()).unwrap();
    assert!(mail.contains("Example Bank"), "names the tenant");
    assert!(mail.contains("text/plain") && mail.contains("text/html"));
    assert_eq!(
        w.authenticators("eve").await,
        json!([]),
        "pending until verified"
    );

    let (status, v) = w.verify_email(&bearer, &code).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["isVerified"], true, "{v}");
    assert_eq!(v["userAuthenticator"]["verificationMethod"], "EMAIL_OTP");
    // Single use: the token the verification returned may try again, and is told no.
    let after = format!("Bearer {}", v["accessToken"].as_str().unwrap());
    let (_, v) = w.verify_email(&after, &code).await;
    assert_eq!(v["isVerified"], false);
    // The track token answered its challenge: it may not start over.
    let (status, _) = w.verify_email(&bearer, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(w.validate(&bearer).await["state"], "CHALLENGE_SUCCEEDED");
    // Validate spent the action: its token authorizes nothing more.
    let (status, e) = w.verify_email(&bearer, &code).await;
    assert_eq!(
        (status, e["error"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden"))
    );

    // A challenge for a later action; a resend inside the cooldown is refused.
    let b = w.track("eve", "pay").await.bearer;
    let (status, c) = w.post(&b, "/v1/client/challenge/email-otp", None).await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert!(c["challengeId"].is_string());
    let (status, _) = w.post(&b, "/v1/client/challenge/email-otp", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    w.clock.advance(Duration::seconds(31));
    let (status, _) = w.post(&b, "/v1/client/challenge/email-otp", None).await;
    assert_eq!(status, StatusCode::OK);
    let (code, _) = w.last_code();
    let (_, v) = w.verify_email(&b, &code).await;
    assert_eq!(v["isVerified"], true, "{v}");
    assert!(v.get("userAuthenticator").is_none());

    // Expiry: ten minutes. The token from track lives ten minutes too, so the code's own
    // expiry is checked on the domain with the token's claims: still good at 599 s (through
    // HTTP), refused at 600 s.
    let b = w.track("eve", "late").await.bearer;
    let claims =
        latchkey::domain::tokens::verify(&w.services, "t-otp", b.trim_start_matches("Bearer "))
            .await
            .unwrap()
            .unwrap();
    let tenant = latchkey::domain::tenants::get_tenant(&w.services, "t-otp")
        .await
        .unwrap()
        .unwrap();
    w.post(&b, "/v1/client/challenge/email-otp", None).await;
    let (code, _) = w.last_code();
    w.clock.advance(Duration::seconds(600));
    let ctx = AuditContext::system("test", "expiry");
    let rule =
        latchkey::domain::authz::rule(latchkey::domain::authz::RouteId::VerifyEmailOtp).unwrap();
    let setup = AuditContext::system("test", "authorize");
    let access =
        latchkey::domain::authz::authorize(&w.services, &tenant, &setup, rule, Some(claims))
            .await
            .unwrap();
    let v = latchkey::domain::otp::verify_email(&w.services, &tenant, &ctx, &access, &code)
        .await
        .unwrap();
    assert_eq!(
        (v.is_verified, v.failure_reason),
        (false, Some("CODE_INVALID_OR_EXPIRED"))
    );
    let b = w.track("eve", "in-time").await.bearer;
    w.post(&b, "/v1/client/challenge/email-otp", None).await;
    let (code, _) = w.last_code();
    w.clock.advance(Duration::seconds(599));
    let (_, v) = w.verify_email(&b, &code).await;
    assert_eq!(v["isVerified"], true, "{v}");

    // Five wrong codes fail the challenge; the sixth attempt is refused even with the right code.
    let b = w.track("eve", "guess").await.bearer;
    w.post(&b, "/v1/client/challenge/email-otp", None).await;
    let (code, _) = w.last_code();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    for attempt in 1..=5 {
        let (_, v) = w.verify_email(&b, wrong).await;
        let expected = if attempt == 5 {
            "MAX_ATTEMPTS_EXCEEDED"
        } else {
            "CODE_INVALID_OR_EXPIRED"
        };
        assert_eq!(v["failureReason"], expected, "attempt {attempt}");
    }
    // The action failed, and a failed action's token authorizes nothing: not even the right
    // code gets in.
    let (status, v) = w.verify_email(&b, &code).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    assert!(
        v["errorDescription"]
            .as_str()
            .unwrap()
            .contains("CHALLENGE_FAILED")
    );
    let state = w.validate(&b).await;
    assert_eq!(state["state"], "CHALLENGE_FAILED");

    let events = w
        .services
        .journal
        .events("t-otp", 1000, None, false)
        .await
        .unwrap()
        .0;
    for what in [
        "email_otp.enroll",
        "email_otp.verify",
        "email_otp.send",
        "email_otp.verify.failed",
    ] {
        assert!(events.iter().any(|e| e.action == what), "{what} audited");
    }
    let report = w.audit("t-otp").await;
    assert_eq!(report.broken, None);
}

#[tokio::test]
async fn a_users_failures_are_throttled_at_one_hundred_an_hour() {
    let w = world().await;
    let bearer = w.track("bob", "enroll").await.bearer;
    let code = w.enroll_email(&bearer, "bob@example.com").await;
    w.verify_email(&bearer, &code).await;

    // 100 wrong codes over 25 actions (4 each, under the per-challenge limit). Recovery codes
    // are guessed, so that no email is sent (sends have their own limit).
    let mut failures = 0;
    let mut n = 0;
    while failures < 100 {
        n += 1;
        let b = w.track("bob", &format!("a{n}")).await.bearer;
        w.clock.advance(Duration::seconds(31));
        for _ in 0..4 {
            let (status, v) = w
                .post(
                    &b,
                    "/v1/client/verify/recovery-code",
                    Some(json!({ "verificationCode": "aaaaa-aaaaa" })),
                )
                .await;
            assert_eq!(
                (status, v["isVerified"].clone()),
                (StatusCode::OK, json!(false))
            );
            failures += 1;
        }
    }
    // The 101st verification is refused before the code is looked at, even the right code.
    let b = w.track("bob", "after").await.bearer;
    w.clock.advance(Duration::seconds(31));
    w.post(&b, "/v1/client/challenge/email-otp", None).await;
    let (code, _) = w.last_code();
    let (status, body) = w.verify_email(&b, &code).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"], "too_many_requests");
    // Another user is not affected.
    let other = w.track("ann", "enroll").await.bearer;
    let (status, _) = w
        .post(
            &other,
            "/v1/client/verify/totp",
            Some(json!({ "verificationCode": "123456" })),
        )
        .await;
    assert_ne!(status, StatusCode::TOO_MANY_REQUESTS);
    // An hour (and the bucket before it) later, Bob may try again.
    w.clock.advance(Duration::hours(2));
    let b = w.track("bob", "later").await.bearer;
    w.post(&b, "/v1/client/challenge/email-otp", None).await;
    let (code, _) = w.last_code();
    let (status, v) = w.verify_email(&b, &code).await;
    assert_eq!(
        (status, v["isVerified"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );
}

#[tokio::test]
async fn recovery_codes_work_once_and_regeneration_voids_the_old_set() {
    let w = world().await;
    let bearer = w.track("rc", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let t = totp_of(e["secret"].as_str().unwrap());
    let v = verify_totp(&w, &bearer, &code_at(&t, w.now() / 30)).await;
    let codes: Vec<String> = v["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);

    let b = w.track("rc", "lost-phone").await.bearer;
    let (_, v) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": codes[0].to_uppercase() })),
        )
        .await;
    assert_eq!(v["isVerified"], true, "{v}");
    assert_eq!(w.validate(&b).await["state"], "CHALLENGE_SUCCEEDED");
    let b = w.track("rc", "again").await.bearer;
    let (_, v) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": codes[0] })),
        )
        .await;
    assert_eq!(v["isVerified"], false, "used once");

    // A bare track token may not mint codes; the tenant's backend grants it.
    let (status, _) = w
        .post(&b, "/v1/client/user-authenticators/recovery-codes", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let b = w.track_to_add("rc", "settings").await.bearer;
    let (status, r) = w
        .post(&b, "/v1/client/user-authenticators/recovery-codes", None)
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let fresh = r["recoveryCodes"].as_array().unwrap();
    assert_eq!(fresh.len(), 10);
    // Not on the action they were minted on.
    let (status, _) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": fresh[0] })),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let b = w.track("rc", "lost-again").await.bearer;
    let (_, v) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": codes[1] })),
        )
        .await;
    assert_eq!(v["isVerified"], false, "old set void");
    let (_, v) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": fresh[0] })),
        )
        .await;
    assert_eq!(v["isVerified"], true, "{v}");
}

#[tokio::test]
async fn the_raw_store_holds_neither_totp_secrets_nor_otp_codes() {
    let w = world().await;
    let bearer = w.track("raw", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let t = totp_of(&secret);
    let v = verify_totp(&w, &bearer, &code_at(&t, w.now() / 30)).await;
    let recovery: Vec<String> = v["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().replace('-', ""))
        .collect();
    let b = w.track_to_add("raw", "mail").await.bearer;
    let code = w.enroll_email(&b, "raw-user@example.com").await;

    // Every byte of every row, as text.
    let conn = rusqlite::Connection::open(w.db()).unwrap();
    let mut dump = String::new();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        dump.push_str(&String::from_utf8_lossy(t));
                    }
                    other => dump.push_str(&format!("{other:?}")),
                }
                dump.push('\n');
            }
        }
    }
    assert!(
        dump.contains("AUTHENTICATOR_APP"),
        "the dump is of the right store"
    );
    assert!(!dump.contains(&secret), "TOTP secret in plaintext");
    assert!(!dump.to_lowercase().contains(&secret.to_lowercase()));
    assert!(!dump.contains(&code), "email OTP code in plaintext");
    assert!(!dump.contains("raw-user@example.com"), "email in plaintext");
    for r in recovery {
        assert!(!dump.contains(&r), "recovery code in plaintext");
    }
}

#[tokio::test]
async fn otp_routes_need_a_token_and_say_so_in_the_wire_format() {
    let w = world().await;
    let tenant = tenant_basic("t-otp");
    for uri in [
        "/v1/client/user-authenticators/totp",
        "/v1/client/challenge/email-otp",
    ] {
        let (status, body) = w.post(&tenant, uri, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(body["error"], "unauthorized");
    }
    let bearer = w.track("x", "y").await.bearer;
    let (status, body) = w
        .post(&bearer, "/v1/client/verify/totp", Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = w
        .post(
            &bearer,
            "/v1/client/user-authenticators/email-otp",
            Some(json!({ "email": "not an address" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A TOTP verify for a user with no authenticator app is a clear 400.
    let (status, body) = w
        .post(
            &bearer,
            "/v1/client/verify/totp",
            Some(json!({ "verificationCode": "123456" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn server_enrolled_authenticator_app_returns_recovery_codes_once() {
    let w = world().await;
    let uri = "otpauth://totp/Example:srv?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Example";
    let body = json!({ "verificationMethod": "AUTHENTICATOR_APP", "otpUri": uri });
    let (status, r) = w
        .send(
            Method::POST,
            Some(&w.server()),
            "/v1/users/srv/authenticators",
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        r["authenticator"]["verificationMethod"],
        "AUTHENTICATOR_APP"
    );
    assert_eq!(r["recoveryCodes"].as_array().unwrap().len(), 10);
    let (status, r) = w
        .send(
            Method::POST,
            Some(&w.server()),
            "/v1/users/srv/authenticators",
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(
        r.get("recoveryCodes").is_none(),
        "only with the first strong authenticator"
    );
    // An email authenticator is not a strong one: no codes.
    let (_, r) = w
        .send(
            Method::POST,
            Some(&w.server()),
            "/v1/users/mailer/authenticators",
            Some(json!({ "verificationMethod": "EMAIL_OTP", "email": "m@example.com" })),
        )
        .await;
    assert!(r.get("recoveryCodes").is_none());
    // The server-enrolled app verifies codes on the Client API.
    let t = totp_of("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP");
    let b = w.track("srv", "pay").await.bearer;
    let v = verify_totp(&w, &b, &code_at(&t, w.now() / 30)).await;
    assert_eq!(v["isVerified"], true, "{v}");
}

#[tokio::test]
async fn no_code_secret_or_address_reaches_the_logs() {
    // This test's own log lines (its thread's), through the process's one JSON subscriber.
    let captured = latchkey_tests::logs::capture();

    let w = world().await;
    let bearer = w.track("logged", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let secret = e["secret"].as_str().unwrap().to_owned();
    let t = totp_of(&secret);
    let totp_code = code_at(&t, w.now() / 30);
    let v = verify_totp(&w, &bearer, &totp_code).await;
    let recovery = v["recoveryCodes"][0].as_str().unwrap().to_owned();
    let b = w.track_to_add("logged", "mail").await.bearer;
    let code = w.enroll_email(&b, "logged.user@example.com").await;
    w.verify_email(&b, "999999").await;
    w.verify_email(&b, &code).await;

    let logs = captured.text();
    assert!(
        logs.contains("outbox"),
        "the outbox says where mail went:\n{logs}"
    );
    for (what, needle) in [
        ("TOTP secret", secret.as_str()),
        ("recovery code", recovery.as_str()),
        ("email address", "logged.user@example.com"),
    ] {
        assert!(!logs.contains(needle), "{what} in the logs");
    }
    // Six digits: counted only as a whole number (not inside a longer run such as a timestamp).
    for (what, needle) in [
        ("TOTP code", totp_code.as_str()),
        ("email code", code.as_str()),
    ] {
        let leaked = logs.match_indices(needle).any(|(i, _)| {
            let before = logs[..i].chars().last();
            let after = logs[i + needle.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit())
                && !after.is_some_and(|c| c.is_ascii_digit())
        });
        assert!(!leaked, "{what} in the logs");
    }
}

#[tokio::test]
async fn another_authenticator_needs_the_add_authenticators_scope() {
    let w = world().await;
    let bearer = w.track("sc", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let t = totp_of(e["secret"].as_str().unwrap());
    assert_eq!(
        verify_totp(&w, &bearer, &code_at(&t, w.now() / 30)).await["isVerified"],
        true
    );

    // A token to challenge the user cannot enroll a new factor (someone holding only the
    // password could otherwise answer the challenge with their own authenticator).
    let b = w.track("sc", "signIn").await.bearer;
    for (uri, body) in [
        ("/v1/client/user-authenticators/totp", None),
        (
            "/v1/client/user-authenticators/email-otp",
            Some(json!({ "email": "x@example.com" })),
        ),
    ] {
        let (status, v) = w.post(&b, uri, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{uri}: {v}");
        assert_eq!(v["error"], "forbidden");
    }
    assert!(w.eml().messages().unwrap().is_empty(), "no code was sent");
    // With the scope, it can.
    let b = w.track_to_add("sc", "addEmail").await.bearer;
    let (status, _) = w
        .post(
            &b,
            "/v1/client/user-authenticators/email-otp",
            Some(json!({ "email": "x@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

/// An authenticator app enrolled through the Server API is verified with the algorithm, digits
/// and period its `otpauth://` URI named, and an 80-bit secret (common in imports) is accepted;
/// parameters Latchkey cannot verify with are refused at enrollment, not accepted and then
/// failed at every code.
#[tokio::test]
async fn server_enrolled_apps_verify_with_the_parameters_their_uri_names() {
    let w = world().await;
    let enroll = |user: &'static str, uri: &'static str| {
        let w = &w;
        async move {
            w.send(
                Method::POST,
                Some(&w.server()),
                &format!("/v1/users/{user}/authenticators"),
                Some(json!({ "verificationMethod": "AUTHENTICATOR_APP", "otpUri": uri })),
            )
            .await
        }
    };
    for bad in [
        "otpauth://totp/E:a?secret=JBSWY3DPEHPK3PXP&period=0",
        "otpauth://totp/E:a?secret=JBSWY3DPEHPK3PXP&period=600",
        "otpauth://totp/E:a?secret=JBSWY3DPEHPK3PXP&digits=5",
        "otpauth://totp/E:a?secret=JBSWY3DP",
        "otpauth://totp/E:a?secret=JBSWY3DPEHPK3PXP&algorithm=MD5",
    ] {
        let (status, r) = enroll("refused", bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {r}");
    }

    let (status, r) = enroll(
        "sha256",
        "otpauth://totp/E:sha256?secret=JBSWY3DPEHPK3PXP&algorithm=SHA256&digits=8&period=60",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let app = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA256)
        .with_digits(8)
        .with_step_duration(60)
        .with_secret(totp_rs::Secret::try_from_base32("JBSWY3DPEHPK3PXP").unwrap())
        .build_noncompliant();
    let now = w.now();
    // What a SHA1 / 6-digit / 30 s reading of the same secret gives is not a code of this app.
    let sha1 = totp_rs::Builder::new()
        .with_secret(totp_rs::Secret::try_from_base32("JBSWY3DPEHPK3PXP").unwrap())
        .build_noncompliant();
    let b = w.track("sha256", "pay").await.bearer;
    let v = verify_totp(&w, &b, &sha1.generate(now).to_string()).await;
    assert_eq!(v["isVerified"], false, "{v}");
    let v = verify_totp(&w, &b, &app.generate(now).to_string()).await;
    assert_eq!(v["isVerified"], true, "{v}");
    // The next 60 s step's code (one step of clock skew) is good too, on a new action.
    let b = w.track("sha256", "pay-again").await.bearer;
    let v = verify_totp(&w, &b, &app.generate(now + 60).to_string()).await;
    assert_eq!(v["isVerified"], true, "{v}");
}
