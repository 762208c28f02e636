//! [`AccountLock`], the proof of holding an account's short-lived lock, and `LocalLocks`, the
//! lock table of the memory and embedded backends.
//!
//! Why a lock with a TTL rather than a plain mutex: it exists so that two replicas never spend
//! the same CLI refresh token, and a replica may die while holding it. The TTL bounds how long a
//! dead holder blocks the others; the holder's random token makes a late release harmless (it
//! frees only its own lock, never a lock someone took after it expired).
//!
//! The memory and embedded stores are never shared between processes, so their lock table
//! lives in the process. Expiry uses the monotonic clock: a lock is about durations, not dates.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// A held account lock (from [`super::Store::lock_account`]). Not a guard: release it with
/// [`super::Store::unlock_account`], or let its TTL run out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLock {
    /// The account it locks.
    pub seed_hash: String,
    /// Random and unique to this holder (no secret): a release frees the lock only while it
    /// still holds this value.
    pub(crate) holder: String,
}

impl AccountLock {
    /// A lock of `seed_hash` with a new random holder value.
    pub(crate) fn new(seed_hash: &str) -> Self {
        AccountLock {
            seed_hash: seed_hash.to_string(),
            holder: uuid::Uuid::new_v4().simple().to_string(),
        }
    }
}

/// The locks of one single-process store: seed hash -> (holder, end of its TTL).
#[derive(Debug, Default)]
pub(crate) struct LocalLocks {
    held: Mutex<HashMap<String, (String, Instant)>>,
}

impl LocalLocks {
    /// The plain map inside is consistent after every statement, so a poisoned lock is usable.
    fn table(&self) -> MutexGuard<'_, HashMap<String, (String, Instant)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the lock of `seed_hash` for `ttl`, unless a live lock is held.
    pub(crate) fn acquire(&self, seed_hash: &str, ttl: Duration) -> Option<AccountLock> {
        let now = Instant::now();
        let mut table = self.table();
        // Expired locks go here, so the table never grows past the accounts locked right now.
        table.retain(|_, (_, until)| *until > now);
        if table.contains_key(seed_hash) {
            return None;
        }
        let lock = AccountLock::new(seed_hash);
        table.insert(seed_hash.to_string(), (lock.holder.clone(), now + ttl));
        Some(lock)
    }

    /// Frees `lock` if it is still the holder; `true` only if it was also still live.
    pub(crate) fn release(&self, lock: &AccountLock) -> bool {
        let mut table = self.table();
        match table.get(&lock.seed_hash) {
            Some((holder, until)) if *holder == lock.holder => {
                let live = *until > Instant::now();
                table.remove(&lock.seed_hash);
                live
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_a_late_release_frees_nothing() {
        let locks = LocalLocks::default();
        let first = locks.acquire("a", Duration::from_millis(30)).expect("free");
        assert!(locks.acquire("a", Duration::from_secs(5)).is_none());
        assert!(
            locks.acquire("b", Duration::from_secs(5)).is_some(),
            "per account"
        );
        std::thread::sleep(Duration::from_millis(40));
        let second = locks.acquire("a", Duration::from_secs(5)).expect("expired");
        assert_ne!(first.holder, second.holder);
        assert!(!locks.release(&first), "expired, and not its lock any more");
        assert!(
            locks.acquire("a", Duration::from_secs(5)).is_none(),
            "still held"
        );
        assert!(locks.release(&second));
        assert!(!locks.release(&second), "released once");
        assert!(locks.acquire("a", Duration::from_secs(5)).is_some());
    }
}
