//! Deleting a tenant by crypto-shredding, then purging its items.
//!
//! [`delete_tenant`] destroys the tenant's own key-encryption key *first*
//! (`KeyVault::destroy_tenant_kek`: KMS disables the key at once and deletes it after its
//! shortest waiting period, 7 days; locally the key file is overwritten and removed). From that
//! moment the tenant's wrapped data key opens nowhere, so every sealed field — in the table,
//! in a backup copy, in point-in-time recovery, in an export — is unreadable, whatever later
//! happens to the items. Then, in one audited transaction, the tenant record becomes a
//! tombstone (no settings, no wrapped key; the id is never reused) and a purge marker is
//! written; the receipt is the platform journal's `tenant.delete` event.
//!
//! [`purge`] (a job: the backup function hourly, `latchkey-local` every minute,
//! `latchkey-admin tenant purge`) deletes every item of a marked tenant — users,
//! authenticators, actions, keys, origins, grants, members, audit events and seals — in
//! audited batches, and then the marker (`tenant.purged`, with the count).
use crate::domain::audit::{AuditContext, Change, PLATFORM_JOURNAL};
use crate::domain::tenants::{self, tenant_pk};
use crate::domain::timestamps::Timestamp as _;
use crate::domain::{Error, Services};
use crate::ports::store::{Condition, Item, MAX_TRANSACTION_OPS, Query, WriteOp};
use serde::Serialize;
use serde_json::json;

/// Tenants whose items are still to be purged: sort key the tenant id.
pub const PURGE_PK: &str = "PLATFORM#PURGE";

/// What deleting a tenant did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Receipt {
    pub tenant_id: String,
    pub deleted_at: String,
    /// Whether the tenant had a key of its own, now destroyed (tenants made before tenants had
    /// their own keys have none: their sealed fields open under the platform key until the
    /// items are purged, and in backups until those expire).
    pub key_destroyed: bool,
    /// The id of the `tenant.delete` event in the platform journal.
    pub receipt_event: String,
}

/// Shreds and tombstones a tenant (see the module). The caller checked who may.
pub async fn delete_tenant(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
) -> Result<Receipt, Error> {
    let pk = tenant_pk(tenant_id);
    let item = services
        .store
        .get(&pk, "TENANT")
        .await?
        .filter(|i| !i.attrs.contains_key("deletedAt"))
        .ok_or(Error::NotFound("tenant"))?;
    let tenant = tenants::get_tenant(services, tenant_id)
        .await?
        .ok_or(Error::NotFound("tenant"))?;
    // Who asked, on the record before anything is destroyed: if the tombstone's write fails
    // after the key is gone, the log still says who shredded the tenant.
    let intent = Change {
        action: "tenant.delete.begin",
        target: format!("tenant:{tenant_id}"),
        summary: json!({}),
        ops: Vec::new(),
    };
    services
        .journal
        .commit(PLATFORM_JOURNAL, ctx, intent)
        .await?;
    // The key next: if anything after this fails, the data is unreadable already, and a
    // retry finds the key gone (as good) and writes the tombstone.
    let key_destroyed = services.envelope.shred(&tenant.data_key).await?;
    let now = services.clock.now().rfc3339()?;
    // The record may have changed meanwhile (a settings update racing the deletion): the
    // tombstone replaces whatever version is there.
    let item = services.store.get(&pk, "TENANT").await?.unwrap_or(item);
    let tombstone = Item::new(&pk, "TENANT")
        .with("deletedAt", now.clone())
        .with("state", "deleted")
        .with_version(item.version + 1);
    let marker = Item::new(PURGE_PK, tenant_id).with("since", now.clone());
    let change = Change {
        action: "tenant.delete",
        target: format!("tenant:{tenant_id}"),
        summary: json!({ "keyDestroyed": key_destroyed }),
        ops: vec![
            WriteOp::Put {
                item: tombstone,
                condition: Condition::Version(item.version),
            },
            WriteOp::Put {
                item: marker,
                condition: Condition::None,
            },
        ],
    };
    let event = services
        .journal
        .commit(PLATFORM_JOURNAL, ctx, change)
        .await?;
    services.records.forget(&pk, "TENANT");
    Ok(Receipt {
        tenant_id: tenant_id.to_owned(),
        deleted_at: now,
        key_destroyed,
        receipt_event: event.id,
    })
}

/// Whether `item` is one of the deleted tenant's (the tombstone stays).
fn belongs(item: &Item, tenant_id: &str) -> bool {
    let own_partition = item
        .pk
        .strip_prefix("T#")
        .and_then(|rest| rest.strip_prefix(tenant_id))
        .is_some_and(|rest| rest.starts_with('#'));
    own_partition
        // The origin index names the tenant as its sort key; the sealer's pending marker too.
        || item.sk == tenant_pk(tenant_id)
        || (item.pk == crate::domain::audit::seal::PENDING_PK && item.sk == tenant_id)
        // Secret keys, management keys and invites name their tenant.
        || item.str("tenantId") == Some(tenant_id)
}

/// What a purge run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PurgeReport {
    pub tenants: Vec<String>,
    pub items: u64,
}

/// How long after a deletion the purge marker stays, so that a run after every process's
/// record cache (30 s) and data-key cache (300 s) expired scans once more for items written
/// meanwhile.
pub const PURGE_AGAIN_AFTER_SECONDS: i64 = 600;

/// Deletes every item of each tenant awaiting its purge (see the module), one full scan per
/// tenant, in audited batches. A run that stops half-way is taken up by the next; the marker
/// goes only with a scan made [`PURGE_AGAIN_AFTER_SECONDS`] after the deletion.
pub async fn purge(services: &Services, ctx: &AuditContext) -> Result<PurgeReport, Error> {
    let mut report = PurgeReport::default();
    let markers = services
        .store
        .query(Query::partition(PURGE_PK).limit(100))
        .await?;
    for marker in markers.items {
        let tenant_id = marker.sk.clone();
        let mut deleted = 0u64;
        let mut cursor = None;
        loop {
            let page = services.store.scan(cursor, 500).await?;
            let doomed: Vec<WriteOp> = page
                .items
                .iter()
                .filter(|i| belongs(i, &tenant_id))
                .map(|i| WriteOp::Delete {
                    pk: i.pk.clone(),
                    sk: i.sk.clone(),
                    condition: Condition::None,
                })
                .collect();
            for batch in doomed.chunks(MAX_TRANSACTION_OPS - 1) {
                let change = Change {
                    action: "tenant.purge",
                    target: format!("tenant:{tenant_id}"),
                    summary: json!({ "items": batch.len() }),
                    ops: batch.to_vec(),
                };
                services
                    .journal
                    .commit(PLATFORM_JOURNAL, ctx, change)
                    .await?;
                deleted += batch.len() as u64;
            }
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        report.items += deleted;
        report.tenants.push(tenant_id.clone());
        let since = marker
            .str("since")
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map_or(0, |t| t.unix_timestamp());
        if services.clock.now().unix_timestamp() - since < PURGE_AGAIN_AFTER_SECONDS {
            continue;
        }
        let change = Change {
            action: "tenant.purged",
            target: format!("tenant:{tenant_id}"),
            summary: json!({ "items": deleted }),
            ops: vec![WriteOp::Delete {
                pk: PURGE_PK.to_owned(),
                sk: tenant_id.clone(),
                condition: Condition::Exists,
            }],
        };
        services
            .journal
            .commit(PLATFORM_JOURNAL, ctx, change)
            .await?;
    }
    Ok(report)
}
