//! Urgent notices to the tenants whose customer data an incident affects (the security page:
//! "in the event that your data were to be impacted, you will be notified urgently").
//!
//! For each tenant an update names, one commit in that tenant's own journal records the
//! notice: a batch marker for (incident update, tenant) and one notice item per admin contact,
//! all created only if absent, with the `status.notice` audit event. So the tenant's audit log
//! says they were told, and a retried request cannot record the notice twice.
//!
//! Sending comes after that commit and is tracked per notice item:
//!
//! 1. The request that creates the items holds a claim on them (a random claim id and a lease
//!    of [`LEASE`]) and sends at once.
//! 2. After the provider accepts a message, `sentAt` is written with a `status.notice.sent`
//!    event in the tenant's journal. A notice without `sentAt` was not (known to be) sent: a
//!    crash between commit and send leaves exactly that, visible in the store.
//! 3. A retry (same idempotency key, so the same update) re-sends only notices without
//!    `sentAt`, and only after taking over an expired claim under a version condition, so two
//!    retries racing each other, or a retry racing the first request, do not both send.
//!
//! The one window left is a crash after the provider accepted a message and before `sentAt`
//! was written: a later retry sends that notice again. For an urgent notice a duplicate is
//! the better failure than silence, so the order is "record, send, mark sent" and never
//! "mark sent, send".
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::domain::Error;
use crate::domain::Services;
use crate::domain::audit::{AuditContext, Change, CommitError};
use crate::domain::keyring::{Search, Under};
use crate::domain::status::{Incident, IncidentUpdate};
use crate::domain::tenants::{AdminContact, admin_contacts, get_tenant};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::mailer::{Email, MailError};
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, Query, WriteOp};
use serde::Serialize;
use serde_json::json;
use time::Duration;

/// How long a request owns the notices it is sending before a retry may take them over.
pub const LEASE: Duration = Duration::minutes(2);
/// Admin contacts one tenant may have notified in one commit (the store's transaction holds
/// 100 operations; the journal takes 2 and the batch marker 1).
const MAX_CONTACTS: usize = 97;

/// What a notice is about; the status function writes the message from it.
pub struct NoticeFacts<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    pub incident: &'a Incident,
    pub update: &'a IncidentUpdate,
    /// The public status page.
    pub page_url: &'a str,
}

/// Writes the message for one contact. The domain decides who is told and when; how the
/// message reads (and its HTML, escaped) belongs to the caller.
pub trait NoticeComposer: Send + Sync {
    fn compose(&self, facts: &NoticeFacts<'_>, to: &AdminContact) -> Email;
}

/// Per tenant, what happened to its notices for one update.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NoticeReport {
    pub tenant_id: String,
    /// Notices recorded for this update (one per admin contact).
    pub contacts: usize,
    /// Sent by this request.
    pub sent: usize,
    /// Sent by an earlier request.
    pub already_sent: usize,
    /// Not sent yet: the mail service failed, or another request is sending them now.
    /// Retrying the request with the same idempotency key sends them.
    pub pending: usize,
    /// Will not be sent: the address was refused, or the contact was removed meanwhile.
    pub failed: usize,
}

fn notice_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#NOTICE")
}

fn batch_sk(incident_id: &str, seq: u32) -> String {
    format!("{incident_id}#{seq:06}")
}

/// How notices name a contact: a keyed hash of the address (never the address itself).
async fn contact_ref(services: &Services, tenant_id: &str, email: &str) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::BlindIndex).await?;
    Ok(contact_ref_under(&keys.current, tenant_id, email))
}

fn contact_ref_under(key: &[u8; 32], tenant_id: &str, email: &str) -> String {
    let data = format!("notice\0{tenant_id}\0{}", email.trim().to_lowercase());
    crate::crypto::hex(&crate::crypto::keys::mac(key, data.as_bytes())[..12])
}

/// The contact a recorded notice names by `r`: under the current root (how `contacts` were
/// named), else under an older one, for a notice recorded before a rotation of the root
/// secret and sent by a retry after it.
async fn contact_named<'c>(
    services: &Services,
    tenant_id: &str,
    contacts: &'c [(String, AdminContact)],
    r: &str,
) -> Result<Option<&'c AdminContact>, Error> {
    if let Some((_, c)) = contacts.iter().find(|(seen, _)| seen == r) {
        return Ok(Some(c));
    }
    let mut search = Search::new(services, Purpose::BlindIndex).await?;
    while let Some((key, under)) = search.next().await? {
        if under == Under::Current {
            continue;
        }
        if let Some((_, c)) = contacts
            .iter()
            .find(|(_, c)| contact_ref_under(&key, tenant_id, &c.email) == r)
        {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Records and sends the notices of update `seq` of `incident`, for every tenant the update
/// names. Safe to call again for the same update: what was recorded is not recorded again,
/// what was sent is not sent again.
pub async fn deliver(
    services: &Services,
    ctx: &AuditContext,
    incident: &Incident,
    seq: u32,
    page_url: &str,
    composer: &dyn NoticeComposer,
) -> Result<Vec<NoticeReport>, Error> {
    let Some(update) = incident.update(seq) else {
        return Ok(Vec::new());
    };
    let mut reports = Vec::new();
    for tenant_id in &update.data_impact_tenants {
        reports.push(
            deliver_to(
                services, ctx, incident, update, tenant_id, page_url, composer,
            )
            .await?,
        );
    }
    Ok(reports)
}

async fn deliver_to(
    services: &Services,
    ctx: &AuditContext,
    incident: &Incident,
    update: &IncidentUpdate,
    tenant_id: &str,
    page_url: &str,
    composer: &dyn NoticeComposer,
) -> Result<NoticeReport, Error> {
    let mut report = NoticeReport {
        tenant_id: tenant_id.to_owned(),
        ..NoticeReport::default()
    };
    let Some(tenant) = get_tenant(services, tenant_id).await? else {
        tracing::warn!(
            tenant_id,
            "data-impact notice for a tenant that no longer exists"
        );
        return Ok(report);
    };
    let mut contacts: Vec<(String, AdminContact)> = Vec::new();
    for c in admin_contacts(services, &tenant).await? {
        let r = contact_ref(services, tenant_id, &c.email).await?;
        if !contacts.iter().any(|(seen, _)| *seen == r) {
            contacts.push((r, c));
        }
    }
    let pk = notice_pk(tenant_id);
    let batch = batch_sk(&incident.id, update.seq);
    let claim = services.random.hex_id(8);
    let now = services.clock.now();
    let lease_until = (now + LEASE).unix_timestamp();

    if services.store.get(&pk, &batch).await?.is_none() {
        if contacts.len() > MAX_CONTACTS {
            return Err(Error::Invalid(format!(
                "a tenant with more than {MAX_CONTACTS} admin contacts cannot be notified in one step"
            )));
        }
        let created = now.rfc3339()?;
        let mut ops = vec![WriteOp::Put {
            item: Item::new(&pk, &batch)
                .with("incidentId", incident.id.clone())
                .with("seq", update.seq)
                .with("contacts", contacts.len())
                .with("createdAt", created.clone()),
            condition: Condition::Absent,
        }];
        for (r, _) in &contacts {
            ops.push(WriteOp::Put {
                item: Item::new(&pk, format!("{batch}#{r}"))
                    .with("contact", r.clone())
                    .with("claim", claim.clone())
                    .with("claimedUntil", lease_until)
                    .with("createdAt", created.clone()),
                condition: Condition::Absent,
            });
        }
        let change = Change {
            action: "status.notice",
            target: format!("incident:{}", incident.id),
            summary: json!({
                "updateSeq": update.seq,
                "status": update.status.as_str(),
                "impact": incident.impact.as_str(),
                "contacts": contacts.len(),
            }),
            ops,
        };
        match services.journal.commit(tenant_id, ctx, change).await {
            Ok(_) => {}
            // Another request recorded this notice first; it is theirs to send.
            Err(CommitError::Condition { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }

    let items = services
        .store
        .query(
            Query::partition(&pk)
                .prefix(format!("{batch}#"))
                .limit(MAX_CONTACTS as u32 + 1),
        )
        .await?
        .items;
    report.contacts = items.len();
    let facts = NoticeFacts {
        tenant_id,
        tenant_name: &tenant.settings.name,
        incident,
        update,
        page_url,
    };
    for mut item in items {
        if item.attrs.contains_key("sentAt") {
            report.already_sent += 1;
            continue;
        }
        if item.attrs.contains_key("failedAt") {
            report.failed += 1;
            continue;
        }
        if item.str("claim") != Some(claim.as_str()) {
            let expired = item
                .attrs
                .get("claimedUntil")
                .and_then(|v| v.as_i64())
                .is_none_or(|until| until <= now.unix_timestamp());
            if !expired {
                report.pending += 1;
                continue;
            }
            let version = item.version;
            let claimed = item
                .clone()
                .with("claim", claim.clone())
                .with("claimedUntil", lease_until)
                .with_version(version + 1);
            match services
                .store
                .put(claimed.clone(), Condition::Version(version))
                .await
            {
                Ok(()) => item = claimed,
                Err(crate::ports::store::StoreError::ConditionFailed { .. }) => {
                    report.pending += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let r = item.str("contact").unwrap_or_default().to_owned();
        let Some(contact) = contact_named(services, tenant_id, &contacts, &r).await? else {
            finish(
                services,
                ctx,
                tenant_id,
                incident,
                update,
                item,
                "failed",
                "contact removed",
            )
            .await?;
            report.failed += 1;
            continue;
        };
        let email = composer.compose(&facts, contact);
        match services.mailer.send(&email).await {
            Ok(_) => {
                finish(services, ctx, tenant_id, incident, update, item, "sent", "").await?;
                report.sent += 1;
            }
            Err(MailError::Rejected(why)) => {
                tracing::warn!(tenant_id, reason = %why, "data-impact notice refused by the mail service");
                finish(
                    services,
                    ctx,
                    tenant_id,
                    incident,
                    update,
                    item,
                    "failed",
                    "address refused",
                )
                .await?;
                report.failed += 1;
            }
            Err(MailError::Unavailable(why)) => {
                tracing::error!(tenant_id, reason = %why, "data-impact notice not sent; a retry will send it");
                // Release the claim so that a retry need not wait for the lease.
                let version = item.version;
                let released = item.with("claimedUntil", 0).with_version(version + 1);
                let _ = services
                    .store
                    .put(released, Condition::Version(version))
                    .await;
                report.pending += 1;
            }
        }
    }
    Ok(report)
}

/// Marks a notice sent or failed, with its event in the tenant's journal.
#[allow(clippy::too_many_arguments)]
async fn finish(
    services: &Services,
    ctx: &AuditContext,
    tenant_id: &str,
    incident: &Incident,
    update: &IncidentUpdate,
    item: Item,
    outcome: &'static str,
    reason: &'static str,
) -> Result<(), Error> {
    let now = services.clock.now().rfc3339()?;
    let version = item.version;
    let contact = item.str("contact").unwrap_or_default().to_owned();
    let field = if outcome == "sent" {
        "sentAt"
    } else {
        "failedAt"
    };
    let mut done = item.with(field, now).with_version(version + 1);
    done.attrs.remove("claim");
    done.attrs.remove("claimedUntil");
    let change = Change {
        action: if outcome == "sent" {
            "status.notice.sent"
        } else {
            "status.notice.failed"
        },
        target: format!("incident:{}", incident.id),
        summary: json!({ "updateSeq": update.seq, "contact": contact, "reason": reason }),
        ops: vec![WriteOp::Put {
            item: done,
            condition: Condition::Version(version),
        }],
    };
    match services.journal.commit(tenant_id, ctx, change).await {
        Ok(_) => Ok(()),
        // Our lease ran out and another request took the notice over: it will record it.
        Err(CommitError::Condition { .. }) => {
            tracing::warn!(tenant_id, "notice taken over after its lease expired");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
