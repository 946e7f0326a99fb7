//! The backup contract, written once and run against both backup targets: SQLite in the
//! `contracts` binary (plain `cargo test`) and DynamoDB on moto in the `aws` binary (`.ci/run`,
//! `--ignored`). Each test gets a fresh store, target and a clock that moves only when told.
//!
//! Point-in-time recovery is where the two differ, and the contract says how: a target that has
//! it ([`PitrFixture`], DynamoDB) must have a run find it off, turn it on and fail saying so; a
//! target without it (SQLite) must report [`Pitr::NotApplicable`] before and after a run, and a
//! run must succeed and record it. Neither test can pass on the other kind of target.
use async_trait::async_trait;
use latchkey::Services;
use latchkey::domain::backups::{
    BackupPolicy, RUN_PK, Step, backup_time, finish_drill, run_backup, run_drill, start_drill,
};
use latchkey::ports::backup::{BackupTarget, Pitr, Scratch, Snapshot};
use latchkey::ports::clock::{Clock as _, ManualClock};
use latchkey::ports::store::{Condition, Item, Query};
use std::sync::Arc;
use time::Duration;

/// One backend under test.
#[async_trait]
pub trait Fixture: Send + Sync {
    fn services(&self) -> Arc<Services>;
    fn clock(&self) -> Arc<ManualClock>;
    fn target(&self) -> Arc<dyn BackupTarget>;
    /// Changes the value of item `P#1`/`S` in a restored scratch copy.
    async fn alter_scratch(&self, scratch: &Scratch);
}

/// A backend with point-in-time recovery.
#[async_trait]
pub trait PitrFixture: Fixture {
    /// Turns point-in-time recovery off behind the target's back.
    async fn disable_pitr(&self);
}

/// Retention small enough to see it work: one day, the newest two always kept.
pub fn policy() -> BackupPolicy {
    BackupPolicy {
        retention_days: 1,
        keep_newest: 2,
        ..BackupPolicy::default()
    }
}

pub async fn seed(services: &Services, n: u32) {
    for i in 0..n {
        let mut item = Item::new(format!("P#{i}"), "S")
            .with("n", i)
            .with("name", format!("item {i}"))
            .with("nested", serde_json::json!({"b": [1, 2.5, "x"], "a": null}))
            .with_ttl(1_900_000_000 + i64::from(i));
        if i % 3 == 0 {
            item.gsi1 = Some((format!("G#{i}"), "GS".into()));
        }
        services.store.put(item, Condition::None).await.unwrap();
    }
}

async fn dated_copies(f: &dyn Fixture) -> Vec<String> {
    let target = f.target();
    let mut names: Vec<String> = target
        .list_backups()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .filter(|n| backup_time(target.source(), n).is_some())
        .collect();
    names.sort();
    names
}

/// Three runs six hours apart make three copies; two days later a fourth run deletes the two
/// expired ones it may and keeps the newest two; a copy named by hand is never touched.
pub async fn runs_make_copies_and_retention_keeps_the_newest(f: &dyn Fixture) {
    let (services, clock, target) = (f.services(), f.clock(), f.target());
    seed(&services, 5).await;
    let manual = format!("{}-by-hand", target.source());
    target.create_backup(&manual).await.unwrap();
    let policy = policy();
    let mut made = Vec::new();
    for _ in 0..3 {
        let report = run_backup(&services, target.as_ref(), &policy).await;
        assert!(report.succeeded(), "{report:?}");
        assert!(report.deleted.is_empty(), "{report:?}");
        assert!(report.expectation.is_some(), "{report:?}");
        made.push(report.backup_name.unwrap());
        clock.advance(Duration::hours(6));
    }
    assert_eq!(dated_copies(f).await, made, "three runs, three copies");

    clock.advance(Duration::days(2));
    let report = run_backup(&services, target.as_ref(), &policy).await;
    assert!(report.succeeded(), "{report:?}");
    let mut deleted = report.deleted.clone();
    deleted.sort();
    assert_eq!(
        deleted,
        made[..2].to_vec(),
        "the two expired beyond the newest two"
    );
    assert_eq!(
        dated_copies(f).await,
        vec![made[2].clone(), report.backup_name.clone().unwrap()]
    );
    assert!(
        target
            .list_backups()
            .await
            .unwrap()
            .iter()
            .any(|b| b.name == manual),
        "a copy not named by a run is never deleted"
    );

    // Every run is recorded: start, end, copy, deletions, PITR state, outcome.
    let runs = services
        .store
        .query(Query::partition(RUN_PK).limit(10))
        .await
        .unwrap();
    assert_eq!(runs.items.len(), 4);
    let last = runs.items.last().unwrap();
    for field in [
        "started",
        "finished",
        "backupId",
        "deleted",
        "pitrBefore",
        "pitrAfter",
        "failures",
        "outcome",
    ] {
        assert!(last.attrs.contains_key(field), "run item lacks {field}");
    }
    assert_eq!(last.attrs["deleted"].as_array().unwrap().len(), 2);
    assert_eq!(last.attrs["outcome"], "succeeded");
}

/// With point-in-time recovery off, a run still makes its copy, turns it back on, and fails
/// saying so, not retryably; the next run succeeds.
pub async fn pitr_off_is_turned_on_and_reported(f: &dyn PitrFixture) {
    let (services, target) = (f.services(), f.target());
    seed(&services, 3).await;
    assert_eq!(
        target.pitr().await.unwrap(),
        Pitr::Enabled,
        "on to begin with"
    );
    f.disable_pitr().await;
    assert_eq!(
        target.pitr().await.unwrap(),
        Pitr::Disabled,
        "the fixture did not turn point-in-time recovery off"
    );
    let report = run_backup(&services, target.as_ref(), &policy()).await;
    assert!(report.backup_id.is_some(), "the copy is still made");
    assert_eq!(report.pitr_before.as_deref(), Some("disabled"));
    assert_eq!(report.pitr_after.as_deref(), Some("enabled"));
    assert_eq!(report.kind().as_deref(), Some("BackupMadeButPitrWasOff"));
    assert!(!report.retryable());
    assert_eq!(target.pitr().await.unwrap(), Pitr::Enabled);
    let again = run_backup(&services, target.as_ref(), &policy()).await;
    assert!(again.succeeded(), "{again:?}");
    assert_eq!(again.pitr_before.as_deref(), Some("enabled"));
}

/// A backend without point-in-time recovery says so, stays so when asked to turn it on, and a
/// run succeeds recording `not_applicable` before and after.
pub async fn pitr_is_not_applicable_and_a_run_records_it(f: &dyn Fixture) {
    let (services, target) = (f.services(), f.target());
    seed(&services, 3).await;
    assert_eq!(target.pitr().await.unwrap(), Pitr::NotApplicable);
    target.enable_pitr().await.unwrap();
    assert_eq!(target.pitr().await.unwrap(), Pitr::NotApplicable);
    let report = run_backup(&services, target.as_ref(), &policy()).await;
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(report.pitr_before.as_deref(), Some("not_applicable"));
    assert_eq!(report.pitr_after.as_deref(), Some("not_applicable"));
    let runs = services
        .store
        .query(Query::partition(RUN_PK).limit(10))
        .await
        .unwrap();
    let run = runs.items.last().unwrap();
    assert_eq!(run.attrs["pitrBefore"], "not_applicable");
    assert_eq!(run.attrs["pitrAfter"], "not_applicable");
}

/// A restored copy holds exactly the items the live store held when it was made.
pub async fn restored_copy_holds_the_same_items(f: &dyn Fixture) {
    let (services, target) = (f.services(), f.target());
    seed(&services, 25).await;
    let mut live = Snapshot::fixed(0);
    target.read_live(&mut live).await.unwrap();
    let copy = target
        .create_backup(&latchkey::domain::backups::backup_name(
            target.source(),
            f.clock().now(),
        ))
        .await
        .unwrap();
    // Writes after the copy are not in it.
    services
        .store
        .put(Item::new("P#late", "S"), Condition::None)
        .await
        .unwrap();
    let scratch_name = latchkey::domain::backups::scratch_name(target.source(), f.clock().now());
    let scratch = target.restore_scratch(&copy, &scratch_name).await.unwrap();
    let mut restored = Snapshot::fixed(0);
    target.read_scratch(&scratch, &mut restored).await.unwrap();
    target.drop_scratch(&scratch).await.unwrap();
    target.drop_scratch(&scratch).await.unwrap(); // already gone is fine
    assert_eq!(restored.total(), 25);
    assert_eq!(restored.entries(), live.entries());
}

/// A drill restores the newest recorded copy, finds it equal, and drops its scratch copy.
pub async fn drill_passes_on_an_intact_copy(f: &dyn Fixture) {
    let (services, clock, target) = (f.services(), f.clock(), f.target());
    seed(&services, 10).await;
    let run = run_backup(&services, target.as_ref(), &policy()).await;
    assert!(run.succeeded(), "{run:?}");
    clock.advance(Duration::hours(6));
    seed(&services, 12).await; // the live table moves on; the copy does not
    let newest = run_backup(&services, target.as_ref(), &policy()).await;
    clock.advance(Duration::days(3));
    let drill = run_drill(&services, target.as_ref(), &policy()).await;
    assert!(drill.passed(), "{drill:?}");
    assert!(drill.kind().is_none(), "{drill:?}");
    assert_eq!(drill.backup_name, newest.backup_name, "the newest copy");
    // 12 seeded items and the first run's record.
    assert_eq!(drill.restored_items, Some(13));
    assert!(drill.scratch_dropped);
}

/// A drill whose scratch copy is altered between restore and comparison fails, not retryably.
pub async fn drill_fails_when_the_scratch_copy_is_altered(f: &dyn Fixture) {
    let (services, target) = (f.services(), f.target());
    seed(&services, 10).await;
    let run = run_backup(&services, target.as_ref(), &policy()).await;
    assert!(run.succeeded(), "{run:?}");
    let drill = start_drill(&services, target.as_ref(), &policy())
        .await
        .unwrap();
    f.alter_scratch(&drill.scratch).await;
    let report = finish_drill(&services, target.as_ref(), &policy(), drill).await;
    assert!(!report.passed(), "{report:?}");
    assert_eq!(report.failures[0].step, Step::Compare);
    assert_eq!(report.kind().as_deref(), Some("DrillFailedCopyDiffers"));
    assert!(!report.retryable());
    assert!(
        report.scratch_dropped,
        "the scratch copy is dropped either way"
    );
}

/// The contract tests for one fixture constructor (an async fn returning the fixture by value;
/// it cleans up after itself when dropped), each with the given attributes. `pitr: turned_on`
/// for a target with point-in-time recovery (the fixture is a [`PitrFixture`]),
/// `pitr: not_applicable` for one without.
#[macro_export]
macro_rules! backup_contract_tests {
    ($fresh:path, pitr: $pitr:ident $(, #[$attr:meta])*) => {
        mod backup_contract_tests {
            use super::*;
            use latchkey_tests::contract::backup as c;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn runs_make_copies_and_retention_keeps_the_newest() {
                c::runs_make_copies_and_retention_keeps_the_newest(&$fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn restored_copy_holds_the_same_items() {
                c::restored_copy_holds_the_same_items(&$fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn drill_passes_on_an_intact_copy() {
                c::drill_passes_on_an_intact_copy(&$fresh().await).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            $(#[$attr])*
            async fn drill_fails_when_the_scratch_copy_is_altered() {
                c::drill_fails_when_the_scratch_copy_is_altered(&$fresh().await).await
            }

            $crate::backup_contract_tests!(@pitr $pitr, $fresh $(, #[$attr])*);
        }
    };
    (@pitr turned_on, $fresh:path $(, #[$attr:meta])*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn pitr_off_is_turned_on_and_reported() {
            c::pitr_off_is_turned_on_and_reported(&$fresh().await).await
        }
    };
    (@pitr not_applicable, $fresh:path $(, #[$attr:meta])*) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn pitr_is_not_applicable_and_a_run_records_it() {
            c::pitr_is_not_applicable_and_a_run_records_it(&$fresh().await).await
        }
    };
}
