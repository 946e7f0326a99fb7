//! Adapters behind the ports: embedded (SQLite, local key file, local secrets) and AWS
//! (DynamoDB, KMS, Secrets Manager).
pub mod dynamodb;
pub mod fs;
pub mod kms;
pub mod local_keys;
pub mod local_secrets;
pub mod secrets_manager;
pub mod sqlite;
