//! Status-page components: created, and changed by an operator or by an incident's update.
use super::*;

/// Reads the named components, refuses unknown ones and groups, and returns what changes
/// (with the component writes, each under its version).
pub(super) async fn component_changes(
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
