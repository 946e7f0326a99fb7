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
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, WriteOp};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;

const IDEM_PREFIX: &str = "IDEM#";
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

fn rfc3339(t: OffsetDateTime) -> Result<String, Error> {
    t.format(&Rfc3339)
        .map_err(|e| Error::Internal(e.to_string()))
}

fn page_op(now: OffsetDateTime) -> Result<WriteOp, Error> {
    Ok(WriteOp::Put {
        item: Item::new(PARTITION, PAGE_SK).with("updatedAt", rfc3339(now)?),
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

fn idem_sk(key: &str) -> String {
    format!("{IDEM_PREFIX}{}", hex(Sha256::digest(key.as_bytes())))
}

/// What identifies a request under its key: the operation and its body.
fn fingerprint<T: Serialize>(operation: &str, body: &T) -> String {
    let text = serde_json::to_string(body).unwrap_or_default();
    hex(Sha256::digest(format!("{operation}\0{text}").as_bytes()))
}

fn check_key(key: &str) -> Result<(), Error> {
    let ok = (8..=128).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "Idempotency-Key must be 8-128 visible ASCII characters".into(),
        ))
    }
}

/// The earlier result for `key`, if the key was used; a different request under the same key
/// is a conflict.
async fn replay(services: &Services, key: &str, print: &str) -> Result<Option<Recorded>, Error> {
    let Some(item) = services.store.get(PARTITION, &idem_sk(key)).await? else {
        return Ok(None);
    };
    if item.str("fingerprint") != Some(print) {
        return Err(Error::Conflict(
            "this Idempotency-Key was used for a different request",
        ));
    }
    let id = item.str("incidentId").unwrap_or_default();
    let seq = item
        .u64("seq")
        .and_then(|s| u32::try_from(s).ok())
        .unwrap_or(0);
    let incident = get_incident(services, id)
        .await?
        .ok_or_else(|| Error::Internal("idempotency record names a missing incident".into()))?;
    Ok(Some(Recorded {
        incident,
        seq,
        replayed: true,
    }))
}

fn idem_op(key: &str, print: &str, incident_id: &str, seq: u32) -> WriteOp {
    WriteOp::Put {
        item: Item::new(PARTITION, idem_sk(key))
            .with("fingerprint", print)
            .with("incidentId", incident_id)
            .with("seq", seq),
        condition: Condition::Absent,
    }
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

/// Reads the named components, refuses unknown ones and groups, and returns what changes
/// (with the component writes, each under its version).
async fn component_changes(
    services: &Services,
    changes: &BTreeMap<String, ComponentStatus>,
    now: OffsetDateTime,
) -> Result<(Vec<AffectedComponent>, Vec<WriteOp>), Error> {
    if changes.len() > MAX_COMPONENTS_PER_UPDATE {
        return Err(Error::Invalid(format!(
            "at most {MAX_COMPONENTS_PER_UPDATE} components per update"
        )));
    }
    let mut affected = Vec::new();
    let mut ops = Vec::new();
    for (id, status) in changes {
        let item = services
            .store
            .get(PARTITION, &component_sk(id))
            .await?
            .ok_or_else(|| Error::Invalid("a named component does not exist".into()))?;
        let mut component: Component = from_item(&item)?;
        if component.group {
            return Err(Error::Invalid(
                "a group's status follows its components; set theirs".into(),
            ));
        }
        if component.status == *status {
            continue;
        }
        affected.push(AffectedComponent {
            code: component.id.clone(),
            name: component.name.clone(),
            old_status: component.status,
            new_status: *status,
        });
        component.status = *status;
        component.updated_at = now;
        ops.push(WriteOp::Put {
            item: to_item(PARTITION, &item.sk, &component)?.with_version(item.version + 1),
            condition: Condition::Version(item.version),
        });
    }
    Ok((affected, ops))
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

pub async fn create_component(
    services: &Services,
    ctx: &AuditContext,
    new: NewComponent,
) -> Result<Component, Error> {
    check_name(&new.name)?;
    if let Some(d) = &new.description {
        check_text("description", d, 1000, false)?;
    }
    if let Some(d) = &new.start_date {
        let format = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(d, &format)
            .map_err(|_| Error::Invalid("start_date must be YYYY-MM-DD".into()))?;
    }
    let existing = components(services).await?;
    let mut ops = Vec::new();
    if let Some(group_id) = &new.group_id {
        if new.group {
            return Err(Error::Invalid("a group cannot be in a group".into()));
        }
        let group = existing
            .iter()
            .find(|c| &c.id == group_id && c.group)
            .ok_or_else(|| Error::Invalid("group_id names no group".into()))?;
        ops.push(WriteOp::Check {
            pk: PARTITION.into(),
            sk: component_sk(&group.id),
            condition: Condition::Exists,
        });
    }
    let now = services.clock.now();
    let component = Component {
        id: services.random.hex_id(6),
        name: new.name,
        description: new.description,
        group_id: new.group_id,
        group: new.group,
        position: new.position.unwrap_or_else(|| {
            existing
                .iter()
                .map(|c| c.position)
                .max()
                .map_or(1, |p| p + 1)
        }),
        status: new.status.unwrap_or(ComponentStatus::Operational),
        showcase: new.showcase,
        only_show_if_degraded: new.only_show_if_degraded,
        start_date: new.start_date,
        created_at: now,
        updated_at: now,
    };
    ops.push(WriteOp::Put {
        item: to_item(PARTITION, &component_sk(&component.id), &component)?,
        condition: Condition::Absent,
    });
    ops.push(page_op(now)?);
    let change = Change {
        action: "status.component.create",
        target: format!("component:{}", component.id),
        summary: json!({ "group": component.group, "status": component.status.as_str() }),
        ops,
    };
    commit(services, ctx, change).await?;
    Ok(component)
}

pub async fn update_component(
    services: &Services,
    ctx: &AuditContext,
    id: &str,
    patch: ComponentPatch,
) -> Result<Component, Error> {
    let item = services
        .store
        .get(PARTITION, &component_sk(id))
        .await?
        .ok_or(Error::NotFound("component"))?;
    let mut c: Component = from_item(&item)?;
    let mut fields = Vec::new();
    if let Some(name) = patch.name {
        check_name(&name)?;
        c.name = name;
        fields.push("name");
    }
    if let Some(d) = patch.description {
        check_text("description", &d, 1000, false)?;
        c.description = Some(d);
        fields.push("description");
    }
    if let Some(p) = patch.position {
        c.position = p;
        fields.push("position");
    }
    if let Some(s) = patch.status {
        if c.group {
            return Err(Error::Invalid(
                "a group's status follows its components; set theirs".into(),
            ));
        }
        c.status = s;
        fields.push("status");
    }
    if let Some(v) = patch.showcase {
        c.showcase = v;
        fields.push("showcase");
    }
    if let Some(v) = patch.only_show_if_degraded {
        c.only_show_if_degraded = v;
        fields.push("only_show_if_degraded");
    }
    let now = services.clock.now();
    c.updated_at = now;
    let change = Change {
        action: "status.component.update",
        target: format!("component:{id}"),
        summary: json!({ "fields": fields, "status": c.status.as_str() }),
        ops: vec![
            WriteOp::Put {
                item: to_item(PARTITION, &item.sk, &c)?.with_version(item.version + 1),
                condition: Condition::Version(item.version),
            },
            page_op(now)?,
        ],
    };
    match commit(services, ctx, change).await {
        Ok(()) => Ok(c),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the component changed; retry")),
        Err(e) => Err(e.into()),
    }
}

/// Opens an incident with its first update.
pub async fn create_incident(
    services: &Services,
    ctx: &AuditContext,
    key: &str,
    new: NewIncident,
) -> Result<Recorded, Error> {
    check_key(key)?;
    let print = fingerprint("incident.create", &new);
    if let Some(done) = replay(services, key, &print).await? {
        return Ok(done);
    }
    check_name(&new.name)?;
    check_text("body", &new.body, MAX_BODY_BYTES, true)?;
    let status = new.status.unwrap_or(IncidentStatus::Investigating);
    if status.kind() != Kind::Incident {
        return Err(Error::Invalid(
            "an incident's status is investigating, identified, monitoring or resolved".into(),
        ));
    }
    let impact = new.impact.unwrap_or(Impact::Minor);
    if impact == Impact::Maintenance {
        return Err(Error::Invalid(
            "impact maintenance is for scheduled maintenances".into(),
        ));
    }
    let tenants = check_tenants(services, &new.data_impact_tenants).await?;
    let now = services.clock.now();
    let (affected, component_ops) = component_changes(services, &new.components, now).await?;
    let update = IncidentUpdate {
        id: services.random.hex_id(6),
        seq: 1,
        status,
        body: new.body,
        created_at: now,
        display_at: now,
        affected_components: affected,
        data_impact_tenants: tenants.clone(),
    };
    let incident = Incident {
        id: new_incident_id(services, now),
        kind: Kind::Incident,
        name: new.name,
        status,
        impact,
        created_at: now,
        updated_at: now,
        started_at: now,
        monitoring_at: (status == IncidentStatus::Monitoring).then_some(now),
        resolved_at: status.is_closed().then_some(now),
        scheduled_for: None,
        scheduled_until: None,
        components: new.components.keys().cloned().collect(),
        data_impact_tenants: tenants,
        updates: vec![update],
    };
    insert(services, ctx, key, &print, incident, component_ops).await
}

/// Schedules a maintenance (its first update says what will happen).
pub async fn schedule_maintenance(
    services: &Services,
    ctx: &AuditContext,
    key: &str,
    new: NewMaintenance,
) -> Result<Recorded, Error> {
    check_key(key)?;
    let print = fingerprint("maintenance.create", &new);
    if let Some(done) = replay(services, key, &print).await? {
        return Ok(done);
    }
    check_name(&new.name)?;
    check_text("body", &new.body, MAX_BODY_BYTES, true)?;
    if new.scheduled_until <= new.scheduled_for {
        return Err(Error::Invalid(
            "scheduled_until must be after scheduled_for".into(),
        ));
    }
    if new.components.len() > MAX_COMPONENTS_PER_UPDATE {
        return Err(Error::Invalid(format!(
            "at most {MAX_COMPONENTS_PER_UPDATE} components"
        )));
    }
    let known = components(services).await?;
    let mut names = Vec::new();
    for id in &new.components {
        if !known.iter().any(|c| &c.id == id && !c.group) {
            return Err(Error::Invalid("a named component does not exist".into()));
        }
        if !names.contains(id) {
            names.push(id.clone());
        }
    }
    let now = services.clock.now();
    let update = IncidentUpdate {
        id: services.random.hex_id(6),
        seq: 1,
        status: IncidentStatus::Scheduled,
        body: new.body,
        created_at: now,
        display_at: now,
        affected_components: Vec::new(),
        data_impact_tenants: Vec::new(),
    };
    let incident = Incident {
        id: new_incident_id(services, now),
        kind: Kind::Maintenance,
        name: new.name,
        status: IncidentStatus::Scheduled,
        impact: Impact::Maintenance,
        created_at: now,
        updated_at: now,
        started_at: new.scheduled_for,
        monitoring_at: None,
        resolved_at: None,
        scheduled_for: Some(new.scheduled_for),
        scheduled_until: Some(new.scheduled_until),
        components: names,
        data_impact_tenants: Vec::new(),
        updates: vec![update],
    };
    insert(services, ctx, key, &print, incident, Vec::new()).await
}

async fn insert(
    services: &Services,
    ctx: &AuditContext,
    key: &str,
    print: &str,
    incident: Incident,
    component_ops: Vec<WriteOp>,
) -> Result<Recorded, Error> {
    let now = incident.created_at;
    let mut ops = vec![
        idem_op(key, print, &incident.id, 1),
        WriteOp::Put {
            item: to_item(PARTITION, &incident_sk(&incident.id), &incident)?,
            condition: Condition::Absent,
        },
    ];
    if !incident.status.is_closed() {
        ops.push(WriteOp::Put {
            item: Item::new(PARTITION, open_sk(&incident.id)),
            condition: Condition::Absent,
        });
    }
    let components = component_ops.len();
    ops.extend(component_ops);
    ops.push(page_op(now)?);
    let (action, what) = match incident.kind {
        Kind::Incident => ("status.incident.create", "incident"),
        Kind::Maintenance => ("status.maintenance.create", "maintenance"),
    };
    let change = Change {
        action,
        target: format!("{what}:{}", incident.id),
        summary: json!({
            "status": incident.status.as_str(),
            "impact": incident.impact.as_str(),
            "components": components,
            "dataImpactTenants": incident.data_impact_tenants.len(),
        }),
        ops,
    };
    match commit(services, ctx, change).await {
        Ok(()) => Ok(Recorded {
            incident,
            seq: 1,
            replayed: false,
        }),
        Err(CommitError::Condition { index: 0, .. }) => replay(services, key, print)
            .await?
            .ok_or(Error::Conflict("retry the request")),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("a component changed; retry")),
        Err(e) => Err(e.into()),
    }
}

/// Adds an update to an incident or maintenance, moving its status (checked against the
/// lifecycle) and the components it names.
pub async fn post_update(
    services: &Services,
    ctx: &AuditContext,
    key: &str,
    incident_id: &str,
    new: NewUpdate,
) -> Result<Recorded, Error> {
    check_key(key)?;
    let print = fingerprint(&format!("incident.update\0{incident_id}"), &new);
    if let Some(done) = replay(services, key, &print).await? {
        return Ok(done);
    }
    check_text("body", &new.body, MAX_BODY_BYTES, true)?;
    let item = services
        .store
        .get(PARTITION, &incident_sk(incident_id))
        .await?
        .ok_or(Error::NotFound("incident"))?;
    let mut incident: Incident = from_item(&item)?;
    if incident.updates.len() >= MAX_UPDATES {
        return Err(Error::Invalid(format!(
            "an incident holds at most {MAX_UPDATES} updates; open a new one"
        )));
    }
    let status = new.status.unwrap_or(incident.status);
    if !transition_allowed(incident.status, status) {
        return Err(Error::Invalid(format!(
            "status cannot go from {} to {}",
            incident.status.as_str(),
            status.as_str()
        )));
    }
    if let Some(impact) = new.impact {
        if (impact == Impact::Maintenance) != (incident.kind == Kind::Maintenance) {
            return Err(Error::Invalid(
                "impact maintenance is for scheduled maintenances, and only it".into(),
            ));
        }
        incident.impact = impact;
    }
    let tenants = check_tenants(services, &new.data_impact_tenants).await?;
    if incident.kind == Kind::Maintenance && !tenants.is_empty() {
        return Err(Error::Invalid(
            "data-impact notices belong to incidents, not maintenances".into(),
        ));
    }
    let now = services.clock.now();
    let mut changes = new.components.clone();
    if incident.kind == Kind::Maintenance && changes.is_empty() && status != incident.status {
        // A maintenance moves its own components unless the update says otherwise: into
        // maintenance those that are operational, and back those still in maintenance (one
        // that an incident took down meanwhile keeps the incident's status).
        let (from, to) = match status {
            IncidentStatus::InProgress => (
                ComponentStatus::Operational,
                ComponentStatus::UnderMaintenance,
            ),
            _ => (
                ComponentStatus::UnderMaintenance,
                ComponentStatus::Operational,
            ),
        };
        if matches!(
            status,
            IncidentStatus::InProgress | IncidentStatus::Completed
        ) {
            for c in components(services).await? {
                if incident.components.contains(&c.id) && c.status == from {
                    changes.insert(c.id, to);
                }
            }
        }
    }
    let (affected, component_ops) = component_changes(services, &changes, now).await?;
    let was_open = !incident.status.is_closed();
    let seq = incident.updates.iter().map(|u| u.seq).max().unwrap_or(0) + 1;
    incident.updates.push(IncidentUpdate {
        id: services.random.hex_id(6),
        seq,
        status,
        body: new.body,
        created_at: now,
        display_at: now,
        affected_components: affected,
        data_impact_tenants: tenants.clone(),
    });
    for id in changes.keys() {
        if !incident.components.contains(id) {
            incident.components.push(id.clone());
        }
    }
    for t in tenants {
        if !incident.data_impact_tenants.contains(&t) {
            incident.data_impact_tenants.push(t);
        }
    }
    if status == IncidentStatus::Monitoring && incident.monitoring_at.is_none() {
        incident.monitoring_at = Some(now);
    }
    if status.is_closed() && incident.resolved_at.is_none() {
        incident.resolved_at = Some(now);
    }
    if incident.kind == Kind::Maintenance
        && status == IncidentStatus::InProgress
        && incident.status == IncidentStatus::Scheduled
    {
        incident.started_at = now;
    }
    let from = incident.status;
    incident.status = status;
    incident.updated_at = now;

    let mut ops = vec![
        idem_op(key, &print, &incident.id, seq),
        WriteOp::Put {
            item: to_item(PARTITION, &item.sk, &incident)?.with_version(item.version + 1),
            condition: Condition::Version(item.version),
        },
    ];
    if was_open && status.is_closed() {
        ops.push(WriteOp::Delete {
            pk: PARTITION.into(),
            sk: open_sk(&incident.id),
            condition: Condition::None,
        });
    }
    let components = component_ops.len();
    ops.extend(component_ops);
    ops.push(page_op(now)?);
    let what = match incident.kind {
        Kind::Incident => "incident",
        Kind::Maintenance => "maintenance",
    };
    let change = Change {
        action: match incident.kind {
            Kind::Incident => "status.incident.post_update",
            Kind::Maintenance => "status.maintenance.post_update",
        },
        target: format!("{what}:{}", incident.id),
        summary: json!({
            "seq": seq,
            "from": from.as_str(),
            "status": status.as_str(),
            "impact": incident.impact.as_str(),
            "components": components,
            "dataImpactTenants": incident.updates.last().map_or(0, |u| u.data_impact_tenants.len()),
        }),
        ops,
    };
    match commit(services, ctx, change).await {
        Ok(()) => Ok(Recorded {
            incident,
            seq,
            replayed: false,
        }),
        Err(CommitError::Condition { index: 0, .. }) => replay(services, key, &print)
            .await?
            .ok_or(Error::Conflict("retry the request")),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict(
            "the incident or a component changed; retry",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Corrects an incident's name or impact without posting an update.
pub async fn patch_incident(
    services: &Services,
    ctx: &AuditContext,
    incident_id: &str,
    patch: IncidentPatch,
) -> Result<Incident, Error> {
    let item = services
        .store
        .get(PARTITION, &incident_sk(incident_id))
        .await?
        .ok_or(Error::NotFound("incident"))?;
    let mut incident: Incident = from_item(&item)?;
    let mut fields = Vec::new();
    if let Some(name) = patch.name {
        check_name(&name)?;
        incident.name = name;
        fields.push("name");
    }
    if let Some(impact) = patch.impact {
        if (impact == Impact::Maintenance) != (incident.kind == Kind::Maintenance) {
            return Err(Error::Invalid(
                "impact maintenance is for scheduled maintenances, and only it".into(),
            ));
        }
        incident.impact = impact;
        fields.push("impact");
    }
    let now = services.clock.now();
    incident.updated_at = now;
    let change = Change {
        action: "status.incident.update",
        target: format!("incident:{incident_id}"),
        summary: json!({ "fields": fields, "impact": incident.impact.as_str() }),
        ops: vec![
            WriteOp::Put {
                item: to_item(PARTITION, &item.sk, &incident)?.with_version(item.version + 1),
                condition: Condition::Version(item.version),
            },
            page_op(now)?,
        ],
    };
    match commit(services, ctx, change).await {
        Ok(()) => Ok(incident),
        Err(CommitError::Condition { .. }) => Err(Error::Conflict("the incident changed; retry")),
        Err(e) => Err(e.into()),
    }
}
