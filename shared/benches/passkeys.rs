//! The cost of one passkey verification: `cargo bench -p latchkey --bench passkeys`.
//!
//! - `webauthn-rs assertion verify`: parsing and checking one assertion (client data, RP id
//!   hash, flags, counter, the P-256 signature) against its ceremony state. This is pure CPU,
//!   so its time is the CPU time of the cryptographic part of one verify.
//! - `passkey sign-in, domain (options + verify, SQLite)`: the whole server side of one
//!   usernameless sign-in on the embedded store, the authenticator's signing excluded: start
//!   (ceremony saved), then verify (ceremony taken under a condition, credential and user-handle
//!   lookups, counter update, action and audit event in one fsynced transaction, token issued).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use latchkey::Services;
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::domain::CachePolicy;
use latchkey::domain::actions;
use latchkey::domain::audit::AuditContext;
use latchkey::domain::authz::{self, RouteId};
use latchkey::domain::limits::AnonymousLimits;
use latchkey::domain::passkeys;
use latchkey::domain::tenants::{TenantSettings, create_tenant};
use latchkey::domain::tokens::{self, Claims};
use latchkey::ports::clock::SystemClock;
use latchkey::ports::random::OsRandom;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use url::Url;
use webauthn_authenticator_rs::WebauthnAuthenticator as _;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{PublicKeyCredential, RequestChallengeResponse};

const ORIGIN: &str = "https://example.com";

fn relaxed(options: &Value) -> Value {
    // The software passkey keeps no resident keys; the user handle is added to its assertions.
    let mut o = options.clone();
    o["publicKey"]["authenticatorSelection"]["residentKey"] = json!("discouraged");
    o["publicKey"]["authenticatorSelection"]["requireResidentKey"] = json!(false);
    o
}

fn answer(
    authenticator: &mut SoftPasskey,
    options: &RequestChallengeResponse,
    cred_id: &str,
    handle: &str,
) -> PublicKeyCredential {
    let mut o = serde_json::to_value(options).unwrap();
    o["publicKey"]["allowCredentials"] = json!([{ "type": "public-key", "id": cred_id }]);
    let credential = authenticator
        .do_authentication(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(o).unwrap(),
        )
        .unwrap();
    let mut v = serde_json::to_value(&credential).unwrap();
    v["response"]["userHandle"] = json!(handle);
    serde_json::from_value(v).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let services = Arc::new(
        Services::new(
            latchkey::domain::Ports {
                store: Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap()),
                vault: Arc::new(LocalKeyVault::from_key(&[5u8; 32], Arc::new(OsRandom)).unwrap()),
                secrets: Arc::new(LocalSecrets::with_root(b"bench", Arc::new(OsRandom))),
                clock: Arc::new(SystemClock),
                random: Arc::new(OsRandom),
                mailer: Arc::new(latchkey::adapters::outbox::MemoryOutbox::default()),
            },
            CachePolicy {
                ttl: time::Duration::minutes(5),
                capacity: 100,
            },
            latchkey::domain::limits::AnonymousLimits::default(),
        )
        // The bench signs in far faster than any one client may in production.
        .with_limits(AnonymousLimits {
            per_client_per_minute: i64::MAX / 4,
            per_tenant_per_minute: i64::MAX / 4,
            ..AnonymousLimits::default()
        }),
    );
    let ctx = AuditContext::system("bench", "r");
    let settings = TenantSettings {
        name: "Bench".into(),
        rp_id: "example.com".into(),
        allowed_origins: vec![ORIGIN.into()],
        ..Default::default()
    };
    let tenant = rt
        .block_on(create_tenant(&services, &ctx, "t-bench", settings, vec![]))
        .unwrap();
    let tracked = rt
        .block_on(actions::track(
            &services,
            &tenant,
            &ctx,
            "bench-user",
            "signUp",
            Default::default(),
        ))
        .unwrap();
    let claims = rt
        .block_on(tokens::verify(&services, "t-bench", &tracked.token))
        .unwrap()
        .unwrap();
    let access = |id: RouteId, claims: Option<Claims>| {
        rt.block_on(authz::authorize(
            &services,
            &tenant,
            &ctx,
            authz::rule(id).unwrap(),
            claims,
        ))
        .unwrap()
    };
    let enrolling = access(RouteId::PasskeyRegistrationOptions, Some(claims.clone()));

    // Register one passkey.
    let mut authenticator = SoftPasskey::new(true);
    let (id, options) = rt
        .block_on(passkeys::registration_options(
            &services, &tenant, &enrolling, None,
        ))
        .unwrap();
    let options_json = serde_json::to_value(&options).unwrap();
    let handle = options_json["publicKey"]["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let credential = authenticator
        .do_registration(
            Url::parse(ORIGIN).unwrap(),
            serde_json::from_value(relaxed(&options_json)).unwrap(),
        )
        .unwrap();
    let (verified, _) = rt
        .block_on(passkeys::finish_registration(
            &services,
            &tenant,
            &ctx,
            &enrolling,
            &id,
            &credential,
        ))
        .unwrap();
    assert!(verified.is_verified);
    let cred_id = URL_SAFE_NO_PAD.encode::<&[u8]>(credential.raw_id.as_ref());

    // The cryptographic check alone, repeated against one ceremony state.
    let rp = passkeys::relying_party(&tenant).unwrap();
    let passkey: webauthn_rs::prelude::Passkey = {
        let items = rt
            .block_on(
                services.store.query(
                    latchkey::ports::store::Query::partition(latchkey::domain::users::user_pk(
                        "t-bench",
                        "bench-user",
                    ))
                    .prefix("AUTH#"),
                ),
            )
            .unwrap()
            .items;
        serde_json::from_value(items[0].attrs["passkey"].clone()).unwrap()
    };
    let (options, state) = rp.start_passkey_authentication(&[passkey]).unwrap();
    let assertion = answer(&mut authenticator, &options, &cred_id, &handle);
    c.bench_function("webauthn-rs assertion verify (P-256)", |b| {
        b.iter(|| {
            rp.finish_passkey_authentication(&assertion, &state)
                .unwrap()
        })
    });

    let anonymous = access(RouteId::VerifyPasskey, None);
    // The whole server side of a usernameless sign-in; the authenticator's part is not timed.
    c.bench_function("passkey sign-in, domain (options + verify, SQLite)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let (challenge, options) = rt
                    .block_on(passkeys::authentication_options(
                        &services, &tenant, &ctx, &anonymous, None,
                    ))
                    .unwrap();
                total += started.elapsed();
                let assertion = answer(&mut authenticator, &options, &cred_id, &handle);
                let started = Instant::now();
                let ok = rt
                    .block_on(passkeys::verify_authentication(
                        &services, &tenant, &ctx, &anonymous, &challenge, &assertion,
                    ))
                    .unwrap();
                total += started.elapsed();
                assert!(ok.is_verified);
            }
            total
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
