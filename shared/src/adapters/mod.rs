//! Adapters behind the ports: embedded (SQLite, local key file, local secrets, `.eml` outbox) and
//! AWS (DynamoDB, KMS, Secrets Manager, SES), each behind the cargo feature that links it
//! (`shared/Cargo.toml`), so a Lambda function carries only the clients it calls.
#[cfg(feature = "dynamodb")]
pub mod dynamodb;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_backup;
#[cfg(feature = "embedded")]
pub mod fs;
#[cfg(feature = "kms")]
pub mod kms;
#[cfg(feature = "kms")]
pub mod kms_signer;
#[cfg(feature = "embedded")]
pub mod local_keys;
#[cfg(feature = "embedded")]
pub mod local_secrets;
#[cfg(feature = "embedded")]
pub mod local_signer;
#[cfg(any(feature = "embedded", feature = "ses"))]
pub mod mime;
pub mod no_mail;
#[cfg(feature = "embedded")]
pub mod outbox;
#[cfg(feature = "secretsmanager")]
pub mod secrets_manager;
#[cfg(feature = "ses")]
pub mod ses;
#[cfg(feature = "embedded")]
pub mod sqlite;
#[cfg(feature = "embedded")]
pub mod sqlite_backup;

/// Whether an AWS error code says the deployment is set up wrong, so that retrying cannot
/// help: a missing table, key or secret, a key that is disabled or scheduled for deletion, a
/// permission the role lacks, credentials AWS does not know. Such errors are reported as
/// misconfiguration (in the log and `/health`), not as a passing outage.
#[cfg(any(feature = "dynamodb", feature = "kms", feature = "secretsmanager"))]
pub(crate) fn permanent_aws_error(code: Option<&str>) -> bool {
    matches!(
        code,
        Some(
            "ResourceNotFoundException"
                | "NotFoundException"
                | "AccessDeniedException"
                | "UnrecognizedClientException"
                | "InvalidClientTokenId"
                | "DisabledException"
                | "KMSInvalidStateException"
                | "InvalidKeyUsageException"
                | "DecryptionFailure"
        )
    )
}
