//! Local secrets for the embedded default: `LATCHKEY_LOCAL_SECRET_<NAME>` from the environment when
//! set (read once, at start), else a 0600 JSON file in the data folder holding, per name, a
//! current and an optional previous value (base64). A name asked for and found nowhere gets a
//! fresh 32-byte random value, written to the file, so a first run needs no setup.
use crate::adapters::fs::create_private_file;
use crate::ports::random::{Random, RandomExt as _};
use crate::ports::secrets::{SecretVersions, Secrets, SecretsError};
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

#[derive(Serialize, Deserialize, Default)]
struct FileEntry {
    current: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<String>,
}

pub struct LocalSecrets {
    env: BTreeMap<String, Zeroizing<Vec<u8>>>,
    file: Option<PathBuf>,
    random: Arc<dyn Random>,
    /// What this process has read or made; the file is read once per name, not per request.
    /// (An operator who edits the file restarts the process.)
    cache: Mutex<BTreeMap<String, SecretVersions>>,
}

impl LocalSecrets {
    /// `env` holds the `LATCHKEY_LOCAL_SECRET_*` variables, `file` where generated secrets live.
    pub fn new(
        env: BTreeMap<String, Zeroizing<Vec<u8>>>,
        file: Option<PathBuf>,
        random: Arc<dyn Random>,
    ) -> Self {
        Self {
            env,
            file,
            random,
            cache: Mutex::new(BTreeMap::new()),
        }
    }

    /// Secrets holding only `root` as the root secret, as if `LATCHKEY_LOCAL_SECRET_ROOT` were
    /// set to it, and no file: for tests and benchmarks.
    pub fn with_root(root: &[u8], random: Arc<dyn Random>) -> Self {
        Self::new(
            BTreeMap::from([(Self::env_name("root"), Zeroizing::new(root.to_vec()))]),
            None,
            random,
        )
    }

    fn env_name(name: &str) -> String {
        format!(
            "LATCHKEY_LOCAL_SECRET_{}",
            name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

fn decode(name: &str, v: &str) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    STANDARD
        .decode(v)
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::Malformed(name.to_owned()))
}

#[async_trait]
impl Secrets for LocalSecrets {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretsError> {
        if let Some(value) = self.env.get(&Self::env_name(name)) {
            return Ok(SecretVersions {
                current: value.clone(),
                previous: None,
            });
        }
        let Some(path) = &self.file else {
            return Err(SecretsError::NotFound(name.to_owned()));
        };
        let mut cache = self.cache.lock().await;
        if let Some(hit) = cache.get(name) {
            return Ok(hit.clone());
        }
        let io = |e: std::io::Error| SecretsError::Unavailable(format!("secrets file: {e}"));
        // Two tries: a first start racing another process for the new file reads theirs.
        for _ in 0..2 {
            let (mut entries, existed) = read_file(path)?;
            if let Some(entry) = entries.get(name) {
                let versions = SecretVersions {
                    current: decode(name, &entry.current)?,
                    previous: entry
                        .previous
                        .as_deref()
                        .map(|p| decode(name, p))
                        .transpose()?,
                };
                cache.insert(name.to_owned(), versions.clone());
                return Ok(versions);
            }
            let fresh = Zeroizing::new(self.random.bytes::<32>().to_vec());
            entries.insert(
                name.to_owned(),
                FileEntry {
                    current: STANDARD.encode(fresh.as_slice()),
                    previous: None,
                },
            );
            let json = Zeroizing::new(
                serde_json::to_vec_pretty(&entries)
                    .map_err(|_| SecretsError::Malformed("secrets file".into()))?,
            );
            // Write a new 0600 file beside the old one, then move it in place whole, so a crash
            // never leaves a half-written file. A new file is linked in only if still absent,
            // so two processes starting at once cannot each keep a different secret.
            let tmp = path.with_extension(format!("json.{}.tmp", self.random.hex_id(8)));
            create_private_file(&tmp, &json).map_err(io)?;
            let placed = if existed {
                std::fs::rename(&tmp, path)
            } else {
                std::fs::hard_link(&tmp, path)
            };
            // Gone already after a rename; otherwise the link (or a failure) left it behind.
            let _ = std::fs::remove_file(&tmp);
            match placed {
                Ok(()) => {
                    let versions = SecretVersions {
                        current: fresh,
                        previous: None,
                    };
                    cache.insert(name.to_owned(), versions.clone());
                    return Ok(versions);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io(e)),
            }
        }
        Err(SecretsError::Unavailable(
            "secrets file kept changing".into(),
        ))
    }
}

fn read_file(path: &std::path::Path) -> Result<(BTreeMap<String, FileEntry>, bool), SecretsError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(|entries| (entries, true))
            .map_err(|_| SecretsError::Malformed("secrets file".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((BTreeMap::new(), false)),
        Err(e) => Err(SecretsError::Unavailable(format!("secrets file: {e}"))),
    }
}
