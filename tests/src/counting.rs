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
