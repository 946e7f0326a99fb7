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
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.key_id)
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
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        let result = self
            .client
            .decrypt()
            .key_id(&self.key_id)
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
