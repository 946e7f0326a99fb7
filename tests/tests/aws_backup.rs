//! The backup contract on DynamoDB, against moto (or real AWS) at `AWS_ENDPOINT_URL`: the same
//! tests as `tests/tests/backup.rs` runs on SQLite. `.ci/run` starts moto and runs these with
//! `--ignored`. Each test makes its own table (and drops it with its backups afterwards).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod backup_contract;

use async_trait::async_trait;
use backup_contract::Fixture;
use latchkey::Services;
use latchkey::adapters::dynamodb::DynamoStore;
use latchkey::adapters::dynamodb_backup::DynamoBackups;
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::ports::Store as _;
use latchkey::ports::backup::{BackupTarget, Scratch};
use latchkey::ports::clock::ManualClock;
use latchkey::ports::random::{OsRandom, RandomExt as _};
use latchkey::ports::store::{Condition, Item};
use std::sync::Arc;

const NEEDS_MOTO: &str = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run";

struct Dynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
    services: Arc<Services>,
    clock: Arc<ManualClock>,
    target: Arc<DynamoBackups>,
}

async fn fresh() -> Dynamo {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok() || std::env::var("AWS_REGION").is_ok(),
        "{NEEDS_MOTO}"
    );
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let table = format!("lk-backup-{}", OsRandom.hex_id(6));
    let store = DynamoStore::new(client.clone(), &table);
    store.create_table().await.unwrap();
    let clock = latchkey_tests::test_clock();
    let services = latchkey_tests::services(
        Arc::new(store),
        Arc::new(LocalKeyVault::from_key(&[7u8; 32], Arc::new(OsRandom)).unwrap()),
        Arc::new(LocalSecrets::new(
            Default::default(),
            None,
            Arc::new(OsRandom),
        )),
        clock.clone(),
    );
    // The production table has point-in-time recovery on (template.yaml); so does this one.
    let target = Arc::new(DynamoBackups::new(
        client.clone(),
        &table,
        std::time::Duration::from_secs(30),
    ));
    target.enable_pitr().await.unwrap();
    Dynamo {
        client,
        table,
        services,
        clock,
        target,
    }
}

#[async_trait]
impl Fixture for Dynamo {
    fn services(&self) -> Arc<Services> {
        self.services.clone()
    }

    fn clock(&self) -> Arc<ManualClock> {
        self.clock.clone()
    }

    fn target(&self) -> Arc<dyn BackupTarget> {
        self.target.clone()
    }

    async fn alter_scratch(&self, scratch: &Scratch) {
        assert!(scratch.name.starts_with(&format!("{}-drill-", self.table)));
        DynamoStore::new(self.client.clone(), &scratch.name)
            .put(Item::new("P#1", "S").with("n", 999), Condition::Exists)
            .await
            .unwrap();
    }

    async fn disable_pitr(&self) {
        let spec = aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(false)
            .build()
            .unwrap();
        self.client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .unwrap();
    }
}

impl Drop for Dynamo {
    /// Leaves moto (or the account) as it was: the table and its backups go.
    fn drop(&mut self) {
        let (client, table, target) =
            (self.client.clone(), self.table.clone(), self.target.clone());
        let cleanup = async move {
            for b in target.list_backups().await.unwrap_or_default() {
                let _ = target.delete_backup(&b).await;
            }
            let _ = client.delete_table().table_name(&table).send().await;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            tokio::task::block_in_place(|| handle.block_on(cleanup));
        }
    }
}

backup_contract_tests!(fresh, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);

/// The function's own path, with the moto table: a run's EMF metrics and its error type when
/// point-in-time recovery was found off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]
async fn the_function_reports_pitr_found_off_as_a_non_retryable_half_failure() {
    let f = fresh().await;
    backup_contract::seed(&f.services, 3).await;
    f.disable_pitr().await;
    let backups = latchkey_backup::Backups {
        target: f.target.clone(),
        policy: backup_contract::policy(),
    };
    let err = latchkey_backup::handle(&f.services, &backups, serde_json::json!({"task": "backup"}))
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "NotRetryable.BackupMadeButPitrWasOff");
    let ok = latchkey_backup::handle(&f.services, &backups, serde_json::json!({"task": "drill"}))
        .await
        .unwrap();
    assert_eq!(ok.status, "ok");
}
