//! What a backup should hold, from the two reads around it, and the drill's comparison (see
//! the bracket described in [`super`]).
use crate::crypto::hex;
use crate::ports::backup::{Snapshot, key_hash};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// How an item in the moving set marks "absent in that read".
const ABSENT: &str = "absent";
/// Fingerprints are shortened to 128 bits in the moving set to keep the run item small.
const SHORT: usize = 32;

/// What a copy should hold, from the reads just before and just after it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expectation {
    /// The sample both reads fingerprinted (0: every item).
    pub sample_bits: u8,
    /// Sampled items identical in both reads.
    pub stable_items: u64,
    /// SHA-256 over the stable items' keys and fingerprints, in `(pk, sk)` order.
    pub stable_digest: String,
    /// Sampled items that moved: shortened key hash -> the states the copy may hold them in
    /// (shortened fingerprints, or `absent`).
    pub moving: BTreeMap<String, Vec<String>>,
    /// Bounds on the copy's total item count (equal when the table stood still).
    pub total_min: u64,
    pub total_max: u64,
}

fn short(bytes: &[u8; 32]) -> String {
    let mut h = hex(bytes);
    h.truncate(SHORT);
    h
}

fn digest_of<'a>(entries: impl Iterator<Item = (&'a (String, String), &'a [u8; 32])>) -> String {
    let mut h = Sha256::new();
    for ((pk, sk), fingerprint) in entries {
        h.update((pk.len() as u64).to_be_bytes());
        h.update(pk.as_bytes());
        h.update((sk.len() as u64).to_be_bytes());
        h.update(sk.as_bytes());
        h.update(fingerprint);
    }
    hex(h.finalize())
}

/// The expectation for a copy made between `before` and `after`, or why there is none.
pub fn expectation(
    mut before: Snapshot,
    mut after: Snapshot,
    moving_cap: usize,
) -> Result<Expectation, String> {
    let bits = before.sample_bits().max(after.sample_bits());
    before.narrow_to(bits);
    after.narrow_to(bits);
    let (b, a) = (before.entries(), after.entries());
    let mut stable = BTreeMap::new();
    let mut moving = BTreeMap::new();
    for key in b.keys().chain(a.keys()) {
        match (b.get(key), a.get(key)) {
            (Some(x), Some(y)) if x == y => {
                stable.insert(key.clone(), *x);
            }
            (x, y) => {
                let state = |s: Option<&[u8; 32]>| s.map_or(ABSENT.to_owned(), short);
                let mut allowed = vec![state(x), state(y)];
                allowed.dedup();
                moving.insert(short(&key_hash(&key.0, &key.1)), allowed);
            }
        }
    }
    if moving.len() > moving_cap {
        return Err(format!(
            "{} sampled items changed while the copy was made (more than {moving_cap})",
            moving.len()
        ));
    }
    let churn = (moving.len() as u64) << bits;
    let (lo, hi) = (
        before.total().min(after.total()),
        before.total().max(after.total()),
    );
    Ok(Expectation {
        sample_bits: bits,
        stable_items: stable.len() as u64,
        stable_digest: digest_of(stable.iter()),
        moving,
        total_min: lo.saturating_sub(churn),
        total_max: hi.saturating_add(churn),
    })
}

/// Checks a restored copy, read with `Snapshot::fixed(expected.sample_bits)`. The error says
/// what differs, never which item (keys can hold user ids).
pub fn compare(expected: &Expectation, restored: &Snapshot) -> Result<(), String> {
    if restored.sample_bits() != expected.sample_bits {
        return Err("the copy was read with a different sample".into());
    }
    let mut stable = BTreeMap::new();
    let mut seen_moving = 0usize;
    for (key, fingerprint) in restored.entries() {
        match expected.moving.get(&short(&key_hash(&key.0, &key.1))) {
            Some(allowed) => {
                seen_moving += 1;
                if !allowed.contains(&short(fingerprint)) {
                    return Err(
                        "an item that changed during the backup window holds neither state \
                         read around it"
                            .into(),
                    );
                }
            }
            None => {
                stable.insert(key, fingerprint);
            }
        }
    }
    let must_be_present = expected
        .moving
        .values()
        .filter(|allowed| !allowed.iter().any(|s| s == ABSENT))
        .count();
    if seen_moving < must_be_present {
        return Err("an item present in both reads around the backup is missing".into());
    }
    if stable.len() as u64 != expected.stable_items {
        return Err(format!(
            "expected {} unchanged items, found {}",
            expected.stable_items,
            stable.len()
        ));
    }
    if digest_of(stable.into_iter()) != expected.stable_digest {
        return Err("the unchanged items' digest differs".into());
    }
    let total = restored.total();
    if total < expected.total_min || total > expected.total_max {
        return Err(format!(
            "the copy holds {total} items, expected {}..={}",
            expected.total_min, expected.total_max
        ));
    }
    Ok(())
}
