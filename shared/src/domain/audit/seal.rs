//! Sealing: after commit, each tenant's new events are chained and, at intervals, signed.
//!
//! The sealer is fed event items by the store's change feed (the table's DynamoDB stream on
//! AWS, the embedded store's feed table locally: one implementation here, one feed adapter per
//! store). It works from what the feed delivered, never re-reading the event, so an event
//! deleted from the table after commit is still sealed and its absence breaks verification.
//!
//! Per tenant, under `pk = T#{tenant}#SEAL`:
//! - `HEAD`: the last sealed entry (`seq`, `hash`), the last checkpoint (`checkpoint`,
//!   `checkpointSeq`, `checkpointHash`), when the oldest unsigned entry was sealed
//!   (`unsignedSince`), and the first 16 hex digits of the ids of the last [`RECENT`] sealed
//!   events (about 19 KB), so a batch the feed delivers again is not sealed twice. Written
//!   under a version condition: two sealers of one tenant (two stream shards) never both extend
//!   the chain; the loser reads the new head and goes again. This contention is the sealer's alone, off every request's path.
//! - `B#{first seq}`: a block of up to [`BLOCK_ENTRIES`] sealed entries, each
//!   `{seq, id, sk, digest, prev, hash}` where `digest` is [`super::event_digest`] of the event,
//!   `prev` the hash of the entry before (zeros for the first) and `hash` the SHA-256 of the
//!   canonical JSON of the other five fields.
//! - `C#{number}`: a checkpoint, written at least every [`SealPolicy::checkpoint_every`]
//!   entries or [`SealPolicy::checkpoint_after`] after the oldest unsigned entry was sealed:
//!   `{tenantId, number, firstSeq, lastSeq, lastHash, previous, signedAt, keyId, algorithm}`
//!   signed (ECDSA P-256, SHA-256, DER, base64 in `signature`) over its canonical JSON;
//!   `previous` is the hash of the checkpoint before, signature included (CloudTrail's digest
//!   files chain the same way).
//!
//! A tenant with unsigned entries has an item in `SEAL#PENDING` (sort key: the tenant id), so
//! [`Sealer::flush_due`] signs quiet tenants' tails without scanning the table.
use super::{EVENT_SK_PREFIX, event_digest, tenant_of_event_pk};
use crate::crypto::hex;
use crate::domain::Error;
use crate::domain::retry::{self, Backoff};
use crate::domain::timestamps::Timestamp as _;
use crate::ports::clock::Clock;
use crate::ports::feed::Feed;
use crate::ports::random::Random;
use crate::ports::signer::{ALGORITHM, Signer};
use crate::ports::store::{Condition, Item, Query, Store, StoreError, WriteOp};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const HEAD_SK: &str = "HEAD";
pub const BLOCK_PREFIX: &str = "B#";
pub const CHECKPOINT_PREFIX: &str = "C#";
pub const PENDING_PK: &str = "SEAL#PENDING";
/// Entries per block item: about 250 bytes each, so a block stays far below DynamoDB's 400 KB.
pub const BLOCK_ENTRIES: usize = 400;
/// Sealed ids remembered for deduplication. The feed delivers again only a batch whose sealer
/// failed, and does so before later records of its shard: far fewer than this many events of
/// one tenant are sealed in between.
pub const RECENT: usize = 1_024;
const RECENT_DIGITS: usize = 16;
/// At most this many events in one sealing transaction (blocks + checkpoint + head + pending
/// marker stay within DynamoDB's 100 operations and 4 MB).
pub const MAX_BATCH: usize = 4 * BLOCK_ENTRIES;
const HEAD_BACKOFF: Backoff = Backoff {
    attempts: 50,
    base_ms: 5,
    cap_ms: 200,
};

pub fn seal_pk(tenant_id: &str) -> String {
    format!("T#{tenant_id}#SEAL")
}

pub fn block_sk(first_seq: u64) -> String {
    format!("{BLOCK_PREFIX}{first_seq:020}")
}

pub fn checkpoint_sk(number: u64) -> String {
    format!("{CHECKPOINT_PREFIX}{number:020}")
}

fn sha256_hex(value: &Value) -> String {
    hex(Sha256::digest(crate::canonical::bytes(value)))
}

/// One link of a tenant's sealed chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedEntry {
    pub seq: u64,
    /// The event's id.
    pub id: String,
    /// The event's sort key (its partition follows from the id).
    pub sk: String,
    /// [`super::event_digest`] of the event as the feed delivered it.
    pub digest: String,
    pub prev: String,
    pub hash: String,
}

impl SealedEntry {
    pub fn new(seq: u64, id: String, sk: String, digest: String, prev: String) -> Self {
        let mut entry = Self {
            seq,
            id,
            sk,
            digest,
            prev,
            hash: String::new(),
        };
        entry.hash = entry.compute_hash();
        entry
    }

    /// SHA-256 of the canonical JSON of every field but `hash`.
    pub fn compute_hash(&self) -> String {
        sha256_hex(&json!({
            "seq": self.seq, "id": self.id, "sk": self.sk, "digest": self.digest, "prev": self.prev,
        }))
    }
}

/// What a checkpoint's signature covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointBody {
    pub tenant_id: String,
    pub number: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The hash of entry `last_seq`.
    pub last_hash: String,
    /// [`Checkpoint::hash`] of checkpoint `number - 1`, zeros for the first.
    pub previous: String,
    pub signed_at: String,
    pub key_id: String,
    pub algorithm: String,
}

impl CheckpointBody {
    /// The bytes signed: the body's canonical JSON.
    pub fn message(&self) -> Vec<u8> {
        crate::canonical::bytes(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    #[serde(flatten)]
    pub body: CheckpointBody,
    /// Base64 of the DER signature.
    pub signature: String,
}

impl Checkpoint {
    /// SHA-256 of the canonical JSON of the whole checkpoint, signature included: what the next
    /// checkpoint names as `previous`.
    pub fn hash(&self) -> String {
        sha256_hex(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    pub fn from_item(item: &Item) -> Option<Self> {
        serde_json::from_value(Value::Object(item.attrs.clone())).ok()
    }
}

/// A tenant's seal head as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    pub seq: u64,
    pub hash: String,
    pub checkpoint: u64,
    pub checkpoint_seq: u64,
    pub checkpoint_hash: String,
    pub unsigned_since: Option<String>,
    pub recent: Vec<String>,
}

impl Head {
    fn genesis() -> Self {
        Self {
            hash: GENESIS.to_owned(),
            checkpoint_hash: GENESIS.to_owned(),
            ..Self::default()
        }
    }
}

/// When checkpoints are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealPolicy {
    /// A checkpoint at least every this many entries.
    pub checkpoint_every: u64,
    /// A checkpoint once the oldest unsigned entry was sealed this long ago.
    pub checkpoint_after: Duration,
}

impl Default for SealPolicy {
    fn default() -> Self {
        Self {
            checkpoint_every: 1_000,
            checkpoint_after: Duration::minutes(5),
        }
    }
}

/// What one call sealed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sealed {
    pub entries: u64,
    pub duplicates: u64,
    pub checkpoints: u64,
}

#[derive(Clone)]
pub struct Sealer {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    signer: Arc<dyn Signer>,
    policy: SealPolicy,
}

struct Incoming {
    id: String,
    sk: String,
    digest: String,
}

impl Sealer {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        signer: Arc<dyn Signer>,
        policy: SealPolicy,
    ) -> Self {
        Self {
            store,
            clock,
            random,
            signer,
            policy,
        }
    }

    pub fn signer(&self) -> &Arc<dyn Signer> {
        &self.signer
    }

    /// Seals event items as a feed delivered them, whatever their tenants and order: grouped by
    /// tenant, each group in sort-key order. Items that are not events are skipped.
    pub async fn seal_items(&self, items: Vec<Item>) -> Result<Sealed, Error> {
        let mut by_tenant: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        for item in items {
            if !item.sk.starts_with(EVENT_SK_PREFIX) {
                continue;
            }
            let Some(tenant) = tenant_of_event_pk(&item.pk) else {
                continue;
            };
            by_tenant.entry(tenant.to_owned()).or_default().push(item);
        }
        let mut total = Sealed::default();
        // Small enough that the checkpoints one batch may need fit its transaction.
        let batch = usize::try_from(self.policy.checkpoint_every.saturating_mul(64))
            .unwrap_or(MAX_BATCH)
            .clamp(1, MAX_BATCH);
        for (tenant, items) in by_tenant {
            for chunk in items.chunks(batch) {
                let done = self.seal(&tenant, chunk).await?;
                total.entries += done.entries;
                total.duplicates += done.duplicates;
                total.checkpoints += done.checkpoints;
            }
        }
        Ok(total)
    }

    /// Appends `items` (one tenant's events, at most [`MAX_BATCH`]) to the tenant's chain in
    /// sort-key order, skipping any already sealed, and writes a checkpoint when one is due.
    pub async fn seal(&self, tenant_id: &str, items: &[Item]) -> Result<Sealed, Error> {
        let mut incoming: Vec<Incoming> = items
            .iter()
            .filter_map(|item| {
                let id = item.str("id")?.to_owned();
                Some(Incoming {
                    id,
                    sk: item.sk.clone(),
                    digest: event_digest(&item.attrs),
                })
            })
            .collect();
        // The deterministic order: commit time, then id (both in the sort key).
        incoming.sort_by(|a, b| a.sk.cmp(&b.sk));
        let incoming = &incoming;
        let pk = seal_pk(tenant_id);
        let pk = pk.as_str();
        let done = retry::contended(&HEAD_BACKOFF, &*self.random, |_| async move {
            let (head, version) = self.head(pk).await?;
            let mut seen: HashSet<&str> = head.recent.iter().map(String::as_str).collect();
            let fresh: Vec<&Incoming> = incoming
                .iter()
                .filter(|e| seen.insert(short_id(&e.id)))
                .collect();
            let duplicates = (incoming.len() - fresh.len()) as u64;
            if fresh.is_empty() {
                return Ok(Some(Sealed {
                    duplicates,
                    ..Sealed::default()
                }));
            }
            let now = self.clock.now();
            let mut next = head.clone();
            let mut ops = Vec::new();
            let mut entries = Vec::with_capacity(fresh.len());
            let mut checkpoints = 0;
            if next.unsigned_since.is_none() {
                next.unsigned_since = Some(now.iso_millis());
            }
            for e in &fresh {
                let entry = SealedEntry::new(
                    next.seq + 1,
                    e.id.clone(),
                    e.sk.clone(),
                    e.digest.clone(),
                    next.hash.clone(),
                );
                next.seq = entry.seq;
                next.hash = entry.hash.clone();
                entries.push(entry);
                // Never more than `checkpoint_every` unsigned entries, even within one batch.
                if next.seq - next.checkpoint_seq >= self.policy.checkpoint_every {
                    checkpoints += self
                        .maybe_checkpoint(tenant_id, &mut next, now, true, &mut ops)
                        .await?;
                    if ops.len() + 8 > crate::ports::store::MAX_TRANSACTION_OPS {
                        return Err(Error::Internal(
                            "too many checkpoints for one sealing batch".into(),
                        ));
                    }
                }
            }
            if next.seq > next.checkpoint_seq && next.unsigned_since.is_none() {
                next.unsigned_since = Some(now.iso_millis());
            }
            for block in entries.chunks(BLOCK_ENTRIES) {
                let first = block.first().map_or(0, |e| e.seq);
                let item = Item::new(pk, block_sk(first)).with(
                    "entries",
                    serde_json::to_value(block).unwrap_or(Value::Null),
                );
                ops.push(WriteOp::Put {
                    item,
                    condition: Condition::Absent,
                });
            }
            next.recent
                .extend(fresh.iter().map(|e| short_id(&e.id).to_owned()));
            let excess = next.recent.len().saturating_sub(RECENT);
            next.recent.drain(..excess);
            checkpoints += self
                .maybe_checkpoint(tenant_id, &mut next, now, false, &mut ops)
                .await?;
            self.finish(pk, tenant_id, &next, version, &mut ops);
            match self.store.transact(ops).await {
                Ok(()) => Ok(Some(Sealed {
                    entries: entries.len() as u64,
                    duplicates,
                    checkpoints,
                })),
                Err(StoreError::TransactionConditionFailed { .. }) | Err(StoreError::Conflict) => {
                    Ok(None)
                }
                Err(e) => Err(Error::from(e)),
            }
        })
        .await?;
        done.ok_or_else(|| Error::Unavailable("audit seal head contended".into()))
    }

    /// Signs the tenant's unsigned tail now if a checkpoint is due (or at all, with `force`).
    pub async fn flush(&self, tenant_id: &str, force: bool) -> Result<Sealed, Error> {
        let pk = seal_pk(tenant_id);
        let pk = pk.as_str();
        let done = retry::contended(&HEAD_BACKOFF, &*self.random, |_| async move {
            let (head, version) = self.head(pk).await?;
            let mut next = head.clone();
            let mut ops = Vec::new();
            let checkpoints = self
                .maybe_checkpoint(tenant_id, &mut next, self.clock.now(), force, &mut ops)
                .await?;
            if checkpoints == 0 {
                return Ok(Some(Sealed::default()));
            }
            self.finish(pk, tenant_id, &next, version, &mut ops);
            match self.store.transact(ops).await {
                Ok(()) => Ok(Some(Sealed {
                    checkpoints,
                    ..Sealed::default()
                })),
                Err(StoreError::TransactionConditionFailed { .. }) | Err(StoreError::Conflict) => {
                    Ok(None)
                }
                Err(e) => Err(Error::from(e)),
            }
        })
        .await?;
        done.ok_or_else(|| Error::Unavailable("audit seal head contended".into()))
    }

    /// Signs the tail of every tenant whose oldest unsigned entry is due
    /// ([`SealPolicy::checkpoint_after`]); the scheduled half of sealing.
    pub async fn flush_due(&self) -> Result<Sealed, Error> {
        let now = self.clock.now();
        let mut total = Sealed::default();
        let mut cursor = None;
        loop {
            let page = self
                .store
                .query(Query::partition(PENDING_PK).limit(500).after(cursor))
                .await?;
            for item in &page.items {
                let due = item
                    .str("since")
                    .and_then(parse_time)
                    .is_none_or(|since| since + self.policy.checkpoint_after <= now);
                if due {
                    total.checkpoints += self.flush(&item.sk, false).await?.checkpoints;
                }
            }
            cursor = page.cursor;
            if cursor.is_none() {
                return Ok(total);
            }
        }
    }

    async fn head(&self, pk: &str) -> Result<(Head, Option<u64>), Error> {
        match self.store.get(pk, HEAD_SK).await? {
            None => Ok((Head::genesis(), None)),
            Some(item) => {
                let head: Head = serde_json::from_value(Value::Object(item.attrs))
                    .map_err(|_| Error::Internal("audit seal head is unreadable".into()))?;
                Ok((head, Some(item.version)))
            }
        }
    }

    /// Adds a signed checkpoint over `next`'s unsigned entries to `ops` when one is due.
    async fn maybe_checkpoint(
        &self,
        tenant_id: &str,
        next: &mut Head,
        now: OffsetDateTime,
        force: bool,
        ops: &mut Vec<WriteOp>,
    ) -> Result<u64, Error> {
        let unsigned = next.seq - next.checkpoint_seq;
        if unsigned == 0 {
            return Ok(0);
        }
        let old_enough = next
            .unsigned_since
            .as_deref()
            .and_then(parse_time)
            .is_none_or(|since| since + self.policy.checkpoint_after <= now);
        if !(force || old_enough || unsigned >= self.policy.checkpoint_every) {
            return Ok(0);
        }
        let body = CheckpointBody {
            tenant_id: tenant_id.to_owned(),
            number: next.checkpoint + 1,
            first_seq: next.checkpoint_seq + 1,
            last_seq: next.seq,
            last_hash: next.hash.clone(),
            previous: next.checkpoint_hash.clone(),
            signed_at: now.iso_millis(),
            key_id: self.signer.key_id().to_owned(),
            algorithm: ALGORITHM.to_owned(),
        };
        let signature = self
            .signer
            .sign(&body.message())
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        let checkpoint = Checkpoint {
            body,
            signature: STANDARD.encode(signature),
        };
        next.checkpoint = checkpoint.body.number;
        next.checkpoint_seq = checkpoint.body.last_seq;
        next.checkpoint_hash = checkpoint.hash();
        next.unsigned_since = None;
        let attrs = match serde_json::to_value(&checkpoint) {
            Ok(Value::Object(map)) => map,
            _ => return Err(Error::Internal("checkpoint".into())),
        };
        ops.push(WriteOp::Put {
            item: Item {
                attrs,
                ..Item::new(seal_pk(tenant_id), checkpoint_sk(checkpoint.body.number))
            },
            condition: Condition::Absent,
        });
        Ok(1)
    }

    /// Adds the head (under its version) and the pending marker to `ops`.
    fn finish(
        &self,
        pk: &str,
        tenant_id: &str,
        next: &Head,
        version: Option<u64>,
        ops: &mut Vec<WriteOp>,
    ) {
        let attrs = match serde_json::to_value(next) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        ops.push(WriteOp::Put {
            item: Item {
                attrs,
                version: version.map_or(1, |v| v + 1),
                ..Item::new(pk, HEAD_SK)
            },
            condition: version.map_or(Condition::Absent, Condition::Version),
        });
        ops.push(match &next.unsigned_since {
            Some(since) => WriteOp::Put {
                item: Item::new(PENDING_PK, tenant_id).with("since", since.clone()),
                condition: Condition::None,
            },
            None => WriteOp::Delete {
                pk: PENDING_PK.to_owned(),
                sk: tenant_id.to_owned(),
                condition: Condition::None,
            },
        });
    }
}

fn short_id(id: &str) -> &str {
    id.get(..RECENT_DIGITS).unwrap_or(id)
}

fn parse_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(
        text,
        &time::format_description::well_known::Iso8601::DEFAULT,
    )
    .ok()
}

/// The embedded store's sealing loop, one pass: reads the feed until it is empty, seals what it
/// delivered, acknowledges it, then signs the tails that are due. `latchkey-local` runs this on
/// a timer; the AWS sealer function does the same from stream batches and a schedule.
pub async fn drain(feed: &dyn Feed, sealer: &Sealer) -> Result<Sealed, Error> {
    let mut total = Sealed::default();
    loop {
        let records = feed.read(MAX_BATCH as u32).await?;
        let Some(last) = records.last().map(|r| r.position) else {
            break;
        };
        let done = sealer
            .seal_items(records.into_iter().map(|r| r.item).collect())
            .await?;
        feed.ack(last).await?;
        total.entries += done.entries;
        total.duplicates += done.duplicates;
        total.checkpoints += done.checkpoints;
    }
    total.checkpoints += sealer.flush_due().await?.checkpoints;
    Ok(total)
}
