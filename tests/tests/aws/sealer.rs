//! The audit sealer on AWS: checkpoints signed by a KMS asymmetric key, and the sealer
//! function's handler fed the table stream's own records, as Lambda hands them over.
use super::*;
use latchkey::adapters::kms_signer::KmsSigner;
use latchkey::crypto::signatures;
use latchkey::domain::audit::seal::{SealPolicy, Sealer};
use latchkey::domain::audit::verify::{self, BreakKind};
use latchkey::domain::audit::{AuditContext, Change, Journal};
use latchkey::ports::Signer as _;
use latchkey::ports::clock::{Clock as _, SystemClock};
use latchkey::ports::store::{Condition, Item, Page, Query, StoreError, WriteOp};
use latchkey_tests::streams::StreamReader;
use serde_json::json;

/// A fresh KMS P-256 signing key and the signer on it.
async fn kms_signer() -> (KmsSigner, OnDrop) {
    let client = aws_sdk_kms::Client::new(&aws().await);
    let key = client
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let meta = key.key_metadata().unwrap();
    let cleanup = key_deleted(meta.key_id());
    (KmsSigner::new(client, meta.arn().unwrap()), cleanup)
}

#[tokio::test]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn kms_signs_checkpoints_that_the_public_key_verifies() {
    let (signer, _cleanup) = kms_signer().await;
    let message = br#"{"lastSeq":8,"number":1}"#;
    let signature = signer.sign(message).await.unwrap();
    let spki = signer.public_key().await.unwrap();
    let key = signatures::public_key(&spki).expect("a P-256 SubjectPublicKeyInfo");
    assert!(signatures::verify(&key, message, &signature));
    assert!(!signatures::verify(
        &key,
        br#"{"lastSeq":9,"number":1}"#,
        &signature
    ));
    assert!(
        signatures::public_key_pem(&spki)
            .unwrap()
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    assert!(signer.key_id().starts_with("arn:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn the_sealer_function_seals_the_streams_records_and_kms_signs_them() {
    let table = unique("lk-sealer");
    let _dropped = tables_dropped(&table);
    let store = Arc::new(DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&aws().await),
        table.clone(),
    ));
    store.create_table().await.unwrap();
    let (signer, _key) = kms_signer().await;
    let sealer = Sealer::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(signer),
        SealPolicy {
            checkpoint_every: 5,
            ..SealPolicy::default()
        },
    );
    let journal = Journal::new(
        store.clone(),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(latchkey::adapters::local_secrets::LocalSecrets::with_root(
            b"audit",
            Arc::new(OsRandom),
        )),
    );
    let ctx = AuditContext::system("test", "req");
    for i in 0..12 {
        journal
            .commit(
                "t-stream",
                &ctx,
                Change {
                    action: "thing.create",
                    target: format!("thing:{i}"),
                    summary: json!({ "fields": ["name"], "n": i }),
                    ops: vec![WriteOp::Put {
                        item: Item::new("T#t-stream#THING", format!("{i:02}")),
                        condition: Condition::Absent,
                    }],
                },
            )
            .await
            .unwrap();
    }
    let reader = tokio::task::block_in_place(|| StreamReader::new(&table));
    let records = tokio::task::block_in_place(|| reader.records());
    // The stream holds the changes too (THING items); the event source mapping's filter keeps
    // only event inserts, and so does the handler.
    assert!(records.len() >= 24, "{} records", records.len());
    let event = reader.lambda_event(records);
    let done = latchkey_sealer::handle(&sealer, event.clone())
        .await
        .unwrap();
    assert_eq!(
        (done["entries"].as_u64(), done["checkpoints"].as_u64()),
        (Some(12), Some(2))
    );
    // Lambda retries a batch after a failure: nothing is sealed twice.
    let again = latchkey_sealer::handle(&sealer, event).await.unwrap();
    assert_eq!(
        (again["entries"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(12))
    );
    sealer.flush("t-stream", true).await.unwrap();

    let key = sealer.signer().public_key().await.unwrap();
    let evidence = verify::collect(&*store, "t-stream").await.unwrap();
    let report = verify::check(&evidence, &key, SystemClock.now());
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!(
        (report.sealed, report.signed_through, report.checkpoints),
        (12, 12, 3)
    );

    // An event deleted from the table after sealing is named.
    let gone = &evidence.events[4];
    store
        .delete(&gone.pk, &gone.sk, Condition::Exists)
        .await
        .unwrap();
    let evidence = verify::collect(&*store, "t-stream").await.unwrap();
    let broken = verify::check(&evidence, &key, SystemClock.now())
        .broken
        .unwrap();
    assert_eq!(
        (broken.kind, broken.seq),
        (BreakKind::MissingEvent, Some(5))
    );
}

/// Counts the transactions DynamoDB cancelled for contention.
struct ConflictCounter {
    inner: Arc<dyn Store>,
    transactions: std::sync::atomic::AtomicUsize,
    conflicts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl Store for ConflictCounter {
    async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        self.inner.get(pk, sk).await
    }
    async fn put(&self, item: Item, condition: Condition) -> Result<(), StoreError> {
        self.inner.put(item, condition).await
    }
    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: Condition,
    ) -> Result<Option<Item>, StoreError> {
        self.inner.delete(pk, sk, condition).await
    }
    async fn query(&self, query: Query) -> Result<Page, StoreError> {
        self.inner.query(query).await
    }
    async fn scan(&self, cursor: Option<String>, limit: u32) -> Result<Page, StoreError> {
        self.inner.scan(cursor, limit).await
    }
    async fn transact(&self, ops: Vec<WriteOp>) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.transactions.fetch_add(1, Relaxed);
        let result = self.inner.transact(ops).await;
        if matches!(
            result,
            Err(StoreError::Conflict) | Err(StoreError::TransactionConditionFailed { .. })
        ) {
            self.conflicts.fetch_add(1, Relaxed);
        }
        result
    }
}

/// 64 writers on one tenant at once: every commit goes through the first time (no shared item
/// on the commit path), and the sealer, fed the stream, seals every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL (and DynamoDB Local at AWS_ENDPOINT_URL_DYNAMODB for the higher-fidelity run); run by .ci/run"]
async fn sixty_four_writers_on_one_tenant_commit_without_a_conflict_and_all_are_sealed() {
    use std::sync::atomic::Ordering::Relaxed;
    let table = unique("lk-writers");
    let _dropped = tables_dropped(&table);
    let dynamo = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws().await), table.clone());
    dynamo.create_table().await.unwrap();
    let counted = Arc::new(ConflictCounter {
        inner: Arc::new(dynamo),
        transactions: Default::default(),
        conflicts: Default::default(),
    });
    let journal = Journal::new(
        counted.clone(),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(latchkey::adapters::local_secrets::LocalSecrets::with_root(
            b"audit",
            Arc::new(OsRandom),
        )),
    );
    let (writers, each) = (64, 5);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let journal = journal.clone();
        tasks.push(tokio::spawn(async move {
            let ctx = AuditContext::system("writer", format!("req-{w}"));
            for i in 0..each {
                journal
                    .commit(
                        "t-hot",
                        &ctx,
                        Change {
                            action: "thing.create",
                            target: format!("thing:{w}-{i}"),
                            summary: json!({ "writer": w, "n": i }),
                            ops: vec![WriteOp::Put {
                                item: Item::new("T#t-hot#THING", format!("{w}-{i}")),
                                condition: Condition::Absent,
                            }],
                        },
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let n = writers * each;
    assert_eq!(
        (
            counted.transactions.load(Relaxed),
            counted.conflicts.load(Relaxed)
        ),
        (n, 0),
        "transactions, conflicts"
    );

    let reader = tokio::task::block_in_place(|| StreamReader::new(&table));
    let event = reader.lambda_event(tokio::task::block_in_place(|| reader.records()));
    let (signer, _key) = kms_signer().await;
    let sealer = Sealer::new(
        counted.clone(),
        Arc::new(SystemClock),
        Arc::new(OsRandom),
        Arc::new(signer),
        SealPolicy::default(),
    );
    let done = latchkey_sealer::handle(&sealer, event).await.unwrap();
    assert_eq!(done["entries"].as_u64(), Some(n as u64));
    sealer.flush("t-hot", true).await.unwrap();
    let key = sealer.signer().public_key().await.unwrap();
    let evidence = verify::collect(&*counted, "t-hot").await.unwrap();
    let report = verify::check(&evidence, &key, SystemClock.now());
    assert_eq!(report.broken, None, "{report:?}");
    assert_eq!(
        (report.events, report.sealed, report.signed_through),
        (n as u64, n as u64, n as u64)
    );
}
