//! [`FailingStore`]: a memory store that fails every call while its switch is on, for tests of
//! what the proxy does when its store is unavailable.

use std::sync::atomic::{AtomicBool, Ordering};

use enginelabs_2api::store::{AccountRecord, ConversationRecord, MemoryStore, Store, StoreError};

pub struct FailingStore {
    inner: MemoryStore,
    /// While on, every call answers a backend error.
    pub failing: AtomicBool,
}

impl Default for FailingStore {
    fn default() -> Self {
        FailingStore {
            inner: MemoryStore::new(Default::default()),
            failing: AtomicBool::new(false),
        }
    }
}

impl FailingStore {
    pub fn set_failing(&self, on: bool) {
        self.failing.store(on, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::Io("injected failure".into()));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for FailingStore {
    fn backend(&self) -> &'static str {
        "memory"
    }
    async fn put_conversation(&self, key: &str, r: &ConversationRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_conversation(key, r).await
    }
    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        self.check()?;
        self.inner.take_conversation(key).await
    }
    async fn conversation_count(&self) -> Result<usize, StoreError> {
        self.check()?;
        self.inner.conversation_count().await
    }
    async fn purge_expired(&self) -> Result<Vec<ConversationRecord>, StoreError> {
        self.check()?;
        self.inner.purge_expired().await
    }
    async fn put_account(&self, r: &AccountRecord) -> Result<(), StoreError> {
        self.check()?;
        self.inner.put_account(r).await
    }
    async fn get_account(&self, seed: &str) -> Result<Option<AccountRecord>, StoreError> {
        self.check()?;
        self.inner.get_account(seed).await
    }
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.check()?;
        self.inner.list_accounts().await
    }
    async fn remove_account(&self, seed: &str) -> Result<(), StoreError> {
        self.check()?;
        self.inner.remove_account(seed).await
    }
}
