//! The audit log: the one way domain code commits a change, and how the log is made
//! tamper-evident after the fact (`docs/architecture.md` §5).
//!
//! [`Journal::commit`] writes the caller's operations and the audit event that describes them in
//! one store transaction, so a change is never without its event, nor an event without its
//! change. Nothing else is read or written on the commit path: there is no per-tenant head, so
//! no two writers of one tenant ever touch the same item unless their own changes do.
//!
//! **Key layout.** An event's id is 16 random bytes (hex). Its item lives at
//! `pk = T#{tenant}#EV#{s}`, `sk = EV#{unix ms, 13 digits}#{id}`, where `s` is the id's first
//! hex digit: a tenant's events spread evenly over [`SHARDS`] partitions. DynamoDB takes about
//! 1,000 write units a second per partition, so one tenant's audited writes may reach about
//! 16,000 a second (events are well under 1 KiB) before its event partitions throttle, and the
//! table's adaptive capacity splits further by sort key beyond that.
//!
//! **Tamper evidence** comes after commit: the [`seal`] module's sealer takes each tenant's new
//! events from the store's change feed (the DynamoDB stream on AWS), chains them in a
//! deterministic order, and signs checkpoints over the chain; [`verify`] checks events against
//! the chain and the chain against its signatures.
//!
//! Summaries must be free of personal data and secrets: identifiers, field names and counts,
//! never values. Tenants read their own log, and it outlives deleted users.
pub mod list;
pub mod seal;
pub mod verify;

use crate::crypto::hex;
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::domain::Error;
use crate::domain::retry::{self, Backoff};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::clock::Clock;
use crate::ports::random::{Random, RandomExt as _};
use crate::ports::secrets::{Secrets, SecretsError};
use crate::ports::store::{Condition, Item, Query, Store, StoreError, WriteOp};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The journal of what is nobody's tenant: status-page writes, operators, the keyring.
pub const PLATFORM_JOURNAL: &str = "_platform";
/// Every event's sort key begins with this: the feed and the stream filter select on it.
pub const EVENT_SK_PREFIX: &str = "EV#";
/// How many partitions one tenant's events spread over.
pub const SHARDS: usize = 16;
const SHARD_DIGITS: &[u8; SHARDS] = b"0123456789abcdef";

/// Retrying a transaction that DynamoDB cancelled because another one touched the same items
/// at the same moment (the caller's own items; the event is always a new key).
const CONFLICT_BACKOFF: Backoff = Backoff {
    attempts: 8,
    base_ms: 2,
    cap_ms: 64,
};

/// Who did it, and from where: taken from the request, attached to every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// `apikey:{id}`, `admin:{id}`, `operator:{id}` or `system:{job}`.
    pub actor: String,
    pub request_id: String,
    /// The caller's address as the request arrived. Never stored: the event keeps
    /// [`AuditEvent::source_ref`], a keyed hash of it.
    pub source_ip: Option<String>,
}

impl AuditContext {
    pub fn system(job: &str, request_id: impl Into<String>) -> Self {
        Self {
            actor: format!("system:{job}"),
            request_id: request_id.into(),
            source_ip: None,
        }
    }
}

/// What happened, in the caller's words; the journal adds the rest.
#[derive(Debug, Clone)]
pub struct Change {
    /// A dotted verb, e.g. `tenant.create`, `user.update`.
    pub action: &'static str,
    /// The identifier of what changed, e.g. `user:{id}`. Never an email or a name.
    pub target: String,
    /// PII-free detail: field names, counts, states.
    pub summary: Value,
    pub ops: Vec<WriteOp>,
}

/// One event as stored: the item's attributes are exactly these fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub tenant_id: String,
    /// 32 hex digits, random.
    pub id: String,
    /// RFC 3339 with milliseconds; the sort key carries the same instant in epoch milliseconds.
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: String,
    /// `ip:` and a keyed hash (80 bits, hex) of the caller's address under this tenant, so a
    /// tenant can see that two events came from one address without the log holding the
    /// address: for Client API calls it is an end user's, and events outlive deleted users.
    /// Keyed with the blind-index key of the root secret's generation at commit time.
    pub source_ref: Option<String>,
    pub summary: Value,
}

impl AuditEvent {
    /// The event read back from its item, if the item is one.
    pub fn from_item(item: &Item) -> Option<Self> {
        serde_json::from_value(Value::Object(item.attrs.clone())).ok()
    }
}

/// SHA-256 (hex) over the canonical JSON ([`crate::canonical`]) of an event item's attributes,
/// exactly as stored: an attribute added, removed or changed gives another digest.
pub fn event_digest(attrs: &Map<String, Value>) -> String {
    hex(Sha256::digest(crate::canonical::bytes(&Value::Object(
        attrs.clone(),
    ))))
}

/// The partition of the event with this id.
pub fn event_pk(tenant_id: &str, id: &str) -> String {
    let shard = id.chars().next().unwrap_or('0');
    format!("T#{tenant_id}#EV#{shard}")
}

fn shard_pk(tenant_id: &str, shard: u8) -> String {
    format!("T#{tenant_id}#EV#{}", shard as char)
}

/// The sort key of an event committed at `unix_ms` with this id.
pub fn event_sk(unix_ms: i128, id: &str) -> String {
    format!("{EVENT_SK_PREFIX}{unix_ms:013}#{id}")
}

/// The tenant an event partition key names, if `pk` is one.
pub fn tenant_of_event_pk(pk: &str) -> Option<&str> {
    let rest = pk.strip_prefix("T#")?;
    let (tenant, shard) = rest.rsplit_once("#EV#")?;
    (shard.len() == 1 && SHARD_DIGITS.contains(&shard.as_bytes()[0])).then_some(tenant)
}

#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    secrets: Arc<dyn Secrets>,
}

impl Journal {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        secrets: Arc<dyn Secrets>,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            secrets,
        }
    }

    /// How an event names the address `ip` of a caller of `tenant_id` (see
    /// [`AuditEvent::source_ref`]).
    pub async fn source_ref(&self, tenant_id: &str, ip: &str) -> Result<String, SecretsError> {
        let keys = purpose_keys(self.secrets.as_ref(), Purpose::BlindIndex).await?;
        let mac = keys.mac(format!("source-ip\0{tenant_id}\0{ip}").as_bytes());
        Ok(format!("ip:{}", hex(&mac[..10])))
    }

    /// Commits `change` and its audit event atomically: one store transaction, no read. A
    /// condition of the caller's own operations that fails comes back as
    /// [`CommitError::Condition`] with its index, and nothing is written.
    pub async fn commit(
        &self,
        tenant_id: &str,
        ctx: &AuditContext,
        change: Change,
    ) -> Result<AuditEvent, CommitError> {
        let own = change.ops.len();
        if own + 1 > crate::ports::store::MAX_TRANSACTION_OPS {
            return Err(CommitError::Store(StoreError::InvalidItem(
                "too many operations for one audited change".into(),
            )));
        }
        let source_ref = match &ctx.source_ip {
            Some(ip) => Some(self.source_ref(tenant_id, ip).await?),
            None => None,
        };
        let (change, source_ref) = (&change, &source_ref);
        let committed = retry::contended(&CONFLICT_BACKOFF, &*self.random, |_| async move {
            let now = self.clock.now();
            let id = hex(self.random.bytes::<16>());
            let event = AuditEvent {
                tenant_id: tenant_id.to_owned(),
                id: id.clone(),
                time: now.iso_millis(),
                actor: ctx.actor.clone(),
                action: change.action.to_owned(),
                target: change.target.clone(),
                request_id: ctx.request_id.clone(),
                source_ref: source_ref.clone(),
                summary: change.summary.clone(),
            };
            let attrs = match serde_json::to_value(&event) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let item = Item {
                attrs,
                ..Item::new(
                    event_pk(tenant_id, &id),
                    event_sk(now.unix_timestamp_nanos() / 1_000_000, &id),
                )
            };
            let mut ops = change.ops.clone();
            ops.push(WriteOp::Put {
                item,
                condition: Condition::Absent,
            });
            match self.store.transact(ops).await {
                Ok(()) => Ok(Some(event)),
                Err(StoreError::TransactionConditionFailed { index, pk, sk }) if index < own => {
                    Err(CommitError::Condition { index, pk, sk })
                }
                // Two transactions on one item at once (DynamoDB), or, beyond belief, a
                // repeated random id: go again with a new id.
                Err(StoreError::TransactionConditionFailed { .. }) | Err(StoreError::Conflict) => {
                    Ok(None)
                }
                Err(other) => Err(other.into()),
            }
        })
        .await?;
        committed.ok_or(CommitError::Contention)
    }

    /// One page of a tenant's events, oldest first (or newest first when `descending`), in
    /// sort-key order (commit time, then id), merged from the tenant's event partitions.
    pub async fn events(
        &self,
        tenant_id: &str,
        limit: u32,
        cursor: Option<String>,
        descending: bool,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError> {
        let (items, cursor) =
            event_items(&*self.store, tenant_id, limit, cursor, descending).await?;
        let events = items.iter().filter_map(AuditEvent::from_item).collect();
        Ok((events, cursor))
    }
}

/// One page of a tenant's event items across its partitions: each partition is read up to
/// `limit + 1` after the cursor's sort key, and the merge keeps the first `limit`.
pub async fn event_items(
    store: &dyn Store,
    tenant_id: &str,
    limit: u32,
    cursor: Option<String>,
    descending: bool,
) -> Result<(Vec<Item>, Option<String>), StoreError> {
    let after = match &cursor {
        None => None,
        Some(c) => Some(
            URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .filter(|sk| sk.starts_with(EVENT_SK_PREFIX))
                .ok_or(StoreError::InvalidCursor)?,
        ),
    };
    let queries: Vec<Query> = SHARD_DIGITS
        .iter()
        .map(|&shard| {
            let mut q = Query::partition(shard_pk(tenant_id, shard))
                .prefix(EVENT_SK_PREFIX)
                .limit(limit);
            q.descending = descending;
            let resume = after.as_ref().map(|sk| q.cursor_after(sk));
            q.after(resume)
        })
        .collect();
    let pages =
        futures_util::future::try_join_all(queries.into_iter().map(|q| store.query(q))).await?;
    let mut items: Vec<Item> = pages.into_iter().flat_map(|p| p.items).collect();
    items.sort_by(|a, b| a.sk.cmp(&b.sk));
    if descending {
        items.reverse();
    }
    let limit = limit as usize;
    let cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|i| URL_SAFE_NO_PAD.encode(i.sk.as_bytes()))
    } else {
        None
    };
    Ok((items, cursor))
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The condition on the caller's operation `index` did not hold; nothing was written.
    #[error("condition {index} failed")]
    Condition {
        index: usize,
        pk: String,
        sk: String,
    },
    /// The caller's items stayed contended through every retry.
    #[error("audited change contended")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Condition { .. } => Error::Conflict("the item changed; retry"),
            CommitError::Contention => Error::Unavailable("audited change contended".into()),
            CommitError::Store(s) => s.into(),
            CommitError::Secrets(s) => s.into(),
        }
    }
}
