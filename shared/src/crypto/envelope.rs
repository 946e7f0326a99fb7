//! Envelope encryption of individual fields.
//!
//! Each tenant has one data key, wrapped by the vault under the context `{latchkey:tenant: id}`
//! and stored with the tenant. A field is sealed as
//! `base64url(0x01 ‖ nonce(12) ‖ AES-256-GCM(data key, nonce, value, aad))`, where the associated
//! data binds the value to its tenant, item and field: a sealed email copied to another user,
//! another field or another tenant does not open. Unwrapped data keys are cached in memory for a
//! bounded time and count, so a warm function makes no KMS call per request; deleting the
//! tenant's wrapped key shreds every field sealed under it.
use crate::ports::clock::Clock;
use crate::ports::keys::{KeyContext, KeyError, KeyVault, PlainKey};
use crate::ports::random::{Random, RandomExt as _};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

const FORMAT: u8 = 1;
const AAD_LABEL: &[u8] = b"latchkey/field/v1";

/// A tenant's data key as the vault wrapped it; safe to store, useless without the vault.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub tenant_id: String,
    pub bytes: Vec<u8>,
    /// The tenant's own key-encryption key it is wrapped under (`None`: the platform key, for
    /// tenants made before tenants had their own).
    pub kek: Option<String>,
}

impl std::fmt::Debug for WrappedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WrappedKey({}, {} bytes)",
            self.tenant_id,
            self.bytes.len()
        )
    }
}

impl WrappedKey {
    pub fn encoded(&self) -> String {
        URL_SAFE_NO_PAD.encode(&self.bytes)
    }

    pub fn decode(tenant_id: &str, encoded: &str, kek: Option<&str>) -> Result<Self, KeyError> {
        Ok(Self {
            tenant_id: tenant_id.to_owned(),
            bytes: URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| KeyError::Malformed)?,
            kek: kek.map(str::to_owned),
        })
    }
}

/// Where a sealed value belongs. All three are bound into the ciphertext.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    pub tenant_id: &'a str,
    pub item: &'a str,
    pub field: &'a str,
}

impl FieldContext<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        for part in [self.tenant_id, self.item, self.field] {
            aad.extend_from_slice(&(part.len() as u32).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

struct CacheEntry {
    key: PlainKey,
    loaded_at: OffsetDateTime,
}

/// Unwrapped data keys by the hash of their wrapped form, bounded in age and count.
struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], CacheEntry>>,
}

impl KeyCache {
    fn get(&self, id: &[u8; 32], now: OffsetDateTime) -> Option<PlainKey> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(id)
            .filter(|e| now - e.loaded_at < self.ttl)
            .map(|e| e.key.clone())
    }

    fn remove(&self, id: &[u8; 32]) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(id);
    }

    fn insert(&self, id: [u8; 32], key: PlainKey, now: OffsetDateTime) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, e| now - e.loaded_at < self.ttl);
        while entries.len() >= self.capacity {
            let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.loaded_at)
                .map(|(id, _)| *id)
            else {
                break;
            };
            entries.remove(&oldest);
        }
        entries.insert(
            id,
            CacheEntry {
                key,
                loaded_at: now,
            },
        );
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SealError {
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The value did not open: wrong tenant, item, field or key, or it was altered.
    #[error("sealed value refused")]
    Refused,
    #[error("sealed value malformed")]
    Malformed,
}

pub struct Envelope {
    vault: Arc<dyn KeyVault>,
    random: Arc<dyn Random>,
    clock: Arc<dyn Clock>,
    cache: KeyCache,
}

impl Envelope {
    pub fn new(
        vault: Arc<dyn KeyVault>,
        random: Arc<dyn Random>,
        clock: Arc<dyn Clock>,
        cache_ttl: Duration,
        cache_capacity: usize,
    ) -> Self {
        Self {
            vault,
            random,
            clock,
            cache: KeyCache {
                ttl: cache_ttl,
                capacity: cache_capacity,
                entries: Mutex::new(HashMap::new()),
            },
        }
    }

    /// Destroys the tenant's own key-encryption key and drops the data key from this process's
    /// cache: nothing sealed under `wrapped` opens again here, and nowhere once other
    /// processes' caches (at most the cache's time to live) have let it go.
    pub async fn shred(&self, wrapped: &WrappedKey) -> Result<bool, SealError> {
        // Destroyed first, then forgotten: a request racing this one cannot cache it again.
        let destroyed = match &wrapped.kek {
            Some(kek) => {
                self.vault.destroy_tenant_kek(kek).await?;
                true
            }
            None => false,
        };
        self.cache.remove(&cache_id(wrapped));
        Ok(destroyed)
    }

    /// A new data key for `tenant_id`, wrapped for storage (and cached unwrapped).
    pub async fn new_tenant_key(&self, tenant_id: &str) -> Result<WrappedKey, SealError> {
        let kek = self.vault.create_tenant_kek(tenant_id).await?;
        let key = self
            .vault
            .generate_data_key(Some(&kek), &KeyContext::tenant(tenant_id))
            .await?;
        let wrapped = WrappedKey {
            tenant_id: tenant_id.to_owned(),
            bytes: key.wrapped,
            kek: Some(kek),
        };
        self.cache
            .insert(cache_id(&wrapped), key.plaintext, self.clock.now());
        Ok(wrapped)
    }

    async fn plain_key(&self, wrapped: &WrappedKey) -> Result<PlainKey, SealError> {
        let id = cache_id(wrapped);
        let now = self.clock.now();
        if let Some(key) = self.cache.get(&id, now) {
            return Ok(key);
        }
        let key = self
            .vault
            .decrypt_data_key(
                wrapped.kek.as_deref(),
                &wrapped.bytes,
                &KeyContext::tenant(&wrapped.tenant_id),
            )
            .await?;
        self.cache.insert(id, key.clone(), now);
        Ok(key)
    }

    pub async fn seal(
        &self,
        key: &WrappedKey,
        at: FieldContext<'_>,
        value: &[u8],
    ) -> Result<String, SealError> {
        if key.tenant_id != at.tenant_id {
            return Err(SealError::Refused);
        }
        let plain = self.plain_key(key).await?;
        Ok(seal_with(&plain, &self.random.bytes::<12>(), at, value))
    }

    pub async fn open(
        &self,
        key: &WrappedKey,
        at: FieldContext<'_>,
        sealed: &str,
    ) -> Result<Vec<u8>, SealError> {
        if key.tenant_id != at.tenant_id {
            return Err(SealError::Refused);
        }
        let plain = self.plain_key(key).await?;
        open_with(&plain, at, sealed)
    }
}

/// The cache key names the tenant as well as the wrapped bytes: a wrapped key copied into
/// another tenant's record must not open from a warm cache when the vault would refuse it cold.
fn cache_id(wrapped: &WrappedKey) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((wrapped.tenant_id.len() as u32).to_be_bytes());
    h.update(wrapped.tenant_id.as_bytes());
    h.update(&wrapped.bytes);
    h.finalize().into()
}

/// The format, separate from key management so fixed vectors can pin it.
pub fn seal_with(key: &PlainKey, nonce: &[u8; 12], at: FieldContext<'_>, value: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.as_slice().into());
    // AES-GCM encryption with a 32-byte key and 12-byte nonce fails only past 64 GiB.
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: value,
                aad: &at.aad(),
            },
        )
        .unwrap_or_default();
    let mut out = Vec::with_capacity(1 + nonce.len() + sealed.len());
    out.push(FORMAT);
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

pub fn open_with(key: &PlainKey, at: FieldContext<'_>, sealed: &str) -> Result<Vec<u8>, SealError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| SealError::Malformed)?;
    let (format, rest) = bytes.split_first().ok_or(SealError::Malformed)?;
    if *format != FORMAT || rest.len() < 12 + 16 {
        return Err(SealError::Malformed);
    }
    let (nonce, body) = rest.split_at(12);
    Aes256Gcm::new(key.as_slice().into())
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: body,
                aad: &at.aad(),
            },
        )
        .map_err(|_| SealError::Refused)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zeroize::Zeroizing;

    fn at<'a>(tenant_id: &'a str, field: &'a str) -> FieldContext<'a> {
        FieldContext {
            tenant_id,
            item: "U#alice",
            field,
        }
    }

    // NIST SP 800-38D / McGrew-Viega GCM test case 16 (AES-256, 96-bit IV, with AAD): pins the
    // primitive under our format to the standard.
    #[test]
    fn aes_256_gcm_matches_the_gcm_spec_vector() {
        let key = hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308");
        let iv = hex("cafebabefacedbaddecaf888");
        let pt = hex(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
        );
        let aad = hex("feedfacedeadbeeffeedfacedeadbeefabaddad2");
        let expected = hex(
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad2df5d4b5b1a8c4b5e6a6dfbb1f5b6d32",
        );
        let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
        let out = cipher
            .encrypt(
                Nonce::from_slice(&iv),
                Payload {
                    msg: &pt,
                    aad: &aad,
                },
            )
            .unwrap();
        // ciphertext ‖ tag (tag 76fc6ece0f4e1768cddf8853bb2d551b)
        assert_eq!(&out[..pt.len()], &expected[..pt.len()]);
        assert_eq!(
            hex_str(&out[pt.len()..]),
            "76fc6ece0f4e1768cddf8853bb2d551b"
        );
    }

    // Our own format, pinned: a change to the layout or the associated data breaks this test
    // (and would make every stored value unreadable).
    #[test]
    fn field_format_matches_fixed_vector() {
        let key = Zeroizing::new([7u8; 32]);
        let nonce = [9u8; 12];
        let sealed = seal_with(&key, &nonce, at("t1", "email"), b"jane@example.com");
        assert_eq!(sealed, FIXED_VECTOR);
        assert_eq!(
            open_with(&key, at("t1", "email"), FIXED_VECTOR).unwrap(),
            b"jane@example.com"
        );
    }

    // Computed independently with Python's `cryptography` AESGCM over the same key, nonce and
    // associated data (label, then each of tenant/item/field as u32-BE length + bytes).
    const FIXED_VECTOR: &str = "AQkJCQkJCQkJCQkJCU3k6vH-lbkAzRKnXciJzLJ2YOxEu1ruOXt2WBoGS2Vb";

    #[test]
    fn a_value_does_not_open_in_another_place() {
        let key = Zeroizing::new([7u8; 32]);
        let sealed = seal_with(&key, &[1u8; 12], at("t1", "email"), b"v");
        assert_eq!(
            open_with(&key, at("t2", "email"), &sealed),
            Err(SealError::Refused)
        );
        assert_eq!(
            open_with(&key, at("t1", "phone"), &sealed),
            Err(SealError::Refused)
        );
        let other_item = FieldContext {
            tenant_id: "t1",
            item: "U#bob",
            field: "email",
        };
        assert_eq!(
            open_with(&key, other_item, &sealed),
            Err(SealError::Refused)
        );
        assert_eq!(
            open_with(&key, at("t1", "email"), "AQ"),
            Err(SealError::Malformed)
        );
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn hex_str(b: &[u8]) -> String {
        b.iter().map(|b| format!("{b:02x}")).collect()
    }
}
