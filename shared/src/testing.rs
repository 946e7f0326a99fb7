//! Services on in-memory adapters, for the tests of the function crates (feature `testing`):
//! SQLite in memory, a fixed local key, fixed local secrets, a clock stopped at a fixed instant,
//! the OS CSPRNG and a mail outbox in memory. Never built by [`crate::wiring`].
use crate::adapters::local_keys::LocalKeyVault;
use crate::adapters::local_secrets::LocalSecrets;
use crate::adapters::outbox::MemoryOutbox;
use crate::adapters::sqlite::SqliteStore;
use crate::domain::limits::AnonymousLimits;
use crate::domain::{CachePolicy, Ports, Services};
use crate::ports::clock::ManualClock;
use crate::ports::random::OsRandom;
use std::sync::Arc;
use time::macros::datetime;

/// In-memory services; an error only if SQLite cannot open a database in memory.
pub fn services() -> Result<Arc<Services>, String> {
    let random = Arc::new(OsRandom);
    let store = SqliteStore::in_memory().map_err(|e| e.to_string())?;
    let vault = LocalKeyVault::from_key(&[7u8; 32], random.clone()).map_err(|e| e.to_string())?;
    let secrets = LocalSecrets::with_root(b"in-memory test services", random.clone());
    Ok(Arc::new(Services::new(
        Ports {
            store: Arc::new(store),
            vault: Arc::new(vault),
            secrets: Arc::new(secrets),
            clock: Arc::new(ManualClock::new(datetime!(2026-11-29 12:00 UTC))),
            random,
            mailer: Arc::new(MemoryOutbox::default()),
        },
        CachePolicy {
            ttl: time::Duration::minutes(5),
            capacity: 100,
        },
        AnonymousLimits::default(),
    )))
}
