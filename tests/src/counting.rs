//! A key vault decorator that counts the calls that reach the vault underneath.
use async_trait::async_trait;
use latchkey::ports::KeyVault;
use latchkey::ports::keys::{DataKey, KeyContext, KeyError, PlainKey};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CountingVault {
    inner: Arc<dyn KeyVault>,
    calls: AtomicUsize,
}

impl CountingVault {
    pub fn new(inner: Arc<dyn KeyVault>) -> Self {
        Self {
            inner,
            calls: AtomicUsize::new(0),
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl KeyVault for CountingVault {
    async fn generate_data_key(
        &self,
        kek: Option<&str>,
        context: &KeyContext,
    ) -> Result<DataKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_data_key(kek, context).await
    }

    async fn decrypt_data_key(
        &self,
        kek: Option<&str>,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.decrypt_data_key(kek, wrapped, context).await
    }

    /// Not counted (nor is destroying one): they touch no data key.
    async fn create_tenant_kek(&self, tenant_id: &str) -> Result<String, KeyError> {
        self.inner.create_tenant_kek(tenant_id).await
    }

    async fn destroy_tenant_kek(&self, kek: &str) -> Result<(), KeyError> {
        self.inner.destroy_tenant_kek(kek).await
    }

    /// Not counted: it touches no data key.
    async fn probe(&self) -> Result<(), KeyError> {
        self.inner.probe().await
    }
}

/// A store decorator that records the calls that reach the store underneath, each as its kind
/// and keys (`get TENANT#t|META`): what one request costs in round trips (each is a network
/// call on DynamoDB), and which items they touch, so a failing ceiling says which call is new.
pub struct CountingStore {
    inner: Arc<dyn latchkey::ports::Store>,
    calls: std::sync::Mutex<Vec<String>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn latchkey::ports::Store>) -> Self {
        Self {
            inner,
            calls: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The calls since the last `take`, in order, each starting with its kind (`get`, `put`,
    /// `delete`, `query`, `transact`) and followed by the keys it names.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn note(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }
}

#[async_trait]
impl latchkey::ports::Store for CountingStore {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.note(format!("get {pk}|{sk}"));
        self.inner.get(pk, sk).await
    }

    async fn put(
        &self,
        item: latchkey::ports::store::Item,
        condition: latchkey::ports::store::Condition,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        self.note(format!("put {}|{} {condition:?}", item.pk, item.sk));
        self.inner.put(item, condition).await
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: latchkey::ports::store::Condition,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.note(format!("delete {pk}|{sk} {condition:?}"));
        self.inner.delete(pk, sk, condition).await
    }

    async fn query(
        &self,
        query: latchkey::ports::store::Query,
    ) -> Result<latchkey::ports::store::Page, latchkey::ports::store::StoreError> {
        self.note(format!("query {}|{}*", query.pk, query.sk_prefix));
        self.inner.query(query).await
    }

    async fn scan(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<latchkey::ports::store::Page, latchkey::ports::store::StoreError> {
        self.note(format!("scan {limit}"));
        self.inner.scan(cursor, limit).await
    }

    async fn transact(
        &self,
        ops: Vec<latchkey::ports::store::WriteOp>,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        let keys: Vec<String> = ops
            .iter()
            .map(|op| {
                let (pk, sk) = op.key();
                let kind = match op {
                    latchkey::ports::store::WriteOp::Put { .. } => "put",
                    latchkey::ports::store::WriteOp::Delete { .. } => "delete",
                    latchkey::ports::store::WriteOp::Check { .. } => "check",
                    latchkey::ports::store::WriteOp::Count { .. } => "count",
                    latchkey::ports::store::WriteOp::Update { .. } => "update",
                };
                format!("{kind} {pk}|{sk} {:?}", op.condition())
            })
            .collect();
        self.note(format!("transact [{}]", keys.join(", ")));
        self.inner.transact(ops).await
    }
}

/// The key-vault and secrets calls a world's services make, by port method
/// (`vault.decrypt_data_key`, `vault.generate_data_key`, `vault.probe`, `secrets.get`), in
/// order: with [`CountingStore`]'s calls, what a function asks of AWS (`tests/tests/api/iam.rs`
/// compares that with the template's policies).
#[derive(Default)]
pub struct PortCalls {
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl PortCalls {
    /// The calls since the last `take`, in order.
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    /// Notes one call (for recorders outside this module, such as a signer's).
    pub fn note(&self, call: &'static str) {
        self.calls.lock().unwrap().push(call);
    }
}

/// A key vault that notes each call in a [`PortCalls`].
pub struct RecordingVault {
    pub inner: Arc<dyn KeyVault>,
    pub calls: Arc<PortCalls>,
}

#[async_trait]
impl KeyVault for RecordingVault {
    async fn generate_data_key(
        &self,
        kek: Option<&str>,
        context: &KeyContext,
    ) -> Result<DataKey, KeyError> {
        self.calls.note("vault.generate_data_key");
        self.inner.generate_data_key(kek, context).await
    }

    async fn decrypt_data_key(
        &self,
        kek: Option<&str>,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        self.calls.note("vault.decrypt_data_key");
        self.inner.decrypt_data_key(kek, wrapped, context).await
    }

    async fn create_tenant_kek(&self, tenant_id: &str) -> Result<String, KeyError> {
        self.calls.note("vault.create_tenant_kek");
        self.inner.create_tenant_kek(tenant_id).await
    }

    async fn destroy_tenant_kek(&self, kek: &str) -> Result<(), KeyError> {
        self.calls.note("vault.destroy_tenant_kek");
        self.inner.destroy_tenant_kek(kek).await
    }

    async fn probe(&self) -> Result<(), KeyError> {
        self.calls.note("vault.probe");
        self.inner.probe().await
    }
}

/// Secrets that note each read in a [`PortCalls`].
pub struct RecordingSecrets {
    pub inner: Arc<dyn latchkey::ports::Secrets>,
    pub calls: Arc<PortCalls>,
}

#[async_trait]
impl latchkey::ports::Secrets for RecordingSecrets {
    async fn get(
        &self,
        name: &str,
    ) -> Result<latchkey::ports::secrets::SecretVersions, latchkey::ports::secrets::SecretsError>
    {
        self.calls.note("secrets.get");
        self.inner.get(name).await
    }
}
