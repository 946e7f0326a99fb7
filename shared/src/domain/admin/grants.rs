//! Support-access grants: a tenant's owner or admin lets Latchkey's operators in, for a scope
//! (read-only, or configuration), at most [`MAX_GRANT_HOURS`], for a stated reason; revocable
//! at any time. Without a live grant an operator reads and changes nothing of the tenant's
//! ([`super::authorize`]).
//!
//! Items: `T#{tenant}#GRANTS` / `G#{id}`, one small partition per tenant, read whole by each
//! operator request (a tenant has a handful of grants; expired ones leave by TTL a week after
//! they end, so the list stays short and the customer still sees recent ones).
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp, query_all};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

pub const MAX_GRANT_HOURS: i64 = 72;
/// How long an ended grant stays listed before its item expires.
const KEPT_AFTER_END: i64 = 7 * 24 * 3600;

/// What a grant lets an operator do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read settings, keys' metadata, users, the audit log.
    Read,
    /// Read, and change settings, origins, actions and rules.
    Configuration,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Configuration => "configuration",
        }
    }

    pub fn parse(s: &str) -> Result<Scope, Error> {
        match s {
            "read" => Ok(Scope::Read),
            "configuration" => Ok(Scope::Configuration),
            _ => Err(Error::Invalid("scope must be read or configuration".into())),
        }
    }
}

/// One grant as its tenant sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupportGrant {
    pub id: String,
    pub scope: Scope,
    pub reason: String,
    /// The actor who granted it (`admin:{account}`).
    pub created_by: String,
    pub created_at: String,
    pub expires_at: String,
    #[serde(skip)]
    pub expires_epoch: i64,
    pub revoked_at: Option<String>,
    /// `live`, `expired` or `revoked`.
    pub state: &'static str,
}

pub fn grants_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#GRANTS")
}

fn from_item(item: &Item, now: i64) -> Option<SupportGrant> {
    let id = item.sk.strip_prefix("G#")?.to_owned();
    let scope = Scope::parse(item.str("scope")?).ok()?;
    let expires_epoch = item.attrs.get("expiresEpoch")?.as_i64()?;
    let revoked_at = item.str("revokedAt").map(str::to_owned);
    let state = if revoked_at.is_some() {
        "revoked"
    } else if expires_epoch <= now {
        "expired"
    } else {
        "live"
    };
    Some(SupportGrant {
        id,
        scope,
        reason: item.str("reason").unwrap_or_default().to_owned(),
        created_by: item.str("createdBy").unwrap_or_default().to_owned(),
        created_at: item.str("createdAt").unwrap_or_default().to_owned(),
        expires_at: item.str("expiresAt").unwrap_or_default().to_owned(),
        expires_epoch,
        revoked_at,
        state,
    })
}

/// Every grant of the tenant still listed, newest first.
pub async fn list(services: &Services, tenant_id: &str) -> Result<Vec<SupportGrant>, Error> {
    let now = services.clock.now().unix_timestamp();
    let items = query_all(
        &*services.store,
        Query::partition(grants_pk(tenant_id))
            .prefix("G#")
            .limit(100),
    )
    .await?;
    let mut out: Vec<SupportGrant> = items.iter().filter_map(|i| from_item(i, now)).collect();
    out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
    Ok(out)
}

/// The tenant's live grants: neither revoked nor past their expiry, read afresh (never
/// cached), so a revocation or an expiry refuses the very next request.
pub async fn live(services: &Services, tenant_id: &str) -> Result<Vec<SupportGrant>, Error> {
    Ok(list(services, tenant_id)
        .await?
        .into_iter()
        .filter(|g| g.state == "live")
        .collect())
}

/// Grants support access; audited in the tenant's log with its scope and length (the reason
/// is the customer's own words, kept on the grant, not in the event).
pub async fn create(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    scope: Scope,
    hours: i64,
    reason: &str,
) -> Result<SupportGrant, Error> {
    if !(1..=MAX_GRANT_HOURS).contains(&hours) {
        return Err(Error::Invalid(format!(
            "hours must be from 1 to {MAX_GRANT_HOURS}"
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "reason must be 1 to 500 characters, without control characters".into(),
        ));
    }
    let now = services.clock.now();
    let expires = now + time::Duration::hours(hours);
    let id = services.random.hex_id(8);
    let item = Item::new(grants_pk(tenant_id), format!("G#{id}"))
        .with("scope", scope.as_str())
        .with("reason", reason)
        .with("createdBy", ctx.actor.clone())
        .with("createdAt", now.rfc3339()?)
        .with("expiresAt", expires.rfc3339()?)
        .with("expiresEpoch", expires.unix_timestamp())
        .with_ttl(expires.unix_timestamp() + KEPT_AFTER_END);
    let change = Change {
        action: "support.grant",
        target: format!("grant:{id}"),
        summary: json!({ "scope": scope, "hours": hours }),
        ops: vec![WriteOp::Put {
            item: item.clone(),
            condition: Condition::Absent,
        }],
    };
    services.journal.commit(tenant_id, ctx, change).await?;
    from_item(&item, now.unix_timestamp()).ok_or_else(|| Error::Internal("grant record".into()))
}

/// Revokes a grant; the next operator request under it is refused.
pub async fn revoke(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    grant_id: &str,
) -> Result<SupportGrant, Error> {
    let now: OffsetDateTime = services.clock.now();
    let item = services
        .store
        .get(&grants_pk(tenant_id), &format!("G#{grant_id}"))
        .await?
        .ok_or(Error::NotFound("grant"))?;
    if item.str("revokedAt").is_some() {
        return from_item(&item, now.unix_timestamp()).ok_or(Error::NotFound("grant"));
    }
    let version = item.version;
    let revoked = item
        .with("revokedAt", now.rfc3339()?)
        .with_version(version + 1);
    let change = Change {
        action: "support.revoke",
        target: format!("grant:{grant_id}"),
        summary: json!({}),
        ops: vec![WriteOp::Put {
            item: revoked.clone(),
            condition: Condition::Version(version),
        }],
    };
    services.journal.commit(tenant_id, ctx, change).await?;
    from_item(&revoked, now.unix_timestamp()).ok_or(Error::NotFound("grant"))
}
