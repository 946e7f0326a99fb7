//! The composition root: the one module that reads both the configuration and the adapters. It
//! picks the adapters `Config` names, once, at cold start, and hands the domain its
//! [`Services`].
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::dynamodb_backup::DynamoBackups;
use crate::adapters::fs::private_dir;
use crate::adapters::kms::KmsKeyVault;
use crate::adapters::local_keys::LocalKeyVault;
use crate::adapters::local_secrets::LocalSecrets;
use crate::adapters::outbox::Outbox;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::ses::SesMailer;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::sqlite_backup::SqliteBackups;
use crate::config::{Config, KeysConfig, MailConfig, SecretsConfig, StoreConfig};
use crate::domain::backups::BackupPolicy;
use crate::domain::{CachePolicy, Ports, Services};
use crate::http::HttpSettings;
use crate::ports::backup::BackupTarget;
use crate::ports::clock::SystemClock;
use crate::ports::random::OsRandom;
use crate::ports::{Clock, KeyVault, Mailer, Random, Secrets, Store};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("startup: {0}")]
pub struct StartupError(pub String);

/// Builds the adapters `config` names, with the system clock and the OS CSPRNG.
pub async fn services(config: &Config) -> Result<Arc<Services>, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    let aws = if config.uses_aws() {
        Some(aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await)
    } else {
        None
    };
    let embedded = !matches!(
        (&config.store, &config.keys, &config.secrets),
        (
            StoreConfig::DynamoDb { .. },
            KeysConfig::Kms { .. },
            SecretsConfig::SecretsManager { .. }
        )
    );
    if embedded {
        private_dir(&config.data_dir)
            .map_err(|e| StartupError(format!("data dir {}: {e}", config.data_dir.display())))?;
    }
    let missing = || StartupError("AWS configuration was not loaded".into());

    let store: Arc<dyn Store> = match &config.store {
        StoreConfig::Sqlite { path } => {
            Arc::new(SqliteStore::open(path).map_err(|e| StartupError(e.to_string()))?)
        }
        StoreConfig::DynamoDb { table } => Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(aws.as_ref().ok_or_else(missing)?),
            table,
        )),
    };
    let vault: Arc<dyn KeyVault> = match &config.keys {
        KeysConfig::LocalFile { path } => Arc::new(
            LocalKeyVault::open(path, Arc::clone(&random))
                .map_err(|e| StartupError(e.to_string()))?,
        ),
        KeysConfig::Kms { key_id } => Arc::new(KmsKeyVault::new(
            aws_sdk_kms::Client::new(aws.as_ref().ok_or_else(missing)?),
            key_id,
        )),
    };
    let secrets: Arc<dyn Secrets> = match &config.secrets {
        SecretsConfig::Local { file } => Arc::new(LocalSecrets::new(
            config.env_secrets.clone(),
            Some(file.clone()),
            Arc::clone(&random),
        )),
        SecretsConfig::SecretsManager { secret_id } => Arc::new(SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(aws.as_ref().ok_or_else(missing)?),
            secret_id,
            config.secret_cache_ttl,
            Arc::clone(&clock),
        )),
    };
    let mailer: Arc<dyn Mailer> = match &config.mail {
        MailConfig::Outbox { dir, from } => Arc::new(
            Outbox::new(dir, from, Arc::clone(&clock), Arc::clone(&random))
                .map_err(|e| StartupError(format!("outbox {}: {e}", dir.display())))?,
        ),
        MailConfig::Ses { from } => Arc::new(SesMailer::new(
            aws_sdk_sesv2::Client::new(aws.as_ref().ok_or_else(missing)?),
            from,
            Arc::clone(&clock),
        )),
    };
    Ok(Arc::new(Services::new(
        Ports {
            store,
            vault,
            secrets,
            clock,
            random,
            mailer,
        },
        CachePolicy {
            ttl: config.data_key_cache_ttl,
            capacity: config.data_key_cache_size,
        },
        config.anonymous,
    )))
}

/// The HTTP edge's settings (the body limit), from `config`.
pub fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        max_body_bytes: config.max_body_bytes,
    }
}

/// The retention of backup runs, from `config`.
pub fn backup_policy(config: &Config) -> BackupPolicy {
    BackupPolicy {
        retention_days: config.backup.retention_days,
        keep_newest: config.backup.keep_newest,
        ..BackupPolicy::default()
    }
}

/// The backup target for the store `config` names: the DynamoDB table's backups, or copies of
/// the embedded database under `<data dir>/backups`.
pub async fn backup_target(config: &Config) -> Result<Arc<dyn BackupTarget>, StartupError> {
    Ok(match &config.store {
        StoreConfig::Sqlite { path } => Arc::new(SqliteBackups::new(
            path.clone(),
            config.data_dir.join("backups"),
        )),
        StoreConfig::DynamoDb { table } => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            let wait = std::time::Duration::from_secs(
                u64::try_from(config.backup.drill_wait.whole_seconds()).unwrap_or(0),
            );
            Arc::new(DynamoBackups::new(
                aws_sdk_dynamodb::Client::new(&aws),
                table,
                wait,
            ))
        }
    })
}
