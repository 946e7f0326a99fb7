//! Shared test support: the port contract suites (written once, run against every adapter) and
//! helpers to assemble services on chosen adapters.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod contract;
pub mod counting;

use latchkey::Services;
use latchkey::domain::CachePolicy;
use latchkey::ports::clock::ManualClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::{KeyVault, Secrets, Store};
use std::sync::Arc;
use time::{Duration, macros::datetime};

/// A clock that starts at a fixed instant and moves only when told.
pub fn test_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(datetime!(2026-11-29 12:00 UTC)))
}

/// Services on the given adapters, a test clock and the OS CSPRNG.
pub fn services(
    store: Arc<dyn Store>,
    vault: Arc<dyn KeyVault>,
    secrets: Arc<dyn Secrets>,
    clock: Arc<ManualClock>,
) -> Arc<Services> {
    Arc::new(Services::new(
        latchkey::domain::Ports {
            store: store,
            vault: vault,
            secrets: secrets,
            clock: clock,
            random: Arc::new(OsRandom),
            mailer: Arc::new(latchkey::adapters::outbox::MemoryOutbox::default()),
        },
        CachePolicy {
            ttl: Duration::minutes(5),
            capacity: 100,
        },
        latchkey::domain::limits::AnonymousLimits::default(),
    ))
}
