//! KMS counted on the wire, not in the adapter: a warm function sends KMS nothing per request.
use super::{aws, new_kms_key};
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use latchkey::adapters::kms::KmsKeyVault;
use latchkey::ports::random::OsRandom;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use time::Duration;

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
    let (key_id, _cleanup) = new_kms_key(&aws_sdk_kms::Client::new(&config)).await;
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
    // The tenant's own key (CreateKey), then its data key (GenerateDataKey).
    assert_eq!(sent.load(Ordering::SeqCst), 2);
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
        2,
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
        3,
        "after the TTL one Decrypt unwraps again"
    );
}

/// A tenant's own key on KMS: tagged with the platform key (the functions' IAM policies admit
/// tenant keys by that tag), wraps the tenant's data key, and once destroyed is disabled and
/// scheduled for deletion after 7 days. (moto decrypts under a disabled key; real KMS answers
/// `DisabledException` / `KMSInvalidStateException`, which the adapter reports as refused.)
#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn a_tenant_key_is_tagged_then_disabled_and_scheduled_for_deletion() {
    use latchkey::ports::KeyVault as _;
    use latchkey::ports::keys::KeyContext;
    let config = aws().await;
    let client = aws_sdk_kms::Client::new(&config);
    let (platform, _cleanup) = new_kms_key(&client).await;
    let vault = KmsKeyVault::new(client.clone(), platform.clone());
    let kek = vault.create_tenant_kek("t-kms").await.unwrap();
    assert!(kek.starts_with("arn:"), "{kek}");
    let tags = client
        .list_resource_tags()
        .key_id(kek.rsplit('/').next().unwrap())
        .send()
        .await
        .unwrap();
    let tag = |k: &str| {
        tags.tags()
            .iter()
            .find(|t| t.tag_key() == k)
            .map(|t| t.tag_value().to_owned())
    };
    assert_eq!(
        tag(latchkey::adapters::kms::TENANT_KEY_TAG),
        Some(platform.clone())
    );
    assert_eq!(tag("latchkey:tenant").as_deref(), Some("t-kms"));
    let context = KeyContext::tenant("t-kms");
    let key = vault.generate_data_key(Some(&kek), &context).await.unwrap();
    let plain = vault
        .decrypt_data_key(Some(&kek), &key.wrapped, &context)
        .await
        .unwrap();
    assert_eq!(plain, key.plaintext);
    // Wrapped under the tenant's key, not the platform's.
    assert!(
        vault
            .decrypt_data_key(None, &key.wrapped, &context)
            .await
            .is_err()
    );
    vault.destroy_tenant_kek(&kek).await.unwrap();
    let described = client
        .describe_key()
        .key_id(kek.rsplit('/').next().unwrap())
        .send()
        .await
        .unwrap();
    let meta = described.key_metadata().unwrap();
    assert!(!meta.enabled());
    assert_eq!(
        meta.key_state(),
        Some(&aws_sdk_kms::types::KeyState::PendingDeletion)
    );
    assert!(meta.deletion_date().is_some());
    // Destroying again is as good.
    vault.destroy_tenant_kek(&kek).await.unwrap();
}
