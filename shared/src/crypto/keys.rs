//! Purpose keys derived from the deployment's root secret.
//!
//! Secrets Manager holds one generated `root` value (see `template.yaml`); each use (token
//! signing, the API-key pepper, the blind index) gets its own key by HKDF-SHA256 with a purpose
//! label, so one leaked purpose key reveals nothing about the others. During a rotation the
//! previous root still derives the previous keys, so tokens signed and hashes made before it
//! still verify.
use crate::ports::secrets::{SecretBytes, Secrets, SecretsError};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// The secret every purpose key is derived from.
pub const ROOT_SECRET: &str = "root";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Signs the short-lived tokens track returns.
    TokenSigning,
    /// Keys the hash of API-key secrets, so a stolen table cannot be brute-forced offline.
    ApiKeyPepper,
    /// Keys the blind index used to find a user by email without storing it in the clear.
    BlindIndex,
    /// Keys the hash of one-time codes.
    OtpPepper,
    /// Keys the hash of operator bearer tokens (`lko_...`, status page writes).
    OperatorTokenPepper,
    /// Seals the keyring (the older root generations kept for keyed hashes made under them).
    KeyringSeal,
    /// Keys the hash of the management plane's credentials: session cookies (`lks_…`),
    /// invites (`lki_…`) and management keys (`lkm_…`).
    AdminCredentialPepper,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::TokenSigning => b"latchkey/v1/token-signing",
            Purpose::ApiKeyPepper => b"latchkey/v1/api-key-pepper",
            Purpose::BlindIndex => b"latchkey/v1/blind-index",
            Purpose::OtpPepper => b"latchkey/v1/otp-pepper",
            Purpose::OperatorTokenPepper => b"latchkey/v1/operator-token-pepper",
            Purpose::KeyringSeal => b"latchkey/v1/keyring-seal",
            Purpose::AdminCredentialPepper => b"latchkey/v1/admin-credential-pepper",
        }
    }

    /// Whether stored values are keyed hashes under this purpose's key, which must keep
    /// verifying under any older root generation (the keyring). Token signing is not: tokens
    /// live minutes, and only the current and previous roots sign or verify them.
    pub fn keys_stored_hashes(self) -> bool {
        matches!(
            self,
            Purpose::ApiKeyPepper
                | Purpose::BlindIndex
                | Purpose::OtpPepper
                | Purpose::OperatorTokenPepper
                | Purpose::AdminCredentialPepper
        )
    }
}

/// A root secret's generation: a public name for it (16 hex digits of an HMAC of a fixed
/// label), the same in every process, so records can say which root they were made under.
pub fn generation_id(root: &[u8]) -> String {
    let key = derive(&Zeroizing::new(root.to_vec()), Purpose::KeyringSeal);
    crate::crypto::hex(&mac(&key, b"latchkey/v1/generation-id")[..8])
}

pub type PurposeKey = Zeroizing<[u8; 32]>;

/// The current and, during a rotation, previous key for one purpose.
pub struct PurposeKeys {
    pub current: PurposeKey,
    pub previous: Option<PurposeKey>,
}

impl PurposeKeys {
    /// HMAC-SHA256 of `data` under the current key.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        mac(&self.current, data)
    }

    /// Whether `tag` is the HMAC of `data` under the current or the previous key, compared in
    /// constant time.
    pub fn verify(&self, data: &[u8], tag: &[u8]) -> bool {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .any(|key| tag_matches(key, data, tag))
    }
}

/// Whether `tag` is the HMAC of `data` under `key` (the HMAC crate's constant-time check).
pub fn tag_matches(key: &[u8; 32], data: &[u8], tag: &[u8]) -> bool {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    m.update(data);
    m.verify_slice(tag).is_ok()
}

/// HMAC-SHA256 of `data` under one purpose key.
pub fn mac(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length; a 32-byte key cannot be refused.
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key) else {
        return [0u8; 32];
    };
    m.update(data);
    m.finalize().into_bytes().into()
}

pub fn derive(root: &SecretBytes, purpose: Purpose) -> PurposeKey {
    let mut out = Zeroizing::new([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = Hkdf::<Sha256>::new(None, root).expand(purpose.label(), out.as_mut_slice());
    out
}

/// Derives the keys for `purpose` from the root secret in `secrets`.
pub async fn purpose_keys(
    secrets: &dyn Secrets,
    purpose: Purpose,
) -> Result<PurposeKeys, SecretsError> {
    let root = secrets.get(ROOT_SECRET).await?;
    Ok(PurposeKeys {
        current: derive(&root.current, purpose),
        previous: root.previous.as_ref().map(|p| derive(p, purpose)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_get_different_keys_and_previous_still_verifies() {
        let old = Zeroizing::new(b"old root".to_vec());
        let new = Zeroizing::new(b"new root".to_vec());
        let a = derive(&new, Purpose::TokenSigning);
        let b = derive(&new, Purpose::ApiKeyPepper);
        assert_ne!(a, b);
        let before = PurposeKeys {
            current: derive(&old, Purpose::ApiKeyPepper),
            previous: None,
        };
        let tag = before.mac(b"secret");
        let after = PurposeKeys {
            current: derive(&new, Purpose::ApiKeyPepper),
            previous: Some(derive(&old, Purpose::ApiKeyPepper)),
        };
        assert!(after.verify(b"secret", &tag));
        assert!(!after.verify(b"other", &tag));
        let later = PurposeKeys {
            current: derive(&new, Purpose::ApiKeyPepper),
            previous: None,
        };
        assert!(!later.verify(b"secret", &tag));
    }
}
