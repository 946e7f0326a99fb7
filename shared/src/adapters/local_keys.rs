//! A local key file in place of KMS, for the embedded default. The key-encryption key is 32
//! random bytes in a file created with mode 0600 on first run; data keys are wrapped with
//! AES-256-GCM whose associated data is the encryption context, so, as with KMS, a key wrapped
//! for one context does not unwrap under another.
//!
//! Tenants' own key-encryption keys (`local:{32 hex}`) are files of 32 random bytes (0600) in
//! the directory `{key file}.tenants/`; destroying one removes its file. A vault made from a key
//! in memory ([`LocalKeyVault::from_key`], tests) keeps them in memory.
use crate::adapters::fs::create_private_file;
use crate::ports::keys::{DataKey, KeyContext, KeyError, KeyVault, PlainKey};
use crate::ports::random::{Random, RandomExt as _};
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use async_trait::async_trait;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"latchkey/local-kek/v1";

pub struct LocalKeyVault {
    kek: Aes256Gcm,
    random: Arc<dyn Random>,
    tenant_keys: TenantKeys,
}

enum TenantKeys {
    Dir(PathBuf),
    Memory(Mutex<HashMap<String, Zeroizing<[u8; 32]>>>),
}

const TENANT_KEK_PREFIX: &str = "local:";

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
        let mut vault = Self::from_key(&bytes, random)?;
        let mut dir = path.as_os_str().to_owned();
        dir.push(".tenants");
        vault.tenant_keys = TenantKeys::Dir(PathBuf::from(dir));
        Ok(vault)
    }

    pub fn from_key(key: &[u8], random: Arc<dyn Random>) -> Result<Self, KeyError> {
        let kek = Aes256Gcm::new_from_slice(key).map_err(|_| KeyError::Malformed)?;
        Ok(Self {
            kek,
            random,
            tenant_keys: TenantKeys::Memory(Mutex::new(HashMap::new())),
        })
    }

    /// The file name part of a tenant key's name, if it is one of ours.
    fn tenant_key_id(name: &str) -> Result<&str, KeyError> {
        let id = name
            .strip_prefix(TENANT_KEK_PREFIX)
            .ok_or(KeyError::Malformed)?;
        if id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(id)
        } else {
            Err(KeyError::Malformed)
        }
    }

    /// The cipher of `kek` (a tenant key, or the platform key for `None`); a destroyed tenant
    /// key is [`KeyError::Refused`].
    fn cipher(&self, kek: Option<&str>) -> Result<Aes256Gcm, KeyError> {
        let Some(name) = kek else {
            return Ok(self.kek.clone());
        };
        let id = Self::tenant_key_id(name)?;
        let bytes: Zeroizing<Vec<u8>> = match &self.tenant_keys {
            TenantKeys::Dir(dir) => match std::fs::read(dir.join(id)) {
                Ok(b) => Zeroizing::new(b),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(KeyError::Refused);
                }
                Err(e) => return Err(KeyError::Unavailable(format!("tenant key file: {e}"))),
            },
            TenantKeys::Memory(keys) => {
                let keys = keys
                    .lock()
                    .map_err(|_| KeyError::Unavailable("tenant keys".into()))?;
                Zeroizing::new(keys.get(id).ok_or(KeyError::Refused)?.to_vec())
            }
        };
        Aes256Gcm::new_from_slice(&bytes).map_err(|_| KeyError::Malformed)
    }

    fn aad(context: &KeyContext) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        aad.extend_from_slice(&context.canonical_bytes());
        aad
    }
}

#[async_trait]
impl KeyVault for LocalKeyVault {
    async fn generate_data_key(
        &self,
        kek: Option<&str>,
        context: &KeyContext,
    ) -> Result<DataKey, KeyError> {
        let plaintext = Zeroizing::new(self.random.bytes::<32>());
        let nonce = self.random.bytes::<12>();
        let sealed = self
            .cipher(kek)?
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
        kek: Option<&str>,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        let cipher = self.cipher(kek)?;
        let (version, rest) = wrapped.split_first().ok_or(KeyError::Malformed)?;
        if *version != VERSION || rest.len() != 12 + 32 + 16 {
            return Err(KeyError::Malformed);
        }
        let (nonce, sealed) = rest.split_at(12);
        let opened = Zeroizing::new(
            cipher
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

    async fn create_tenant_kek(&self, _tenant_id: &str) -> Result<String, KeyError> {
        let id = self.random.hex_id(16);
        let key = Zeroizing::new(self.random.bytes::<32>());
        match &self.tenant_keys {
            TenantKeys::Dir(dir) => {
                let io = |e: std::io::Error| KeyError::Unavailable(format!("tenant key file: {e}"));
                if !dir.exists() {
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                    builder.create(dir).map_err(io)?;
                }
                create_private_file(&dir.join(&id), key.as_slice()).map_err(io)?;
            }
            TenantKeys::Memory(keys) => {
                keys.lock()
                    .map_err(|_| KeyError::Unavailable("tenant keys".into()))?
                    .insert(id.clone(), key);
            }
        }
        Ok(format!("{TENANT_KEK_PREFIX}{id}"))
    }

    /// Removes the key's file (overwritten first, for file systems that write in place; a
    /// journaling or copy-on-write file system, or a disk backup of the key directory, may
    /// still hold the bytes: keep `{key file}.tenants/` out of backups, as the key file).
    async fn destroy_tenant_kek(&self, kek: &str) -> Result<(), KeyError> {
        let id = Self::tenant_key_id(kek)?;
        match &self.tenant_keys {
            TenantKeys::Dir(dir) => {
                let path = dir.join(id);
                let io = |e: std::io::Error| KeyError::Unavailable(format!("tenant key file: {e}"));
                match std::fs::OpenOptions::new().write(true).open(&path) {
                    Ok(mut f) => {
                        use std::io::Write as _;
                        f.write_all(&[0u8; 32]).map_err(io)?;
                        f.sync_all().map_err(io)?;
                        drop(f);
                        std::fs::remove_file(&path).map_err(io)?;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(e)),
                }
            }
            TenantKeys::Memory(keys) => {
                keys.lock()
                    .map_err(|_| KeyError::Unavailable("tenant keys".into()))?
                    .remove(id);
            }
        }
        Ok(())
    }

    /// The key file was read and checked when the vault was made.
    async fn probe(&self) -> Result<(), KeyError> {
        Ok(())
    }
}
