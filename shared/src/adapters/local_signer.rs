//! A local key file in place of the KMS signing key, for the embedded default: a P-256 private
//! key (PKCS#8 PEM) created with mode 0600 on first run. The public key (SubjectPublicKeyInfo)
//! is what `latchkey-admin audit export` hands a customer for offline verification.
use crate::adapters::fs::create_private_file;
use crate::ports::random::{Random, RandomExt as _};
use crate::ports::signer::{Signer, SignerError};
use async_trait::async_trait;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use zeroize::Zeroizing;

pub struct LocalSigner {
    key: SigningKey,
    key_id: String,
}

impl LocalSigner {
    /// Loads the key file at `path`, creating it (0600) with a fresh key if absent.
    pub fn open(path: &Path, random: &dyn Random) -> Result<Self, SignerError> {
        let io = |e: std::io::Error| SignerError::BadKey(format!("signing key file: {e}"));
        if !path.exists() {
            let pem = Self::generate(random)?.to_pkcs8_pem(LineEnding::LF)?;
            match create_private_file(path, pem.as_bytes()) {
                Ok(()) => {}
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(io)?);
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|_| SignerError::BadKey("not a PKCS#8 P-256 private key".into()))?;
        Self::from_key(key)
    }

    /// A fresh key from `random`, kept in memory only (tests).
    pub fn ephemeral(random: &dyn Random) -> Result<Self, SignerError> {
        Self::from_key(Self::generate(random)?)
    }

    fn generate(random: &dyn Random) -> Result<SigningKey, SignerError> {
        // 32 random bytes are a valid scalar unless zero or ≥ n (probability ~2^-32); draw again.
        for _ in 0..8 {
            let bytes = Zeroizing::new(random.bytes::<32>());
            if let Ok(key) = SigningKey::from_slice(bytes.as_slice()) {
                return Ok(key);
            }
        }
        Err(SignerError::BadKey("could not draw a P-256 scalar".into()))
    }

    fn from_key(key: SigningKey) -> Result<Self, SignerError> {
        let spki = key.verifying_key().to_public_key_der()?;
        let key_id = format!(
            "local:{}",
            hex::encode(&Sha256::digest(spki.as_bytes())[..8])
        );
        Ok(Self { key, key_id })
    }
}

impl From<p256::pkcs8::Error> for SignerError {
    fn from(e: p256::pkcs8::Error) -> Self {
        SignerError::BadKey(format!("pkcs8: {e}"))
    }
}

impl From<p256::pkcs8::spki::Error> for SignerError {
    fn from(e: p256::pkcs8::spki::Error) -> Self {
        SignerError::BadKey(format!("spki: {e}"))
    }
}

#[async_trait]
impl Signer for LocalSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let signature: Signature = self.key.sign(message);
        Ok(signature.to_der().as_bytes().to_vec())
    }

    async fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        Ok(self.key.verifying_key().to_public_key_der()?.into_vec())
    }
}
