//! Backups of the embedded store (SQLite online backup into `<data dir>/backups/`): the backup
//! contract shared with DynamoDB, plus what only files have (modes, integrity checks), and the
//! drill's comparison on a table that moves while it is copied. Needs nothing but Rust.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[macro_use]
mod backup_contract;

use async_trait::async_trait;
use backup_contract::Fixture;
use latchkey::Services;
use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::adapters::sqlite_backup::SqliteBackups;
use latchkey::domain::backups::{
    Step, compare, expectation, finish_drill, run_backup, start_drill,
};
use latchkey::ports::Store as _;
use latchkey::ports::backup::{BackupTarget, Scratch, Snapshot};
use latchkey::ports::clock::ManualClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::store::{Condition, Item};
use std::path::PathBuf;
use std::sync::Arc;

struct Embedded {
    _dir: tempfile::TempDir,
    data: PathBuf,
    services: Arc<Services>,
    clock: Arc<ManualClock>,
    target: Arc<SqliteBackups>,
}

async fn fresh() -> Embedded {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let db = data.join("latchkey.db");
    let clock = latchkey_tests::test_clock();
    let services = latchkey_tests::services(
        Arc::new(SqliteStore::open(&db).unwrap()),
        Arc::new(LocalKeyVault::from_key(&[7u8; 32], Arc::new(OsRandom)).unwrap()),
        Arc::new(LocalSecrets::new(
            Default::default(),
            None,
            Arc::new(OsRandom),
        )),
        clock.clone(),
    );
    Embedded {
        target: Arc::new(SqliteBackups::new(db, data.join("backups"))),
        _dir: dir,
        data,
        services,
        clock,
    }
}

#[async_trait]
impl Fixture for Embedded {
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
        let path = self.target.scratch_file(scratch).unwrap();
        let copy = SqliteStore::open(&path).unwrap();
        copy.put(Item::new("P#1", "S").with("n", 999), Condition::Exists)
            .await
            .unwrap();
    }

    async fn disable_pitr(&self) {}
}

backup_contract_tests!(fresh);

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

fn snapshot(items: &[Item]) -> Snapshot {
    let mut s = Snapshot::fixed(0);
    for item in items {
        s.add(item);
    }
    s
}

/// The bracket around a copy of a busy table: items that moved between the two reads may be in
/// the copy in either state they were read in, but not in a third; unchanged items must match.
#[test]
fn a_moving_table_is_checked_against_both_reads_around_the_copy() {
    let a = Item::new("P#a", "S").with("n", 1);
    let b = Item::new("P#b", "S").with("n", 1);
    let b2 = b.clone().with("n", 2);
    let c = Item::new("P#c", "S").with("n", 1);
    let before = snapshot(&[a.clone(), b.clone()]);
    let after = snapshot(&[a.clone(), b2.clone(), c.clone()]);
    let x = expectation(before.clone(), after.clone(), 10).unwrap();
    assert_eq!((x.stable_items, x.moving.len()), (1, 2));
    assert_eq!((x.total_min, x.total_max), (0, 5));
    for ok in [
        vec![a.clone(), b.clone()],
        vec![a.clone(), b2.clone()],
        vec![a.clone(), b2.clone(), c.clone()],
        vec![a.clone(), b.clone(), c.clone()],
    ] {
        assert_eq!(compare(&x, &snapshot(&ok)), Ok(()), "{ok:?}");
    }
    let third_state = vec![a.clone(), b.clone().with("n", 3)];
    assert!(compare(&x, &snapshot(&third_state)).is_err());
    let stable_changed = vec![a.clone().with("n", 9), b.clone()];
    assert!(compare(&x, &snapshot(&stable_changed)).is_err());
    let stable_missing = vec![b.clone()];
    assert!(compare(&x, &snapshot(&stable_missing)).is_err());
    let b_missing = vec![a.clone()];
    assert!(
        compare(&x, &snapshot(&b_missing)).is_err(),
        "b was in both reads"
    );
    let extra = vec![a.clone(), b.clone(), Item::new("P#z", "S")];
    assert!(compare(&x, &snapshot(&extra)).is_err());
    // Too much churn: no expectation, and the run says why.
    assert!(expectation(before, after, 1).is_err());
}

/// Large tables are fingerprinted over a deterministic sample, still counted in full.
#[test]
fn a_sampled_expectation_still_catches_a_changed_sampled_item() {
    let items: Vec<Item> = (0..2_000)
        .map(|i| Item::new(format!("P#{i}"), "S").with("n", i))
        .collect();
    let mut before = Snapshot::adaptive(100);
    for item in &items {
        before.add(item);
    }
    assert!(before.sample_bits() > 0);
    let mut after = Snapshot::fixed(before.sample_bits());
    for item in &items {
        after.add(item);
    }
    let x = expectation(before.clone(), after.clone(), 10).unwrap();
    assert_eq!((x.total_min, x.total_max), (2_000, 2_000));
    let read = |items: &[Item]| {
        let mut s = Snapshot::fixed(x.sample_bits);
        for item in items {
            s.add(item);
        }
        s
    };
    assert_eq!(compare(&x, &read(&items)), Ok(()));
    let (pk, _) = before.entries().keys().next().unwrap().clone();
    let altered: Vec<Item> = items
        .iter()
        .map(|i| {
            if i.pk == pk {
                i.clone().with("n", -1)
            } else {
                i.clone()
            }
        })
        .collect();
    assert!(compare(&x, &read(&altered)).is_err());
    assert!(compare(&x, &read(&items[1..])).is_err(), "count is exact");
}
