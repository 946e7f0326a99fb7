//! The keyring as one process last read it (a leaf: `Services` holds it).
use crate::ports::secrets::SecretBytes;
use std::sync::Mutex;
use time::{Duration, OffsetDateTime};

/// How long a process reuses the keyring it read (it is read only when a hash matched
/// neither the current nor the previous key, and again whenever the current root changes).
const CACHE_FOR: Duration = Duration::seconds(60);

/// One older root, by its generation id.
#[derive(Clone)]
pub(crate) struct Generation {
    pub(crate) id: String,
    pub(crate) root: SecretBytes,
}

struct Cached {
    current: String,
    loaded_at: OffsetDateTime,
    generations: Vec<Generation>,
}

/// The keyring this process read, kept for a minute while the current root is the same.
#[derive(Default)]
pub struct KeyringCache(Mutex<Option<Cached>>);

impl KeyringCache {
    pub(crate) fn get(&self, current: &str, now: OffsetDateTime) -> Option<Vec<Generation>> {
        let cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        cached
            .as_ref()
            .filter(|c| c.current == current && now - c.loaded_at < CACHE_FOR)
            .map(|c| c.generations.clone())
    }

    pub(crate) fn put(&self, current: String, now: OffsetDateTime, generations: Vec<Generation>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(Cached {
            current,
            loaded_at: now,
            generations,
        });
    }

    pub(crate) fn clear(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}
