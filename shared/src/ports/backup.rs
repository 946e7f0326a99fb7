//! What a backup run and a restore drill need from the store's backend (`docs/architecture.md` §4,
//! "backups 4×/day, offsite, encrypted"): make, list and delete copies, check continuous
//! recovery, restore a copy to a scratch place, and read any of them in full for a digest.
//!
//! Two adapters implement it: DynamoDB (`CreateBackup`, PITR, `RestoreTableFromBackup` into a
//! scratch table) and SQLite (the online backup API into `<data dir>/backups/`). The domain
//! (`domain::backups`) names, keeps and checks copies the same way on both.
use crate::ports::store::Item;
use async_trait::async_trait;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// One copy of the store, as the backend lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRef {
    /// How the backend finds it again: a backup ARN, or a file path.
    pub id: String,
    /// The name it was made with (`<source>-<UTC timestamp>`).
    pub name: String,
}

/// Where a drill restored a copy to: a scratch table name, or a scratch file path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scratch {
    pub name: String,
}

/// Point-in-time recovery, as the backend reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pitr {
    Enabled,
    Disabled,
    /// The backend has no continuous recovery (the embedded store).
    NotApplicable,
}

impl Pitr {
    pub fn as_str(self) -> &'static str {
        match self {
            Pitr::Enabled => "enabled",
            Pitr::Disabled => "disabled",
            Pitr::NotApplicable => "not_applicable",
        }
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum BackupError {
    /// The backend failed, throttled or could not be reached; a retry may help.
    #[error("backup backend unavailable: {0}")]
    Unavailable(String),
    /// The backup, table or file is not there.
    #[error("not found: {0}")]
    NotFound(String),
    /// The backend refused the request as given (permissions, limits, bad names); retrying the
    /// same request will not help.
    #[error("refused: {0}")]
    Refused(String),
    /// A copy failed its integrity check or could not be read as items.
    #[error("corrupt copy: {0}")]
    Corrupt(String),
    /// A restore did not finish within the time allowed; a later drill may succeed.
    #[error("restore still running: {0}")]
    StillRunning(String),
}

impl BackupError {
    /// Whether the same call, made again later, may succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            BackupError::Unavailable(_) | BackupError::StillRunning(_)
        )
    }
}

#[async_trait]
pub trait BackupTarget: Send + Sync {
    /// The name copies are named after: the table name, or the database file's stem.
    fn source(&self) -> &str;
    /// Makes a full copy named `name`.
    async fn create_backup(&self, name: &str) -> Result<BackupRef, BackupError>;
    /// Every copy of this source, in no particular order.
    async fn list_backups(&self) -> Result<Vec<BackupRef>, BackupError>;
    async fn delete_backup(&self, backup: &BackupRef) -> Result<(), BackupError>;
    async fn pitr(&self) -> Result<Pitr, BackupError>;
    async fn enable_pitr(&self) -> Result<(), BackupError>;
    /// Reads every item of the live store into `digest`.
    async fn read_live(&self, digest: &mut Snapshot) -> Result<(), BackupError>;
    /// Restores `backup` to a new scratch place called `scratch_name` and waits until it can be
    /// read (the DynamoDB adapter gives up with [`BackupError::StillRunning`]).
    async fn restore_scratch(
        &self,
        backup: &BackupRef,
        scratch_name: &str,
    ) -> Result<Scratch, BackupError>;
    /// Checks the scratch copy's integrity where the backend can, and reads every item into
    /// `digest`.
    async fn read_scratch(
        &self,
        scratch: &Scratch,
        digest: &mut Snapshot,
    ) -> Result<(), BackupError>;
    /// Removes a scratch copy; one already gone is not an error.
    async fn drop_scratch(&self, scratch: &Scratch) -> Result<(), BackupError>;
}

/// The per-item fingerprints of a store, read in any order and kept sorted by `(pk, sk)`.
///
/// Every item is counted; only a deterministic sample is fingerprinted. The sample holds the
/// items whose key hash ends in `sample_bits` zero bits, so both sides of a comparison pick the
/// same items whatever order they read them in. An adaptive snapshot starts with every item
/// (`sample_bits` 0) and halves the sample whenever it grows past its cap, so small tables are
/// digested in full and large ones in bounded memory; a fixed snapshot (a drill reading a copy)
/// uses the sample size the expectation was recorded with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    sample_bits: u8,
    cap: Option<usize>,
    total: u64,
    entries: BTreeMap<(String, String), [u8; 32]>,
}

impl Snapshot {
    /// Fingerprints every item while at most `cap` are kept, then a shrinking sample.
    pub fn adaptive(cap: usize) -> Self {
        Self {
            sample_bits: 0,
            cap: Some(cap.max(1)),
            total: 0,
            entries: BTreeMap::new(),
        }
    }

    /// Fingerprints exactly the items a snapshot with `sample_bits` picks.
    pub fn fixed(sample_bits: u8) -> Self {
        Self {
            sample_bits: sample_bits.min(63),
            cap: None,
            total: 0,
            entries: BTreeMap::new(),
        }
    }

    pub fn add(&mut self, item: &Item) {
        self.total += 1;
        if !sampled(&key_hash(&item.pk, &item.sk), self.sample_bits) {
            return;
        }
        self.entries
            .insert((item.pk.clone(), item.sk.clone()), item_hash(item));
        if let Some(cap) = self.cap {
            while self.entries.len() > cap && self.sample_bits < 63 {
                self.sample_bits += 1;
                let bits = self.sample_bits;
                self.entries
                    .retain(|(pk, sk), _| sampled(&key_hash(pk, sk), bits));
            }
        }
    }

    pub fn sample_bits(&self) -> u8 {
        self.sample_bits
    }

    /// How many items were read, sampled or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The sampled items' fingerprints, by `(pk, sk)`.
    pub fn entries(&self) -> &BTreeMap<(String, String), [u8; 32]> {
        &self.entries
    }

    /// Keeps only the items a snapshot with `bits` would pick (to compare with a smaller
    /// sample taken of the same store).
    pub fn narrow_to(&mut self, bits: u8) {
        if bits > self.sample_bits {
            self.sample_bits = bits;
            self.entries
                .retain(|(pk, sk), _| sampled(&key_hash(pk, sk), bits));
        }
    }
}

/// SHA-256 of an item's key, the identity the sample and the drill use.
pub fn key_hash(pk: &str, sk: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((pk.len() as u64).to_be_bytes());
    h.update(pk.as_bytes());
    h.update(sk.as_bytes());
    h.finalize().into()
}

fn sampled(key_hash: &[u8; 32], bits: u8) -> bool {
    if bits == 0 {
        return true;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&key_hash[24..32]);
    u64::from_be_bytes(low).trailing_zeros() >= u32::from(bits)
}

/// SHA-256 of an item's canonical form ([`crate::canonical`]): keys, version, expiry, index keys and
/// attributes, so the same item hashes the same on any backend.
pub fn item_hash(item: &Item) -> [u8; 32] {
    let canonical = serde_json::json!([
        item.pk,
        item.sk,
        item.version,
        item.ttl,
        item.gsi1.as_ref().map(|(p, s)| [p, s]),
        serde_json::Value::Object(item.attrs.clone()),
    ]);
    Sha256::digest(crate::canonical::bytes(&canonical)).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(i: u32) -> Item {
        Item::new(format!("P#{i}"), "S").with("n", i)
    }

    #[test]
    fn adaptive_snapshot_stays_under_its_cap_and_agrees_with_a_fixed_one() {
        let mut adaptive = Snapshot::adaptive(100);
        for i in 0..1000 {
            adaptive.add(&item(i));
        }
        assert_eq!(adaptive.total(), 1000);
        assert!(adaptive.entries().len() <= 100);
        assert!(adaptive.sample_bits() > 0);
        let mut fixed = Snapshot::fixed(adaptive.sample_bits());
        for i in (0..1000).rev() {
            fixed.add(&item(i));
        }
        assert_eq!(fixed.entries(), adaptive.entries());
    }

    #[test]
    fn item_hash_ignores_attribute_order_but_not_values() {
        let a = Item::new("P", "S").with("a", 1).with("b", 2);
        let b = Item::new("P", "S").with("b", 2).with("a", 1);
        assert_eq!(item_hash(&a), item_hash(&b));
        assert_ne!(item_hash(&a), item_hash(&a.clone().with("a", 3)));
        assert_ne!(item_hash(&a), item_hash(&a.clone().with_version(2)));
    }
}
