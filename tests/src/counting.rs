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
    async fn generate_data_key(&self, context: &KeyContext) -> Result<DataKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.generate_data_key(context).await
    }

    async fn decrypt_data_key(
        &self,
        wrapped: &[u8],
        context: &KeyContext,
    ) -> Result<PlainKey, KeyError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.decrypt_data_key(wrapped, context).await
    }
}

/// A store decorator that counts the calls that reach the store underneath, by kind: what one
/// request costs in round trips (each is a network call on DynamoDB).
pub struct CountingStore {
    inner: Arc<dyn latchkey::ports::Store>,
    calls: std::sync::Mutex<Vec<&'static str>>,
}

impl CountingStore {
    pub fn new(inner: Arc<dyn latchkey::ports::Store>) -> Self {
        Self {
            inner,
            calls: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The calls since the last `take`, in order (`get`, `put`, `delete`, `query`, `transact`).
    pub fn take(&self) -> Vec<&'static str> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }

    fn note(&self, kind: &'static str) {
        self.calls.lock().unwrap().push(kind);
    }
}

#[async_trait]
impl latchkey::ports::Store for CountingStore {
    async fn get(
        &self,
        pk: &str,
        sk: &str,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.note("get");
        self.inner.get(pk, sk).await
    }

    async fn put(
        &self,
        item: latchkey::ports::store::Item,
        condition: latchkey::ports::store::Condition,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        self.note("put");
        self.inner.put(item, condition).await
    }

    async fn delete(
        &self,
        pk: &str,
        sk: &str,
        condition: latchkey::ports::store::Condition,
    ) -> Result<Option<latchkey::ports::store::Item>, latchkey::ports::store::StoreError> {
        self.note("delete");
        self.inner.delete(pk, sk, condition).await
    }

    async fn query(
        &self,
        query: latchkey::ports::store::Query,
    ) -> Result<latchkey::ports::store::Page, latchkey::ports::store::StoreError> {
        self.note("query");
        self.inner.query(query).await
    }

    async fn transact(
        &self,
        ops: Vec<latchkey::ports::store::WriteOp>,
    ) -> Result<(), latchkey::ports::store::StoreError> {
        self.note("transact");
        self.inner.transact(ops).await
    }
}
