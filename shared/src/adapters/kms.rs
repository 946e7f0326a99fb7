//! AWS KMS as the key vault: data keys from GenerateDataKey, unwrapped with Decrypt, both under
//! the tenant's encryption context so a key wrapped for one tenant never opens for another.
use crate::ports::keys::{DataKey, KeyContext, KeyError, KeyVault, PlainKey};
use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, KeyState};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// The tag on every tenant key naming the platform key it serves: the functions' IAM policies
/// admit tenant keys by it (`aws:ResourceTag/latchkey:platform-key`).
pub const TENANT_KEY_TAG: &str = "latchkey:platform-key";

#[derive(Clone, Debug)]
pub struct KmsKeyVault {
    client: Client,
    key_id: String,
}

impl KmsKeyVault {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }
}

fn context_map(context: &KeyContext) -> HashMap<String, String> {
    context
        .0
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a tenant key is already disabled, scheduled for deletion or deleted.
fn gone(e: &impl ProvideErrorMetadata) -> bool {
    matches!(
        e.code(),
        Some("KMSInvalidStateException" | "NotFoundException")
    )
}

/// A KMS failure as a [`KeyError`]: misconfiguration when retrying cannot help.
fn kms_error<E, R>(e: SdkError<E, R>) -> KeyError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let permanent = super::permanent_aws_error(e.code());
    let message = format!("kms: {}", DisplayErrorContext(e));
    if permanent {
        KeyError::Misconfigured(message)
    } else {
        KeyError::Unavailable(message)
    }
}

fn plain_key(bytes: &[u8]) -> Result<PlainKey, KeyError> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != key.len() {
        return Err(KeyError::Malformed);
    }
    key.copy_from_slice(bytes);
    Ok(key)
}

#[async_trait]
impl KeyVault for KmsKeyVault {
    async fn generate_data_key(
        &self,
        kek: Option<&str>,
        context: &KeyContext,
    ) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(kek.unwrap_or(&self.key_id))
            .key_spec(DataKeySpec::Aes256)
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await
            .map_err(kms_error)?;
        let plaintext = out.plaintext.ok_or(KeyError::Malformed)?;
        let wrapped = out.ciphertext_blob.ok_or(KeyError::Malformed)?;
        Ok(DataKey {
            plaintext: plain_key(&Zeroizing::new(plaintext.into_inner()))?,
            wrapped: wrapped.into_inner(),
        })
    }

    async fn decrypt_data_key(
        &self,
        kek: Option<&str>,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        let result = self
            .client
            .decrypt()
            .key_id(kek.unwrap_or(&self.key_id))
            .ciphertext_blob(Blob::new(wrapped))
            .set_encryption_context(Some(context_map(context)))
            .send()
            .await;
        match result {
            Ok(out) => {
                let plaintext = out.plaintext.ok_or(KeyError::Malformed)?;
                plain_key(&Zeroizing::new(plaintext.into_inner()))
            }
            Err(e)
                if e.as_service_error().is_some_and(|e| {
                    e.is_invalid_ciphertext_exception() || e.is_incorrect_key_exception()
                }) =>
            {
                Err(KeyError::Refused)
            }
            // A tenant's own key that was destroyed (disabled, pending deletion, gone): the
            // tenant is shredded, which is no misconfiguration of the deployment.
            Err(e)
                if kek.is_some()
                    && e.as_service_error().is_some_and(|e| {
                        e.is_disabled_exception()
                            || e.is_kms_invalid_state_exception()
                            || e.is_not_found_exception()
                    }) =>
            {
                Err(KeyError::Refused)
            }
            Err(e) => Err(kms_error(e)),
        }
    }

    /// `CreateKey` (symmetric), tagged with the platform key it serves (the functions' IAM
    /// policies admit tenant keys by that tag) and the tenant.
    async fn create_tenant_kek(&self, tenant_id: &str) -> Result<String, KeyError> {
        let tag = |k: &str, v: &str| {
            aws_sdk_kms::types::Tag::builder()
                .tag_key(k)
                .tag_value(v)
                .build()
                .map_err(|e| KeyError::Unavailable(format!("kms: tag: {e}")))
        };
        let out = self
            .client
            .create_key()
            .description(format!("Latchkey tenant {tenant_id}: wraps its data key"))
            .key_spec(aws_sdk_kms::types::KeySpec::SymmetricDefault)
            .key_usage(aws_sdk_kms::types::KeyUsageType::EncryptDecrypt)
            .tags(tag(TENANT_KEY_TAG, &self.key_id)?)
            .tags(tag("latchkey:tenant", tenant_id)?)
            .send()
            .await
            .map_err(kms_error)?;
        out.key_metadata
            .and_then(|m| m.arn)
            .ok_or(KeyError::Malformed)
    }

    /// `DisableKey` (nothing decrypts under it from now on), then `ScheduleKeyDeletion` with
    /// KMS's shortest waiting period. An already disabled or scheduled key is as good.
    async fn destroy_tenant_kek(&self, kek: &str) -> Result<(), KeyError> {
        // The key id (the ARN's last part): KMS takes either for a key of this account, moto
        // only the id for these two calls.
        let kek = kek.rsplit('/').next().unwrap_or(kek);
        match self.client.disable_key().key_id(kek).send().await {
            Ok(_) => {}
            Err(e) if gone(&e) => {}
            Err(e) => return Err(kms_error(e)),
        }
        match self
            .client
            .schedule_key_deletion()
            .key_id(kek)
            .pending_window_in_days(7)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if gone(&e) => Ok(()),
            Err(e) => Err(kms_error(e)),
        }
    }

    /// `DescribeKey`: the key exists, this role may see it, and it is enabled.
    async fn probe(&self) -> Result<(), KeyError> {
        let out = self
            .client
            .describe_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(kms_error)?;
        match out.key_metadata.and_then(|m| m.key_state) {
            Some(KeyState::Enabled) => Ok(()),
            state => Err(KeyError::Misconfigured(format!(
                "kms: the key is not enabled (state {state:?})"
            ))),
        }
    }
}
