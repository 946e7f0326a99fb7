//! The public status page (`docs/architecture.md` §4: "public status page, incident timeline" and "urgent
//! notice when customer data is impacted"): components, incidents and scheduled maintenances,
//! the overall indicator derived from them, and their Statuspage-v2-shaped views.
//!
//! The page is platform-wide, not a tenant's: every write commits with its audit event in the
//! platform journal ([`PLATFORM_JOURNAL`]). Notices to the tenants whose data an incident
//! touches are recorded in each tenant's own journal ([`notices`]).
//!
//! Items, all in partition [`PARTITION`]:
//!
//! | sk | what |
//! |---|---|
//! | `PAGE` | `updatedAt` of the last write (the page's `updated_at`) |
//! | `COMP#{id}` | a component or a component group |
//! | `INC#{id}` | an incident or a scheduled maintenance, with its updates embedded |
//! | `OPEN#{id}` | marker: this incident or maintenance is not resolved/completed yet |
//! | `IDEM#{sha256(idempotency key)}` | which incident and update a write request made |
//!
//! Incident ids start with the creation time (8 hex digits of Unix seconds) so that a
//! descending query of `INC#` reads newest first; `OPEN#` markers keep old unresolved ones in
//! view without scanning history. Updates are embedded in their incident (at most
//! [`MAX_UPDATES`], bodies at most [`MAX_BODY_BYTES`]): the whole timeline is one read, and
//! the incident's version condition orders concurrent updates.
pub mod disclosure;
pub mod notices;
pub mod operators;
pub mod views;
mod write;

pub use write::{
    ComponentPatch, IncidentPatch, NewComponent, NewIncident, NewMaintenance, NewUpdate, Recorded,
    create_component, create_incident, patch_incident, post_update, schedule_maintenance,
    update_component,
};

use crate::domain::Error;
use crate::domain::Services;
use crate::ports::store::{Item, Query};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

/// The status page's partition.
pub const PARTITION: &str = "STATUS";
/// The journal that records status-page writes (the page is nobody's tenant).
pub use crate::domain::audit::PLATFORM_JOURNAL;
/// Updates one incident may hold (the item stays well under DynamoDB's 400 KB).
pub const MAX_UPDATES: usize = 100;
/// Largest update body, in bytes.
pub const MAX_BODY_BYTES: usize = 2000;
/// How far back the page's history reaches.
pub const HISTORY_DAYS: i64 = 90;
/// How many incidents `incidents.json` lists, as Statuspage does.
pub const RECENT_INCIDENTS: usize = 50;

pub(crate) const PAGE_SK: &str = "PAGE";
pub(crate) const COMPONENT_PREFIX: &str = "COMP#";
pub(crate) const INCIDENT_PREFIX: &str = "INC#";
pub(crate) const OPEN_PREFIX: &str = "OPEN#";

/// A component's state, Statuspage's enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl ComponentStatus {
    /// Severity for "worst of": maintenance is planned, so it ranks below any degradation.
    pub fn severity(self) -> u8 {
        match self {
            ComponentStatus::Operational => 0,
            ComponentStatus::UnderMaintenance => 1,
            ComponentStatus::DegradedPerformance => 2,
            ComponentStatus::PartialOutage => 3,
            ComponentStatus::MajorOutage => 4,
        }
    }

    /// What a component in this state contributes to the page's indicator.
    pub fn indicator(self) -> Indicator {
        match self {
            ComponentStatus::Operational | ComponentStatus::UnderMaintenance => Indicator::None,
            ComponentStatus::DegradedPerformance => Indicator::Minor,
            ComponentStatus::PartialOutage => Indicator::Major,
            ComponentStatus::MajorOutage => Indicator::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }

    /// How the page says it.
    pub fn label(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "Operational",
            ComponentStatus::UnderMaintenance => "Under maintenance",
            ComponentStatus::DegradedPerformance => "Degraded performance",
            ComponentStatus::PartialOutage => "Partial outage",
            ComponentStatus::MajorOutage => "Major outage",
        }
    }
}

/// An incident's impact, Statuspage's enum (`maintenance` only for scheduled maintenances).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
    Maintenance,
}

impl Impact {
    pub fn indicator(self) -> Indicator {
        match self {
            Impact::None | Impact::Maintenance => Indicator::None,
            Impact::Minor => Indicator::Minor,
            Impact::Major => Indicator::Major,
            Impact::Critical => Indicator::Critical,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Impact::None => "none",
            Impact::Minor => "minor",
            Impact::Major => "major",
            Impact::Critical => "critical",
            Impact::Maintenance => "maintenance",
        }
    }
}

/// The page's overall indicator, Statuspage's enum, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    None,
    Minor,
    Major,
    Critical,
}

impl Indicator {
    pub fn as_str(self) -> &'static str {
        match self {
            Indicator::None => "none",
            Indicator::Minor => "minor",
            Indicator::Major => "major",
            Indicator::Critical => "critical",
        }
    }
}

/// Incident and maintenance states, Statuspage's enum (one field serves both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Postmortem,
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Identified => "identified",
            IncidentStatus::Monitoring => "monitoring",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::Postmortem => "postmortem",
            IncidentStatus::Scheduled => "scheduled",
            IncidentStatus::InProgress => "in_progress",
            IncidentStatus::Verifying => "verifying",
            IncidentStatus::Completed => "completed",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            IncidentStatus::Investigating => "Investigating",
            IncidentStatus::Identified => "Identified",
            IncidentStatus::Monitoring => "Monitoring",
            IncidentStatus::Resolved => "Resolved",
            IncidentStatus::Postmortem => "Postmortem",
            IncidentStatus::Scheduled => "Scheduled",
            IncidentStatus::InProgress => "In progress",
            IncidentStatus::Verifying => "Verifying",
            IncidentStatus::Completed => "Completed",
        }
    }

    /// Resolved, postmortem or completed: no longer on the page's "now".
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            IncidentStatus::Resolved | IncidentStatus::Postmortem | IncidentStatus::Completed
        )
    }

    fn kind(self) -> Kind {
        match self {
            IncidentStatus::Scheduled
            | IncidentStatus::InProgress
            | IncidentStatus::Verifying
            | IncidentStatus::Completed => Kind::Maintenance,
            _ => Kind::Incident,
        }
    }
}

/// Whether an incident may move from `from` to `to`. Open incidents move freely among
/// investigating, identified and monitoring (a fix that does not hold goes back to
/// investigating) and may resolve; a resolved incident may only get its postmortem, which may
/// be amended. A maintenance goes scheduled → in progress → verifying → completed (verifying
/// may fall back to in progress; a scheduled one may be completed outright, i.e. called off).
/// Posting a note without changing the status is always allowed while the item is open.
pub fn transition_allowed(from: IncidentStatus, to: IncidentStatus) -> bool {
    use IncidentStatus::*;
    matches!(
        (from, to),
        (
            Investigating | Identified | Monitoring,
            Investigating | Identified | Monitoring | Resolved
        ) | (Resolved | Postmortem, Postmortem)
            | (Scheduled, Scheduled | InProgress | Completed)
            | (InProgress, InProgress | Verifying | Completed)
            | (Verifying, Verifying | InProgress | Completed)
    )
}

/// An incident or a scheduled maintenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Incident,
    Maintenance,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// The group this component belongs to.
    pub group_id: Option<String>,
    /// A group shows the worst status of its components; its own status is not used.
    pub group: bool,
    pub position: u32,
    pub status: ComponentStatus,
    pub showcase: bool,
    pub only_show_if_degraded: bool,
    /// `YYYY-MM-DD`, when the component started being tracked.
    pub start_date: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One component an update changed, as Statuspage names the fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AffectedComponent {
    pub code: String,
    pub name: String,
    pub old_status: ComponentStatus,
    pub new_status: ComponentStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IncidentUpdate {
    pub id: String,
    /// 1 for the update that opened the incident, then 2, 3, ...
    pub seq: u32,
    pub status: IncidentStatus,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub display_at: OffsetDateTime,
    pub affected_components: Vec<AffectedComponent>,
    /// Tenants whose admin contacts get an urgent notice for this update.
    pub data_impact_tenants: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    pub id: String,
    pub kind: Kind,
    pub name: String,
    pub status: IncidentStatus,
    pub impact: Impact,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub monitoring_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub resolved_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub scheduled_for: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub scheduled_until: Option<OffsetDateTime>,
    /// Components this incident concerns, in the order they were first named.
    pub components: Vec<String>,
    /// Every tenant ever named as affected (each update names whom it notifies).
    pub data_impact_tenants: Vec<String>,
    /// Oldest first.
    pub updates: Vec<IncidentUpdate>,
}

impl Incident {
    pub fn update(&self, seq: u32) -> Option<&IncidentUpdate> {
        self.updates.iter().find(|u| u.seq == seq)
    }

    /// The span the incident covered, for the history: start until resolution (or now).
    pub fn span(&self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        (
            self.started_at,
            self.resolved_at.unwrap_or(now).max(self.started_at),
        )
    }
}

/// Everything the public views are built from, read at one moment.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub now: OffsetDateTime,
    pub updated_at: Option<OffsetDateTime>,
    /// By position, then name.
    pub components: Vec<Component>,
    /// Newest first: every open one, plus closed ones from the last [`HISTORY_DAYS`] (and at
    /// least the [`RECENT_INCIDENTS`] newest).
    pub incidents: Vec<Incident>,
}

impl Snapshot {
    /// A group's status is the worst of its components'; others show their own.
    pub fn effective_status(&self, component: &Component) -> ComponentStatus {
        if !component.group {
            return component.status;
        }
        self.children(&component.id)
            .map(|c| c.status)
            .max_by_key(|s| s.severity())
            .unwrap_or(ComponentStatus::Operational)
    }

    pub fn children<'a>(&'a self, group_id: &'a str) -> impl Iterator<Item = &'a Component> {
        self.components
            .iter()
            .filter(move |c| c.group_id.as_deref() == Some(group_id))
    }

    pub fn component(&self, id: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.id == id)
    }

    pub fn unresolved_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.of_kind(Kind::Incident)
            .filter(|i| !i.status.is_closed())
    }

    pub fn recent_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.of_kind(Kind::Incident).take(RECENT_INCIDENTS)
    }

    pub fn maintenances(&self) -> impl Iterator<Item = &Incident> {
        self.of_kind(Kind::Maintenance).take(RECENT_INCIDENTS)
    }

    /// Scheduled and not started, soonest first.
    pub fn upcoming_maintenances(&self) -> Vec<&Incident> {
        let mut v: Vec<&Incident> = self
            .of_kind(Kind::Maintenance)
            .filter(|m| m.status == IncidentStatus::Scheduled)
            .collect();
        v.sort_by_key(|m| m.scheduled_for);
        v
    }

    /// In progress or being verified.
    pub fn active_maintenances(&self) -> impl Iterator<Item = &Incident> {
        self.of_kind(Kind::Maintenance).filter(|m| {
            matches!(
                m.status,
                IncidentStatus::InProgress | IncidentStatus::Verifying
            )
        })
    }

    fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Incident> {
        self.incidents.iter().filter(move |i| i.kind == kind)
    }

    /// The page's indicator: the worst of the open incidents' impacts and the components'
    /// states (degraded → minor, partial outage → major, major outage → critical).
    pub fn indicator(&self) -> Indicator {
        let incidents = self.unresolved_incidents().map(|i| i.impact.indicator());
        let components = self
            .components
            .iter()
            .filter(|c| !c.group)
            .map(|c| c.status.indicator());
        incidents.chain(components).max().unwrap_or(Indicator::None)
    }

    /// Statuspage's wording for the indicator.
    pub fn description(&self) -> &'static str {
        match self.indicator() {
            Indicator::None => {
                let maintenance = self.active_maintenances().next().is_some()
                    || self
                        .components
                        .iter()
                        .any(|c| c.status == ComponentStatus::UnderMaintenance);
                if maintenance {
                    "Service Under Maintenance"
                } else {
                    "All Systems Operational"
                }
            }
            Indicator::Minor => "Minor Service Outage",
            Indicator::Major => "Partial System Outage",
            Indicator::Critical => "Major System Outage",
        }
    }
}

pub(crate) fn component_sk(id: &str) -> String {
    format!("{COMPONENT_PREFIX}{id}")
}

pub(crate) fn incident_sk(id: &str) -> String {
    format!("{INCIDENT_PREFIX}{id}")
}

pub(crate) fn open_sk(id: &str) -> String {
    format!("{OPEN_PREFIX}{id}")
}

/// Serialises a record into an item's attributes.
pub(crate) fn to_item<T: Serialize>(pk: &str, sk: &str, record: &T) -> Result<Item, Error> {
    let attrs = match serde_json::to_value(record) {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(e) => return Err(Error::Internal(format!("status record: {e}"))),
    };
    Ok(Item {
        attrs,
        ..Item::new(pk, sk)
    })
}

pub(crate) fn from_item<T: for<'de> Deserialize<'de>>(item: &Item) -> Result<T, Error> {
    serde_json::from_value(Value::Object(item.attrs.clone()))
        .map_err(|e| Error::Internal(format!("status record {}: {e}", item.sk)))
}

async fn query_all(services: &Services, prefix: &str) -> Result<Vec<Item>, Error> {
    let mut items = Vec::new();
    let mut cursor = None;
    loop {
        let page = services
            .store
            .query(
                Query::partition(PARTITION)
                    .prefix(prefix)
                    .limit(500)
                    .after(cursor),
            )
            .await?;
        items.extend(page.items);
        cursor = page.cursor;
        if cursor.is_none() {
            return Ok(items);
        }
    }
}

pub async fn components(services: &Services) -> Result<Vec<Component>, Error> {
    let mut components: Vec<Component> = query_all(services, COMPONENT_PREFIX)
        .await?
        .iter()
        .map(from_item)
        .collect::<Result<_, _>>()?;
    components.sort_by(|a, b| a.position.cmp(&b.position).then(a.name.cmp(&b.name)));
    Ok(components)
}

pub async fn get_incident(services: &Services, id: &str) -> Result<Option<Incident>, Error> {
    match services.store.get(PARTITION, &incident_sk(id)).await? {
        Some(item) => Ok(Some(from_item(&item)?)),
        None => Ok(None),
    }
}

/// Reads what the public views show: every component, every open incident and maintenance,
/// and the history (at least [`RECENT_INCIDENTS`], back to [`HISTORY_DAYS`] days).
pub async fn snapshot(services: &Services) -> Result<Snapshot, Error> {
    let now = services.clock.now();
    let horizon = now - Duration::days(HISTORY_DAYS);
    let updated_at = services
        .store
        .get(PARTITION, PAGE_SK)
        .await?
        .and_then(|p| p.str("updatedAt").map(str::to_owned))
        .and_then(|t| {
            OffsetDateTime::parse(&t, &time::format_description::well_known::Rfc3339).ok()
        });
    let components = components(services).await?;

    let mut incidents: Vec<Incident> = Vec::new();
    let mut cursor = None;
    'scan: loop {
        let page = services
            .store
            .query(
                Query::partition(PARTITION)
                    .prefix(INCIDENT_PREFIX)
                    .limit(100)
                    .after(cursor)
                    .descending(),
            )
            .await?;
        for item in &page.items {
            let incident: Incident = from_item(item)?;
            let old = incident.span(now).1 < horizon;
            if old && incidents.len() >= RECENT_INCIDENTS {
                break 'scan;
            }
            incidents.push(incident);
        }
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    for marker in query_all(services, OPEN_PREFIX).await? {
        let id = marker.sk.trim_start_matches(OPEN_PREFIX);
        if incidents.iter().any(|i| i.id == id) {
            continue;
        }
        if let Some(incident) = get_incident(services, id).await? {
            incidents.push(incident);
        }
    }
    incidents.sort_by(|a, b| b.id.cmp(&a.id));
    Ok(Snapshot {
        now,
        updated_at,
        components,
        incidents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn component(id: &str, status: ComponentStatus) -> Component {
        Component {
            id: id.into(),
            name: id.into(),
            description: None,
            group_id: None,
            group: false,
            position: 0,
            status,
            showcase: true,
            only_show_if_degraded: false,
            start_date: None,
            created_at: datetime!(2026-11-01 0:00 UTC),
            updated_at: datetime!(2026-11-01 0:00 UTC),
        }
    }

    fn incident(kind: Kind, status: IncidentStatus, impact: Impact) -> Incident {
        Incident {
            id: "692a0000abcd".into(),
            kind,
            name: "x".into(),
            status,
            impact,
            created_at: datetime!(2026-11-01 0:00 UTC),
            updated_at: datetime!(2026-11-01 0:00 UTC),
            started_at: datetime!(2026-11-01 0:00 UTC),
            monitoring_at: None,
            resolved_at: None,
            scheduled_for: None,
            scheduled_until: None,
            components: vec![],
            data_impact_tenants: vec![],
            updates: vec![],
        }
    }

    fn snap(components: Vec<Component>, incidents: Vec<Incident>) -> Snapshot {
        Snapshot {
            now: datetime!(2026-11-29 12:00 UTC),
            updated_at: None,
            components,
            incidents,
        }
    }

    #[test]
    fn resolved_incident_cannot_reopen_and_kinds_do_not_mix() {
        use IncidentStatus::*;
        assert!(transition_allowed(Investigating, Identified));
        assert!(transition_allowed(Monitoring, Investigating));
        assert!(transition_allowed(Monitoring, Resolved));
        assert!(transition_allowed(Resolved, Postmortem));
        assert!(!transition_allowed(Resolved, Investigating));
        assert!(!transition_allowed(Postmortem, Resolved));
        assert!(!transition_allowed(Investigating, InProgress));
        assert!(!transition_allowed(Scheduled, Investigating));
        assert!(transition_allowed(Scheduled, InProgress));
        assert!(transition_allowed(Verifying, InProgress));
        assert!(!transition_allowed(Completed, InProgress));
        assert!(!transition_allowed(InProgress, Scheduled));
        assert_eq!(Investigating.kind(), Kind::Incident);
        assert_eq!(Verifying.kind(), Kind::Maintenance);
    }

    #[test]
    fn indicator_is_the_worst_of_open_incidents_and_components() {
        let ok = snap(vec![component("api", ComponentStatus::Operational)], vec![]);
        assert_eq!(ok.indicator(), Indicator::None);
        assert_eq!(ok.description(), "All Systems Operational");

        let degraded = snap(
            vec![component("api", ComponentStatus::DegradedPerformance)],
            vec![],
        );
        assert_eq!(degraded.indicator(), Indicator::Minor);
        assert_eq!(degraded.description(), "Minor Service Outage");

        let open = snap(
            vec![component("api", ComponentStatus::PartialOutage)],
            vec![incident(
                Kind::Incident,
                IncidentStatus::Identified,
                Impact::Critical,
            )],
        );
        assert_eq!(open.indicator(), Indicator::Critical);
        assert_eq!(open.description(), "Major System Outage");

        let closed = snap(
            vec![component("api", ComponentStatus::Operational)],
            vec![incident(
                Kind::Incident,
                IncidentStatus::Resolved,
                Impact::Critical,
            )],
        );
        assert_eq!(closed.indicator(), Indicator::None);

        let maintenance = snap(
            vec![component("api", ComponentStatus::UnderMaintenance)],
            vec![incident(
                Kind::Maintenance,
                IncidentStatus::InProgress,
                Impact::Maintenance,
            )],
        );
        assert_eq!(maintenance.indicator(), Indicator::None);
        assert_eq!(maintenance.description(), "Service Under Maintenance");
    }

    #[test]
    fn a_group_shows_its_worst_component() {
        let mut group = component("core", ComponentStatus::Operational);
        group.group = true;
        let mut a = component("a", ComponentStatus::DegradedPerformance);
        a.group_id = Some("core".into());
        let mut b = component("b", ComponentStatus::UnderMaintenance);
        b.group_id = Some("core".into());
        let s = snap(vec![group.clone(), a, b], vec![]);
        assert_eq!(
            s.effective_status(&group),
            ComponentStatus::DegradedPerformance
        );
        assert_eq!(s.indicator(), Indicator::Minor);
    }
}
