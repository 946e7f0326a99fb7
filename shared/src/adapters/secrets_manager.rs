//! AWS Secrets Manager: one secret whose value is a JSON object of named secrets (the template
//! generates `{"root": "…"}`). AWSCURRENT and AWSPREVIOUS are both read, so what was signed or
//! hashed before a rotation still verifies; both are cached for a TTL so a warm function makes
//! no Secrets Manager call per request.
use crate::ports::clock::Clock;
use crate::ports::secrets::{SecretVersions, Secrets, SecretsError};
use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata as _};
use serde_json::{Map, Value};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;
use zeroize::Zeroizing;

type Fields = Map<String, Value>;

struct Cached {
    fetched_at: OffsetDateTime,
    current: Fields,
    previous: Option<Fields>,
}

pub struct SecretsManagerSecrets {
    client: Client,
    secret_id: String,
    ttl: Duration,
    clock: Arc<dyn Clock>,
    cache: Mutex<Option<Cached>>,
}

impl SecretsManagerSecrets {
    pub fn new(
        client: Client,
        secret_id: impl Into<String>,
        ttl: Duration,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            client,
            secret_id: secret_id.into(),
            ttl,
            clock,
            cache: Mutex::new(None),
        }
    }

    async fn fetch(&self, stage: &str) -> Result<Option<Fields>, SecretsError> {
        let result = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage(stage)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e)
                if stage != "AWSCURRENT"
                    && e.as_service_error()
                        .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(None);
            }
            Err(e) => {
                let permanent = super::permanent_aws_error(e.code());
                let message = format!("secretsmanager: {}", DisplayErrorContext(e));
                return Err(if permanent {
                    SecretsError::Misconfigured(message)
                } else {
                    SecretsError::Unavailable(message)
                });
            }
        };
        let text = Zeroizing::new(out.secret_string.unwrap_or_default());
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(fields)) => Ok(Some(fields)),
            _ => Err(SecretsError::Malformed(self.secret_id.clone())),
        }
    }
}

fn field(fields: &Fields, name: &str) -> Option<Zeroizing<Vec<u8>>> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(|s| Zeroizing::new(s.as_bytes().to_vec()))
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretsError> {
        let mut cache = self.cache.lock().await;
        let now = self.clock.now();
        let fresh = cache
            .as_ref()
            .is_some_and(|c| now - c.fetched_at < self.ttl);
        if !fresh {
            let current = self
                .fetch("AWSCURRENT")
                .await?
                .ok_or_else(|| SecretsError::NotFound(self.secret_id.clone()))?;
            let previous = self.fetch("AWSPREVIOUS").await?;
            *cache = Some(Cached {
                fetched_at: now,
                current,
                previous,
            });
        }
        let cached = cache
            .as_ref()
            .ok_or_else(|| SecretsError::Unavailable("secret cache empty".into()))?;
        let current =
            field(&cached.current, name).ok_or_else(|| SecretsError::NotFound(name.to_owned()))?;
        let previous = cached.previous.as_ref().and_then(|p| field(p, name));
        Ok(SecretVersions { current, previous })
    }
}
