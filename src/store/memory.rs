//! [`MemoryStore`]: the in-process backend (tests, and the fallback when nothing durable is
//! configured). Nothing survives a restart.
//!
//! One `std::sync::Mutex` guards a map of mappings plus an ordered index of use stamps; every
//! critical section is plain map work and never awaits. Account locks are in-process
//! (`LocalLocks`): nothing else can see this store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::lock::LocalLocks;
use super::{
    AccountLock, AccountRecord, ConversationRecord, Store, StoreError, StoreLimits, is_expired,
    next_stamp, now_ms, ttl_ms,
};

/// In-process store; cheap to create, so each test may use its own.
pub struct MemoryStore {
    limits: StoreLimits,
    state: Mutex<State>,
    locks: LocalLocks,
}

#[derive(Default)]
struct State {
    /// key -> (use stamp, record).
    conversations: HashMap<String, (u64, ConversationRecord)>,
    /// (use stamp, key), oldest first: drives expiry and LRU eviction.
    by_stamp: BTreeSet<(u64, String)>,
    /// seed_hash -> record; ordered so that listings are stable.
    accounts: BTreeMap<String, AccountRecord>,
    /// name -> secret (see [`Store::secret`]).
    secrets: HashMap<String, Vec<u8>>,
}

impl State {
    /// Removes a mapping and its index entry, returning it with its stamp.
    fn remove(&mut self, key: &str) -> Option<(u64, ConversationRecord)> {
        let (stamp, record) = self.conversations.remove(key)?;
        self.by_stamp.remove(&(stamp, key.to_string()));
        Some((stamp, record))
    }
}

impl MemoryStore {
    pub fn new(limits: StoreLimits) -> Self {
        MemoryStore {
            limits,
            state: Mutex::new(State::default()),
            locks: LocalLocks::default(),
        }
    }

    /// A poisoned lock only means another thread panicked mid-operation; every operation
    /// leaves the maps consistent before it can panic, so the state is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError> {
        let mut state = self.lock();
        state.remove(key);
        let newest = state.by_stamp.last().map(|(stamp, _)| *stamp);
        let stamp = next_stamp(now_ms(), newest);
        state
            .conversations
            .insert(key.to_string(), (stamp, record.clone()));
        state.by_stamp.insert((stamp, key.to_string()));
        while state.conversations.len() > self.limits.max_conversations {
            let Some((_, oldest)) = state.by_stamp.pop_first() else {
                break;
            };
            state.conversations.remove(&oldest);
        }
        Ok(())
    }

    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let taken = self.lock().remove(key);
        Ok(taken
            .filter(|(stamp, _)| !is_expired(*stamp, ttl_ms(&self.limits), now_ms()))
            .map(|(_, record)| record))
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        let now = now_ms();
        let ttl = ttl_ms(&self.limits);
        let state = self.lock();
        let expired = state
            .by_stamp
            .iter()
            .take_while(|(stamp, _)| is_expired(*stamp, ttl, now))
            .count();
        Ok(state.conversations.len().saturating_sub(expired))
    }

    async fn purge_expired(&self) -> Result<Vec<ConversationRecord>, StoreError> {
        let now = now_ms();
        let ttl = ttl_ms(&self.limits);
        let mut state = self.lock();
        let mut purged = Vec::new();
        while let Some((stamp, _)) = state.by_stamp.first() {
            if !is_expired(*stamp, ttl, now) {
                break;
            }
            let Some((_, key)) = state.by_stamp.pop_first() else {
                break;
            };
            if let Some((_, record)) = state.conversations.remove(&key) {
                purged.push(record);
            }
        }
        Ok(purged)
    }

    async fn put_account(&self, record: &AccountRecord) -> Result<(), StoreError> {
        self.lock()
            .accounts
            .insert(record.seed_hash.clone(), record.clone());
        Ok(())
    }

    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.get(seed_hash).cloned())
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        Ok(self.lock().accounts.values().cloned().collect())
    }

    async fn remove_account(&self, seed_hash: &str) -> Result<(), StoreError> {
        self.lock().accounts.remove(seed_hash);
        Ok(())
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        Ok(self
            .lock()
            .secrets
            .entry(name.to_string())
            .or_insert_with(|| fresh.to_vec())
            .clone())
    }

    async fn lock_account(
        &self,
        seed_hash: &str,
        ttl: Duration,
    ) -> Result<Option<AccountLock>, StoreError> {
        Ok(self.locks.acquire(seed_hash, ttl))
    }

    async fn unlock_account(&self, lock: &AccountLock) -> Result<bool, StoreError> {
        Ok(self.locks.release(lock))
    }

    async fn swap_account_secret(
        &self,
        seed_hash: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let mut state = self.lock();
        match state.accounts.get_mut(seed_hash) {
            Some(record) if record.client_cookie == expected => {
                record.client_cookie = new.to_string();
                record.updated_ms = now_ms();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
