//! Rate limits kept in the store, so that every Lambda instance (and every local process) sees
//! the same counts: email sends per user and per recipient address, and the calls anyone who
//! knows a public tenant id can make (usernameless sign-in), per tenant and per client address.
//!
//! Email limits count in fixed buckets of `window` seconds and allow a send while the current
//! and the previous bucket hold fewer than `max` together. Any `window`-long span lies within
//! two buckets, so no span ever sees more than `max` sends (stricter than a sliding window at
//! bucket edges, never looser). Anonymous calls count in the current one-minute window only
//! (see [`take_anonymous`]). Subjects that are personal data (addresses, user ids, client IP
//! addresses) are stored only as a keyed hash.
use crate::crypto::keys::{Purpose, purpose_keys};
use crate::domain::Error;
use crate::domain::Services;
use crate::ports::random::RandomExt as _;
use crate::ports::store::{Condition, Item, WriteOp};
use serde_json::Value;

/// At most `max` hits in any `window` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub name: &'static str,
    pub max: i64,
    pub window: i64,
}

/// Emailed codes to one user, across every token and action.
pub const EMAIL_SENDS_PER_USER: Limit = Limit {
    name: "email-user",
    max: 5,
    window: 10 * 60,
};
/// Emailed codes to one address, whoever asks (sign-ups may name any address).
pub const EMAIL_SENDS_PER_ADDRESS: Limit = Limit {
    name: "email-address",
    max: 10,
    window: 60 * 60,
};

pub use crate::domain::services::AnonymousLimits;

/// A counted subject: `(limit, subject key)`; the key is already hashed where it must be.
#[derive(Debug, Clone)]
pub struct Counter {
    limit: Limit,
    pk: String,
    bucket: i64,
    current: Option<Item>,
    total: i64,
}

impl Counter {
    /// Whether one more hit is within the limit.
    pub fn allows(&self) -> bool {
        self.total < self.limit.max
    }

    /// The write that counts one hit (conditional on what was read, so racing hits cannot
    /// both count as the last allowed one).
    pub fn hit(&self) -> WriteOp {
        match &self.current {
            Some(item) => {
                let v = item.version;
                let n = count(item);
                WriteOp::Put {
                    item: item.clone().with("hits", n + 1).with_version(v + 1),
                    condition: Condition::Version(v),
                }
            }
            None => WriteOp::Put {
                item: Item::new(&self.pk, format!("W#{}", self.bucket))
                    .with("hits", 1)
                    .with_ttl((self.bucket + 2) * self.limit.window + 3600),
                condition: Condition::Absent,
            },
        }
    }
}

fn count(item: &Item) -> i64 {
    item.attrs.get("hits").and_then(Value::as_i64).unwrap_or(0)
}

/// A keyed hash of a subject that is personal data (an address, an IP address).
pub async fn hashed(services: &Services, tenant_id: &str, subject: &str) -> Result<String, Error> {
    let keys = purpose_keys(services.secrets.as_ref(), Purpose::BlindIndex).await?;
    let mac = keys.mac(format!("limit\0{tenant_id}\0{subject}").as_bytes());
    Ok(crate::crypto::hex(&mac[..16]))
}

/// Reads the counter of `subject` under `limit`.
pub async fn read(
    services: &Services,
    tenant_id: &str,
    limit: Limit,
    subject: &str,
) -> Result<Counter, Error> {
    let now = services.clock.now().unix_timestamp();
    let bucket = now.div_euclid(limit.window);
    let pk = format!("T#{tenant_id}#LIMIT#{}#{subject}", limit.name);
    let current = services.store.get(&pk, &format!("W#{bucket}")).await?;
    let previous = services
        .store
        .get(&pk, &format!("W#{}", bucket - 1))
        .await?;
    let total = current.as_ref().map_or(0, count) + previous.as_ref().map_or(0, count);
    Ok(Counter {
        limit,
        pk,
        bucket,
        current,
        total,
    })
}

/// Shards of a tenant's anonymous-call counter: one hot item per tenant would serialise every
/// usernameless sign-in of the tenant on it, so the count is spread over this many items,
/// each allowed an equal part of the limit.
pub const TENANT_SHARDS: i64 = 8;

/// Counts one anonymous (`Basic <tenant id>`) call that creates state or looks up
/// credentials: [`commit_anonymous`] with nothing else to write.
pub async fn take_anonymous(
    services: &Services,
    tenant_id: &str,
    client: Option<&str>,
) -> Result<(), Error> {
    commit_anonymous(services, tenant_id, client, Vec::new()).await
}

/// Writes `ops` (the ceremony item an anonymous call creates) only if the call is within the
/// anonymous limits, counting it in the same transaction: per client address and per tenant,
/// in fixed one-minute windows (a burst of twice the limit across a window's edge is possible;
/// these limits bound abuse, they do not meter). 429 past either limit.
///
/// Each count is an atomic bounded increment ([`WriteOp::Count`]: DynamoDB's `ADD` under a
/// condition), read nowhere first. The tenant's count is sharded ([`TENANT_SHARDS`]) so that
/// its sign-ins do not all write one item: a call counts on a random shard, or the next one
/// with room, so the tenant's total never passes its limit (rounded down to a multiple of the
/// shard count, at least one per shard). One transaction keeps the embedded store at one
/// commit per call; on DynamoDB, transactions that meet on a shard are cancelled and retried
/// on the next shard. Finishing a usernameless sign-in is not counted: it needs a ceremony id
/// that only a counted call hands out, and each id finishes at most once.
pub async fn commit_anonymous(
    services: &Services,
    tenant_id: &str,
    client: Option<&str>,
    ops: Vec<WriteOp>,
) -> Result<(), Error> {
    use crate::ports::store::StoreError;
    let limits = services.limits;
    let window = services.clock.now().unix_timestamp().div_euclid(60);
    let count = |name: &str, subject: &str, below: i64| WriteOp::Count {
        pk: format!("T#{tenant_id}#LIMIT#{name}#{subject}"),
        sk: format!("W#{window}"),
        attr: "hits".into(),
        below,
        ttl: (window + 2) * 60 + 3600,
    };
    let client_count = match client {
        Some(ip) => Some(count(
            "anon-client",
            &hashed(services, tenant_id, ip).await?,
            limits.per_client_per_minute,
        )),
        None => None,
    };
    let shards = TENANT_SHARDS.min(limits.per_tenant_per_minute).max(1);
    let per_shard = (limits.per_tenant_per_minute / shards).max(1);
    let first = i64::try_from(services.random.below(shards as u64)).unwrap_or(0);
    let (mut shard, mut full, mut conflicts) = (first, 0, 0u64);
    while full < shards {
        let mut all = ops.clone();
        let client_at = client_count.as_ref().map(|c| {
            all.push(c.clone());
            all.len() - 1
        });
        all.push(count("anon-tenant", &format!("s{shard}"), per_shard));
        let shard_at = all.len() - 1;
        match services.store.transact(all).await {
            Ok(()) => return Ok(()),
            Err(StoreError::TransactionConditionFailed { index, .. })
                if Some(index) == client_at =>
            {
                return Err(Error::TooManyRequests);
            }
            Err(StoreError::TransactionConditionFailed { index, .. }) if index == shard_at => {
                full += 1;
            }
            Err(StoreError::Conflict) if conflicts < 4 => {
                conflicts += 1;
                let jitter = services.random.below(5 * conflicts);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
        shard = (shard + 1) % shards;
    }
    Err(Error::TooManyRequests)
}

pub use crate::domain::services::SECRET_KEY_FAILURES_PER_MINUTE;

/// Counts one failed secret-key authentication from `client` (all callers without an address
/// share one count) in the current one-minute window, deployment-wide: a wrong key names no
/// tenant. `Err(TooManyRequests)` once the address has failed
/// `services.limits.key_failures_per_client_per_minute` times this minute. The address is stored only as a keyed
/// hash.
pub async fn count_key_failure(services: &Services, client: Option<&str>) -> Result<(), Error> {
    use crate::ports::store::StoreError;
    let window = services.clock.now().unix_timestamp().div_euclid(60);
    // `_` cannot start a tenant id, so this subject space is no tenant's.
    let subject = hashed(services, "_deployment", client.unwrap_or("-")).await?;
    let op = WriteOp::Count {
        pk: format!("LIMIT#key-failures#{subject}"),
        sk: format!("W#{window}"),
        attr: "hits".into(),
        below: services.limits.key_failures_per_client_per_minute,
        ttl: (window + 2) * 60 + 3600,
    };
    match services.store.transact(vec![op]).await {
        Ok(()) => Ok(()),
        Err(StoreError::TransactionConditionFailed { .. } | StoreError::ConditionFailed { .. }) => {
            Err(Error::TooManyRequests)
        }
        Err(e) => Err(e.into()),
    }
}
