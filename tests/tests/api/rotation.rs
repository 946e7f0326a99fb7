//! Rotating the root secret (issue #14): every keyed hash keeps working across any number of
//! rotations, with the re-key job run after each (`latchkey::domain::rekey`).
use http::StatusCode;
use latchkey::crypto::keys::generation_id;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::rekey::rekey;
use latchkey::domain::rules::ActionConfig;
use latchkey::domain::status::operators::{authenticate as operator, create_operator};
use latchkey::domain::tenants::{TenantSettings, create_api_key};
use latchkey_tests::{ORIGIN, World, basic};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A tenant whose `withdraw` is allowed from known devices and reviewed from new ones.
async fn world() -> World {
    let rules: ActionConfig = serde_json::from_value(json!({
        "defaultOutcome": "ALLOW",
        "rules": [{"id": "new-device", "name": "New device", "priority": 1, "outcome": "REVIEW",
                   "conditions": [{"type": "newDevice", "value": true}]}]
    }))
    .unwrap();
    World::setup()
        .tenant(
            "t-rot",
            TenantSettings {
                name: "Rotation".into(),
                rp_id: "example.com".into(),
                allowed_origins: vec![ORIGIN.into()],
                actions: BTreeMap::from([("withdraw".to_owned(), rules)]),
                ..Default::default()
            },
        )
        .rotating_secrets()
        .on_disk()
        .build()
        .await
}

async fn state_from(w: &World, device: &str, key: &str) -> String {
    let t = w
        .track_with(
            "u1",
            "withdraw",
            json!({ "deviceId": device, "idempotencyKey": format!("{device}-{key}") }),
        )
        .await;
    t.state
}

async fn found_by_email(w: &World, auth: &str) -> (StatusCode, Value) {
    w.get(auth, "/v1/users?email=rot%40example.com").await
}

async fn recovery_code_works(w: &World, code: &str) -> bool {
    let b = w.track("rc", &format!("lost-{code}")).await.bearer;
    let (_, v) = w
        .post(
            &b,
            "/v1/client/verify/recovery-code",
            Some(json!({ "verificationCode": code })),
        )
        .await;
    v["isVerified"] == json!(true)
}

#[tokio::test]
async fn three_rotations_in_a_row_and_every_keyed_hash_still_works() {
    let w = world().await;
    let ctx = AuditContext::system("test", "rotation");

    // Under generation 0: a user found by email, two known devices, recovery codes, a second
    // secret key and an operator token that nothing uses until the third rotation is done.
    let (status, _) = w
        .send(
            http::Method::PATCH,
            Some(&w.server()),
            "/v1/users/u1",
            Some(json!({ "email": "rot@example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(state_from(&w, "dev-1", "0").await, "REVIEW_REQUIRED");
    assert_eq!(state_from(&w, "dev-1", "1").await, "ALLOW");
    assert_eq!(state_from(&w, "dev-2", "0").await, "REVIEW_REQUIRED");
    let bearer = w.track("rc", "enroll").await.bearer;
    let (_, e) = w
        .post(&bearer, "/v1/client/user-authenticators/totp", None)
        .await;
    let totp = totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(totp_rs::Secret::try_from_base32(e["secret"].as_str().unwrap()).unwrap())
        .build()
        .unwrap();
    let (status, v) = w
        .post(
            &bearer,
            "/v1/client/verify/totp",
            Some(json!({ "verificationCode": totp.generate(w.now()).to_string() })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let codes: Vec<String> = v["recoveryCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    let (_, idle_key) = create_api_key(&w.services, &ctx, "t-rot", None)
        .await
        .unwrap();
    let (_, idle_token) = create_operator(&w.services, &ctx, "idle operator", 30)
        .await
        .unwrap();
    let (status, users) = found_by_email(&w, &w.server()).await;
    assert_eq!(
        (status, users["users"][0]["userId"].clone()),
        (StatusCode::OK, json!("u1"))
    );

    for generation in 1..=3 {
        let previous = format!("generation {}", generation - 1);
        w.rotate_root(format!("generation {generation}").as_bytes());
        let report = rekey(&w.services, &ctx).await.unwrap();
        assert_eq!(
            report.captured,
            Some(generation_id(previous.as_bytes())),
            "rotation {generation}: the previous root joins the keyring"
        );
        assert_eq!(report.kept, generation, "every older generation is kept");
        assert_eq!(
            report.users_reindexed, 1,
            "rotation {generation}: the email index moves under the current key"
        );
        assert_eq!(report.awaiting_use["secret_key"], 2, "{report:?}");

        // The world's key, the email lookup and a known device, every round.
        let (status, users) = found_by_email(&w, &w.server()).await;
        assert_eq!(
            (status, users["users"][0]["userId"].clone()),
            (StatusCode::OK, json!("u1")),
            "rotation {generation}"
        );
        assert_eq!(
            state_from(&w, "dev-1", &format!("r{generation}")).await,
            "ALLOW",
            "rotation {generation}: dev-1 is still known"
        );
        // The key used above was re-hashed under the current root on that use.
        let again = rekey(&w.services, &ctx).await.unwrap();
        assert_eq!(again.captured, None, "a second run changes nothing");
        assert_eq!(again.users_reindexed, 0);
        assert_eq!(
            again.awaiting_use["secret_key"], 1,
            "only the idle key is left"
        );
    }

    // After three rotations, what was made under generation 0 and never used since.
    let (status, _) = w.get(&basic(&idle_key), "/v1/users/u1").await;
    assert_eq!(status, StatusCode::OK, "the idle secret key still works");
    assert_eq!(
        operator(&w.services, &idle_token).await.unwrap().name,
        "idle operator"
    );
    assert!(
        recovery_code_works(&w, &codes[0]).await,
        "a gen-0 recovery code"
    );
    assert!(
        !recovery_code_works(&w, &codes[0]).await,
        "still used once only"
    );
    assert_eq!(
        state_from(&w, "dev-2", "late").await,
        "ALLOW",
        "a device last seen under generation 0 is still known"
    );
    // And wrong ones are still refused after the keyring was consulted.
    let (status, _) = w
        .get(
            &basic("lk_0123456789abcdef_wrong-secret-0000000000"),
            "/v1/users/u1",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        operator(&w.services, "lko_0123456789abcdef_wrong")
            .await
            .is_err()
    );
    let report = rekey(&w.services, &ctx).await.unwrap();
    assert_eq!(
        report.awaiting_use.get("secret_key"),
        None,
        "every key re-hashed on use"
    );
    assert_eq!(report.awaiting_use.get("operator_token"), None);

    // The keyring and the re-keys are audited on the platform and tenant journals.
    let platform = w.events("_platform").await;
    assert_eq!(
        platform
            .iter()
            .filter(|e| e.action == "keyring.update")
            .count(),
        3
    );
    let tenant = w.events("t-rot").await;
    assert!(tenant.iter().any(|e| e.action == "api_key.rekey"));
    assert_eq!(
        tenant
            .iter()
            .filter(|e| e.action == "user.index.rekey")
            .count(),
        3
    );
}

/// Two rotations with no re-key between them: the generation before is lost, and a secret key
/// made under it and not used meanwhile stops working (what the README's rotation steps warn
/// of); with the job between them it keeps working (the test above).
#[tokio::test]
async fn without_the_re_key_job_a_second_rotation_loses_the_oldest_generation() {
    let w = world().await;
    let ctx = AuditContext::system("test", "rotation");
    let (_, idle_key) = create_api_key(&w.services, &ctx, "t-rot", None)
        .await
        .unwrap();
    w.rotate_root(b"generation 1");
    w.rotate_root(b"generation 2");
    let (status, _) = w.get(&basic(&idle_key), "/v1/users/u1").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// Users whose phone number or username was set before those were indexed (a record with
/// the sealed field and no index entry) become findable by them once the re-key job runs.
#[tokio::test]
async fn the_re_key_job_indexes_phone_numbers_and_usernames_set_before_they_were_indexed() {
    let w = world().await;
    let (status, v) = w
        .send(
            http::Method::PATCH,
            Some(&w.server()),
            "/v1/users/old-user",
            Some(json!({"phoneNumber": "+6421555000", "username": "Oldtimer"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // What a record of the earlier format holds: the sealed fields, no index entries.
    let store = &w.services.store;
    let mut user = store
        .get("T#t-rot#U#old-user", "USER")
        .await
        .unwrap()
        .unwrap();
    for attr in ["phoneNumberIndex", "usernameIndex"] {
        let index = user.attrs.remove(attr).unwrap();
        let tag = if attr == "usernameIndex" {
            "USERNAME"
        } else {
            "PHONE"
        };
        let pk = format!("T#t-rot#{tag}#{}", index.as_str().unwrap());
        store
            .delete(&pk, "U#old-user", latchkey::ports::store::Condition::Exists)
            .await
            .unwrap()
            .unwrap();
    }
    user.attrs.remove("listed");
    store
        .delete(
            "T#t-rot#USERS",
            "U#old-user",
            latchkey::ports::store::Condition::Exists,
        )
        .await
        .unwrap()
        .unwrap();
    let v = user.version;
    store
        .put(
            user.with_version(v + 1),
            latchkey::ports::store::Condition::Version(v),
        )
        .await
        .unwrap();
    let server = w.server();
    for uri in [
        "/v1/users?phoneNumber=%2B6421555000",
        "/v1/users?username=oldtimer",
    ] {
        let (_, found) = w.get(&server, uri).await;
        assert_eq!(found["users"], json!([]), "{uri}: not indexed yet");
    }

    let ctx = AuditContext::system("test", "rekey");
    let report = rekey(&w.services, &ctx).await.unwrap();
    assert_eq!(report.users_reindexed, 1, "{report:?}");
    for uri in [
        "/v1/users?phoneNumber=%2B6421555000",
        "/v1/users?username=oldtimer",
    ] {
        let (_, found) = w.get(&server, uri).await;
        assert_eq!(found["users"][0]["userId"], "old-user", "{uri}");
    }
    let (_, listed) = w.get(&server, "/v1/users").await;
    assert!(
        listed["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["userId"] == "old-user"),
        "listed by the re-key job: {listed}"
    );
    assert_eq!(rekey(&w.services, &ctx).await.unwrap().users_reindexed, 0);
}
