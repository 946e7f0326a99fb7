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
