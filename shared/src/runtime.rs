//! Picks the adapters once, at cold start, and holds them for the handlers.
use crate::adapters::dynamodb::DynamoStore;
use crate::adapters::fs::private_dir;
use crate::adapters::kms::KmsKeyVault;
use crate::adapters::local_keys::LocalKeyVault;
use crate::adapters::local_secrets::LocalSecrets;
use crate::adapters::outbox::{MemoryOutbox, Outbox};
use crate::adapters::secrets_manager::SecretsManagerSecrets;
use crate::adapters::ses::SesMailer;
use crate::adapters::sqlite::SqliteStore;
use crate::config::{Config, KeysConfig, MailConfig, SecretsConfig, StoreConfig};
use crate::crypto::Envelope;
use crate::domain::audit::Journal;
use crate::domain::limits::AnonymousLimits;
use crate::ports::clock::SystemClock;
use crate::ports::random::OsRandom;
use crate::ports::{Clock, KeyVault, Mailer, Random, Secrets, Store};
use std::sync::Arc;
use time::Duration;

/// Everything a handler may use. Built once per process; cheap to clone through an `Arc`.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub vault: Arc<dyn KeyVault>,
    pub envelope: Arc<Envelope>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub journal: Journal,
    /// Outgoing mail: SES or the `.eml` outbox as configured.
    pub mailer: Arc<dyn Mailer>,
    pub max_body_bytes: usize,
    /// Limits on Client API calls made with only a tenant id.
    pub limits: AnonymousLimits,
}

#[derive(Debug, thiserror::Error)]
#[error("startup: {0}")]
pub struct StartupError(pub String);

/// How long and how many unwrapped data keys stay cached.
#[derive(Debug, Clone, Copy)]
pub struct CachePolicy {
    pub ttl: Duration,
    pub capacity: usize,
}

impl Services {
    /// Puts given adapters together (tests use this with their own clock and randomness).
    pub fn assemble(
        store: Arc<dyn Store>,
        vault: Arc<dyn KeyVault>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        cache: CachePolicy,
        max_body_bytes: usize,
    ) -> Self {
        let envelope = Arc::new(Envelope::new(
            Arc::clone(&vault),
            Arc::clone(&random),
            Arc::clone(&clock),
            cache.ttl,
            cache.capacity,
        ));
        let journal = Journal::new(Arc::clone(&store), Arc::clone(&clock), Arc::clone(&random));
        Self {
            store,
            vault,
            envelope,
            secrets,
            clock,
            random,
            journal,
            mailer: Arc::new(MemoryOutbox::default()),
            max_body_bytes,
            limits: AnonymousLimits::default(),
        }
    }

    /// The same services, with these limits on anonymous Client API calls.
    pub fn with_limits(mut self, limits: AnonymousLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The same services, sending mail through `mailer`.
    pub fn with_mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = mailer;
        self
    }

    /// Builds the adapters `config` names, with the system clock and the OS CSPRNG.
    pub async fn from_config(config: &Config) -> Result<Arc<Self>, StartupError> {
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
            private_dir(&config.data_dir).map_err(|e| {
                StartupError(format!("data dir {}: {e}", config.data_dir.display()))
            })?;
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
        Ok(Arc::new(
            Self::assemble(
                store,
                vault,
                secrets,
                clock,
                random,
                CachePolicy {
                    ttl: config.data_key_cache_ttl,
                    capacity: config.data_key_cache_size,
                },
                config.max_body_bytes,
            )
            .with_mailer(mailer)
            .with_limits(config.anonymous),
        ))
    }
}

/// The backup target for the store `config` names: the DynamoDB table's backups, or copies of
/// the embedded database under `<data dir>/backups`.
pub async fn backup_target(
    config: &Config,
) -> Result<Arc<dyn crate::ports::backup::BackupTarget>, StartupError> {
    use crate::adapters::dynamodb_backup::DynamoBackups;
    use crate::adapters::sqlite_backup::SqliteBackups;
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
