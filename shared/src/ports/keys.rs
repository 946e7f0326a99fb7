//! Envelope keys: a key-encryption key that never leaves its vault (KMS, or a local key file)
//! wraps 256-bit data keys, each bound to an encryption context. The field cipher built on this
//! port is in [`crate::crypto`].
use async_trait::async_trait;
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// A 256-bit data key in the clear. Zeroed on drop; never logged, never stored.
pub type PlainKey = Zeroizing<[u8; 32]>;

/// Name-value pairs a wrapped key is bound to. Unwrapping under a different context fails.
/// (KMS logs the context in CloudTrail, so it holds identifiers, never personal data.)
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyContext(pub BTreeMap<String, String>);

impl KeyContext {
    pub fn tenant(tenant_id: &str) -> Self {
        let mut map = BTreeMap::new();
        map.insert("latchkey:tenant".to_owned(), tenant_id.to_owned());
        Self(map)
    }

    /// A stable byte encoding (sorted, length-prefixed) for adapters that authenticate the
    /// context themselves.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in &self.0 {
            for s in [k, v] {
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
        out
    }
}

pub struct DataKey {
    pub plaintext: PlainKey,
    /// The data key encrypted under the vault's key; safe to store.
    pub wrapped: Vec<u8>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// The wrapped key, its context or the ciphertext was not what was sealed.
    #[error("decryption refused")]
    Refused,
    #[error("malformed ciphertext")]
    Malformed,
    /// The vault failed or could not be reached. For logs, never for clients.
    #[error("key vault unavailable: {0}")]
    Unavailable(String),
    /// The deployment is set up wrong (no such key, key disabled, access denied): retrying
    /// cannot help. For logs, never for clients.
    #[error("key vault misconfigured: {0}")]
    Misconfigured(String),
}

/// A key vault: a platform key-encryption key, and one key-encryption key per tenant made on
/// the tenant's creation ([`KeyVault::create_tenant_kek`]) so that destroying it
/// ([`KeyVault::destroy_tenant_kek`]) shreds the tenant: its wrapped data key, wherever a copy
/// of it lies (a backup, an export), never opens again. `kek: None` is the platform key.
#[async_trait]
pub trait KeyVault: Send + Sync {
    async fn generate_data_key(
        &self,
        kek: Option<&str>,
        context: &KeyContext,
    ) -> Result<DataKey, KeyError>;
    async fn decrypt_data_key(
        &self,
        kek: Option<&str>,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError>;
    /// Makes a key-encryption key for one tenant; returns its name (a KMS key ARN, or
    /// `local:…`), stored beside the tenant's wrapped data key.
    async fn create_tenant_kek(&self, tenant_id: &str) -> Result<String, KeyError>;
    /// Destroys a tenant's key-encryption key: nothing wrapped under it unwraps from now on
    /// (KMS: disabled at once, deleted after KMS's shortest waiting period, 7 days).
    async fn destroy_tenant_kek(&self, kek: &str) -> Result<(), KeyError>;
    /// Checks, without using a key, that the vault's key exists and may be used: for the
    /// health check.
    async fn probe(&self) -> Result<(), KeyError>;
}
