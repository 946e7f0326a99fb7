//! What the domain runs on: the ports, and the two domain objects built from them (the
//! envelope that seals fields, the journal that commits changes with their audit events).
//!
//! The domain owns this bundle and never builds adapters: [`crate::wiring`] picks them from the
//! configuration, tests pass their own (a fixed clock, seeded randomness, an in-memory outbox).
//! Nothing here is an HTTP setting or a default adapter.
use crate::crypto::Envelope;
use crate::domain::audit::Journal;
use crate::ports::{Clock, KeyVault, Mailer, Random, Secrets, Store};
use std::sync::Arc;
use time::Duration;

/// Everything a domain operation may use. Built once per process; shared through an `Arc`.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub vault: Arc<dyn KeyVault>,
    pub envelope: Arc<Envelope>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub journal: Journal,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Limits on Client API calls made with only a tenant id.
    pub limits: AnonymousLimits,
    /// Tenant and secret-key records, reused for a few seconds: read on every request.
    pub records: RecordCache,
    /// The keyring (older root generations), read only when a keyed hash matched neither the
    /// current nor the previous key.
    pub keyring: crate::domain::keyring::cache::KeyringCache,
}

/// The adapters behind each port, as [`crate::wiring`] or a test picked them.
pub struct Ports {
    pub store: Arc<dyn Store>,
    pub vault: Arc<dyn KeyVault>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub mailer: Arc<dyn Mailer>,
}

/// How long and how many unwrapped data keys stay cached.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub capacity: usize,
}

impl Services {
    /// Puts the given ports together with the envelope and the journal built on them.
    pub fn new(ports: Ports, cache: CachePolicy, limits: AnonymousLimits) -> Self {
        let Ports {
            store,
            vault,
            secrets,
            clock,
            random,
            mailer,
        } = ports;
        let envelope = Arc::new(Envelope::new(
            Arc::clone(&vault),
            Arc::clone(&random),
            Arc::clone(&clock),
            cache.ttl,
            cache.capacity,
        ));
        let journal = Journal::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            Arc::clone(&random),
            Arc::clone(&secrets),
        );
        Self {
            store,
            vault,
            envelope,
            secrets,
            clock,
            random,
            journal,
            mailer,
            limits,
            records: RecordCache::default(),
            keyring: Default::default(),
        }
    }

    /// The same services, with these limits on anonymous Client API calls.
    pub fn with_limits(mut self, limits: AnonymousLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// Limits on `Basic <tenant id>` calls, per minute; set from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnonymousLimits {
    pub per_client_per_minute: i64,
    pub per_tenant_per_minute: i64,
    /// Wrong secret keys one client address may present per minute before its wrong keys
    /// answer 429 ([`crate::domain::limits::count_key_failure`]).
    pub key_failures_per_client_per_minute: i64,
}

impl Default for AnonymousLimits {
    fn default() -> Self {
        Self {
            per_client_per_minute: 120,
            per_tenant_per_minute: 6_000,
            key_failures_per_client_per_minute: SECRET_KEY_FAILURES_PER_MINUTE,
        }
    }
}

/// The default of [`AnonymousLimits::key_failures_per_client_per_minute`]
/// (`LATCHKEY_KEY_FAILURES_PER_CLIENT_PER_MINUTE`): wrong secret keys one client address may
/// present per minute; past it, its wrong keys answer 429. A right key is never refused by this
/// limit (it is counted only on failure), so a guessing flood from an address cannot lock a
/// tenant's backend out, even behind one NAT.
pub const SECRET_KEY_FAILURES_PER_MINUTE: i64 = 20;

/// How long a tenant record, once read, is reused in this process without reading it again.
/// Every API request needs it, so on DynamoDB this saves a round trip a request. The price: a
/// tenant's settings changed by another process (`latchkey-admin`) reach a warm function up to
/// this long later. Changes made through this process's own [`Services`] invalidate the entry at
/// once. Only records that exist are kept, so a new tenant works at once. Secret-key records are
/// not cached: a revocation must hold everywhere from the next request
/// ([`crate::domain::tenants::authenticate`]).
pub const RECORD_CACHE_SECONDS: i64 = 30;
/// Beyond this many entries the cache starts afresh: a bound, not an eviction policy, since a
/// function instance serves few tenants.
const RECORD_CACHE_CAPACITY: usize = 4096;

/// The cache of [`RECORD_CACHE_SECONDS`] for tenant records
/// ([`crate::domain::tenants`]), keyed by the item's keys. Per [`Services`], so that two stores
/// in one process (the tests) never see each other's records.
#[derive(Default)]
pub struct RecordCache {
    entries: std::sync::Mutex<
        std::collections::HashMap<(String, String), (i64, crate::ports::store::Item)>,
    >,
}

impl RecordCache {
    pub(crate) fn fresh(&self, pk: &str, sk: &str, now: i64) -> Option<crate::ports::store::Item> {
        let entries = self.entries.lock().ok()?;
        let (at, item) = entries.get(&(pk.to_owned(), sk.to_owned()))?;
        // A clock that went back counts as stale too.
        (*at <= now && now - *at < RECORD_CACHE_SECONDS).then(|| item.clone())
    }

    pub(crate) fn keep(&self, item: &crate::ports::store::Item, now: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= RECORD_CACHE_CAPACITY {
                entries.clear();
            }
            entries.insert((item.pk.clone(), item.sk.clone()), (now, item.clone()));
        }
    }

    /// Forgets a record this process is about to change.
    pub fn forget(&self, pk: &str, sk: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&(pk.to_owned(), sk.to_owned()));
        }
    }
}
