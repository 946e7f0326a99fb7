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
use latchkey::ports::store::{Condition, Item, WriteOp};
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
    let journal = Journal::new(store.clone(), Arc::new(SystemClock), Arc::new(OsRandom));
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
