//! Every port contract on the embedded adapters (SQLite, the local key file, local secrets, the
//! `.eml` and memory outboxes, SQLite backups), plus what only these adapters do (files, modes,
//! restarts). Needs nothing but Rust. The `aws` binary runs the same contracts on moto.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The backup contract on SQLite files, and what only files have.
mod backup;
/// The Mailer contract on the `.eml` outbox and the memory outbox.
mod mailer;
/// The Secrets contract on the local secrets file.
mod secrets;

use latchkey::adapters::local_keys::LocalKeyVault;
use latchkey::adapters::local_secrets::LocalSecrets;
use latchkey::adapters::sqlite::SqliteStore;
use latchkey::ports::random::OsRandom;
use latchkey::ports::{KeyVault, Secrets, Store};
use latchkey_tests::Fresh;
use std::collections::BTreeMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A store in a real file (WAL and all), in a fresh folder removed after the test.
async fn fresh_sqlite() -> Fresh<Arc<dyn Store>> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db")).unwrap();
    Fresh::in_dir(Arc::new(store), dir)
}

async fn fresh_local_vault() -> Fresh<Arc<dyn KeyVault>> {
    let dir = tempfile::tempdir().unwrap();
    let vault = LocalKeyVault::open(&dir.path().join("master.key"), Arc::new(OsRandom)).unwrap();
    Fresh::in_dir(Arc::new(vault), dir)
}

latchkey_tests::store_contract_tests!(fresh_sqlite);
latchkey_tests::key_contract_tests!(fresh_local_vault);

/// Crypto-shredding on the local key files, and on a vault held in memory; and the key file of
/// a destroyed tenant key is gone from disk.
#[tokio::test]
async fn a_destroyed_local_tenant_key_opens_nothing() {
    let fresh = fresh_local_vault().await;
    latchkey_tests::contract::keys::a_destroyed_tenant_key_opens_nothing(fresh.adapter()).await;
    let memory = LocalKeyVault::from_key(&[9u8; 32], Arc::new(OsRandom)).unwrap();
    latchkey_tests::contract::keys::a_destroyed_tenant_key_opens_nothing(Arc::new(memory)).await;

    let dir = tempfile::tempdir().unwrap();
    let vault = LocalKeyVault::open(&dir.path().join("master.key"), Arc::new(OsRandom)).unwrap();
    let kek = vault.create_tenant_kek("t").await.unwrap();
    let files = || {
        std::fs::read_dir(dir.path().join("master.key.tenants"))
            .unwrap()
            .count()
    };
    assert_eq!(files(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("master.key.tenants")), 0o700);
    }
    vault.destroy_tenant_kek(&kek).await.unwrap();
    assert_eq!(files(), 0);
    assert!(
        vault
            .destroy_tenant_kek("local:../../etc/passwd")
            .await
            .is_err()
    );
}
/// A store in a real file with its change feed on, and the feed.
async fn fresh_audit_rig() -> Fresh<latchkey_tests::contract::audit::Rig> {
    use latchkey_tests::contract::audit::{FeedSource, Rig};
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("store.db"))
        .unwrap()
        .with_feed(latchkey::domain::audit::EVENT_SK_PREFIX);
    let rig = Rig {
        source: Arc::new(FeedSource(Arc::new(store.feed()))),
        store: Arc::new(store),
    };
    Fresh::in_dir(rig, dir)
}

latchkey_tests::audit_contract_tests!(fresh_audit_rig);

#[test]
fn store_survives_reopening() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    rt.block_on(async {
        use latchkey::ports::store::{Condition, Item};
        let store = SqliteStore::open(&path).unwrap();
        store
            .put(Item::new("P", "S").with("x", 1), Condition::Absent)
            .await
            .unwrap();
        drop(store);
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(
            again.get("P", "S").await.unwrap().unwrap().u64("x"),
            Some(1)
        );
    });
}

#[cfg(unix)]
#[tokio::test]
async fn key_file_is_created_owner_only_and_reused() {
    use latchkey::ports::keys::KeyContext;
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let first = LocalKeyVault::open(&path, Arc::new(OsRandom)).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let key = first
        .generate_data_key(None, &KeyContext::tenant("t"))
        .await
        .unwrap();
    // A restart opens the same file and unwraps what the first process wrapped.
    let second = LocalKeyVault::open(&path, Arc::new(OsRandom)).unwrap();
    let plain = second
        .decrypt_data_key(None, &key.wrapped, &KeyContext::tenant("t"))
        .await
        .unwrap();
    assert_eq!(plain, key.plaintext);
    // A different key file cannot.
    let other = LocalKeyVault::open(&dir.path().join("other.key"), Arc::new(OsRandom)).unwrap();
    assert!(
        other
            .decrypt_data_key(None, &key.wrapped, &KeyContext::tenant("t"))
            .await
            .is_err()
    );
    std::fs::write(dir.path().join("short.key"), b"too short").unwrap();
    assert!(LocalKeyVault::open(&dir.path().join("short.key"), Arc::new(OsRandom)).is_err());
}

#[tokio::test]
async fn local_secrets_come_from_the_environment_or_a_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let env = BTreeMap::from([(
        "LATCHKEY_LOCAL_SECRET_PINNED".to_owned(),
        Zeroizing::new(b"from-env".to_vec()),
    )]);
    let secrets = LocalSecrets::new(env, Some(file.clone()), Arc::new(OsRandom));
    assert_eq!(
        secrets.get("pinned").await.unwrap().current.as_slice(),
        b"from-env"
    );
    assert!(
        !file.exists(),
        "an environment secret is not written anywhere"
    );

    let root = secrets.get("root").await.unwrap();
    assert_eq!(root.current.len(), 32);
    assert!(root.previous.is_none());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The next process reads the same value back.
    let again = LocalSecrets::new(BTreeMap::new(), Some(file), Arc::new(OsRandom));
    assert_eq!(again.get("root").await.unwrap().current, root.current);
}

/// Processes starting at once (here: separate adapters on one file) agree on one root secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_starts_agree_on_one_generated_secret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secrets.json");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let file = file.clone();
        tasks.push(tokio::spawn(async move {
            let secrets = LocalSecrets::new(BTreeMap::new(), Some(file), Arc::new(OsRandom));
            secrets.get("root").await.unwrap().current
        }));
    }
    let mut values = Vec::new();
    for t in tasks {
        values.push(t.await.unwrap());
    }
    assert!(
        values.windows(2).all(|w| w[0] == w[1]),
        "processes disagree on the secret"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}
