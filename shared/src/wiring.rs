//! The composition root: the one module that reads both the configuration and the adapters. It
//! picks the adapters `Config` names, once, at cold start, and hands the domain its
//! [`Services`].
//!
//! Which adapters exist is the build's choice (latchkey's cargo features, `shared/Cargo.toml`):
//! a Lambda function links only those it uses on AWS. A configuration that names an adapter the
//! build lacks stops the process here, at start, naming the feature to build with; the one
//! exception is mail (see [`crate::adapters::no_mail`]).
#[cfg(feature = "dynamodb")]
use crate::adapters::dynamodb::DynamoStore;
#[cfg(feature = "dynamodb")]
use crate::adapters::dynamodb_backup::DynamoBackups;
#[cfg(feature = "embedded")]
use crate::adapters::fs::private_dir;
#[cfg(feature = "kms")]
use crate::adapters::kms::KmsKeyVault;
#[cfg(feature = "kms")]
use crate::adapters::kms_signer::KmsSigner;
#[cfg(feature = "embedded")]
use crate::adapters::local_keys::LocalKeyVault;
#[cfg(feature = "embedded")]
use crate::adapters::local_secrets::LocalSecrets;
#[cfg(feature = "embedded")]
use crate::adapters::local_signer::LocalSigner;
#[cfg(not(feature = "ses"))]
use crate::adapters::no_mail::NoMail;
#[cfg(feature = "embedded")]
use crate::adapters::outbox::Outbox;
#[cfg(feature = "secretsmanager")]
use crate::adapters::secrets_manager::SecretsManagerSecrets;
#[cfg(feature = "ses")]
use crate::adapters::ses::SesMailer;
#[cfg(feature = "embedded")]
use crate::adapters::sqlite::SqliteStore;
#[cfg(feature = "embedded")]
use crate::adapters::sqlite_backup::SqliteBackups;
use crate::config::{Config, KeysConfig, MailConfig, SecretsConfig, SigningConfig, StoreConfig};
#[cfg(feature = "embedded")]
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

// A build with no store could only ever refuse to start.
#[cfg(not(any(feature = "embedded", feature = "dynamodb")))]
compile_error!("latchkey needs a store: turn on feature `embedded` or `dynamodb`");

#[derive(Debug, thiserror::Error)]
#[error("startup: {0}")]
pub struct StartupError(pub String);

/// The configuration names an adapter this build was compiled without. (A `Result` rather than
/// an early return, so a build lacking every adapter of a port has no unreachable code.)
#[allow(dead_code, reason = "only builds without some adapter call it")]
fn lacking<T>(adapter: &str, feature: &str) -> Result<T, StartupError> {
    Err(StartupError(format!(
        "this build has no {adapter}; build with feature `{feature}` of the latchkey crate \
         (a function's `local` feature adds the embedded adapters)"
    )))
}

/// How long one AWS call may take, below the functions' 10 s Lambda timeout (template.yaml), so
/// that a hung dependency (a DynamoDB, KMS or Secrets Manager endpoint that accepts and never
/// answers) fails the request with a 503 in the wire format instead of holding it until API
/// Gateway or the caller gives up: 1 s to connect, 2 s per attempt, 4.5 s for the call with
/// its retries. DynamoDB's transactions take 12-20 ms and KMS calls a few ms, so the limits
/// only ever cut a call that is not coming back.
#[cfg(feature = "aws-config")]
pub fn sdk_timeouts() -> aws_config::timeout::TimeoutConfig {
    use std::time::Duration;
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_millis(4_500))
        .build()
}

/// The AWS SDK's configuration loader (region, credentials, endpoint from the environment), with
/// [`sdk_timeouts`] and the SDK's own hyper 1 HTTPS client over rustls on *ring* rather than its
/// default, rustls on AWS-LC: the same client, TLS 1.2 and 1.3 only, without 2.6 MB of AWS-LC
/// in every Lambda bootstrap (README "Lambda builds"). Proxies from the environment, as the
/// default does.
#[cfg(feature = "aws-config")]
pub fn aws_sdk_loader() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig, tls};
    let http = Builder::new().build_with_connector_fn(|settings, components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    });
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(sdk_timeouts())
}

/// [`aws_sdk_loader`], loaded.
#[cfg(feature = "aws-config")]
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_sdk_loader().load().await
}

/// What a process runs on: the domain's services and, on the embedded store, the store's change
/// feed for the audit sealer (on DynamoDB the table's stream drives the sealer function).
pub struct Built {
    pub services: Arc<Services>,
    pub feed: Option<Arc<dyn Feed>>,
    /// The embedded store, for its expiry sweeps (DynamoDB's TTL does that on AWS).
    #[cfg(feature = "embedded")]
    pub embedded: Option<SqliteStore>,
}

/// Builds the adapters `config` names, with the system clock and the OS CSPRNG.
pub async fn services(config: &Config) -> Result<Arc<Services>, StartupError> {
    Ok(build(config).await?.services)
}

/// The audit sealer on the adapters `config` names: the KMS signing key or the local key file.
pub async fn sealer(config: &Config, services: &Services) -> Result<Sealer, StartupError> {
    let signer = signer(config, services).await?;
    Ok(Sealer::new(
        Arc::clone(&services.store),
        Arc::clone(&services.clock),
        Arc::clone(&services.random),
        signer,
        SealPolicy::default(),
    ))
}

/// The audit checkpoints' signing key as the configuration names it (the admin function
/// reads its public key to verify a tenant's log).
#[cfg_attr(not(feature = "embedded"), allow(unused_variables))]
pub async fn signer(config: &Config, services: &Services) -> Result<Arc<dyn Signer>, StartupError> {
    Ok(match &config.signing {
        #[cfg(feature = "embedded")]
        SigningConfig::LocalFile { path } => Arc::new(
            LocalSigner::open(path, &*services.random).map_err(|e| StartupError(e.to_string()))?,
        ),
        #[cfg(not(feature = "embedded"))]
        SigningConfig::LocalFile { .. } => lacking("local signing key file", "embedded")?,
        #[cfg(feature = "kms")]
        SigningConfig::Kms { key_id } => Arc::new(KmsSigner::new(
            aws_sdk_kms::Client::new(&aws_sdk_config().await),
            key_id,
        )),
        #[cfg(not(feature = "kms"))]
        SigningConfig::Kms { .. } => lacking("KMS signer", "kms")?,
    })
}

/// [`services`], with the embedded store's change feed.
pub async fn build(config: &Config) -> Result<Built, StartupError> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let random: Arc<dyn Random> = Arc::new(OsRandom);
    #[cfg(feature = "aws-config")]
    let aws = if config.uses_aws() {
        Some(aws_sdk_config().await)
    } else {
        None
    };
    #[cfg(feature = "aws-config")]
    let missing = || StartupError("AWS configuration was not loaded".into());
    #[cfg(feature = "embedded")]
    {
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
    }

    #[cfg(feature = "embedded")]
    let mut embedded = None;
    let (store, feed): (Arc<dyn Store>, Option<Arc<dyn Feed>>) = match &config.store {
        #[cfg(feature = "embedded")]
        StoreConfig::Sqlite { path } => {
            let store = SqliteStore::open(path)
                .map_err(|e| StartupError(e.to_string()))?
                .with_feed(EVENT_SK_PREFIX);
            let feed: Arc<dyn Feed> = Arc::new(store.feed());
            embedded = Some(store.clone());
            (Arc::new(store), Some(feed))
        }
        #[cfg(not(feature = "embedded"))]
        StoreConfig::Sqlite { .. } => lacking("SQLite store", "embedded")?,
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb { table } => (
            Arc::new(DynamoStore::new(
                aws_sdk_dynamodb::Client::new(aws.as_ref().ok_or_else(missing)?),
                table,
            )),
            None,
        ),
        #[cfg(not(feature = "dynamodb"))]
        StoreConfig::DynamoDb { .. } => lacking("DynamoDB store", "dynamodb")?,
    };
    let vault: Arc<dyn KeyVault> = match &config.keys {
        #[cfg(feature = "embedded")]
        KeysConfig::LocalFile { path } => Arc::new(
            LocalKeyVault::open(path, Arc::clone(&random))
                .map_err(|e| StartupError(e.to_string()))?,
        ),
        #[cfg(not(feature = "embedded"))]
        KeysConfig::LocalFile { .. } => lacking("local key file", "embedded")?,
        #[cfg(feature = "kms")]
        KeysConfig::Kms { key_id } => Arc::new(KmsKeyVault::new(
            aws_sdk_kms::Client::new(aws.as_ref().ok_or_else(missing)?),
            key_id,
        )),
        #[cfg(not(feature = "kms"))]
        KeysConfig::Kms { .. } => lacking("KMS key vault", "kms")?,
    };
    let secrets: Arc<dyn Secrets> = match &config.secrets {
        #[cfg(feature = "embedded")]
        SecretsConfig::Local { file } => Arc::new(LocalSecrets::new(
            config.env_secrets.clone(),
            Some(file.clone()),
            Arc::clone(&random),
        )),
        #[cfg(not(feature = "embedded"))]
        SecretsConfig::Local { .. } => lacking("local secrets", "embedded")?,
        #[cfg(feature = "secretsmanager")]
        SecretsConfig::SecretsManager { secret_id } => Arc::new(SecretsManagerSecrets::new(
            aws_sdk_secretsmanager::Client::new(aws.as_ref().ok_or_else(missing)?),
            secret_id,
            config.secret_cache_ttl,
            Arc::clone(&clock),
        )),
        #[cfg(not(feature = "secretsmanager"))]
        SecretsConfig::SecretsManager { .. } => {
            lacking("Secrets Manager client", "secretsmanager")?
        }
    };
    let mailer: Arc<dyn Mailer> = match &config.mail {
        #[cfg(feature = "embedded")]
        MailConfig::Outbox { dir, from } => Arc::new(
            Outbox::new(dir, from, Arc::clone(&clock), Arc::clone(&random))
                .map_err(|e| StartupError(format!("outbox {}: {e}", dir.display())))?,
        ),
        #[cfg(not(feature = "embedded"))]
        MailConfig::Outbox { .. } => lacking("`.eml` outbox", "embedded")?,
        #[cfg(feature = "ses")]
        MailConfig::Ses { from } => Arc::new(SesMailer::new(
            aws_sdk_sesv2::Client::new(aws.as_ref().ok_or_else(missing)?),
            from,
            Arc::clone(&clock),
        )),
        // Not an error, unlike the other ports: only the functions that never send mail are
        // built without `ses` (template.yaml gives them no ses:SendEmail), yet they share the
        // stack's `LATCHKEY_SES=1`. Their mailer refuses, with the reason, if ever asked.
        #[cfg(not(feature = "ses"))]
        MailConfig::Ses { .. } => Arc::new(NoMail),
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
    Ok(Built {
        services,
        feed,
        #[cfg(feature = "embedded")]
        embedded,
    })
}

/// The HTTP edge's settings (the body limit, the public base URL), from `config`; the
/// functions' (no request timeout of their own: API Gateway and Lambda bound requests).
pub fn http_settings(config: &Config) -> HttpSettings {
    HttpSettings {
        max_body_bytes: config.max_body_bytes,
        public_base: config
            .public_url
            .clone()
            .unwrap_or_else(|| crate::http::PublicBase::local(config.local.listen.port())),
        request_timeout: None,
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
        #[cfg(feature = "embedded")]
        StoreConfig::Sqlite { path } => Arc::new(SqliteBackups::new(
            path.clone(),
            config.data_dir.join("backups"),
        )),
        #[cfg(not(feature = "embedded"))]
        StoreConfig::Sqlite { .. } => lacking("SQLite backups", "embedded")?,
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb { table } => {
            let aws = aws_sdk_config().await;
            let wait = std::time::Duration::from_secs(
                u64::try_from(config.backup.drill_wait.whole_seconds()).unwrap_or(0),
            );
            Arc::new(DynamoBackups::new(
                aws_sdk_dynamodb::Client::new(&aws),
                table,
                wait,
            ))
        }
        #[cfg(not(feature = "dynamodb"))]
        StoreConfig::DynamoDb { .. } => lacking("DynamoDB backups", "dynamodb")?,
    })
}
