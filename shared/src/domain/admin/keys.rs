//! Management keys: `/v1/admin` for automation (`Authorization: Bearer lkm_…`). Each is scoped
//! to one tenant and a role (viewer or admin; never owner), expires (at most
//! [`MAX_KEY_DAYS`]), is shown once and stored as a keyed hash (the `credential` module).
//!
//! Items: `ADMIN#MKEY#{id}` / `MKEY` (looked up by the token's id), and the tenant's list entry
//! `T#{tenant}#MKEYS` / `K#{id}`, written and revoked in the same transaction.
use super::Role;
use super::credential::{self, MANAGEMENT_KEY};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::store::{Condition, Item, Query, WriteOp, query_all};
use serde::Serialize;
use serde_json::json;

pub const MAX_KEY_DAYS: i64 = 365;

/// A management key that authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagementKey {
    pub id: String,
    pub tenant_id: String,
    pub role: Role,
}

/// One management key as its tenant sees it: never the secret nor its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    pub key_id: String,
    pub prefix: String,
    pub role: Role,
    pub name: String,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    pub revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub state: &'static str,
}

fn key_pk(id: &str) -> String {
    format!("ADMIN#MKEY#{id}")
}

pub fn list_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#MKEYS")
}

fn expired(item: &Item, now: i64) -> bool {
    item.attrs
        .get("expiresEpoch")
        .and_then(|v| v.as_i64())
        .is_none_or(|at| at <= now)
}

/// Mints a key; returns its description and the token (shown once).
pub async fn create(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    role: Role,
    name: &str,
    days: i64,
) -> Result<(KeyInfo, String), Error> {
    if role == Role::Owner {
        return Err(Error::Invalid(
            "a management key's role is admin or viewer".into(),
        ));
    }
    crate::domain::tenants::refuse_console(services, tenant_id).await?;
    if !(1..=MAX_KEY_DAYS).contains(&days) {
        return Err(Error::Invalid(format!(
            "days must be from 1 to {MAX_KEY_DAYS}"
        )));
    }
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Invalid("name must be 1 to 100 characters".into()));
    }
    let minted = credential::mint(services, MANAGEMENT_KEY).await?;
    let now = services.clock.now();
    let expires = now + time::Duration::days(days);
    let attrs = |item: Item| -> Result<Item, Error> {
        Ok(item
            .with("tenantId", tenant_id)
            .with("role", role.as_str())
            .with("name", name.trim())
            .with("createdBy", ctx.actor.clone())
            .with("createdAt", now.rfc3339()?)
            .with("expiresAt", expires.rfc3339()?)
            .with("expiresEpoch", expires.unix_timestamp()))
    };
    let record = attrs(Item::new(key_pk(&minted.id), "MKEY"))?
        .with("hash", minted.hash.clone())
        .with("gen", minted.generation.clone());
    let entry = attrs(Item::new(list_pk(tenant_id), format!("K#{}", minted.id)))?;
    let info = info(&entry, now.unix_timestamp()).ok_or(Error::Internal("key record".into()))?;
    let change = Change {
        action: "management_key.create",
        target: format!("mkey:{}", minted.id),
        summary: json!({ "role": role, "days": days }),
        ops: vec![
            WriteOp::Put {
                item: record,
                condition: Condition::Absent,
            },
            WriteOp::Put {
                item: entry,
                condition: Condition::Absent,
            },
        ],
    };
    services.journal.commit(tenant_id, ctx, change).await?;
    Ok((info, minted.token))
}

fn info(entry: &Item, now: i64) -> Option<KeyInfo> {
    let key_id = entry.sk.strip_prefix("K#")?.to_owned();
    let revoked_at = entry.str("revokedAt").map(str::to_owned);
    let state = if revoked_at.is_some() {
        "revoked"
    } else if expired(entry, now) {
        "expired"
    } else {
        "active"
    };
    Some(KeyInfo {
        prefix: format!("{MANAGEMENT_KEY}{key_id}_"),
        role: Role::parse(entry.str("role")?).ok()?,
        name: entry.str("name").unwrap_or_default().to_owned(),
        created_by: entry.str("createdBy").unwrap_or_default().to_owned(),
        created_at: entry.str("createdAt").unwrap_or_default().to_owned(),
        expires_at: entry.str("expiresAt").unwrap_or_default().to_owned(),
        revoked_at,
        state,
        key_id,
    })
}

/// The tenant's management keys, newest first.
pub async fn list(services: &Services, tenant_id: &str) -> Result<Vec<KeyInfo>, Error> {
    let now = services.clock.now().unix_timestamp();
    let items = query_all(
        &*services.store,
        Query::partition(list_pk(tenant_id)).prefix("K#").limit(100),
    )
    .await?;
    let mut out: Vec<KeyInfo> = items.iter().filter_map(|i| info(i, now)).collect();
    out.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then(b.key_id.cmp(&a.key_id))
    });
    Ok(out)
}

/// Revokes a key of `tenant_id`; it stops working with the next request.
pub async fn revoke(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    key_id: &str,
) -> Result<(), Error> {
    let record = services.store.get(&key_pk(key_id), "MKEY").await?;
    let entry = services
        .store
        .get(&list_pk(tenant_id), &format!("K#{key_id}"))
        .await?;
    let (Some(record), Some(entry)) = (record, entry) else {
        return Err(Error::NotFound("management key"));
    };
    if record.str("tenantId") != Some(tenant_id) {
        return Err(Error::NotFound("management key"));
    }
    if record.str("revokedAt").is_some() {
        return Ok(());
    }
    let now = services.clock.now().rfc3339()?;
    let put = |item: Item| {
        let version = item.version;
        WriteOp::Put {
            item: item
                .with("revokedAt", now.clone())
                .with_version(version + 1),
            condition: Condition::Version(version),
        }
    };
    let change = Change {
        action: "management_key.revoke",
        target: format!("mkey:{key_id}"),
        summary: json!({}),
        ops: vec![put(record), put(entry)],
    };
    services.journal.commit(tenant_id, ctx, change).await?;
    Ok(())
}

/// Checks a management key: one read by its id, the keyed hash compared in constant time,
/// revocation and expiry. Every failure is the same `Unauthorized`.
pub async fn authenticate(services: &Services, token: &str) -> Result<ManagementKey, Error> {
    let id = credential::id_of(MANAGEMENT_KEY, token).ok_or(Error::Unauthorized)?;
    let item = services
        .store
        .get(&key_pk(id), "MKEY")
        .await?
        .ok_or(Error::Unauthorized)?;
    if item.str("revokedAt").is_some() || expired(&item, services.clock.now().unix_timestamp()) {
        return Err(Error::Unauthorized);
    }
    if !credential::matches(services, &item, token).await? {
        return Err(Error::Unauthorized);
    }
    Ok(ManagementKey {
        id: id.to_owned(),
        tenant_id: item.str("tenantId").ok_or(Error::Unauthorized)?.to_owned(),
        role: item
            .str("role")
            .and_then(|r| Role::parse(r).ok())
            .ok_or(Error::Unauthorized)?,
    })
}
