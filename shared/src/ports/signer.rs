//! Signs the audit log's checkpoints (`docs/architecture.md` §5). On AWS the key is a KMS
//! asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`): the private key never leaves KMS. On the
//! embedded store it is a local key file. Either way the signature is ECDSA P-256 over SHA-256,
//! DER-encoded, and the public key is a SubjectPublicKeyInfo that anyone can verify with.
use async_trait::async_trait;

/// The only algorithm checkpoints use; written into every checkpoint so a verifier can refuse
/// anything else.
pub const ALGORITHM: &str = "ECDSA_P256_SHA256";

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum SignerError {
    /// The key service failed or could not be reached. For logs only.
    #[error("signer unavailable: {0}")]
    Unavailable(String),
    /// The key is not a P-256 signing key, or its file is unreadable.
    #[error("signing key unusable: {0}")]
    BadKey(String),
}

#[async_trait]
pub trait Signer: Send + Sync {
    /// Names the key (a KMS key ARN, or `local:` and the public key's fingerprint), recorded
    /// in each checkpoint.
    fn key_id(&self) -> &str;
    /// The DER signature of SHA-256(`message`).
    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// The public key, DER SubjectPublicKeyInfo.
    async fn public_key(&self) -> Result<Vec<u8>, SignerError>;
}
