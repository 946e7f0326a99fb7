//! The backup contract on DynamoDB, against moto (or real AWS) at `AWS_ENDPOINT_URL`: the same
//! tests the `contracts` binary runs on SQLite, and the one only DynamoDB can pass (point-in-time
//! recovery found off is turned on and reported). Each test makes its own table; the table, its
//! backups and a drill's scratch table are dropped when it ends, passed or failed.
use super::{aws, tables_dropped, unique};
use async_trait::async_trait;
use latchkey::Services;
use latchkey::adapters::dynamodb::DynamoStore;
use latchkey::adapters::dynamodb_backup::DynamoBackups;
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::ports::Store as _;
use latchkey::ports::backup::{BackupTarget, Scratch};
use latchkey::ports::clock::ManualClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item};
use latchkey_tests::OnDrop;
use latchkey_tests::contract::backup::{self as backup_contract, Fixture, PitrFixture};
use std::sync::Arc;

struct Dynamo {
    client: aws_sdk_dynamodb::Client,
    table: String,
    services: Arc<Services>,
    clock: Arc<ManualClock>,
    target: Arc<DynamoBackups>,
    /// The table, its backups and any scratch copy go, whatever the test did.
    _cleanup: OnDrop,
}

async fn fresh() -> Dynamo {
    let client = aws_sdk_dynamodb::Client::new(&aws().await);
    let table = unique("lk-backup");
    let cleanup = tables_dropped(&table);
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
        _cleanup: cleanup,
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
}

#[async_trait]
impl PitrFixture for Dynamo {
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

latchkey_tests::backup_contract_tests!(fresh, pitr: turned_on, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);

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
