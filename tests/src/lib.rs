//! Shared test support: the port contract suites (written once, run against every adapter) and
//! helpers to assemble services on chosen adapters.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test support

pub mod contract;
pub mod counting;

use latchkey::Services;
use latchkey::ports::clock::ManualClock;
use latchkey::ports::random::OsRandom;
use latchkey::ports::{KeyVault, Secrets, Store};
use latchkey::runtime::CachePolicy;
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
    Arc::new(Services::assemble(
        store,
        vault,
        secrets,
        clock,
        Arc::new(OsRandom),
        CachePolicy {
            ttl: Duration::minutes(5),
            capacity: 100,
        },
        64 * 1024,
    ))
}
