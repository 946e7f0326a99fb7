//! A KMS asymmetric key (`ECC_NIST_P256`, usage `SIGN_VERIFY`) signs the audit checkpoints: the
//! private key never leaves KMS. One key serves every tenant (a key costs $1 a month; each
//! checkpoint is one Sign request). The public key is read once and kept.
use crate::ports::signer::{Signer, SignerError};
use async_trait::async_trait;
use aws_sdk_kms::Client;
use aws_sdk_kms::error::DisplayErrorContext;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use tokio::sync::OnceCell;

#[derive(Debug)]
pub struct KmsSigner {
    client: Client,
    key_id: String,
    public_key: OnceCell<Vec<u8>>,
}

impl KmsSigner {
    /// `key_id` should be the key's ARN: it is written into every checkpoint.
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
            public_key: OnceCell::new(),
        }
    }
}

fn unavailable(e: impl std::error::Error + Send + Sync + 'static) -> SignerError {
    SignerError::Unavailable(format!("kms: {}", DisplayErrorContext(e)))
}

#[async_trait]
impl Signer for KmsSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        // RAW: KMS hashes the message itself (up to 4 KiB; a checkpoint is well under 1 KiB).
        let out = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(message))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(unavailable)?;
        out.signature
            .map(Blob::into_inner)
            .ok_or_else(|| SignerError::Unavailable("kms: Sign returned no signature".into()))
    }

    async fn public_key(&self) -> Result<Vec<u8>, SignerError> {
        self.public_key
            .get_or_try_init(|| async {
                let out = self
                    .client
                    .get_public_key()
                    .key_id(&self.key_id)
                    .send()
                    .await
                    .map_err(unavailable)?;
                if !out
                    .signing_algorithms()
                    .contains(&SigningAlgorithmSpec::EcdsaSha256)
                {
                    return Err(SignerError::BadKey(
                        "the KMS key does not sign with ECDSA_SHA_256".into(),
                    ));
                }
                out.public_key
                    .map(Blob::into_inner)
                    .ok_or_else(|| SignerError::BadKey("kms: no public key".into()))
            })
            .await
            .cloned()
    }
}
