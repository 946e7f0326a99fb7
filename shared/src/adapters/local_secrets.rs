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
    lock: Mutex<()>,
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
            lock: Mutex::new(()),
        }
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
        let _guard = self.lock.lock().await;
        let io = |e: std::io::Error| SecretsError::Unavailable(format!("secrets file: {e}"));
        let mut entries: BTreeMap<String, FileEntry> = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|_| SecretsError::Malformed("secrets file".into()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(e)),
        };
        if let Some(entry) = entries.get(name) {
            return Ok(SecretVersions {
                current: decode(name, &entry.current)?,
                previous: entry
                    .previous
                    .as_deref()
                    .map(|p| decode(name, p))
                    .transpose()?,
            });
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
        // Write a new 0600 file beside the old one and rename it over, so a crash never
        // leaves a half-written secrets file.
        let tmp = path.with_extension("json.tmp");
        let _ = std::fs::remove_file(&tmp);
        create_private_file(&tmp, &json).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(SecretVersions {
            current: fresh,
            previous: None,
        })
    }
}
