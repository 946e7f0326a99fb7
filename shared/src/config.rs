//! Configuration, read from the environment once at cold start. Every variable Latchkey reads is
//! listed here; a bad value stops the process with a message naming the variable (never its
//! value, which may be a secret).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `LATCHKEY_TABLE` | unset | DynamoDB table name; when unset, the embedded SQLite store `<data dir>/latchkey.db` |
//! | `LATCHKEY_KMS_KEY_ID` | unset | KMS key id, ARN or alias wrapping data keys; when unset, the local key file `<data dir>/master.key` (created 0600) |
//! | `LATCHKEY_AUDIT_SIGNING_KEY_ID` | unset | KMS asymmetric key (`ECC_NIST_P256`, `SIGN_VERIFY`; its ARN) signing audit checkpoints; when unset, the local key file `<data dir>/audit-signing.key` (P-256, PKCS#8 PEM, created 0600) |
//! | `LATCHKEY_SECRET_ID` | unset | Secrets Manager secret (JSON object, `root` field); when unset, `LATCHKEY_LOCAL_SECRET_<NAME>` variables, else `<data dir>/secrets.json` (created 0600) |
//! | `LATCHKEY_LOCAL_SECRET_<NAME>` | unset | a local secret's value (UTF-8), e.g. `LATCHKEY_LOCAL_SECRET_ROOT` |
//! | `LATCHKEY_DATA_DIR` | `.latchkey` | folder for the embedded store, key file and secrets (created 0700) |
//! | `LATCHKEY_LOG` | `info` | log filter: `level` or `target=level`, comma-separated (`latchkey=debug,warn`); no span or field filters (`crate::logging`) |
//! | `LATCHKEY_MAX_BODY_BYTES` | `65536` | largest request body accepted; larger gets 413 |
//! | `LATCHKEY_ANON_PER_CLIENT_PER_MINUTE` | `120` | Client API calls with only a tenant id (usernameless sign-in) allowed per client address per minute; more get 429 |
//! | `LATCHKEY_ANON_PER_TENANT_PER_MINUTE` | `6000` | ... and per tenant, whatever the address |
//! | `LATCHKEY_KEY_FAILURES_PER_CLIENT_PER_MINUTE` | `20` | wrong secret keys one client address may present per minute; past it they answer 429 (a right key never does) |
//! | `LATCHKEY_DATA_KEY_CACHE_SECS` | `300` | how long an unwrapped data key stays cached |
//! | `LATCHKEY_DATA_KEY_CACHE_SIZE` | `1000` | how many unwrapped data keys are cached at most |
//! | `LATCHKEY_SECRET_CACHE_SECS` | `300` | how long Secrets Manager values stay cached |
//! | `LATCHKEY_BACKUP_RETENTION_DAYS` | `35` | backup function and `latchkey-admin backup`: copies older than this many days are deleted |
//! | `LATCHKEY_BACKUP_KEEP_NEWEST` | `4` | ... except the newest this many, which are always kept |
//! | `LATCHKEY_DRILL_WAIT_SECS` | `600` | how long a restore drill waits for DynamoDB to finish restoring its scratch table |
//! | `LATCHKEY_MAIL_FROM` | `Latchkey <no-reply@localhost>` | sender of one-time codes and notices; with SES, a verified identity's address |
//! | `LATCHKEY_SES` | unset | `1`: send mail through Amazon SES (v2); unset: write `.eml` files to `<data dir>/outbox/` |
//! | `LATCHKEY_SECURITY_CONTACT` | unset | comma-separated `mailto:`, `tel:` or `https://` contacts of `/.well-known/security.txt` (RFC 9116); with `LATCHKEY_SECURITY_EXPIRES` (RFC 3339) it is served, without them it answers 404 |
//! | `LATCHKEY_SECURITY_EXPIRES` | unset | the file's `Expires` |
//! | `LATCHKEY_SECURITY_POLICY` | unset | the disclosure policy's `https://` URL (`Policy`) |
//! | `LATCHKEY_SECURITY_LANGUAGES` | `en` | `Preferred-Languages` |
//! | `LATCHKEY_PUBLIC_URL` | `http://localhost:<LATCHKEY_LISTEN's port>` | the deployment's public base URL (`https://`, or `http://localhost[:port]`): track's `url`, the status page's links, `Canonical` of security.txt; never taken from a request's `Host` (the template sets it) |
//! | `LATCHKEY_LISTEN` | `127.0.0.1:8787` | `latchkey-local` only: address to serve on |
//! | `LATCHKEY_LISTEN_HEADER_TIMEOUT_SECS` | `10` | `latchkey-local` only: how long a connection may take to send a request's headers, counted from when it opened or its previous answer was written (so also how long an idle keep-alive connection stays open) |
//! | `LATCHKEY_LISTEN_REQUEST_TIMEOUT_SECS` | `30` | `latchkey-local` only: how long a request may take, its body included, before it is answered 408 `request_timeout` |
//! | `LATCHKEY_DEV_ORIGINS` | `http://localhost:*` | `latchkey-local` only: comma-separated origins of the development tenant |
//! | `LATCHKEY_DEV_TENANT_ID` | random on first start | `latchkey-local` only: fixes the development tenant's id |
//! | `LATCHKEY_DEV_SECRET_KEY` | random on first start | `latchkey-local` only: fixes its secret key (`lk_<16 hex>_<secret>`) |
//!
//! The AWS SDK reads its own variables as usual (`AWS_REGION`, `AWS_ENDPOINT_URL`, credentials).
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use time::Duration;
use zeroize::Zeroizing;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    Sqlite { path: PathBuf },
    DynamoDb { table: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeysConfig {
    LocalFile { path: PathBuf },
    Kms { key_id: String },
}

/// The key that signs audit checkpoints (`ports::signer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigningConfig {
    LocalFile { path: PathBuf },
    Kms { key_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsConfig {
    Local { file: PathBuf },
    SecretsManager { secret_id: String },
}

/// Settings of backup runs and restore drills (`domain::backups`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupConfig {
    pub retention_days: u32,
    pub keep_newest: u32,
    pub drill_wait: Duration,
}

/// Where mail goes (`ports::mailer`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailConfig {
    /// `.eml` files in this folder.
    Outbox { dir: PathBuf, from: String },
    /// Amazon SES v2, from a verified identity.
    Ses { from: String },
}

/// Settings of the local gateway alone.
#[derive(Clone)]
pub struct LocalConfig {
    pub listen: SocketAddr,
    /// Time to send a request's headers, from connect or the previous answer (idle included).
    pub header_timeout: std::time::Duration,
    /// Time for a whole request, body included.
    pub request_timeout: std::time::Duration,
    pub dev_origins: Vec<String>,
    pub dev_tenant_id: Option<String>,
    pub dev_secret_key: Option<Zeroizing<String>>,
}

#[derive(Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub keys: KeysConfig,
    pub signing: SigningConfig,
    pub secrets: SecretsConfig,
    pub data_dir: PathBuf,
    pub log_filter: String,
    pub max_body_bytes: usize,
    /// Limits on Client API calls made with only a tenant id.
    pub anonymous: crate::domain::limits::AnonymousLimits,
    pub data_key_cache_ttl: Duration,
    pub data_key_cache_size: usize,
    pub secret_cache_ttl: Duration,
    pub env_secrets: BTreeMap<String, Zeroizing<Vec<u8>>>,
    pub mail: MailConfig,
    pub backup: BackupConfig,
    pub local: LocalConfig,
    /// `/.well-known/security.txt`, when a contact and an expiry are configured.
    pub security_txt: Option<crate::domain::status::disclosure::SecurityTxt>,
    /// `LATCHKEY_PUBLIC_URL`, checked; `None` means `http://localhost:<listen port>`.
    pub public_url: Option<crate::http::PublicBase>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("keys", &self.keys)
            .field("secrets", &self.secrets)
            .field("data_dir", &self.data_dir)
            .field("log_filter", &self.log_filter)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("anonymous", &self.anonymous)
            .field("env_secrets", &self.env_secrets.keys().collect::<Vec<_>>())
            .field("listen", &self.local.listen)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("configuration: {var}: {problem}")]
pub struct ConfigError {
    pub var: String,
    pub problem: String,
}

fn bad(var: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        var: var.to_owned(),
        problem: problem.into(),
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let mut vars = BTreeMap::new();
        for (k, v) in std::env::vars_os() {
            if let (Some(k), Some(v)) = (k.to_str(), v.to_str()) {
                if k.starts_with("LATCHKEY_") {
                    vars.insert(k.to_owned(), v.to_owned());
                }
            } else if k.to_string_lossy().starts_with("LATCHKEY_") {
                return Err(bad(&k.to_string_lossy(), "is not valid UTF-8"));
            }
        }
        Self::from_vars(&vars)
    }

    /// Reads configuration from the given variables (tests pass their own).
    pub fn from_vars(vars: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let get = |name: &str| -> Result<Option<&str>, ConfigError> {
            match vars.get(name).map(String::as_str) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Err(bad(name, "is set but empty")),
                Some(v) => Ok(Some(v)),
            }
        };
        let number =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| match get(name)? {
                None => Ok(default),
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(bad(
                        name,
                        format!(
                            "must be a whole number from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )),
                },
            };
        for name in vars.keys() {
            if !KNOWN.contains(&name.as_str()) && !name.starts_with(SECRET_PREFIX) {
                return Err(bad(
                    name,
                    "is not a Latchkey setting (see shared/src/config.rs)",
                ));
            }
        }

        let data_dir = PathBuf::from(get("LATCHKEY_DATA_DIR")?.unwrap_or(".latchkey"));
        let store = match get("LATCHKEY_TABLE")? {
            Some(table) => StoreConfig::DynamoDb {
                table: table.to_owned(),
            },
            None => StoreConfig::Sqlite {
                path: data_dir.join("latchkey.db"),
            },
        };
        let keys = match get("LATCHKEY_KMS_KEY_ID")? {
            Some(key_id) => KeysConfig::Kms {
                key_id: key_id.to_owned(),
            },
            None => KeysConfig::LocalFile {
                path: data_dir.join("master.key"),
            },
        };
        let signing = match get("LATCHKEY_AUDIT_SIGNING_KEY_ID")? {
            Some(key_id) => SigningConfig::Kms {
                key_id: key_id.to_owned(),
            },
            None => SigningConfig::LocalFile {
                path: data_dir.join("audit-signing.key"),
            },
        };
        let secrets = match get("LATCHKEY_SECRET_ID")? {
            Some(id) => SecretsConfig::SecretsManager {
                secret_id: id.to_owned(),
            },
            None => SecretsConfig::Local {
                file: data_dir.join("secrets.json"),
            },
        };
        let log_filter = get("LATCHKEY_LOG")?.unwrap_or("info").to_owned();
        if !valid_log_filter(&log_filter) {
            return Err(bad(
                "LATCHKEY_LOG",
                "is not a valid log filter (`level` or `target=level`, comma-separated)",
            ));
        }
        let listen = match get("LATCHKEY_LISTEN")? {
            None => SocketAddr::from(([127, 0, 0, 1], 8787)),
            Some(v) => v
                .parse()
                .map_err(|_| bad("LATCHKEY_LISTEN", "must be an address like 127.0.0.1:8787"))?,
        };
        let dev_origins = match get("LATCHKEY_DEV_ORIGINS")? {
            None => vec!["http://localhost:*".to_owned()],
            Some(v) => {
                let origins = crate::domain::status::disclosure::comma_separated(v);
                if origins.is_empty() {
                    return Err(bad("LATCHKEY_DEV_ORIGINS", "must list at least one origin"));
                }
                crate::domain::tenants::validate_origins(&origins)
                    .map_err(|why| bad("LATCHKEY_DEV_ORIGINS", why))?;
                origins
            }
        };
        let security_txt = match (
            get("LATCHKEY_SECURITY_CONTACT")?,
            get("LATCHKEY_SECURITY_EXPIRES")?,
        ) {
            (Some(contacts), Some(expires)) => Some(
                crate::domain::status::disclosure::SecurityTxt::from_settings(
                    contacts,
                    expires,
                    get("LATCHKEY_SECURITY_POLICY")?,
                    get("LATCHKEY_PUBLIC_URL")?,
                    get("LATCHKEY_SECURITY_LANGUAGES")?,
                )
                .map_err(|e| bad(e.var, e.problem))?,
            ),
            (None, None) => None,
            (Some(_), None) => {
                return Err(bad(
                    "LATCHKEY_SECURITY_EXPIRES",
                    "is needed with LATCHKEY_SECURITY_CONTACT",
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "LATCHKEY_SECURITY_CONTACT",
                    "is needed with LATCHKEY_SECURITY_EXPIRES",
                ));
            }
        };
        let public_url = get("LATCHKEY_PUBLIC_URL")?
            .map(|v| {
                crate::http::PublicBase::parse(v).ok_or_else(|| {
                    bad(
                        "LATCHKEY_PUBLIC_URL",
                        "must be an https:// origin (http:// only for localhost), no path",
                    )
                })
            })
            .transpose()?;
        let dev_tenant_id = get("LATCHKEY_DEV_TENANT_ID")?.map(str::to_owned);
        if let Some(id) = &dev_tenant_id
            && !crate::ids::valid_tenant_id(id)
        {
            return Err(bad(
                "LATCHKEY_DEV_TENANT_ID",
                "must be 3-64 characters of A-Z, a-z, 0-9, '-' and '_', not starting with '_'",
            ));
        }
        let dev_secret_key = get("LATCHKEY_DEV_SECRET_KEY")?.map(|s| Zeroizing::new(s.to_owned()));
        if let Some(k) = &dev_secret_key
            && crate::ids::key_id_of(k).is_none()
        {
            return Err(bad(
                "LATCHKEY_DEV_SECRET_KEY",
                "must look like lk_<16 lowercase hex>_<at least 22 characters>",
            ));
        }
        let from = get("LATCHKEY_MAIL_FROM")?
            .unwrap_or("Latchkey <no-reply@localhost>")
            .to_owned();
        if from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(bad(
                "LATCHKEY_MAIL_FROM",
                "must be an address, optionally with a name: Name <a@example.com>",
            ));
        }
        let mail = match get("LATCHKEY_SES")? {
            None | Some("0") => MailConfig::Outbox {
                dir: data_dir.join("outbox"),
                from,
            },
            Some("1") => MailConfig::Ses { from },
            Some(_) => return Err(bad("LATCHKEY_SES", "must be 1 or 0")),
        };
        let env_secrets = vars
            .iter()
            .filter(|(k, _)| k.starts_with(SECRET_PREFIX))
            .map(|(k, v)| (k.clone(), Zeroizing::new(v.as_bytes().to_vec())))
            .collect();

        Ok(Self {
            store,
            keys,
            signing,
            secrets,
            data_dir,
            log_filter,
            max_body_bytes: number(
                "LATCHKEY_MAX_BODY_BYTES",
                crate::http::HttpSettings::default().max_body_bytes as u64,
                1_024..=10_485_760,
            )? as usize,
            anonymous: crate::domain::limits::AnonymousLimits {
                per_client_per_minute: number(
                    "LATCHKEY_ANON_PER_CLIENT_PER_MINUTE",
                    120,
                    1..=1_000_000,
                )? as i64,
                per_tenant_per_minute: number(
                    "LATCHKEY_ANON_PER_TENANT_PER_MINUTE",
                    6_000,
                    1..=10_000_000,
                )? as i64,
                key_failures_per_client_per_minute: number(
                    "LATCHKEY_KEY_FAILURES_PER_CLIENT_PER_MINUTE",
                    crate::domain::limits::SECRET_KEY_FAILURES_PER_MINUTE as u64,
                    1..=1_000_000,
                )? as i64,
            },
            data_key_cache_ttl: Duration::seconds(number(
                "LATCHKEY_DATA_KEY_CACHE_SECS",
                300,
                0..=86_400,
            )? as i64),
            data_key_cache_size: number("LATCHKEY_DATA_KEY_CACHE_SIZE", 1_000, 0..=1_000_000)?
                as usize,
            secret_cache_ttl: Duration::seconds(number(
                "LATCHKEY_SECRET_CACHE_SECS",
                300,
                0..=86_400,
            )? as i64),
            env_secrets,
            mail,
            backup: BackupConfig {
                retention_days: number("LATCHKEY_BACKUP_RETENTION_DAYS", 35, 1..=3_650)? as u32,
                keep_newest: number("LATCHKEY_BACKUP_KEEP_NEWEST", 4, 1..=1_000)? as u32,
                drill_wait: Duration::seconds(
                    number("LATCHKEY_DRILL_WAIT_SECS", 600, 0..=3_600)? as i64
                ),
            },
            local: LocalConfig {
                listen,
                header_timeout: std::time::Duration::from_secs(number(
                    "LATCHKEY_LISTEN_HEADER_TIMEOUT_SECS",
                    10,
                    1..=600,
                )?),
                request_timeout: std::time::Duration::from_secs(number(
                    "LATCHKEY_LISTEN_REQUEST_TIMEOUT_SECS",
                    30,
                    1..=600,
                )?),
                dev_origins,
                dev_tenant_id,
                dev_secret_key,
            },
            security_txt,
            public_url,
        })
    }

    /// Whether any adapter talks to AWS (and the SDK configuration must be loaded).
    pub fn uses_aws(&self) -> bool {
        matches!(self.store, StoreConfig::DynamoDb { .. })
            || matches!(self.keys, KeysConfig::Kms { .. })
            || matches!(self.signing, SigningConfig::Kms { .. })
            || matches!(self.secrets, SecretsConfig::SecretsManager { .. })
            || matches!(self.mail, MailConfig::Ses { .. })
    }
}

const SECRET_PREFIX: &str = "LATCHKEY_LOCAL_SECRET_";

/// `LATCHKEY_LOG`: what `tracing_subscriber`'s `Targets` (`crate::logging`) parses, less what it
/// would misread. `Targets` takes `latchkey[request]=debug` as the name of a target and filters
/// nothing by span, so a directive whose target is not a Rust path is refused here instead.
fn valid_log_filter(filter: &str) -> bool {
    let paths = filter.split(',').all(|directive| {
        let target = directive.split_once('=').map_or(directive, |(t, _)| t);
        target
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    });
    paths
        && filter
            .parse::<tracing_subscriber::filter::Targets>()
            .is_ok()
}

const KNOWN: [&str; 29] = [
    "LATCHKEY_AUDIT_SIGNING_KEY_ID",
    "LATCHKEY_MAIL_FROM",
    "LATCHKEY_SES",
    "LATCHKEY_TABLE",
    "LATCHKEY_KMS_KEY_ID",
    "LATCHKEY_SECRET_ID",
    "LATCHKEY_DATA_DIR",
    "LATCHKEY_LOG",
    "LATCHKEY_MAX_BODY_BYTES",
    "LATCHKEY_ANON_PER_CLIENT_PER_MINUTE",
    "LATCHKEY_ANON_PER_TENANT_PER_MINUTE",
    "LATCHKEY_KEY_FAILURES_PER_CLIENT_PER_MINUTE",
    "LATCHKEY_DATA_KEY_CACHE_SECS",
    "LATCHKEY_DATA_KEY_CACHE_SIZE",
    "LATCHKEY_SECRET_CACHE_SECS",
    "LATCHKEY_BACKUP_RETENTION_DAYS",
    "LATCHKEY_BACKUP_KEEP_NEWEST",
    "LATCHKEY_DRILL_WAIT_SECS",
    "LATCHKEY_SECURITY_CONTACT",
    "LATCHKEY_SECURITY_EXPIRES",
    "LATCHKEY_SECURITY_POLICY",
    "LATCHKEY_SECURITY_LANGUAGES",
    "LATCHKEY_PUBLIC_URL",
    "LATCHKEY_LISTEN",
    "LATCHKEY_LISTEN_HEADER_TIMEOUT_SECS",
    "LATCHKEY_LISTEN_REQUEST_TIMEOUT_SECS",
    "LATCHKEY_DEV_ORIGINS",
    "LATCHKEY_DEV_TENANT_ID",
    "LATCHKEY_DEV_SECRET_KEY",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn log_filters_are_levels_and_targets_only() {
        for ok in [
            "info",
            "warn",
            "off",
            "latchkey=debug,warn",
            "latchkey::http=trace",
        ] {
            assert!(valid_log_filter(ok), "{ok}");
            assert!(
                Config::from_vars(&vars(&[("LATCHKEY_LOG", ok)])).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "latchkey[request]=debug",
            "latchkey[{user}]=debug",
            "latchkey=loud",
            "{}",
        ] {
            assert!(!valid_log_filter(bad), "{bad}");
            assert_eq!(
                Config::from_vars(&vars(&[("LATCHKEY_LOG", bad)]))
                    .err()
                    .map(|e| e.var),
                Some("LATCHKEY_LOG".to_owned()),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_aws_settings_means_embedded_defaults_under_dot_latchkey() {
        let c = Config::from_vars(&vars(&[])).unwrap();
        assert_eq!(
            c.store,
            StoreConfig::Sqlite {
                path: PathBuf::from(".latchkey/latchkey.db")
            }
        );
        assert!(matches!(c.keys, KeysConfig::LocalFile { .. }));
        assert!(matches!(c.secrets, SecretsConfig::Local { .. }));
        assert!(!c.uses_aws());
        assert_eq!(c.local.listen.to_string(), "127.0.0.1:8787");
        assert_eq!(
            c.backup,
            BackupConfig {
                retention_days: 35,
                keep_newest: 4,
                drill_wait: Duration::minutes(10),
            }
        );
    }

    #[test]
    fn aws_settings_select_aws_adapters() {
        let c = Config::from_vars(&vars(&[
            ("LATCHKEY_TABLE", "t"),
            ("LATCHKEY_KMS_KEY_ID", "alias/k"),
            ("LATCHKEY_SECRET_ID", "s"),
        ]))
        .unwrap();
        assert!(c.uses_aws());
        assert_eq!(c.store, StoreConfig::DynamoDb { table: "t".into() });
    }

    #[test]
    fn bad_values_fail_loudly_naming_the_variable_not_the_value() {
        for (k, v) in [
            ("LATCHKEY_MAX_BODY_BYTES", "lots"),
            ("LATCHKEY_LISTEN", "nowhere"),
            ("LATCHKEY_DEV_SECRET_KEY", "hunter2-not-a-key"),
            ("LATCHKEY_DEV_ORIGINS", "http://evil.example"),
            ("LATCHKEY_TABLE", ""),
            ("LATCHKEY_TYPO", "1"),
            ("LATCHKEY_BACKUP_RETENTION_DAYS", "forever"),
            ("LATCHKEY_BACKUP_KEEP_NEWEST", "many"),
        ] {
            let err = Config::from_vars(&vars(&[(k, v)])).unwrap_err();
            assert_eq!(err.var, k);
            if !v.is_empty() {
                assert!(!err.to_string().contains(v), "{err} leaks the value");
            }
        }
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Config::from_vars(&vars(&[
            ("LATCHKEY_LOCAL_SECRET_ROOT", "very-secret-root"),
            (
                "LATCHKEY_DEV_SECRET_KEY",
                "lk_0123456789abcdef_abcdefghijklmnopqrstuvwxyz",
            ),
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-root"));
        assert!(!shown.contains("abcdefghijklmnop"));
    }
}
