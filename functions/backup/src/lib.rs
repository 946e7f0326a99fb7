//! The `latchkey-backup` function, invoked by EventBridge every six hours with
//! `{"task": "backup"}` (see `template.yaml`).
//!
//! Until the backup issue lands it answers only `{"task": "health"}`, which checks that the
//! store answers. A scheduled `backup` task is refused with a non-retryable error, so the
//! template's backup-error alarm fires rather than a silent success being recorded.
#![forbid(unsafe_code)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented,
    clippy::await_holding_lock,
    clippy::dbg_macro
)]

use latchkey::Services;
use serde::{Deserialize, Serialize};

pub const NAME: &str = "latchkey-backup";

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Task {
    Health,
    Backup,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Report {
    pub task: &'static str,
    pub status: &'static str,
}

/// Whether the scheduler should retry: the runtime reports the error either way.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("the event is not a known task (retrying will not help)")]
    UnknownTask,
    #[error("task `{0}` is not available in this build (retrying will not help)")]
    NotAvailable(&'static str),
    #[error("the store did not answer (a retry may help): {0}")]
    Unavailable(String),
}

pub async fn handle(services: &Services, event: serde_json::Value) -> Result<Report, TaskError> {
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
            })
        }
        Task::Backup => Err(TaskError::NotAvailable("backup")),
    }
}

impl From<TaskError> for lambda_runtime::Diagnostic {
    fn from(e: TaskError) -> Self {
        let error_type = match e {
            TaskError::UnknownTask => "UnknownTask",
            TaskError::NotAvailable(_) => "NotAvailable",
            TaskError::Unavailable(_) => "Unavailable",
        };
        lambda_runtime::Diagnostic {
            error_type: error_type.to_owned(),
            error_message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey::adapters::local_keys::LocalKeyVault;
    use latchkey::adapters::local_secrets::LocalSecrets;
    use latchkey::adapters::sqlite::SqliteStore;
    use latchkey::ports::clock::SystemClock;
    use latchkey::ports::random::OsRandom;
    use latchkey::runtime::CachePolicy;
    use std::sync::Arc;

    fn services() -> Services {
        Services::assemble(
            Arc::new(SqliteStore::in_memory().unwrap()),
            Arc::new(LocalKeyVault::from_key(&[1u8; 32], Arc::new(OsRandom)).unwrap()),
            Arc::new(LocalSecrets::new(
                Default::default(),
                None,
                Arc::new(OsRandom),
            )),
            Arc::new(SystemClock),
            Arc::new(OsRandom),
            CachePolicy {
                ttl: time::Duration::minutes(5),
                capacity: 10,
            },
            1024,
        )
    }

    #[tokio::test]
    async fn health_task_probes_the_store() {
        let report = handle(&services(), serde_json::json!({"task": "health"}))
            .await
            .unwrap();
        assert_eq!(report.status, "ok");
    }

    #[tokio::test]
    async fn scheduled_backup_is_refused_loudly_until_built_and_unknown_events_fail() {
        let s = services();
        let err = handle(&s, serde_json::json!({"task": "backup"}))
            .await
            .unwrap_err();
        assert!(matches!(err, TaskError::NotAvailable("backup")));
        let diagnostic = lambda_runtime::Diagnostic::from(err);
        assert_eq!(diagnostic.error_type, "NotAvailable");
        assert!(matches!(
            handle(&s, serde_json::json!({"source": "aws.events"})).await,
            Err(TaskError::UnknownTask)
        ));
    }
}
