//! A local key file in place of KMS, for the embedded default. The key-encryption key is 32
//! random bytes in a file created with mode 0600 on first run; data keys are wrapped with
//! AES-256-GCM whose associated data is the encryption context, so, as with KMS, a key wrapped
//! for one context does not unwrap under another.
use crate::adapters::fs::create_private_file;
use crate::ports::keys::{DataKey, KeyContext, KeyError, KeyVault, PlainKey};
use crate::ports::random::{Random, RandomExt as _};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"latchkey/local-kek/v1";

pub struct LocalKeyVault {
    kek: Aes256Gcm,
    random: Arc<dyn Random>,
}

impl LocalKeyVault {
    /// Loads the key file at `path`, creating it (0600) with a fresh key if absent.
    pub fn open(path: &Path, random: Arc<dyn Random>) -> Result<Self, KeyError> {
        let io = |e: std::io::Error| KeyError::Unavailable(format!("key file: {e}"));
        if !path.exists() {
            let key = Zeroizing::new(random.bytes::<32>());
            match create_private_file(path, key.as_slice()) {
                Ok(()) => {}
                // Another process made it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let bytes = Zeroizing::new(std::fs::read(path).map_err(io)?);
        if bytes.len() != 32 {
            return Err(KeyError::Unavailable(
                "key file must hold exactly 32 bytes".into(),
            ));
        }
        Self::from_key(&bytes, random)
    }

    pub fn from_key(key: &[u8], random: Arc<dyn Random>) -> Result<Self, KeyError> {
        let kek = Aes256Gcm::new_from_slice(key).map_err(|_| KeyError::Malformed)?;
        Ok(Self { kek, random })
    }

    fn aad(context: &KeyContext) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        aad.extend_from_slice(&context.canonical_bytes());
        aad
    }
}

#[async_trait]
impl KeyVault for LocalKeyVault {
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let plaintext = Zeroizing::new(self.random.bytes::<32>());
        let nonce = self.random.bytes::<12>();
        let sealed = self
            .kek
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_slice(),
                    aad: &Self::aad(context),
                },
            )
            .map_err(|_| KeyError::Malformed)?;
        let mut wrapped = Vec::with_capacity(1 + nonce.len() + sealed.len());
        wrapped.push(VERSION);
        wrapped.extend_from_slice(&nonce);
        wrapped.extend_from_slice(&sealed);
        Ok(DataKey { plaintext, wrapped })
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        let (version, rest) = wrapped.split_first().ok_or(KeyError::Malformed)?;
        if *version != VERSION || rest.len() != 12 + 32 + 16 {
            return Err(KeyError::Malformed);
        }
        let (nonce, sealed) = rest.split_at(12);
        let opened = Zeroizing::new(
            self.kek
                .decrypt(
                    Nonce::from_slice(nonce),
                    Payload {
                        msg: sealed,
                        aad: &Self::aad(context),
                    },
                )
                .map_err(|_| KeyError::Refused)?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&opened);
        Ok(key)
    }

    /// The key file was read and checked when the vault was made.
    async fn probe(&self) -> Result<(), KeyError> {
        Ok(())
    }
}
