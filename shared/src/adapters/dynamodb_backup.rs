//! Backups of the DynamoDB table through its control plane: `CreateBackup`/`ListBackups`/
//! `DeleteBackup`, point-in-time recovery through `DescribeContinuousBackups`/
//! `UpdateContinuousBackups`, and drills through `RestoreTableFromBackup` into a scratch table
//! (`<table>-drill-<ts>`, the only other table the template lets the function touch), which is
//! waited on until ACTIVE, scanned, and deleted.
use crate::adapters::dynamodb::from_attrs;
use crate::ports::backup::{BackupError, BackupRef, BackupTarget, Pitr, Scratch, Snapshot};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    BackupTypeFilter, PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, TableStatus,
};
use std::time::Duration;

/// How often a drill asks whether its scratch table is ready.
const POLL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct DynamoBackups {
    client: Client,
    table: String,
    restore_wait: Duration,
}

impl DynamoBackups {
    /// Backups of `table`; a drill waits up to `restore_wait` for its restore to finish.
    pub fn new(client: Client, table: impl Into<String>, restore_wait: Duration) -> Self {
        Self {
            client,
            table: table.into(),
            restore_wait,
        }
    }

    async fn scan(&self, table: &str, digest: &mut Snapshot) -> Result<(), BackupError> {
        let mut start = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error)?;
            for attrs in out.items.unwrap_or_default() {
                let item = from_attrs(attrs).map_err(|e| BackupError::Corrupt(e.to_string()))?;
                digest.add(&item);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => return Ok(()),
            }
        }
    }

    async fn table_status(&self, table: &str) -> Result<Option<TableStatus>, BackupError> {
        let out = self
            .client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(out.table.and_then(|t| t.table_status))
    }
}

/// Throttling, server faults and transport failures may pass; the rest is refused as asked.
fn sdk_error<E, R>(e: SdkError<E, R>) -> BackupError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let code = e.code().map(str::to_owned);
    let message = format!("dynamodb: {}", DisplayErrorContext(&e));
    match (&e, code.as_deref()) {
        (SdkError::ServiceError(_), Some(code)) => match code {
            "ResourceNotFoundException" | "BackupNotFoundException" | "TableNotFoundException" => {
                BackupError::NotFound(message)
            }
            "ThrottlingException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "LimitExceededException"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "BackupInUseException"
            | "ResourceInUseException"
            | "TableInUseException" => BackupError::Unavailable(message),
            _ => BackupError::Refused(message),
        },
        (SdkError::ServiceError(_), None) => BackupError::Unavailable(message),
        // Timeouts, dispatch and response failures: the request may not have been seen.
        _ => BackupError::Unavailable(message),
    }
}

#[async_trait]
impl BackupTarget for DynamoBackups {
    fn source(&self) -> &str {
        &self.table
    }

    async fn create_backup(&self, name: &str) -> Result<BackupRef, BackupError> {
        let out = self
            .client
            .create_backup()
            .table_name(&self.table)
            .backup_name(name)
            .send()
            .await
            .map_err(sdk_error)?;
        let details = out
            .backup_details
            .ok_or_else(|| BackupError::Unavailable("CreateBackup returned no details".into()))?;
        Ok(BackupRef {
            id: details.backup_arn,
            name: details.backup_name,
        })
    }

    async fn list_backups(&self) -> Result<Vec<BackupRef>, BackupError> {
        let mut out = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self
                .client
                .list_backups()
                .table_name(&self.table)
                .backup_type(BackupTypeFilter::User)
                .set_exclusive_start_backup_arn(start.clone())
                .send()
                .await
                .map_err(sdk_error)?;
            for b in page.backup_summaries() {
                if let (Some(id), Some(name)) = (b.backup_arn(), b.backup_name()) {
                    out.push(BackupRef {
                        id: id.to_owned(),
                        name: name.to_owned(),
                    });
                }
            }
            match page.last_evaluated_backup_arn() {
                // A page that points back at its own start would loop forever.
                Some(last) if start.as_deref() != Some(last) => start = Some(last.to_owned()),
                _ => return Ok(out),
            }
        }
    }

    async fn delete_backup(&self, backup: &BackupRef) -> Result<(), BackupError> {
        self.client
            .delete_backup()
            .backup_arn(&backup.id)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn pitr(&self) -> Result<Pitr, BackupError> {
        let out = self
            .client
            .describe_continuous_backups()
            .table_name(&self.table)
            .send()
            .await
            .map_err(sdk_error)?;
        let status = out
            .continuous_backups_description
            .and_then(|d| d.point_in_time_recovery_description)
            .and_then(|p| p.point_in_time_recovery_status);
        Ok(match status {
            Some(PointInTimeRecoveryStatus::Enabled) => Pitr::Enabled,
            _ => Pitr::Disabled,
        })
    }

    async fn enable_pitr(&self) -> Result<(), BackupError> {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()
            .map_err(|e| BackupError::Refused(format!("request: {e}")))?;
        self.client
            .update_continuous_backups()
            .table_name(&self.table)
            .point_in_time_recovery_specification(spec)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }

    async fn read_live(&self, digest: &mut Snapshot) -> Result<(), BackupError> {
        self.scan(&self.table, digest).await
    }

    async fn restore_scratch(
        &self,
        backup: &BackupRef,
        scratch_name: &str,
    ) -> Result<Scratch, BackupError> {
        if !scratch_name.starts_with(&format!("{}-drill-", self.table)) {
            return Err(BackupError::Refused(format!(
                "scratch table {scratch_name} lacks the {}-drill- prefix",
                self.table
            )));
        }
        self.client
            .restore_table_from_backup()
            .backup_arn(&backup.id)
            .target_table_name(scratch_name)
            .send()
            .await
            .map_err(sdk_error)?;
        // Counted in polls, not read from a clock: time is injected, and this only paces.
        let polls = self.restore_wait.as_secs().div_ceil(POLL.as_secs()).max(1);
        for poll in 0..=polls {
            match self.table_status(scratch_name).await {
                Ok(Some(TableStatus::Active)) => {
                    return Ok(Scratch {
                        name: scratch_name.to_owned(),
                    });
                }
                // DescribeTable can lag the restore call by a moment.
                Ok(_) | Err(BackupError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
            if poll < polls {
                tokio::time::sleep(POLL).await;
            }
        }
        Err(BackupError::StillRunning(format!(
            "{scratch_name} was not ACTIVE after {} s",
            self.restore_wait.as_secs()
        )))
    }

    async fn read_scratch(
        &self,
        scratch: &Scratch,
        digest: &mut Snapshot,
    ) -> Result<(), BackupError> {
        // DynamoDB checks its own storage; what can be checked from outside is the content.
        self.scan(&scratch.name, digest).await
    }

    async fn drop_scratch(&self, scratch: &Scratch) -> Result<(), BackupError> {
        if !scratch.name.starts_with(&format!("{}-drill-", self.table)) {
            return Err(BackupError::Refused(format!(
                "{} is not a scratch table of {}",
                scratch.name, self.table
            )));
        }
        match self
            .client
            .delete_table()
            .table_name(&scratch.name)
            .send()
            .await
            .map_err(sdk_error)
        {
            Ok(_) | Err(BackupError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
