//! The Secrets contract on Secrets Manager: one secret whose value is a JSON object of named
//! secrets, `AWSCURRENT` and `AWSPREVIOUS` both read, cached for a time to live.
use super::{aws, secret_deleted, unique};
use async_trait::async_trait;
use latchkey::adapters::secrets_manager::SecretsManagerSecrets;
use latchkey::ports::Secrets;
use latchkey::ports::clock::ManualClock;
use latchkey_tests::OnDrop;
use latchkey_tests::contract::secrets::{OTHER, ROOT, SecretsFixture};
use serde_json::{Value, json};
use std::sync::Arc;
use time::Duration;

struct SecretsManager {
    client: aws_sdk_secretsmanager::Client,
    name: String,
    clock: Arc<ManualClock>,
    secrets: Arc<SecretsManagerSecrets>,
    _secret: OnDrop,
}

async fn fresh() -> SecretsManager {
    let client = aws_sdk_secretsmanager::Client::new(&aws().await);
    let name = unique("lk-test-secret");
    let cleanup = secret_deleted(&name);
    client
        .create_secret()
        .name(&name)
        .secret_string(json!({ "root": ROOT, "other": OTHER }).to_string())
        .send()
        .await
        .unwrap();
    let clock = latchkey_tests::test_clock();
    SecretsManager {
        secrets: Arc::new(SecretsManagerSecrets::new(
            client.clone(),
            &name,
            Duration::minutes(5),
            clock.clone(),
        )),
        client,
        name,
        clock,
        _secret: cleanup,
    }
}

impl SecretsManager {
    /// A new version becomes `AWSCURRENT`; the one before, `AWSPREVIOUS`.
    async fn put(&self, value: String) {
        self.client
            .put_secret_value()
            .secret_id(&self.name)
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
}

#[async_trait]
impl SecretsFixture for SecretsManager {
    fn secrets(&self) -> Arc<dyn Secrets> {
        self.secrets.clone()
    }

    async fn rotate(&self, name: &str, value: &str) {
        let current = self
            .client
            .get_secret_value()
            .secret_id(&self.name)
            .send()
            .await
            .unwrap();
        let mut doc: Value = serde_json::from_str(current.secret_string().unwrap()).unwrap();
        doc[name] = json!(value);
        self.put(doc.to_string()).await;
    }

    async fn corrupt(&self, garbage: &str) {
        self.put(garbage.to_owned()).await;
    }

    /// The cache's five minutes pass.
    async fn refresh(&mut self) {
        self.clock.advance(Duration::minutes(6));
    }

    fn makes_missing_names(&self) -> bool {
        false
    }
}

latchkey_tests::secrets_contract_tests!(fresh, #[ignore = "needs moto or AWS at AWS_ENDPOINT_URL; run by .ci/run"]);
