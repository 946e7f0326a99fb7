//! The composition root: the one module that reads both the configuration and the adapters. It
//! picks the adapters `Config` names, once, at cold start, and hands the domain its
//! [`Services`].
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::dynamodb_backup::DynamoBackups;
use crate::adapters::fs::private_dir;
use crate::adapters::kms::KmsKeyVault;
use crate::adapters::kms_signer::KmsSigner;
use crate::adapters::local_keys::LocalKeyVault;
use crate::adapters::local_secrets::LocalSecrets;
use crate::adapters::local_signer::LocalSigner;
use crate::adapters::outbox::Outbox;
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::ses::SesMailer;
use crate::adapters::sqlite::SqliteStore;
use crate::adapters::sqlite_backup::SqliteBackups;
use crate::config::{Config, KeysConfig, MailConfig, SecretsConfig, SigningConfig, StoreConfig};
use crate::domain::audit::EVENT_SK_PREFIX;
use crate::domain::audit::seal::{SealPolicy, Sealer};
use crate::domain::backups::BackupPolicy;
use crate::domain::{CachePolicy, Ports, Services};
use crate::http::HttpSettings;
use crate::ports::backup::BackupTarget;
use crate::ports::clock::SystemClock;
use crate::ports::random::OsRandom;
use crate::ports::{Clock, Feed, KeyVault, Mailer, Random, Secrets, Signer, Store};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
#[error("startup: {0}")]
pub struct StartupError(pub String);

/// What a process runs on: the domain's services and, on the embedded store, the store's change
/// feed for the audit sealer (on DynamoDB the table's stream drives the sealer function).
pub struct Built {
    pub services: Arc<Services>,
    pub feed: Option<Arc<dyn Feed>>,
}

/// Builds the adapters `config` names, with the system clock and the OS CSPRNG.
pub async fn services(config: &Config) -> Result<Arc<Services>, StartupError> {
    Ok(build(config).await?.services)
}

/// The audit sealer on the adapters `config` names: the KMS signing key or the local key file.
pub async fn sealer(config: &Config, services: &Services) -> Result<Sealer, StartupError> {
    let signer: Arc<dyn Signer> = match &config.signing {
        SigningConfig::LocalFile { path } => Arc::new(
            LocalSigner::open(path, &*services.random).map_err(|e| StartupError(e.to_string()))?,
        ),
        SigningConfig::Kms { key_id } => {
            let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
            Arc::new(KmsSigner::new(aws_sdk_kms::Client::new(&aws), key_id))
        }
    };
    Ok(Sealer::new(
        Arc::clone(&services.store),
        Arc::clone(&services.clock),
        Arc::clone(&services.random),
        signer,
        SealPolicy::default(),
    ))
}

/// [`services`], with the embedded store's change feed.
pub async fn build(config: &Config) -> Result<Built, StartupError> {
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

    let (store, feed): (Arc<dyn Store>, Option<Arc<dyn Feed>>) = match &config.store {
        StoreConfig::Sqlite { path } => {
            let store = SqliteStore::open(path)
                .map_err(|e| StartupError(e.to_string()))?
                .with_feed(EVENT_SK_PREFIX);
            let feed: Arc<dyn Feed> = Arc::new(store.feed());
            (Arc::new(store), Some(feed))
        }
        StoreConfig::DynamoDb { table } => (
            Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(aws.as_ref().ok_or_else(missing)?),
                table,
            )),
            None,
        ),
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
    let services = Arc::new(Services::new(
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
    ));
    Ok(Built { services, feed })
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
