//! The Secrets contract on the local secrets file (`latchkey-local`'s secrets: a 0600 JSON file
//! of base64 values, current and previous); Secrets Manager runs it in the `aws` binary. What
//! only the local adapter does (environment values, first starts racing) is in `main.rs`.
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::ports::Secrets;
use latchkey::ports::random::OsRandom;
use latchkey_tests::contract::secrets::{OTHER, ROOT, SecretsFixture};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

struct LocalFile {
    file: PathBuf,
    secrets: Arc<LocalSecrets>,
    _dir: tempfile::TempDir,
}

fn open(file: &std::path::Path) -> Arc<LocalSecrets> {
    Arc::new(LocalSecrets::new(
        BTreeMap::new(),
        Some(file.to_owned()),
        Arc::new(OsRandom),
    ))
}

async fn fresh() -> LocalFile {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let seeded = json!({
        "root": { "current": STANDARD.encode(ROOT) },
        "other": { "current": STANDARD.encode(OTHER) },
    });
    std::fs::write(&file, seeded.to_string()).unwrap();
    LocalFile {
        secrets: open(&file),
        file,
        _dir: dir,
    }
}

#[async_trait]
impl SecretsFixture for LocalFile {
    fn secrets(&self) -> Arc<dyn Secrets> {
        self.secrets.clone()
    }

    async fn rotate(&self, name: &str, value: &str) {
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&self.file).unwrap()).unwrap();
        let previous = doc[name]["current"].clone();
        doc[name] = json!({ "current": STANDARD.encode(value), "previous": previous });
        std::fs::write(&self.file, doc.to_string()).unwrap();
    }

    async fn corrupt(&self, garbage: &str) {
        std::fs::write(&self.file, garbage).unwrap();
    }

    /// A restart: the adapter reads the file once per name and process.
    async fn refresh(&mut self) {
        self.secrets = open(&self.file);
    }

    fn makes_missing_names(&self) -> bool {
        true
    }
}

latchkey_tests::secrets_contract_tests!(fresh);
