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
    pub records: crate::domain::tenants::RecordCache,
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
        let journal = Journal::new(Arc::clone(&store), Arc::clone(&clock), Arc::clone(&random));
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
            records: crate::domain::tenants::RecordCache::default(),
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
}

impl Default for AnonymousLimits {
    fn default() -> Self {
        Self {
            per_client_per_minute: 120,
            per_tenant_per_minute: 6_000,
        }
    }
}
