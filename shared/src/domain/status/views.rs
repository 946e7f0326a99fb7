//! The public views, shaped like Atlassian Statuspage's public API v2 (`/api/v2/*.json`):
//! the same field names, nesting and enum values, so Statuspage widgets and clients read them
//! as they are. Every field is a struct field: the set is fixed at compile time.
//!
//! Timestamps are ISO 8601 with milliseconds and an offset (`2026-11-29T12:00:00.000+00:00`),
//! as Statuspage writes them; the page's time zone is UTC.
use super::{
    AffectedComponent, Component, ComponentStatus, Impact, Incident, IncidentStatus,
    IncidentUpdate, Indicator, Kind, Snapshot,
};
use crate::domain::timestamps::Timestamp as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What the page says about itself; the URL comes from the request's host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    pub id: String,
    pub name: String,
    /// The HTML page, e.g. `https://status.example.com/status`.
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PageView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub time_zone: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusView {
    pub indicator: Indicator,
    pub description: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentView {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub position: u32,
    pub description: Option<String>,
    pub showcase: bool,
    pub start_date: Option<String>,
    pub group_id: Option<String>,
    pub page_id: String,
    pub group: bool,
    pub only_show_if_degraded: bool,
    /// A group's component ids; absent on components that are not groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentUpdateView {
    pub id: String,
    pub status: IncidentStatus,
    pub body: String,
    pub incident_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub display_at: String,
    pub affected_components: Vec<AffectedComponent>,
    pub deliver_notifications: bool,
    pub custom_tweet: Option<String>,
    pub tweet_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: String,
    pub name: String,
    pub status: IncidentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub monitoring_at: Option<String>,
    pub resolved_at: Option<String>,
    pub impact: Impact,
    pub shortlink: String,
    pub started_at: String,
    pub page_id: String,
    /// Newest first.
    pub incident_updates: Vec<IncidentUpdateView>,
    pub components: Vec<ComponentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceView {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub scheduled_for: String,
    pub scheduled_until: String,
}

/// `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryDoc {
    pub page: PageView,
    pub components: Vec<ComponentView>,
    pub incidents: Vec<IncidentView>,
    pub scheduled_maintenances: Vec<MaintenanceView>,
    pub status: StatusView,
}

/// `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDoc {
    pub page: PageView,
    pub status: StatusView,
}

/// `components.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentsDoc {
    pub page: PageView,
    pub components: Vec<ComponentView>,
}

/// `incidents.json`, `incidents/unresolved.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentsDoc {
    pub page: PageView,
    pub incidents: Vec<IncidentView>,
}

/// `scheduled-maintenances.json`, `…/upcoming.json`, `…/active.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenancesDoc {
    pub page: PageView,
    pub scheduled_maintenances: Vec<MaintenanceView>,
}

/// Which incidents a document lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    All,
    Unresolved,
    Upcoming,
    Active,
}

/// ISO 8601 with milliseconds and a numeric offset, as Statuspage writes its timestamps.
pub fn iso(t: OffsetDateTime) -> String {
    t.iso_millis()
}

pub fn page(s: &Snapshot, info: &PageInfo) -> PageView {
    PageView {
        id: info.id.clone(),
        name: info.name.clone(),
        url: info.url.clone(),
        time_zone: "Etc/UTC".into(),
        updated_at: iso(s.updated_at.unwrap_or(s.now)),
    }
}

pub fn status(s: &Snapshot) -> StatusView {
    StatusView {
        indicator: s.indicator(),
        description: s.description().into(),
    }
}

pub fn component(s: &Snapshot, info: &PageInfo, c: &Component) -> ComponentView {
    ComponentView {
        id: c.id.clone(),
        name: c.name.clone(),
        status: s.effective_status(c),
        created_at: iso(c.created_at),
        updated_at: iso(c.updated_at),
        position: c.position,
        description: c.description.clone(),
        showcase: c.showcase,
        start_date: c.start_date.clone(),
        group_id: c.group_id.clone(),
        page_id: info.id.clone(),
        group: c.group,
        only_show_if_degraded: c.only_show_if_degraded,
        components: c
            .group
            .then(|| s.children(&c.id).map(|k| k.id.clone()).collect()),
    }
}

fn update(u: &IncidentUpdate, incident_id: &str) -> IncidentUpdateView {
    IncidentUpdateView {
        id: u.id.clone(),
        status: u.status,
        body: u.body.clone(),
        incident_id: incident_id.to_owned(),
        created_at: iso(u.created_at),
        updated_at: iso(u.created_at),
        display_at: iso(u.display_at),
        affected_components: u.affected_components.clone(),
        deliver_notifications: true,
        custom_tweet: None,
        tweet_id: None,
    }
}

pub fn incident(s: &Snapshot, info: &PageInfo, i: &Incident) -> IncidentView {
    IncidentView {
        id: i.id.clone(),
        name: i.name.clone(),
        status: i.status,
        created_at: iso(i.created_at),
        updated_at: iso(i.updated_at),
        monitoring_at: i.monitoring_at.map(iso),
        resolved_at: i.resolved_at.map(iso),
        impact: i.impact,
        shortlink: format!("{}#incident-{}", info.url, i.id),
        started_at: iso(i.started_at),
        page_id: info.id.clone(),
        incident_updates: i.updates.iter().rev().map(|u| update(u, &i.id)).collect(),
        components: i
            .components
            .iter()
            .filter_map(|id| s.component(id))
            .map(|c| component(s, info, c))
            .collect(),
    }
}

pub fn maintenance(s: &Snapshot, info: &PageInfo, m: &Incident) -> MaintenanceView {
    MaintenanceView {
        incident: incident(s, info, m),
        scheduled_for: iso(m.scheduled_for.unwrap_or(m.started_at)),
        scheduled_until: iso(m.scheduled_until.unwrap_or(m.started_at)),
    }
}

pub fn components(s: &Snapshot, info: &PageInfo) -> Vec<ComponentView> {
    s.components.iter().map(|c| component(s, info, c)).collect()
}

pub fn incidents(s: &Snapshot, info: &PageInfo, which: Which) -> Vec<IncidentView> {
    let list: Vec<&Incident> = match which {
        Which::Unresolved => s.unresolved_incidents().collect(),
        _ => s.recent_incidents().collect(),
    };
    list.into_iter().map(|i| incident(s, info, i)).collect()
}

pub fn maintenances(s: &Snapshot, info: &PageInfo, which: Which) -> Vec<MaintenanceView> {
    let list: Vec<&Incident> = match which {
        Which::Upcoming => s.upcoming_maintenances(),
        Which::Active => s.active_maintenances().collect(),
        Which::Unresolved => {
            let mut v: Vec<&Incident> = s.active_maintenances().collect();
            v.extend(s.upcoming_maintenances());
            v
        }
        Which::All => s.maintenances().collect(),
    };
    list.into_iter()
        .filter(|m| m.kind == Kind::Maintenance)
        .map(|m| maintenance(s, info, m))
        .collect()
}

pub fn summary(s: &Snapshot, info: &PageInfo) -> SummaryDoc {
    SummaryDoc {
        page: page(s, info),
        components: components(s, info),
        incidents: incidents(s, info, Which::Unresolved),
        scheduled_maintenances: maintenances(s, info, Which::Unresolved),
        status: status(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn timestamps_have_milliseconds_and_an_offset() {
        assert_eq!(
            iso(datetime!(2026-11-29 12:00:01.5 UTC)),
            "2026-11-29T12:00:01.500+00:00"
        );
    }
}
