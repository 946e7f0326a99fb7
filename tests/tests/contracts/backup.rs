//! Backups of the embedded store (SQLite online backup into `<data dir>/backups/`): the backup
//! contract shared with DynamoDB, then what only files have (modes, integrity checks).
use async_trait::async_trait;
use latchkey::Services;
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::adapters::sqlite_backup::SqliteBackups;
use latchkey::domain::backups::{Step, finish_drill, run_backup, start_drill};
use latchkey::ports::Store as _;
use latchkey::ports::backup::{BackupTarget, Scratch};
use latchkey::ports::clock::ManualClock;
use latchkey::ports::store::{Condition, Item};
use latchkey_tests::World;
use latchkey_tests::contract::backup::{self as backup_contract, Fixture};
use std::path::PathBuf;
use std::sync::Arc;

/// A world on disk with no tenant (the store holds only what a test seeds), and backups of its
/// `latchkey.db` in `<world dir>/backups/`.
struct Embedded {
    target: Arc<SqliteBackups>,
    data: PathBuf,
    services: Arc<Services>,
    world: World,
}

async fn fresh() -> Embedded {
    let world = World::setup().no_tenant().on_disk().build().await;
    let data = world.dir().to_owned();
    Embedded {
        target: Arc::new(SqliteBackups::new(
            world.db().to_owned(),
            data.join("backups"),
        )),
        data,
        services: world.services.clone(),
        world,
    }
}

#[async_trait]
impl Fixture for Embedded {
    fn services(&self) -> Arc<Services> {
        self.services.clone()
    }

    fn clock(&self) -> Arc<ManualClock> {
        self.world.clock.clone()
    }

    fn target(&self) -> Arc<dyn BackupTarget> {
        self.target.clone()
    }

    async fn alter_scratch(&self, scratch: &Scratch) {
        let path = self.target.scratch_file(scratch).unwrap();
        let copy = SqliteStore::open(&path).unwrap();
        copy.put(Item::new("P#1", "S").with("n", 999), Condition::Exists)
            .await
            .unwrap();
    }
}

// SQLite has no point-in-time recovery: the contract checks that it says so and that a run
// records it, in place of the DynamoDB test that turns PITR off (which could not fail here).
latchkey_tests::backup_contract_tests!(fresh, pitr: not_applicable);

#[cfg(unix)]
#[tokio::test]
async fn copies_are_private_files_in_a_private_folder() {
    use std::os::unix::fs::PermissionsExt as _;
    let f = fresh().await;
    backup_contract::seed(&f.services, 2).await;
    let report = run_backup(&f.services, f.target.as_ref(), &backup_contract::policy()).await;
    assert!(report.succeeded(), "{report:?}");
    let file = PathBuf::from(report.backup_id.unwrap());
    assert_eq!(file.parent().unwrap(), f.data.join("backups"));
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&f.data.join("backups")), 0o700);
    assert!(
        file.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("latchkey-20261129T120000Z")
    );
}

#[tokio::test]
async fn a_corrupt_scratch_copy_fails_its_integrity_check() {
    let f = fresh().await;
    backup_contract::seed(&f.services, 200).await;
    let report = run_backup(&f.services, f.target.as_ref(), &backup_contract::policy()).await;
    assert!(report.succeeded(), "{report:?}");
    let drill = start_drill(&f.services, f.target.as_ref(), &backup_contract::policy())
        .await
        .unwrap();
    let path = f.target.scratch_file(&drill.scratch).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len / 2..len / 2 + 2048] {
        *b = 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let report = finish_drill(
        &f.services,
        f.target.as_ref(),
        &backup_contract::policy(),
        drill,
    )
    .await;
    assert!(!report.passed(), "{report:?}");
    assert!(
        matches!(report.failures[0].step, Step::Read | Step::Compare),
        "{report:?}"
    );
    assert!(report.scratch_dropped);
    assert!(!path.exists());
}
