//! Secrets whose root the test rotates, as Secrets Manager does: the current value becomes the
//! previous one (AWSPREVIOUS), the one before is gone.
use async_trait::async_trait;
use latchkey::crypto::keys::ROOT_SECRET;
use latchkey::ports::Secrets;
use latchkey::ports::secrets::{SecretVersions, SecretsError};
use std::sync::Mutex;
use zeroize::Zeroizing;

pub struct RotatingSecrets {
    versions: Mutex<SecretVersions>,
}

impl RotatingSecrets {
    pub fn new(root: &[u8]) -> Self {
        Self {
            versions: Mutex::new(SecretVersions {
                current: Zeroizing::new(root.to_vec()),
                previous: None,
            }),
        }
    }

    /// `root` becomes current; the current one becomes previous; the previous one is dropped.
    pub fn rotate(&self, root: &[u8]) {
        let mut v = self.versions.lock().unwrap();
        let old = std::mem::replace(&mut v.current, Zeroizing::new(root.to_vec()));
        v.previous = Some(old);
    }
}

#[async_trait]
impl Secrets for RotatingSecrets {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretsError> {
        if name != ROOT_SECRET {
            return Err(SecretsError::NotFound(name.to_owned()));
        }
        Ok(self.versions.lock().unwrap().clone())
    }
}
