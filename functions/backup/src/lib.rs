//! The `latchkey-backup` function, invoked by EventBridge (see `template.yaml`):
//!
//! - `{"task": "backup"}` every 6 hours: point-in-time recovery check, a copy named
//!   `<table>-<UTC timestamp>`, retention, a run record (`domain::backups::run_backup`);
//! - `{"task": "drill"}` weekly: the newest recorded copy restored into a scratch table,
//!   compared with what it should hold, dropped (`domain::backups::run_drill`);
//! - `{"task": "rekey"}` hourly: the re-key job after root-secret rotations
//!   (`domain::rekey`: the previous root generation into the keyring, the email index under
//!   the current key);
//! - `{"task": "purge"}` hourly: deletes the items of deleted (crypto-shredded) tenants
//!   (`domain::shred::purge`).
//! - `{"task": "health"}`: the store answers.
//!
//! Each run and drill prints one CloudWatch Embedded Metric Format line (namespace `Latchkey`,
//! dimension `Function`), which the template's alarms watch. A run or drill that did not fully
//! succeed returns an error whose type says whether a retry can help and which half failed,
//! e.g. `Retryable.BackupNotMade` or `NotRetryable.BackupMadeButPitrWasOff`.
use latchkey::Services;
use latchkey::domain::backups::{BackupPolicy, DrillReport, RunReport, run_backup, run_drill};
use latchkey::ports::backup::BackupTarget;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

pub const NAME: &str = "latchkey-backup";
/// The CloudWatch namespace of the metrics this function emits.
pub const NAMESPACE: &str = "Latchkey";

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    Health,
    Backup,
    Drill,
    Rekey,
    Purge,
}

/// What backups are made of and kept by; built once at cold start.
#[derive(Clone)]
pub struct Backups {
    pub target: Arc<dyn BackupTarget>,
    pub policy: BackupPolicy,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub task: &'static str,
    pub status: &'static str,
    /// The run or drill report, as recorded in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

/// Every error says whether the scheduler's retry may help; see [`TaskError::error_type`].
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("the event is not a known task (retrying will not help)")]
    UnknownTask,
    #[error("the store did not answer (a retry may help): {0}")]
    Unavailable(String),
    /// A backup run that did not fully succeed; `kind` names the half that failed.
    #[error("backup run failed ({kind}): {message}")]
    Run {
        kind: String,
        retryable: bool,
        message: String,
    },
    /// The re-key job failed; a retry helps unless the keyring is sealed under a root no
    /// longer held (two rotations without a re-key between them).
    #[error("re-key failed: {0}")]
    Rekey(String, bool),
    /// A restore drill that failed, or passed with a step left undone.
    #[error("restore drill failed ({kind}): {message}")]
    Drill {
        kind: String,
        retryable: bool,
        message: String,
    },
}

impl TaskError {
    pub fn retryable(&self) -> bool {
        match self {
            TaskError::UnknownTask => false,
            TaskError::Unavailable(_) => true,
            TaskError::Rekey(_, retryable) => *retryable,
            TaskError::Run { retryable, .. } | TaskError::Drill { retryable, .. } => *retryable,
        }
    }

    /// `Retryable.<Kind>` or `NotRetryable.<Kind>`.
    pub fn error_type(&self) -> String {
        let kind = match self {
            TaskError::UnknownTask => "UnknownTask",
            TaskError::Unavailable(_) => "StoreUnavailable",
            TaskError::Rekey(..) => "RekeyFailed",
            TaskError::Run { kind, .. } | TaskError::Drill { kind, .. } => kind,
        };
        let retry = if self.retryable() {
            "Retryable"
        } else {
            "NotRetryable"
        };
        format!("{retry}.{kind}")
    }
}

impl From<TaskError> for lambda_runtime::Diagnostic {
    fn from(e: TaskError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: e.error_type(),
            error_message: e.to_string(),
        }
    }
}

fn messages(failures: &[latchkey::domain::backups::Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.step.name(), f.message))
        .collect::<Vec<_>>()
        .join("; ")
}

pub async fn handle(
    services: &Services,
    backups: &Backups,
    event: Value,
) -> Result<Report, TaskError> {
    let task: Task = serde_json::from_value(event).map_err(|_| TaskError::UnknownTask)?;
    match task {
        Task::Health => {
            services
                .store
                .get("HEALTH", "PROBE")
                .await
                .map_err(|e| TaskError::Unavailable(e.to_string()))?;
            tracing::info!(task = "health", "store answered");
            Ok(Report {
                task: "health",
                status: "ok",
                detail: None,
            })
        }
        Task::Backup => {
            let report = run_backup(services, backups.target.as_ref(), &backups.policy).await;
            println!("{}", run_metrics(services, &report));
            match report.kind() {
                None => Ok(Report {
                    task: "backup",
                    status: "ok",
                    detail: serde_json::to_value(&report).ok(),
                }),
                Some(kind) => Err(TaskError::Run {
                    kind,
                    retryable: report.retryable(),
                    message: messages(&report.failures),
                }),
            }
        }
        Task::Rekey => {
            let ctx = latchkey::domain::audit::AuditContext::system("rekey", "scheduled");
            match latchkey::domain::rekey::rekey(services, &ctx).await {
                Ok(r) => {
                    tracing::info!(
                        task = "rekey",
                        captured = r.captured.is_some(),
                        kept = r.kept,
                        users_reindexed = r.users_reindexed,
                        awaiting_use = r.awaiting_use.values().sum::<usize>(),
                        "re-keyed"
                    );
                    Ok(Report {
                        task: "rekey",
                        status: "ok",
                        detail: Some(json!({
                            "current": r.current,
                            "captured": r.captured,
                            "kept": r.kept,
                            "usersReindexed": r.users_reindexed,
                            "awaitingUse": r.awaiting_use,
                        })),
                    })
                }
                Err(e) => {
                    let retryable = !matches!(&e, latchkey::domain::Error::Unavailable(m)
                        if m == latchkey::domain::keyring::SEALED_UNDER_A_LOST_ROOT);
                    Err(TaskError::Rekey(e.to_string(), retryable))
                }
            }
        }
        Task::Purge => {
            let ctx = latchkey::domain::audit::AuditContext::system("purge", "scheduled");
            let r = latchkey::domain::shred::purge(services, &ctx)
                .await
                .map_err(|e| TaskError::Unavailable(e.to_string()))?;
            tracing::info!(
                task = "purge",
                tenants = r.tenants.len(),
                items = r.items,
                "purged deleted tenants"
            );
            Ok(Report {
                task: "purge",
                status: "ok",
                detail: Some(json!({ "tenants": r.tenants, "items": r.items })),
            })
        }
        Task::Drill => {
            let report = run_drill(services, backups.target.as_ref(), &backups.policy).await;
            println!("{}", drill_metrics(services, &report));
            match report.kind() {
                None => Ok(Report {
                    task: "drill",
                    status: "ok",
                    detail: serde_json::to_value(&report).ok(),
                }),
                Some(kind) => Err(TaskError::Drill {
                    kind,
                    retryable: report.retryable(),
                    message: messages(&report.failures),
                }),
            }
        }
    }
}

/// One CloudWatch Embedded Metric Format record: `metrics` as (name, unit, value), all under
/// namespace [`NAMESPACE`] with the dimension `Function` = [`NAME`].
pub fn emf(services: &Services, metrics: &[(&str, &str, f64)]) -> Value {
    let millis = services.clock.now().unix_timestamp_nanos() / 1_000_000;
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({"Name": name, "Unit": unit}))
        .collect();
    let mut record = json!({
        "_aws": {
            "Timestamp": millis as i64,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": definitions,
            }],
        },
        "Function": NAME,
    });
    if let Value::Object(map) = &mut record {
        for (name, _, value) in metrics {
            map.insert((*name).to_owned(), json!(value));
        }
    }
    record
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

/// `BackupSucceeded` (the alarm watches it), `BackupMade`, `BackupsDeleted`, `PitrWasOff` and
/// `BackupVerifiable` (a drill can check this copy).
pub fn run_metrics(services: &Services, report: &RunReport) -> Value {
    let pitr_was_off = report.pitr_before.as_deref() == Some("disabled");
    emf(
        services,
        &[
            ("BackupSucceeded", "Count", flag(report.succeeded())),
            ("BackupMade", "Count", flag(report.backup_id.is_some())),
            ("BackupsDeleted", "Count", report.deleted.len() as f64),
            ("PitrWasOff", "Count", flag(pitr_was_off)),
            (
                "BackupVerifiable",
                "Count",
                flag(report.expectation.is_some()),
            ),
        ],
    )
}

/// `DrillSucceeded` (the alarm watches it) and `DrillRestoredItems`.
pub fn drill_metrics(services: &Services, report: &DrillReport) -> Value {
    emf(
        services,
        &[
            ("DrillSucceeded", "Count", flag(report.passed())),
            (
                "DrillRestoredItems",
                "Count",
                report.restored_items.unwrap_or(0) as f64,
            ),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey::adapters::local_keys::LocalKeyVault;
    use latchkey::adapters::local_secrets::LocalSecrets;
    use latchkey::adapters::sqlite::SqliteStore;
    use latchkey::adapters::sqlite_backup::SqliteBackups;
    use latchkey::domain::CachePolicy;
    use latchkey::ports::clock::ManualClock;
    use latchkey::ports::random::OsRandom;
    use time::macros::datetime;

    fn services(dir: &std::path::Path) -> (Services, Backups) {
        let db = dir.join("latchkey.db");
        let services = Services::new(
            latchkey::domain::Ports {
                store: Arc::new(SqliteStore::open(&db).unwrap()),
                vault: Arc::new(LocalKeyVault::from_key(&[1u8; 32], Arc::new(OsRandom)).unwrap()),
                secrets: Arc::new(LocalSecrets::with_root(b"backup tests", Arc::new(OsRandom))),
                clock: Arc::new(ManualClock::new(datetime!(2026-11-29 12:00 UTC))),
                random: Arc::new(OsRandom),
                mailer: Arc::new(latchkey::adapters::outbox::MemoryOutbox::default()),
            },
            CachePolicy {
                ttl: time::Duration::minutes(5),
                capacity: 10,
            },
            latchkey::domain::limits::AnonymousLimits::default(),
        );
        let backups = Backups {
            target: Arc::new(SqliteBackups::new(db, dir.join("backups"))),
            policy: BackupPolicy::default(),
        };
        (services, backups)
    }

    #[tokio::test]
    async fn health_task_probes_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let report = handle(&s, &b, json!({"task": "health"})).await.unwrap();
        assert_eq!(report.status, "ok");
    }

    #[tokio::test]
    async fn the_purge_task_deletes_a_deleted_tenants_items() {
        use latchkey::domain::audit::AuditContext;
        use latchkey::domain::tenants::{TenantSettings, create_tenant};
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let ctx = AuditContext::system("test", "purge");
        let settings = TenantSettings {
            name: "Gone".into(),
            rp_id: "example.com".into(),
            ..TenantSettings::default()
        };
        create_tenant(&s, &ctx, "t-gone", settings, vec![])
            .await
            .unwrap();
        latchkey::domain::shred::delete_tenant(&s, &ctx, "t-gone")
            .await
            .unwrap();
        let report = handle(&s, &b, json!({"task": "purge"})).await.unwrap();
        assert_eq!((report.task, report.status), ("purge", "ok"));
        let detail = report.detail.unwrap();
        assert_eq!(detail["tenants"], json!(["t-gone"]));
        assert!(detail["items"].as_u64().unwrap() >= 1, "{detail}");
    }

    #[tokio::test]
    async fn backup_then_drill_succeed_on_the_embedded_store_and_unknown_events_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let run = handle(&s, &b, json!({"task": "backup"})).await.unwrap();
        assert_eq!((run.task, run.status), ("backup", "ok"));
        let drill = handle(&s, &b, json!({"task": "drill"})).await.unwrap();
        assert_eq!((drill.task, drill.status), ("drill", "ok"));
        let err = handle(&s, &b, json!({"source": "aws.events"}))
            .await
            .unwrap_err();
        assert_eq!(
            lambda_runtime::Diagnostic::from(err).error_type,
            "NotRetryable.UnknownTask"
        );
    }

    #[tokio::test]
    async fn the_rekey_task_runs_the_re_key_job() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let report = handle(&s, &b, json!({"task": "rekey"})).await.unwrap();
        assert_eq!((report.task, report.status), ("rekey", "ok"));
        assert_eq!(report.detail.unwrap()["kept"], 0);
    }

    #[tokio::test]
    async fn a_drill_without_any_copy_is_a_non_retryable_error() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let err = handle(&s, &b, json!({"task": "drill"})).await.unwrap_err();
        let d = lambda_runtime::Diagnostic::from(err);
        assert_eq!(d.error_type, "NotRetryable.DrillFailedNoCopyToRestore");
    }

    #[test]
    fn half_failed_runs_say_which_half_and_whether_to_retry() {
        let e = TaskError::Run {
            kind: "BackupMadeButRetentionFailed".into(),
            retryable: true,
            message: "throttled".into(),
        };
        assert_eq!(e.error_type(), "Retryable.BackupMadeButRetentionFailed");
        let e = TaskError::Run {
            kind: "BackupMadeButPitrWasOff".into(),
            retryable: false,
            message: "off".into(),
        };
        assert_eq!(e.error_type(), "NotRetryable.BackupMadeButPitrWasOff");
    }

    #[tokio::test]
    async fn metrics_are_one_emf_record_in_the_latchkey_namespace() {
        let dir = tempfile::tempdir().unwrap();
        let (s, b) = services(dir.path());
        let report = run_backup(&s, b.target.as_ref(), &b.policy).await;
        let line = run_metrics(&s, &report).to_string();
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], json!(1_795_953_600_000_i64));
        let directive = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Latchkey");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(v["Function"], NAME);
        let names: Vec<&str> = directive["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["Unit"], "Count");
                m["Name"].as_str().unwrap()
            })
            .collect();
        assert!(names.contains(&"BackupSucceeded"));
        for name in names {
            assert!(v[name].is_number(), "{name} has no value");
        }
        assert_eq!(v["BackupSucceeded"], json!(1.0));
        let drill = drill_metrics(&s, &run_drill(&s, b.target.as_ref(), &b.policy).await);
        assert_eq!(drill["DrillSucceeded"], json!(1.0));
        assert_eq!(
            drill["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "DrillSucceeded"
        );
    }
}
