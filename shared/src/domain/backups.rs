//! Backups and restore drills, once for every backend (`docs/architecture.md` §4: "backups 4×/day,
//! offsite, encrypted"; point-in-time recovery verified and re-enabled; weekly restore drill).
//!
//! A **run** checks point-in-time recovery (turning it back on, and failing, when it is off),
//! makes a copy named `<source>-<UTC timestamp>`, applies retention and records itself as an
//! item (`BACKUP#RUN`). A **drill** restores the newest recorded copy into a scratch place,
//! compares it with what the run recorded the copy should hold, drops the scratch copy and
//! records itself (`BACKUP#DRILL`). Both go as far as they can and list every step that failed,
//! so a half-failed run says which half.
//!
//! **What a copy should hold.** A live DynamoDB table moves while it is copied, and a scan is
//! not a snapshot, so a single scan next to `CreateBackup` cannot say exactly what the backup
//! holds. A run therefore reads the table twice, once just before and once just after the copy
//! is made, and records the bracket: the items that were identical in both reads (their count
//! and a SHA-256 over them in `(pk, sk)` order) must be in the copy exactly as read; an item
//! that changed, appeared or vanished between the reads may be in the copy in either of its two
//! read states. A drill accepts the restored copy only when it satisfies both. On a quiet table
//! (and on the embedded store) the bracket is exact; on a busy one it still checks every stable
//! item. The limits, stated: an item written twice inside the window may be in the copy in a
//! state neither read saw, and the drill then fails (rare; the next run's copy is checked next
//! week); when more items moved than [`BackupPolicy::moving_cap`] the run records no
//! expectation, and drills use the newest copy that has one. Large tables are digested over a
//! deterministic sample of keys (see [`Snapshot`]); every item is still counted.
//!
//! **Retention.** Copies are dated by the timestamp in their name, which comes from the
//! injected clock, not by the backend's creation time (moto stamps wall time; tests move the
//! clock). Copies older than `retention_days` are deleted, except that the newest
//! `keep_newest` are always kept, however old. Copies whose names do not follow the pattern
//! (made by hand, by AWS Backup) are never touched.
mod expectation;
mod report;

pub use expectation::{Expectation, compare, expectation};
pub use report::{DrillReport, Failure, RunReport, Step};

use crate::domain::Services;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::backup::{BackupError, BackupRef, BackupTarget, Pitr, Scratch, Snapshot};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query};
use report::failure;
use serde::Serialize;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, PrimitiveDateTime};

pub const RUN_PK: &str = "BACKUP#RUN";
pub const DRILL_PK: &str = "BACKUP#DRILL";
/// Scratch copies are named `<source>-drill-<UTC timestamp>`; the template's IAM policy only
/// lets the backup function touch tables with this prefix.
pub const SCRATCH_INFIX: &str = "-drill-";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupPolicy {
    pub retention_days: u32,
    pub keep_newest: u32,
    /// Most sampled items a snapshot fingerprints before it halves its sample.
    pub snapshot_cap: usize,
    /// Most items that may move during a run's window for it to record an expectation.
    pub moving_cap: usize,
}

impl Default for BackupPolicy {
    fn default() -> Self {
        Self {
            retention_days: 35,
            keep_newest: 4,
            snapshot_cap: 100_000,
            moving_cap: 1_000,
        }
    }
}

// ------------------------------------------------------------------------------ naming

fn stamp(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `<source>-<UTC timestamp>`, e.g. `latchkey-prod-20261129T120000Z`.
pub fn backup_name(source: &str, now: OffsetDateTime) -> String {
    format!("{source}-{}", stamp(now))
}

/// `<source>-drill-<UTC timestamp>`.
pub fn scratch_name(source: &str, now: OffsetDateTime) -> String {
    format!("{source}{SCRATCH_INFIX}{}", stamp(now))
}

/// When a copy named by [`backup_name`] for `source` was made; `None` for other names.
pub fn backup_time(source: &str, name: &str) -> Option<OffsetDateTime> {
    let ts = name.strip_prefix(source)?.strip_prefix('-')?;
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(ts, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// The copies retention deletes: older than `retention_days`, except the newest `keep_newest`
/// (by the time in their names). Copies not named by [`backup_name`] are never chosen.
pub fn expired(
    backups: &[BackupRef],
    source: &str,
    now: OffsetDateTime,
    policy: &BackupPolicy,
) -> Vec<BackupRef> {
    let mut dated: Vec<(OffsetDateTime, &BackupRef)> = backups
        .iter()
        .filter_map(|b| backup_time(source, &b.name).map(|t| (t, b)))
        .collect();
    dated.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| b.1.id.cmp(&a.1.id)));
    let cutoff = now - Duration::days(i64::from(policy.retention_days));
    dated
        .into_iter()
        .skip(policy.keep_newest as usize)
        .filter(|(t, _)| *t < cutoff)
        .map(|(_, b)| b.clone())
        .collect()
}

// ------------------------------------------------------------------------------ the run

/// Run and drill records outlive the copies they describe by 30 days.
fn record_ttl(now: OffsetDateTime, policy: &BackupPolicy) -> i64 {
    (now + Duration::days(i64::from(policy.retention_days) + 30)).unix_timestamp()
}

async fn record(
    services: &Services,
    pk: &str,
    started: OffsetDateTime,
    report: &impl Serialize,
    policy: &BackupPolicy,
) -> Result<(), String> {
    let attrs = match serde_json::to_value(report) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err("report is not an object".into()),
    };
    // Sorts by time: compact UTC stamp, then nanoseconds, then a tiebreaker.
    let sk = format!(
        "{}#{:09}#{}",
        stamp(started),
        started.nanosecond(),
        services.random.hex_id(4)
    );
    let mut item = Item::new(pk, sk).with_ttl(record_ttl(started, policy));
    item.attrs = attrs;
    services
        .store
        .put(item, Condition::Absent)
        .await
        .map_err(|e| e.to_string())
}

/// One scheduled backup run. Never returns early: every step that can still be useful is
/// tried, and the report lists what failed.
pub async fn run_backup(
    services: &Services,
    target: &dyn BackupTarget,
    policy: &BackupPolicy,
) -> RunReport {
    let started = services.clock.now();
    let source = target.source().to_owned();
    let mut failures = Vec::new();

    let (pitr_before, pitr_after) = match target.pitr().await {
        Ok(Pitr::Disabled) => match target.enable_pitr().await {
            Ok(()) => {
                failures.push(Failure {
                    step: Step::PitrWasOff,
                    retryable: false,
                    message: "point-in-time recovery was off; it has been turned on".into(),
                });
                let after = target.pitr().await.ok().map(|p| p.as_str().to_owned());
                (Some(Pitr::Disabled.as_str().to_owned()), after)
            }
            Err(e) => {
                failures.push(failure(Step::PitrCheck, &e));
                let off = Some(Pitr::Disabled.as_str().to_owned());
                (off.clone(), off)
            }
        },
        Ok(state) => {
            let s = Some(state.as_str().to_owned());
            (s.clone(), s)
        }
        Err(e) => {
            failures.push(failure(Step::PitrCheck, &e));
            (None, None)
        }
    };

    let mut before = Snapshot::adaptive(policy.snapshot_cap);
    let before_read = target.read_live(&mut before).await;
    let name = backup_name(&source, started);
    let made = target.create_backup(&name).await;
    let (mut expectation_value, mut expectation_note) = (None, None);
    match (&made, before_read) {
        (Err(e), _) => failures.push(failure(Step::Backup, e)),
        (Ok(_), Err(e)) => {
            expectation_note = Some(format!("read before the copy failed: {e}"));
            failures.push(failure(Step::Expectation, &e));
        }
        (Ok(_), Ok(())) => {
            let mut after = Snapshot::fixed(before.sample_bits());
            match target.read_live(&mut after).await {
                Err(e) => {
                    expectation_note = Some(format!("read after the copy failed: {e}"));
                    failures.push(failure(Step::Expectation, &e));
                }
                Ok(()) => match expectation(before, after, policy.moving_cap) {
                    Ok(x) => expectation_value = Some(x),
                    // Churn is the table's nature, not a fault: drills use an older copy.
                    Err(note) => expectation_note = Some(note),
                },
            }
        }
    }

    let mut deleted = Vec::new();
    if let Ok(backup) = &made {
        match target.list_backups().await {
            Err(e) => failures.push(failure(Step::Retention, &e)),
            Ok(mut listed) => {
                // A new copy may not be listed yet; it must count among the newest either way.
                if !listed.iter().any(|b| b.id == backup.id) {
                    listed.push(backup.clone());
                }
                for old in expired(&listed, &source, services.clock.now(), policy) {
                    match target.delete_backup(&old).await {
                        Ok(()) | Err(BackupError::NotFound(_)) => deleted.push(old.name),
                        Err(e) => {
                            failures.push(failure(Step::Retention, &e));
                            break;
                        }
                    }
                }
            }
        }
    }

    let mut report = RunReport {
        started: started.rfc3339().unwrap_or_default(),
        finished: String::new(),
        source,
        backup_id: made.as_ref().ok().map(|b| b.id.clone()),
        backup_name: made.as_ref().ok().map(|b| b.name.clone()),
        deleted,
        pitr_before,
        pitr_after,
        expectation: expectation_value,
        expectation_note,
        failures,
        outcome: String::new(),
    };
    report.finished = services.clock.now().rfc3339().unwrap_or_default();
    report.outcome = report.kind().unwrap_or_else(|| "succeeded".into());
    if let Err(e) = record(services, RUN_PK, started, &report, policy).await {
        report.failures.push(Failure {
            step: Step::Record,
            retryable: true,
            message: e,
        });
    }
    tracing::info!(
        task = "backup",
        backup = report.backup_name.as_deref().unwrap_or("-"),
        deleted = report.deleted.len(),
        failures = report.failures.len(),
        "backup run finished"
    );
    report
}

// ------------------------------------------------------------------------------ the drill

/// A drill between its two halves: the copy is restored, not yet compared.
#[derive(Debug, Clone)]
pub struct DrillInProgress {
    pub scratch: Scratch,
    pub expectation: Expectation,
    report: DrillReport,
    started: OffsetDateTime,
}

/// The newest recorded copy that has an expectation and still exists.
async fn newest_verifiable(
    services: &Services,
    target: &dyn BackupTarget,
) -> Result<Option<(BackupRef, Expectation)>, BackupError> {
    let listed = target.list_backups().await?;
    let page = services
        .store
        .query(Query::partition(RUN_PK).descending().limit(200))
        .await
        .map_err(|e| BackupError::Unavailable(e.to_string()))?;
    for item in page.items {
        let Ok(run) = serde_json::from_value::<RunReport>(serde_json::Value::Object(item.attrs))
        else {
            continue;
        };
        if let (Some(id), Some(x)) = (run.backup_id, run.expectation)
            && let Some(b) = listed.iter().find(|b| b.id == id)
        {
            return Ok(Some((b.clone(), x)));
        }
    }
    Ok(None)
}

/// Drops a scratch copy an earlier drill could not drop (it timed out or failed).
async fn drop_leftover(services: &Services, target: &dyn BackupTarget) {
    let Ok(page) = services
        .store
        .query(Query::partition(DRILL_PK).descending().limit(1))
        .await
    else {
        return;
    };
    for item in page.items {
        if let Ok(last) =
            serde_json::from_value::<DrillReport>(serde_json::Value::Object(item.attrs))
            && let (Some(name), false) = (last.scratch, last.scratch_dropped)
            && let Err(e) = target.drop_scratch(&Scratch { name }).await
        {
            tracing::warn!(error = %e, "an earlier drill's scratch copy could not be dropped");
        }
    }
}

/// The first half of a drill: picks the newest verifiable copy and restores it. On failure the
/// drill is over and its (recorded) report is returned.
pub async fn start_drill(
    services: &Services,
    target: &dyn BackupTarget,
    policy: &BackupPolicy,
) -> Result<DrillInProgress, DrillReport> {
    let started = services.clock.now();
    drop_leftover(services, target).await;
    let mut report = DrillReport {
        started: started.rfc3339().unwrap_or_default(),
        finished: String::new(),
        source: target.source().to_owned(),
        backup_id: None,
        backup_name: None,
        scratch: None,
        scratch_dropped: false,
        restored_items: None,
        failures: Vec::new(),
        outcome: String::new(),
    };
    let (backup, expectation) = match newest_verifiable(services, target).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            report.failures.push(Failure {
                step: Step::NoCopy,
                retryable: false,
                message: "no recorded copy with an expectation exists".into(),
            });
            return Err(end_drill(services, report, started, policy).await);
        }
        Err(e) => {
            report.failures.push(failure(Step::NoCopy, &e));
            return Err(end_drill(services, report, started, policy).await);
        }
    };
    report.backup_id = Some(backup.id.clone());
    report.backup_name = Some(backup.name.clone());
    let name = scratch_name(target.source(), started);
    // Recorded before the restore returns: a restore that times out leaves the name behind for
    // the next drill to drop.
    report.scratch = Some(name.clone());
    match target.restore_scratch(&backup, &name).await {
        Ok(scratch) => Ok(DrillInProgress {
            scratch,
            expectation,
            report,
            started,
        }),
        Err(e) => {
            report.failures.push(failure(Step::Restore, &e));
            if !matches!(e, BackupError::StillRunning(_)) {
                report.scratch_dropped = target
                    .drop_scratch(&Scratch { name: name.clone() })
                    .await
                    .is_ok();
            }
            Err(end_drill(services, report, started, policy).await)
        }
    }
}

/// The second half: reads and checks the restored copy, drops it, records the drill.
pub async fn finish_drill(
    services: &Services,
    target: &dyn BackupTarget,
    policy: &BackupPolicy,
    drill: DrillInProgress,
) -> DrillReport {
    let DrillInProgress {
        scratch,
        expectation,
        mut report,
        started,
    } = drill;
    let mut restored = Snapshot::fixed(expectation.sample_bits);
    match target.read_scratch(&scratch, &mut restored).await {
        Err(e) => report.failures.push(failure(Step::Read, &e)),
        Ok(()) => {
            report.restored_items = Some(restored.total());
            if let Err(why) = compare(&expectation, &restored) {
                report.failures.push(Failure {
                    step: Step::Compare,
                    retryable: false,
                    message: why,
                });
            }
        }
    }
    match target.drop_scratch(&scratch).await {
        Ok(()) => report.scratch_dropped = true,
        Err(e) => report.failures.push(failure(Step::DropScratch, &e)),
    }
    end_drill(services, report, started, policy).await
}

/// Both halves.
pub async fn run_drill(
    services: &Services,
    target: &dyn BackupTarget,
    policy: &BackupPolicy,
) -> DrillReport {
    match start_drill(services, target, policy).await {
        Ok(drill) => finish_drill(services, target, policy, drill).await,
        Err(report) => report,
    }
}

async fn end_drill(
    services: &Services,
    mut report: DrillReport,
    started: OffsetDateTime,
    policy: &BackupPolicy,
) -> DrillReport {
    report.finished = services.clock.now().rfc3339().unwrap_or_default();
    report.outcome = report.kind().unwrap_or_else(|| "passed".into());
    if let Err(e) = record(services, DRILL_PK, started, &report, policy).await {
        report.failures.push(Failure {
            step: Step::Record,
            retryable: true,
            message: e,
        });
    }
    tracing::info!(
        task = "drill",
        backup = report.backup_name.as_deref().unwrap_or("-"),
        passed = report.passed(),
        failures = report.failures.len(),
        "restore drill finished"
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn b(name: &str) -> BackupRef {
        BackupRef {
            id: format!("id/{name}"),
            name: name.to_owned(),
        }
    }

    #[test]
    fn names_carry_the_injected_utc_time_and_parse_back() {
        let t = datetime!(2026-11-29 06:00:05 UTC);
        assert_eq!(backup_name("tbl", t), "tbl-20261129T060005Z");
        assert_eq!(backup_time("tbl", "tbl-20261129T060005Z"), Some(t));
        assert_eq!(backup_time("tbl", "tbl-drill-20261129T060005Z"), None);
        assert_eq!(backup_time("tbl", "other-20261129T060005Z"), None);
        assert_eq!(backup_time("tbl", "tbl-manual"), None);
        assert_eq!(scratch_name("tbl", t), "tbl-drill-20261129T060005Z");
    }

    #[test]
    fn retention_deletes_old_copies_but_always_keeps_the_newest() {
        let policy = BackupPolicy {
            retention_days: 35,
            keep_newest: 2,
            ..BackupPolicy::default()
        };
        let now = datetime!(2026-12-31 00:00 UTC);
        let list = vec![
            b("t-20261201T000000Z"),
            b("t-20261101T000000Z"),
            b("t-20261001T000000Z"),
            b("t-manual-copy"),
        ];
        let gone: Vec<String> = expired(&list, "t", now, &policy)
            .into_iter()
            .map(|b| b.name)
            .collect();
        assert_eq!(gone, vec!["t-20261001T000000Z"]);
        // All expired: the newest two stay anyway.
        let later = now + Duration::days(365);
        assert_eq!(expired(&list, "t", later, &policy).len(), 1);
    }
}
