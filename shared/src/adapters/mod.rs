//! Adapters behind the ports: embedded (SQLite, local key file, local secrets) and AWS
//! (DynamoDB, KMS, Secrets Manager).
pub mod dynamodb;
pub mod dynamodb_backup;
pub mod fs;
pub mod kms;
pub mod kms_signer;
pub mod local_keys;
pub mod local_secrets;
pub mod local_signer;
pub mod mime;
pub mod outbox;
pub mod secrets_manager;
pub mod ses;
pub mod sqlite;
pub mod sqlite_backup;
