//! Shared test support for the three test binaries (`api`, `contracts`, `aws`): the one
//! fixture of the HTTP tests ([`World`], with its small [`Client`]), the port contract suites
//! (written once, run against every adapter), and what adapters under test need kept or cleaned
//! up ([`Fresh`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod client;
pub mod contract;
pub mod counting;
pub mod fresh;
pub mod logs;
pub mod rotating;
pub mod streams;
pub mod world;

pub use client::{Client, Reply, basic, bearer, tenant_basic};
pub use fresh::{Fresh, OnDrop};
pub use world::{ORIGIN, Setup, TENANT, Tracked, World, example_settings};

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

/// Services on the given adapters (for adapters [`World`] does not use: DynamoDB, KMS), a test
/// clock, the OS CSPRNG and a memory outbox.
pub fn services(
    store: Arc<dyn Store>,
    vault: Arc<dyn KeyVault>,
    secrets: Arc<dyn Secrets>,
    clock: Arc<ManualClock>,
) -> Arc<Services> {
    Arc::new(Services::new(
        latchkey::domain::Ports {
            store,
            vault,
            secrets,
            clock,
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
