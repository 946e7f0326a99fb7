//! Named secrets (signing keys, peppers), with the previous version kept during rotation so
//! that what was made under it still verifies.
use async_trait::async_trait;
use zeroize::Zeroizing;

pub type SecretBytes = Zeroizing<Vec<u8>>;

#[derive(Clone)]
pub struct SecretVersions {
    pub current: SecretBytes,
    /// The version before the last rotation, while the backend still has one.
    pub previous: Option<SecretBytes>,
}

impl SecretVersions {
    /// Current first, then previous: the order to try when verifying.
    pub fn candidates(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.current.as_slice()).chain(self.previous.iter().map(|p| p.as_slice()))
    }
}

impl std::fmt::Debug for SecretVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVersions")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SecretsError {
    #[error("secret `{0}` not found")]
    NotFound(String),
    #[error("secret `{0}` is malformed")]
    Malformed(String),
    #[error("secrets unavailable: {0}")]
    Unavailable(String),
    /// The deployment is set up wrong (access denied, the secret's key unusable): retrying
    /// cannot help. For logs, never for clients.
    #[error("secrets misconfigured: {0}")]
    Misconfigured(String),
}

#[async_trait]
pub trait Secrets: Send + Sync {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretsError>;
}
