//! Every port contract on the AWS adapters, against moto (or real AWS) at `AWS_ENDPOINT_URL`.
//! `.ci/run` starts moto and runs these with `--ignored`; without it they are skipped visibly.
//! Each test makes its own table, key or secret with a unique name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use latchkey::adapters::dynamodb::DynamoStore;
use latchkey::adapters::kms::KmsKeyVault;
use latchkey::adapters::secrets_manager::SecretsManagerSecrets;
use latchkey::crypto::keys::{Purpose, purpose_keys};
use latchkey::ports::random::{OsRandom, RandomExt as _};
use latchkey::ports::{KeyVault, Secrets as _, Store};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::Duration;

const NEEDS_MOTO: &str = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run";

async fn aws() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_REGION").is_ok(),
        "{NEEDS_MOTO}"
    );
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", OsRandom.hex_id(6))
}

async fn fresh_dynamo() -> Arc<dyn Store> {
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws().await),
        unique("lk-test"),
    );
    store.create_table().await.unwrap();
    Arc::new(store)
}

async fn new_kms_key(client: &aws_sdk_kms::Client) -> String {
    let key = client.create_key().send().await.unwrap();
    key.key_metadata().unwrap().key_id().to_owned()
}

async fn fresh_kms() -> Arc<dyn KeyVault> {
    let client = aws_sdk_kms::Client::new(&aws().await);
    let key_id = new_kms_key(&client).await;
    Arc::new(KmsKeyVault::new(client, key_id))
}

latchkey_tests::store_contract_tests!(fresh_dynamo, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);
latchkey_tests::key_contract_tests!(fresh_kms, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);

mod audit_contract {
    use super::*;
    use latchkey_tests::contract::audit as c;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
    async fn two_hundred_mutations_from_four_tasks_verify() {
        c::concurrent_commits_form_one_verified_chain(fresh_dynamo().await, "t-chain", 4, 50).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
    async fn tampering_is_named() {
        c::tampering_is_named(fresh_dynamo().await, "t-tamper").await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
    async fn failed_change_leaves_no_event() {
        c::failed_change_leaves_no_event(fresh_dynamo().await, "t-fail").await
    }
}

/// Counts the requests the KMS client actually sends.
#[derive(Debug, Default)]
struct CountRequests(Arc<AtomicUsize>);

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_kms::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Counted on the wire, not in the adapter: a warm function sends KMS nothing per request.
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn warm_cache_sends_kms_no_requests() {
    use latchkey::crypto::envelope::{Envelope, FieldContext};
    let config = aws().await;
    let key_id = new_kms_key(&aws_sdk_kms::Client::new(&config)).await;
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = aws_sdk_kms::config::Builder::from(&config)
        .interceptor(CountRequests(Arc::clone(&sent)))
        .build();
    let vault = Arc::new(KmsKeyVault::new(
        aws_sdk_kms::Client::from_conf(counted),
        key_id,
    ));
    let clock = latchkey_tests::test_clock();
    let envelope = Envelope::new(
        vault,
        Arc::new(OsRandom),
        clock.clone(),
        Duration::minutes(5),
        10,
    );
    let key = envelope.new_tenant_key("t-wire").await.unwrap();
    assert_eq!(sent.load(Ordering::SeqCst), 1);
    for i in 0..50 {
        let item = format!("U#{i}");
        let at = FieldContext {
            tenant_id: "t-wire",
            item: &item,
            field: "email",
        };
        let sealed = envelope.seal(&key, at, b"jane@example.com").await.unwrap();
        assert_eq!(
            envelope.open(&key, at, &sealed).await.unwrap(),
            b"jane@example.com"
        );
    }
    assert_eq!(
        sent.load(Ordering::SeqCst),
        1,
        "warm cache must send KMS nothing"
    );
    clock.advance(Duration::minutes(10));
    let at = FieldContext {
        tenant_id: "t-wire",
        item: "U#0",
        field: "email",
    };
    envelope.seal(&key, at, b"x").await.unwrap();
    assert_eq!(
        sent.load(Ordering::SeqCst),
        2,
        "after the TTL one Decrypt unwraps again"
    );
}

/// After a rotation the new value is current, and what the previous value made still verifies.
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn secrets_manager_rotation_keeps_the_previous_version_valid() {
    let config = aws().await;
    let client = aws_sdk_secretsmanager::Client::new(&config);
    let name = unique("lk-test-secret");
    client
        .create_secret()
        .name(&name)
        .secret_string(r#"{"root":"first-root-value-0123456789"}"#)
        .send()
        .await
        .unwrap();
    let clock = latchkey_tests::test_clock();
    let secrets =
        SecretsManagerSecrets::new(client.clone(), &name, Duration::minutes(5), clock.clone());
    let before = secrets.get("root").await.unwrap();
    assert_eq!(before.current.as_slice(), b"first-root-value-0123456789");
    assert!(before.previous.is_none());
    let old_tag = purpose_keys(&secrets, Purpose::ApiKeyPepper)
        .await
        .unwrap()
        .mac(b"lk_secret");

    client
        .put_secret_value()
        .secret_id(&name)
        .secret_string(r#"{"root":"second-root-value-9876543210"}"#)
        .send()
        .await
        .unwrap();
    // Within the TTL the cached value serves (no call per request)...
    assert_eq!(
        secrets.get("root").await.unwrap().current.as_slice(),
        b"first-root-value-0123456789"
    );
    // ...and once it lapses the rotation shows, with the previous version still there.
    clock.advance(Duration::minutes(6));
    let after = secrets.get("root").await.unwrap();
    assert_eq!(after.current.as_slice(), b"second-root-value-9876543210");
    assert_eq!(
        after.previous.as_deref().map(|p| p.as_slice()),
        Some(&b"first-root-value-0123456789"[..])
    );
    let keys = purpose_keys(&secrets, Purpose::ApiKeyPepper).await.unwrap();
    assert!(
        keys.verify(b"lk_secret", &old_tag),
        "previous version must still verify"
    );
    assert_ne!(
        keys.mac(b"lk_secret"),
        old_tag,
        "new hashes use the new version"
    );
    assert!(secrets.get("missing-name").await.is_err());
}

/// The configuration picks the AWS adapters and they work together: a tenant and its key are
/// created through DynamoDB, KMS and Secrets Manager, and the audit chain verifies.
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn configuration_wires_the_aws_adapters_end_to_end() {
    use latchkey::domain::audit::AuditContext;
    use latchkey::domain::tenants::{TenantSettings, create_api_key, create_tenant, get_tenant};
    let config = aws().await;
    let table = unique("lk-wired");
    DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table)
        .create_table()
        .await
        .unwrap();
    let key_id = new_kms_key(&aws_sdk_kms::Client::new(&config)).await;
    let secret_id = unique("lk-wired-secret");
    aws_sdk_secretsmanager::Client::new(&config)
        .create_secret()
        .name(&secret_id)
        .secret_string(r#"{"root":"wired-root-0123456789abcdef"}"#)
        .send()
        .await
        .unwrap();
    let vars = std::collections::BTreeMap::from([
        ("LATCHKEY_TABLE".to_owned(), table.clone()),
        ("LATCHKEY_KMS_KEY_ID".to_owned(), key_id),
        ("LATCHKEY_SECRET_ID".to_owned(), secret_id),
    ]);
    let cfg = latchkey::Config::from_vars(&vars).unwrap();
    assert!(cfg.uses_aws());
    let services = latchkey::wiring::services(&cfg).await.unwrap();

    let ctx = AuditContext::system("test", "r-wired");
    let settings = TenantSettings {
        name: "Acme".into(),
        rp_id: "acme.example".into(),
        allowed_origins: vec!["https://acme.example".into()],
        ..Default::default()
    };
    create_tenant(&services, &ctx, "t-wired", settings.clone(), vec![])
        .await
        .unwrap();
    let (key, secret) = create_api_key(&services, &ctx, "t-wired", None)
        .await
        .unwrap();
    let tenant = get_tenant(&services, "t-wired").await.unwrap().unwrap();
    assert_eq!(tenant.settings, settings);

    // What DynamoDB holds: a KMS-wrapped data key, and a keyed hash of the secret, never it.
    let raw = DynamoStore::new(aws_sdk_dynamodb::Client::new(&config), &table);
    let key_item = raw
        .get(&format!("KEY#{key}"), "KEY")
        .await
        .unwrap()
        .unwrap();
    let stored = serde_json::to_string(&key_item.attrs).unwrap();
    assert!(!stored.contains(&secret) && !stored.contains(secret.rsplit('_').next().unwrap()));
    assert_eq!(key_item.str("hash").unwrap().len(), 64);
    let field = latchkey::crypto::FieldContext {
        tenant_id: "t-wired",
        item: "U#1",
        field: "email",
    };
    let sealed = services
        .envelope
        .seal(&tenant.data_key, field, b"jane@example.com")
        .await
        .unwrap();
    assert_eq!(
        services
            .envelope
            .open(&tenant.data_key, field, &sealed)
            .await
            .unwrap(),
        b"jane@example.com"
    );

    let report = services.journal.verify("t-wired").await.unwrap();
    assert_eq!((report.events, report.broken), (2, None));
}

/// The raw messages moto's SES has recorded (its `/moto-api/data.json` model dump).
fn ses_raw_messages() -> Vec<serde_json::Value> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect(NEEDS_MOTO);
    let out = std::process::Command::new("curl")
        .args(["-sf", &format!("{endpoint}/moto-api/data.json")])
        .output()
        .expect("curl");
    let data: serde_json::Value = serde_json::from_slice(&out.stdout).expect("moto data.json");
    data["ses"]["RawMessage"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn ses_sends_from_the_verified_identity_and_refuses_others() {
    use latchkey::adapters::ses::SesMailer;
    use latchkey::ports::Mailer as _;
    use latchkey::ports::mailer::{Email, MailError};
    let client = aws_sdk_sesv2::Client::new(&aws().await);
    let domain = format!("{}.example.com", unique("lk"));
    client
        .create_email_identity()
        .email_identity(&domain)
        .send()
        .await
        .unwrap();
    let clock = latchkey_tests::test_clock();
    let email = Email {
        to: "customer@example.org".into(),
        subject: "Your Example verification code".into(),
        text: "Your code is 123456.".into(),
        html: "<p>Your code is <b>123456</b>.</p>".into(),
        urgent: false,
    };
    let sent_from = |domain: &str| {
        ses_raw_messages()
            .into_iter()
            .filter(|m| m["raw_data"].as_str().unwrap_or_default().contains(domain))
            .collect::<Vec<_>>()
    };
    let mailer = SesMailer::new(
        client.clone(),
        &format!("Example Sign-in <no-reply@{domain}>"),
        clock.clone(),
    );
    let id = mailer.send(&email).await.unwrap();
    assert!(!id.is_empty());
    let sent = sent_from(&domain);
    assert_eq!(sent.len(), 1, "moto recorded exactly one message");
    let raw = sent[0]["raw_data"].as_str().unwrap();
    assert!(raw.contains("To: customer@example.org"));
    assert!(raw.contains("text/plain") && raw.contains("text/html"));

    let stranger = SesMailer::new(client, "someone@not-verified.example.net", clock);
    assert!(matches!(
        stranger.send(&email).await,
        Err(MailError::Rejected(_))
    ));
    assert!(sent_from("not-verified.example.net").is_empty());
}
