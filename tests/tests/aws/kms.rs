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
