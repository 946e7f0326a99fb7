//! What a run or drill did, as recorded in the store and returned to the caller.
use crate::ports::backup::BackupError;
use serde::{Deserialize, Serialize};

use super::expectation::Expectation;

/// A step of a run or drill that failed; `retryable` says whether running it again may help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub step: Step,
    pub retryable: bool,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Point-in-time recovery could not be read or turned on.
    PitrCheck,
    /// Point-in-time recovery was off (it has been turned on).
    PitrWasOff,
    /// The reads around the copy failed: the copy cannot be checked by a drill.
    Expectation,
    Backup,
    Retention,
    Record,
    /// No recorded copy is available to restore.
    NoCopy,
    Restore,
    /// The scratch copy could not be read or failed its integrity check.
    Read,
    /// The scratch copy differs from what the run recorded.
    Compare,
    DropScratch,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::PitrCheck => "PitrCheckFailed",
            Step::PitrWasOff => "PitrWasOff",
            Step::Expectation => "NotVerifiable",
            Step::Backup => "BackupNotMade",
            Step::Retention => "RetentionFailed",
            Step::Record => "NotRecorded",
            Step::NoCopy => "NoCopyToRestore",
            Step::Restore => "RestoreFailed",
            Step::Read => "CopyUnreadable",
            Step::Compare => "CopyDiffers",
            Step::DropScratch => "ScratchNotDropped",
        }
    }
}

pub(super) fn failure(step: Step, e: &BackupError) -> Failure {
    Failure {
        step,
        retryable: e.retryable(),
        message: e.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub started: String,
    pub finished: String,
    pub source: String,
    pub backup_id: Option<String>,
    pub backup_name: Option<String>,
    pub deleted: Vec<String>,
    pub pitr_before: Option<String>,
    pub pitr_after: Option<String>,
    pub expectation: Option<Expectation>,
    /// Why there is no expectation, when there is none.
    pub expectation_note: Option<String>,
    pub failures: Vec<Failure>,
    /// `succeeded`, or [`RunReport::kind`] as it stood when the run was recorded.
    #[serde(default)]
    pub outcome: String,
}

impl RunReport {
    pub fn succeeded(&self) -> bool {
        self.failures.is_empty()
    }

    /// Which half failed, in one word for the error type: `BackupNotMade`, or
    /// `BackupMadeBut<Step>[And<Step>...]`; `None` when the run succeeded.
    pub fn kind(&self) -> Option<String> {
        if self.failures.is_empty() {
            return None;
        }
        if self.backup_id.is_none() {
            return Some(Step::Backup.name().to_owned());
        }
        let steps: Vec<&str> = self.failures.iter().map(|f| f.step.name()).collect();
        Some(format!("BackupMadeBut{}", steps.join("And")))
    }

    /// Whether running again may help: every failed step was transient.
    pub fn retryable(&self) -> bool {
        self.failures.iter().all(|f| f.retryable)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DrillReport {
    pub started: String,
    pub finished: String,
    pub source: String,
    pub backup_id: Option<String>,
    pub backup_name: Option<String>,
    pub scratch: Option<String>,
    pub scratch_dropped: bool,
    /// Items in the restored copy.
    pub restored_items: Option<u64>,
    pub failures: Vec<Failure>,
    /// `passed`, or [`DrillReport::kind`] as it stood when the drill was recorded.
    #[serde(default)]
    pub outcome: String,
}

impl DrillReport {
    /// The copy was restored, read and found equal to its expectation (dropping the scratch
    /// copy or recording the drill may still have failed).
    pub fn passed(&self) -> bool {
        self.restored_items.is_some()
            && !self.failures.iter().any(|f| {
                matches!(
                    f.step,
                    Step::NoCopy | Step::Restore | Step::Read | Step::Compare
                )
            })
    }

    /// `DrillFailed<Step>` or `DrillPassedBut<Step>`; `None` when all went well.
    pub fn kind(&self) -> Option<String> {
        let steps: Vec<&str> = self.failures.iter().map(|f| f.step.name()).collect();
        match (self.failures.is_empty(), self.passed()) {
            (true, _) => None,
            (false, true) => Some(format!("DrillPassedBut{}", steps.join("And"))),
            (false, false) => Some(format!("DrillFailed{}", steps.join("And"))),
        }
    }

    pub fn retryable(&self) -> bool {
        self.failures.iter().all(|f| f.retryable)
    }
}
