//! Incidents and scheduled maintenances: created with their first update, later updates
//! posted, and their fields patched, each write one commit in the platform journal.
use super::components::component_changes;
use super::idempotency::*;
use super::*;

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
