//! The audit journal: the one way domain code commits a change.
//!
//! [`Journal::commit`] writes the caller's operations, the audit event that describes them and
//! the chain head in one store transaction, so a change is never without its event, nor an event
//! without its change. Events are hash-chained per tenant: each carries the SHA-256 of the one
//! before, and the head item (`T#{tid}#LOG` / `HEAD`) is updated under a version condition, so
//! two writers can never both append event n. A writer that loses that race reads the new head
//! and tries again. [`Journal::verify`] walks a chain and names the first broken link.
//!
//! Summaries must be free of personal data and secrets: identifiers, field names and counts,
//! never values. Tenants read their own log, and it outlives deleted users.
use crate::crypto::hex;
use crate::domain::Error;
use crate::domain::retry::{self, Backoff};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::clock::Clock;
use crate::ports::random::Random;
use crate::ports::store::{Condition, Item, Query, Store, StoreError, WriteOp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const HEAD_SK: &str = "HEAD";
const EVENT_PREFIX: &str = "E#";
/// Writers racing for a tenant's chain head: up to 100 tries, waits below 2, 2, 4, … 64 ms.
const JOURNAL_BACKOFF: Backoff = Backoff {
    attempts: 100,
    base_ms: 1,
    cap_ms: 64,
};

/// Who did it, and from where: taken from the request, attached to every event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditContext {
    /// `apikey:{id}`, `admin:{id}`, `operator:{id}` or `system:{job}`.
    pub actor: String,
    pub request_id: String,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub tenant_id: String,
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub request_id: String,
    pub source_ip: Option<String>,
    pub summary: Value,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditEvent {
    /// SHA-256 over the canonical JSON ([`crate::canonical`]) of every field but `hash`.
    pub fn compute_hash(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("hash");
        }
        hex(Sha256::digest(crate::canonical::bytes(&value)))
    }
}

pub fn log_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#LOG")
}

fn event_sk(seq: u64) -> String {
    format!("{EVENT_PREFIX}{seq:020}")
}

/// The first link of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokenLink {
    pub seq: u64,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainReport {
    pub events: u64,
    pub head_seq: u64,
    pub broken: Option<BrokenLink>,
}

#[derive(Clone)]
pub struct Journal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
}

impl Journal {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, random: Arc<dyn Random>) -> Self {
        Self {
            store,
            clock,
            random,
        }
    }

    /// Commits `change` and its audit event atomically. A condition of the caller's own
    /// operations that fails comes back as [`CommitError::Condition`] with its index, and
    /// nothing is written.
    pub async fn commit(
        &self,
        tenant_id: &str,
        ctx: &AuditContext,
        change: Change,
    ) -> Result<AuditEvent, CommitError> {
        let own = change.ops.len();
        if own + 2 > crate::ports::store::MAX_TRANSACTION_OPS {
            return Err(CommitError::Store(StoreError::InvalidItem(
                "too many operations for one audited change".into(),
            )));
        }
        let pk = log_pk(tenant_id);
        let (pk, change) = (pk.as_str(), &change);
        let committed = retry::contended(&JOURNAL_BACKOFF, &*self.random, |_| async move {
            let head = self.store.get(pk, HEAD_SK).await?;
            let (seq, prev_hash, head_condition) = match &head {
                Some(h) => (
                    h.u64("seq").unwrap_or(0),
                    h.str("hash").unwrap_or(GENESIS).to_owned(),
                    Condition::Version(h.version),
                ),
                None => (0, GENESIS.to_owned(), Condition::Absent),
            };
            let time = self
                .clock
                .now()
                .rfc3339()
                .map_err(|e| CommitError::Store(StoreError::InvalidItem(e.to_string())))?;
            let mut event = AuditEvent {
                tenant_id: tenant_id.to_owned(),
                seq: seq + 1,
                time,
                actor: ctx.actor.clone(),
                action: change.action.to_owned(),
                target: change.target.clone(),
                request_id: ctx.request_id.clone(),
                source_ip: ctx.source_ip.clone(),
                summary: change.summary.clone(),
                prev_hash,
                hash: String::new(),
            };
            event.hash = event.compute_hash();
            let attrs = match serde_json::to_value(&event) {
                Ok(Value::Object(map)) => map,
                _ => Map::new(),
            };
            let event_item = Item {
                attrs,
                ..Item::new(pk, event_sk(event.seq))
            };
            let head_item = Item::new(pk, HEAD_SK)
                .with_version(head.as_ref().map_or(1, |h| h.version + 1))
                .with("seq", event.seq)
                .with("hash", event.hash.clone());
            let mut ops = change.ops.clone();
            ops.push(WriteOp::Put {
                item: event_item,
                condition: Condition::Absent,
            });
            ops.push(WriteOp::Put {
                item: head_item,
                condition: head_condition,
            });
            match self.store.transact(ops).await {
                Ok(()) => Ok(Some(event)),
                Err(StoreError::TransactionConditionFailed { index, pk, sk }) if index < own => {
                    Err(CommitError::Condition { index, pk, sk })
                }
                // Another writer appended first (head or event condition), or DynamoDB saw two
                // transactions on one item: read the new head and go again.
                Err(StoreError::TransactionConditionFailed { .. }) | Err(StoreError::Conflict) => {
                    Ok(None)
                }
                Err(other) => Err(other.into()),
            }
        })
        .await?;
        committed.ok_or(CommitError::Contention)
    }

    /// One page of a tenant's events, oldest first (or newest first when `descending`).
    pub async fn events(
        &self,
        tenant_id: &str,
        limit: u32,
        cursor: Option<String>,
        descending: bool,
    ) -> Result<(Vec<AuditEvent>, Option<String>), StoreError> {
        let mut query = Query::partition(log_pk(tenant_id))
            .prefix(EVENT_PREFIX)
            .limit(limit)
            .after(cursor);
        query.descending = descending;
        let page = self.store.query(query).await?;
        let events = page
            .items
            .into_iter()
            .filter_map(|item| serde_json::from_value(Value::Object(item.attrs)).ok())
            .collect();
        Ok((events, page.cursor))
    }

    /// Walks the whole chain from the first event and reports the first link that does not hold:
    /// a missing or reordered event, an event that does not name its predecessor's hash, an event
    /// whose contents no longer match its hash, or a head that does not match the last event.
    pub async fn verify(&self, tenant_id: &str) -> Result<ChainReport, StoreError> {
        let pk = log_pk(tenant_id);
        let head = self.store.get(&pk, HEAD_SK).await?;
        let head_seq = head.as_ref().and_then(|h| h.u64("seq")).unwrap_or(0);
        let mut expected_seq = 1u64;
        let mut prev_hash = GENESIS.to_owned();
        let mut cursor = None;
        let broken = |seq, reason| {
            Ok(ChainReport {
                events: seq - 1,
                head_seq,
                broken: Some(BrokenLink { seq, reason }),
            })
        };
        loop {
            let page = self
                .store
                .query(
                    Query::partition(&pk)
                        .prefix(EVENT_PREFIX)
                        .limit(500)
                        .after(cursor),
                )
                .await?;
            for item in page.items {
                let event: AuditEvent = match serde_json::from_value(Value::Object(item.attrs)) {
                    Ok(e) => e,
                    Err(_) => return broken(expected_seq, "event is unreadable"),
                };
                if event.seq != expected_seq || item.sk != event_sk(expected_seq) {
                    return broken(expected_seq, "event is missing or out of order");
                }
                if event.prev_hash != prev_hash {
                    return broken(expected_seq, "event does not link to the one before it");
                }
                if event.compute_hash() != event.hash {
                    return broken(expected_seq, "event contents do not match its hash");
                }
                prev_hash = event.hash;
                expected_seq += 1;
            }
            cursor = page.cursor;
            if cursor.is_none() {
                break;
            }
        }
        let last = expected_seq - 1;
        let head_hash = head.as_ref().and_then(|h| h.str("hash")).unwrap_or(GENESIS);
        if head_seq != last || head_hash != prev_hash {
            return broken(expected_seq, "chain head does not match the last event");
        }
        Ok(ChainReport {
            events: last,
            head_seq,
            broken: None,
        })
    }
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
    /// The chain head stayed contended through every retry.
    #[error("audit chain contended")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CommitError> for Error {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Condition { .. } => Error::Conflict("the item changed; retry"),
            CommitError::Contention => Error::Unavailable("audit chain contended".into()),
            CommitError::Store(s) => s.into(),
        }
    }
}
