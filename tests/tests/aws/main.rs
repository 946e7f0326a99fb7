//! Every port contract on the AWS adapters, against moto (or real AWS) at `AWS_ENDPOINT_URL`, and
//! the configuration wiring them together. `.ci/run` starts moto and runs these with
//! `--ignored`; without it they are skipped visibly. Each test makes its own table, key, secret
//! or identity under a unique name, and removes it when it ends, passed or failed
//! ([`latchkey_tests::OnDrop`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The backup contract on DynamoDB (point-in-time recovery included), and the backup function.
mod backup;
/// KMS on the wire: a warm envelope sends KMS nothing.
mod kms;
/// The audit sealer: KMS-signed checkpoints, the sealer function on the stream's records.
mod sealer;
/// The Secrets contract on Secrets Manager.
mod secrets;
/// The Mailer contract on SES, and SES's identity restriction.
mod ses;
/// The configuration picks the AWS adapters and they work together.
mod wiring;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use latchkey::adapters::dynamodb::DynamoStore;
use latchkey::adapters::kms::KmsKeyVault;
use latchkey::ports::random::{OsRandom, RandomExt as _};
use latchkey::ports::{KeyVault, Store};
use latchkey_tests::{Fresh, OnDrop};
use std::sync::Arc;

const NEEDS_MOTO: &str = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run";

async fn aws() -> aws_config::SdkConfig {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_REGION").is_ok(),
        "{NEEDS_MOTO}"
    );
    // The production client with longer time limits: moto_serial.py answers one request at a
    // time, so under this suite's parallel tests a call can queue behind dozens of others for
    // longer than the 2 s attempt limit of `wiring::sdk_timeouts`. Those limits are tested
    // against an endpoint that never answers (api test
    // `a_hung_dynamodb_answers_503_in_the_wire_format_within_seconds`).
    latchkey::wiring::aws_sdk_loader()
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(5))
                // Long enough that a request queued behind the suite's bursts is never
                // abandoned and sent again: moto would then carry out both (an email sent
                // twice, seen as a failure of the SES contract).
                .operation_attempt_timeout(std::time::Duration::from_secs(240))
                .operation_timeout(std::time::Duration::from_secs(300))
                .build(),
        )
        .load()
        .await
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", OsRandom.hex_id(6))
}

fn failed(what: &str, e: impl std::error::Error + 'static) -> String {
    format!("{what}: {}", DisplayErrorContext(e))
}

/// Drops the DynamoDB table `table` and every table named `table-…` (a drill's scratch copies),
/// with their on-demand backups.
fn tables_dropped(table: &str) -> OnDrop {
    let table = table.to_owned();
    OnDrop::new(format!("table {table}"), move || async move {
        let client = aws_sdk_dynamodb::Client::new(&aws().await);
        let mut names = Vec::new();
        let mut start = None;
        loop {
            let page = client
                .list_tables()
                .set_exclusive_start_table_name(start)
                .send()
                .await
                .map_err(|e| failed("ListTables", e))?;
            names.extend(
                page.table_names()
                    .iter()
                    .filter(|n| **n == table || n.starts_with(&format!("{table}-")))
                    .cloned(),
            );
            start = page.last_evaluated_table_name;
            if start.is_none() {
                break;
            }
        }
        for name in names {
            let backups = match client.list_backups().table_name(&name).send().await {
                Ok(b) => b.backup_summaries,
                // DynamoDB Local has no backups (infra/ci/dynamodb_local.sh runs there too).
                Err(e)
                    if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                        == Some("UnknownOperationException") =>
                {
                    None
                }
                Err(e) => return Err(failed("ListBackups", e)),
            };
            for b in backups.unwrap_or_default() {
                if let Some(arn) = b.backup_arn() {
                    client
                        .delete_backup()
                        .backup_arn(arn)
                        .send()
                        .await
                        .map_err(|e| failed("DeleteBackup", e))?;
                }
            }
            client
                .delete_table()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| failed("DeleteTable", e))?;
        }
        Ok(())
    })
}

/// Schedules the KMS key for deletion (7 days, the shortest wait KMS allows).
fn key_deleted(key_id: &str) -> OnDrop {
    let key_id = key_id.to_owned();
    OnDrop::new(format!("KMS key {key_id}"), move || async move {
        aws_sdk_kms::Client::new(&aws().await)
            .schedule_key_deletion()
            .key_id(&key_id)
            .pending_window_in_days(7)
            .send()
            .await
            .map_err(|e| failed("ScheduleKeyDeletion", e))?;
        Ok(())
    })
}

/// Deletes the secret at once, without the recovery window.
fn secret_deleted(name: &str) -> OnDrop {
    let name = name.to_owned();
    OnDrop::new(format!("secret {name}"), move || async move {
        aws_sdk_secretsmanager::Client::new(&aws().await)
            .delete_secret()
            .secret_id(&name)
            .force_delete_without_recovery(true)
            .send()
            .await
            .map_err(|e| failed("DeleteSecret", e))?;
        Ok(())
    })
}

/// Deletes the SES identity.
fn identity_deleted(identity: &str) -> OnDrop {
    let identity = identity.to_owned();
    OnDrop::new(format!("SES identity {identity}"), move || async move {
        aws_sdk_sesv2::Client::new(&aws().await)
            .delete_email_identity()
            .email_identity(&identity)
            .send()
            .await
            .map_err(|e| failed("DeleteEmailIdentity", e))?;
        Ok(())
    })
}

async fn fresh_dynamo() -> Fresh<Arc<dyn Store>> {
    let table = unique("lk-test");
    // Made before the table, so that a failed creation is cleaned up too.
    let cleanup = tables_dropped(&table);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws().await), table);
    store.create_table().await.unwrap();
    Fresh::cleaned_by(Arc::new(store), cleanup)
}

async fn new_kms_key(client: &aws_sdk_kms::Client) -> (String, OnDrop) {
    let key = client.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let cleanup = key_deleted(&key_id);
    (key_id, cleanup)
}

async fn fresh_kms() -> Fresh<Arc<dyn KeyVault>> {
    let client = aws_sdk_kms::Client::new(&aws().await);
    let (key_id, cleanup) = new_kms_key(&client).await;
    Fresh::cleaned_by(Arc::new(KmsKeyVault::new(client, key_id)), cleanup)
}

latchkey_tests::store_contract_tests!(fresh_dynamo, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);
latchkey_tests::key_contract_tests!(fresh_kms, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);
/// A fresh table with its stream, and the stream read over the wire.
async fn fresh_audit_rig() -> Fresh<latchkey_tests::contract::audit::Rig> {
    use latchkey_tests::contract::audit::{Rig, StreamSource};
    let table = unique("lk-audit");
    let cleanup = tables_dropped(&table);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws().await), table.clone());
    store.create_table().await.unwrap();
    let reader = tokio::task::block_in_place(|| latchkey_tests::streams::StreamReader::new(&table));
    let rig = Rig {
        store: Arc::new(store),
        source: Arc::new(StreamSource(reader)),
    };
    Fresh::cleaned_by(rig, cleanup)
}

latchkey_tests::audit_contract_tests!(fresh_audit_rig, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);

/// `create_table` makes the table as the template does, TTL on `ttl` included: expired
/// ceremonies, challenges and counters are deleted by DynamoDB.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn create_table_enables_ttl_on_the_ttl_attribute() {
    let table = unique("lk-ttl");
    let _cleanup = tables_dropped(&table);
    let client = aws_sdk_dynamodb::Client::new(&aws().await);
    DynamoStore::new(client.clone(), table.clone())
        .create_table()
        .await
        .unwrap();
    let ttl = client
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let spec = ttl.time_to_live_description().unwrap();
    assert_eq!(spec.attribute_name(), Some("ttl"));
    assert_eq!(
        spec.time_to_live_status(),
        Some(&aws_sdk_dynamodb::types::TimeToLiveStatus::Enabled)
    );
}
