//! The status page's write side: components, incidents, their updates, maintenances. Every
//! write is one [`Journal::commit`](crate::domain::audit::Journal::commit) in the platform
//! journal, so the page's state and its audit event land together.
//!
//! Writes that add an update (a new incident or maintenance, a posted update) carry the
//! caller's idempotency key: its hash is stored (`IDEM#…`, created only if absent) in the same
//! transaction, so a retried request finds what the first one made instead of adding a second
//! update, and the notices for that update are sent once ([`super::notices`]).
use super::*;
use crate::crypto::hex;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::tenants::get_tenant;
use crate::domain::timestamps::Timestamp as _;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, WriteOp};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

mod components;
mod idempotency;
mod incidents;

pub use components::{create_component, update_component};
pub use incidents::{create_incident, patch_incident, post_update, schedule_maintenance};

/// Components one update may change, and tenants one update may notify: keeps every commit far
/// below the store's 100-operation transaction.
const MAX_COMPONENTS_PER_UPDATE: usize = 50;
const MAX_TENANTS_PER_UPDATE: usize = 50;

fn yes() -> bool {
    true
}

/// `POST /status/manage/components`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewComponent {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Puts the component in this group.
    #[serde(default)]
    pub group_id: Option<String>,
    /// Makes this a group (its status is its components' worst).
    #[serde(default)]
    pub group: bool,
    #[serde(default)]
    pub position: Option<u32>,
    #[serde(default)]
    pub status: Option<ComponentStatus>,
    #[serde(default = "yes")]
    pub showcase: bool,
    #[serde(default)]
    pub only_show_if_degraded: bool,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    pub start_date: Option<String>,
}

/// `PATCH /status/manage/components/{id}`: the fields given change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ComponentPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub position: Option<u32>,
    #[serde(default)]
    pub status: Option<ComponentStatus>,
    #[serde(default)]
    pub showcase: Option<bool>,
    #[serde(default)]
    pub only_show_if_degraded: Option<bool>,
}

/// `POST /status/manage/incidents`: the incident and its first update.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewIncident {
    pub name: String,
    /// Default `investigating`.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    /// Default `minor`.
    #[serde(default)]
    pub impact: Option<Impact>,
    pub body: String,
    /// Component id → the status it should show from now.
    #[serde(default)]
    pub components: BTreeMap<String, ComponentStatus>,
    /// Tenants whose customer data is affected: their admin contacts get an urgent notice.
    #[serde(default)]
    pub data_impact_tenants: Vec<String>,
}

/// `POST /status/manage/incidents/{id}/updates` (incidents and maintenances alike).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewUpdate {
    /// Default: unchanged.
    #[serde(default)]
    pub status: Option<IncidentStatus>,
    pub body: String,
    #[serde(default)]
    pub impact: Option<Impact>,
    #[serde(default)]
    pub components: BTreeMap<String, ComponentStatus>,
    /// Tenants to notify of this update (added to the incident's affected tenants).
    #[serde(default)]
    pub data_impact_tenants: Vec<String>,
}

/// `POST /status/manage/maintenances`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewMaintenance {
    pub name: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_for: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub scheduled_until: OffsetDateTime,
    /// Components that show `under_maintenance` while it is in progress and go back to
    /// `operational` when it completes (unless an update names their status itself).
    #[serde(default)]
    pub components: Vec<String>,
}

/// `PATCH /status/manage/incidents/{id}`: corrections that are not an update.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IncidentPatch {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub impact: Option<Impact>,
}

/// What a write with an idempotency key made: the incident and the update it added.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub incident: Incident,
    pub seq: u32,
    /// The key had been used before: nothing was written this time.
    pub replayed: bool,
}

fn page_op(now: OffsetDateTime) -> Result<WriteOp, Error> {
    Ok(WriteOp::Put {
        item: Item::new(PARTITION, PAGE_SK).with("updatedAt", now.rfc3339()?),
        condition: Condition::None,
    })
}

fn check_text(what: &str, value: &str, max: usize, required: bool) -> Result<(), Error> {
    if required && value.trim().is_empty() {
        return Err(Error::Invalid(format!("{what} is required")));
    }
    if value.len() > max {
        return Err(Error::Invalid(format!("{what} is longer than {max} bytes")));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
    {
        return Err(Error::Invalid(format!(
            "{what} must not hold control characters"
        )));
    }
    Ok(())
}

fn check_name(value: &str) -> Result<(), Error> {
    check_text("name", value, 200, true)?;
    if value.contains('\n') {
        return Err(Error::Invalid("name must be one line".into()));
    }
    Ok(())
}

/// Every named tenant must exist; duplicates are dropped.
async fn check_tenants(services: &Services, tenants: &[String]) -> Result<Vec<String>, Error> {
    let mut out: Vec<String> = Vec::new();
    for t in tenants {
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    if out.len() > MAX_TENANTS_PER_UPDATE {
        return Err(Error::Invalid(format!(
            "at most {MAX_TENANTS_PER_UPDATE} tenants per update"
        )));
    }
    for t in &out {
        if !crate::domain::tenants::valid_tenant_id(t) || get_tenant(services, t).await?.is_none() {
            return Err(Error::NotFound("tenant"));
        }
    }
    Ok(out)
}

fn new_incident_id(services: &Services, now: OffsetDateTime) -> String {
    let secs = u32::try_from(now.unix_timestamp()).unwrap_or(u32::MAX);
    format!("{secs:08x}{}", services.random.hex_id(2))
}

async fn commit(
    services: &Services,
    ctx: &AuditContext,
    change: Change,
) -> Result<(), CommitError> {
    services
        .journal
        .commit(PLATFORM_JOURNAL, ctx, change)
        .await
        .map(|_| ())
}
