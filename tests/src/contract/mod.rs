//! Port contracts, one module per port. Each is written once, against the port alone, and run
//! on every adapter of that port by its `*_contract_tests!` macro: on the embedded adapters by
//! the `contracts` test binary, on the AWS adapters (moto) by the `aws` binary.
//!
//! | port | contract | adapters |
//! |---|---|---|
//! | `Store` | [`store`] | SQLite, DynamoDB |
//! | `KeyVault` | [`keys`] | local key file, KMS |
//! | `Secrets` | [`secrets`] | local secrets file, Secrets Manager |
//! | `Mailer` | [`mailer`] | `.eml` outbox, memory outbox, SES |
//! | `BackupTarget` | [`backup`] | SQLite files, DynamoDB backups |
//! | the audit journal, on a `Store` | [`audit`] | SQLite, DynamoDB |
pub mod audit;
pub mod backup;
pub mod keys;
pub mod mailer;
pub mod secrets;
pub mod store;
