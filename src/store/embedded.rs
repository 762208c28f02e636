//! [`EmbeddedStore`]: the default backend, one redb file under `DATA_DIR`.
//!
//! Tables:
//! - `conversations`: key -> (use stamp, JSON of the [`ConversationRecord`]);
//! - `conversations_lru`: (use stamp, key) -> (), oldest first, for expiry and LRU eviction;
//! - `accounts`: seed_hash -> JSON of the [`AccountRecord`].
//!
//! Every write is one redb transaction committed with the default (immediate) durability, so a
//! SIGKILL after a call returned never loses that write. redb is blocking, so each operation
//! runs on tokio's blocking pool with the `Database` shared through an `Arc`. The file holds
//! cookies and refresh tokens, so it is created (and kept) with mode 0600.
//!
//! redb holds an exclusive lock on the file, so no other process ever uses this store: the
//! account locks are in-process ([`LocalLocks`]), and the secret's compare-and-set is one write
//! transaction.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::lock::LocalLocks;
use super::{
    AccountLock, AccountRecord, ConversationRecord, Store, StoreError, StoreLimits, is_expired,
    next_stamp, now_ms, ttl_ms,
};

const CONVERSATIONS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("conversations");
const LRU: TableDefinition<(u64, &str), ()> = TableDefinition::new("conversations_lru");
const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// redb's default page cache is 1 GiB; our records are small, so a modest cache is plenty.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The redb-backed store. Cloning the inner `Arc` is how work reaches the blocking pool.
pub struct EmbeddedStore {
    db: Arc<Database>,
    limits: StoreLimits,
    locks: LocalLocks,
}

/// Any redb failure after the open is an I/O failure of the store.
fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Io(e.to_string())
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))
}

impl EmbeddedStore {
    /// Opens (or creates) the store file. Blocking: call it from start-up code or through
    /// [`super::open_store`], which runs it on the blocking pool.
    ///
    /// A corrupt, unreadable or already-open file gives [`StoreError::Open`] naming the file.
    pub fn open(path: &Path, limits: StoreLimits) -> Result<Self, StoreError> {
        let open_err = |detail: String| StoreError::Open {
            path: path.display().to_string(),
            detail,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| open_err(format!("cannot create its directory: {e}")))?;
        }
        // Create the file ourselves so that it never exists with a wider mode, even briefly.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| open_err(e.to_string()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| open_err(format!("cannot set its mode to 0600: {e}")))?;

        // A file altered outside redb may make a plain open panic; the integrity check turns
        // that into an error, and catch_unwind covers anything the check misses.
        let opened = std::panic::catch_unwind(|| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .set_check_integrity_on_open(true)
                .create(path)
        })
        .map_err(|_| open_err("the database file is corrupt (redb panicked)".to_string()))?;
        let db = opened.map_err(|e| open_err(e.to_string()))?;

        // Create the tables up front so that read transactions always find them.
        let txn = db.begin_write().map_err(|e| open_err(e.to_string()))?;
        {
            txn.open_table(CONVERSATIONS)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(LRU).map_err(|e| open_err(e.to_string()))?;
            txn.open_table(ACCOUNTS)
                .map_err(|e| open_err(e.to_string()))?;
            txn.open_table(SECRETS)
                .map_err(|e| open_err(e.to_string()))?;
        }
        txn.commit().map_err(|e| open_err(e.to_string()))?;

        Ok(EmbeddedStore {
            db: Arc::new(db),
            limits,
            locks: LocalLocks::default(),
        })
    }

    /// Runs a blocking database operation on tokio's blocking pool.
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, StoreLimits) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || op(&db, limits))
            .await
            .map_err(|e| StoreError::Io(format!("the store task failed: {e}")))?
    }
}

/// Removes a mapping and its LRU entry inside `txn`, returning its stamp and JSON.
fn remove_conversation(
    txn: &WriteTransaction,
    key: &str,
) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let mut conversations = txn.open_table(CONVERSATIONS).map_err(io)?;
    let removed = conversations.remove(key).map_err(io)?.map(|guard| {
        let (stamp, json) = guard.value();
        (stamp, json.to_vec())
    });
    if let Some((stamp, _)) = &removed {
        let mut lru = txn.open_table(LRU).map_err(io)?;
        lru.remove((*stamp, key)).map_err(io)?;
    }
    Ok(removed)
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        let json = encode(record)?;
        self.run(move |db, limits| {
            let txn = db.begin_write().map_err(io)?;
            remove_conversation(&txn, &key)?;
            {
                let mut conversations = txn.open_table(CONVERSATIONS).map_err(io)?;
                let mut lru = txn.open_table(LRU).map_err(io)?;
                let newest = lru.last().map_err(io)?.map(|(k, _)| k.value().0);
                let stamp = next_stamp(now_ms(), newest);
                conversations
                    .insert(key.as_str(), (stamp, json.as_slice()))
                    .map_err(io)?;
                lru.insert((stamp, key.as_str()), ()).map_err(io)?;
                while conversations.len().map_err(io)? > limits.max_conversations as u64 {
                    let oldest = lru
                        .pop_first()
                        .map_err(io)?
                        .map(|(k, _)| k.value().1.to_string());
                    let Some(oldest) = oldest else { break };
                    conversations.remove(oldest.as_str()).map_err(io)?;
                }
            }
            txn.commit().map_err(io)
        })
        .await
    }

    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let key = key.to_string();
        let removed = self
            .run(move |db, _| {
                let txn = db.begin_write().map_err(io)?;
                let removed = remove_conversation(&txn, &key)?;
                if removed.is_some() {
                    txn.commit().map_err(io)?;
                } else {
                    txn.abort().map_err(io)?;
                }
                Ok(removed)
            })
            .await?;
        match removed {
            Some((stamp, json)) if !is_expired(stamp, ttl_ms(&self.limits), now_ms()) => {
                decode(&json).map(Some)
            }
            _ => Ok(None),
        }
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        self.run(|db, limits| {
            let cutoff = expiry_cutoff(&limits);
            let txn = db.begin_read().map_err(io)?;
            let conversations = txn.open_table(CONVERSATIONS).map_err(io)?;
            let lru = txn.open_table(LRU).map_err(io)?;
            let total = conversations.len().map_err(io)?;
            let expired = match cutoff {
                Some(end) => lru.range((0u64, "")..(end, "")).map_err(io)?.count() as u64,
                None => 0,
            };
            Ok(usize::try_from(total.saturating_sub(expired)).unwrap_or(usize::MAX))
        })
        .await
    }

    async fn purge_expired(&self) -> Result<Vec<ConversationRecord>, StoreError> {
        let purged = self
            .run(|db, limits| {
                let Some(end) = expiry_cutoff(&limits) else {
                    return Ok(Vec::new());
                };
                let txn = db.begin_write().map_err(io)?;
                let mut purged = Vec::new();
                {
                    let mut conversations = txn.open_table(CONVERSATIONS).map_err(io)?;
                    let mut lru = txn.open_table(LRU).map_err(io)?;
                    let expired = lru
                        .extract_from_if((0u64, "")..(end, ""), |_, _| true)
                        .map_err(io)?;
                    for entry in expired {
                        let (k, _) = entry.map_err(io)?;
                        let key = k.value().1.to_string();
                        if let Some(guard) = conversations.remove(key.as_str()).map_err(io)? {
                            purged.push(guard.value().1.to_vec());
                        }
                    }
                }
                txn.commit().map_err(io)?;
                Ok(purged)
            })
            .await?;
        // A record that no longer decodes is dropped with the rest; there is nothing to return.
        Ok(purged
            .iter()
            .filter_map(|json| decode::<ConversationRecord>(json).ok())
            .collect())
    }

    async fn put_account(&self, record: &AccountRecord) -> Result<(), StoreError> {
        let seed_hash = record.seed_hash.clone();
        let json = encode(record)?;
        self.run(move |db, _| {
            let txn = db.begin_write().map_err(io)?;
            {
                let mut accounts = txn.open_table(ACCOUNTS).map_err(io)?;
                accounts
                    .insert(seed_hash.as_str(), json.as_slice())
                    .map_err(io)?;
            }
            txn.commit().map_err(io)
        })
        .await
    }

    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let seed_hash = seed_hash.to_string();
        let json = self
            .run(move |db, _| {
                let txn = db.begin_read().map_err(io)?;
                let accounts = txn.open_table(ACCOUNTS).map_err(io)?;
                let found = accounts.get(seed_hash.as_str()).map_err(io)?;
                Ok(found.map(|guard| guard.value().to_vec()))
            })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let all = self
            .run(|db, _| {
                let txn = db.begin_read().map_err(io)?;
                let accounts = txn.open_table(ACCOUNTS).map_err(io)?;
                let mut all = Vec::new();
                for entry in accounts.iter().map_err(io)? {
                    let (_, value) = entry.map_err(io)?;
                    all.push(value.value().to_vec());
                }
                Ok(all)
            })
            .await?;
        all.iter().map(|json| decode(json)).collect()
    }

    async fn remove_account(&self, seed_hash: &str) -> Result<(), StoreError> {
        let seed_hash = seed_hash.to_string();
        self.run(move |db, _| {
            let txn = db.begin_write().map_err(io)?;
            {
                let mut accounts = txn.open_table(ACCOUNTS).map_err(io)?;
                accounts.remove(seed_hash.as_str()).map_err(io)?;
            }
            txn.commit().map_err(io)
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        self.run(move |db, _| {
            // One write transaction: redb runs them one at a time, so the first value stays.
            let txn = db.begin_write().map_err(io)?;
            let kept = {
                let mut secrets = txn.open_table(SECRETS).map_err(io)?;
                let existing = secrets
                    .get(name.as_str())
                    .map_err(io)?
                    .map(|guard| guard.value().to_vec());
                match existing {
                    Some(kept) => kept,
                    None => {
                        secrets
                            .insert(name.as_str(), fresh.as_slice())
                            .map_err(io)?;
                        fresh
                    }
                }
            };
            txn.commit().map_err(io)?;
            Ok(kept)
        })
        .await
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
        let (seed_hash, expected, new) =
            (seed_hash.to_string(), expected.to_string(), new.to_string());
        self.run(move |db, _| {
            let txn = db.begin_write().map_err(io)?;
            let swapped = {
                let mut accounts = txn.open_table(ACCOUNTS).map_err(io)?;
                let stored = accounts
                    .get(seed_hash.as_str())
                    .map_err(io)?
                    .map(|guard| guard.value().to_vec());
                match stored.as_deref().map(decode::<AccountRecord>).transpose()? {
                    Some(mut record) if record.client_cookie == expected => {
                        record.client_cookie = new;
                        record.updated_ms = now_ms();
                        let json = encode(&record)?;
                        accounts
                            .insert(seed_hash.as_str(), json.as_slice())
                            .map_err(io)?;
                        true
                    }
                    _ => false,
                }
            };
            if swapped {
                txn.commit().map_err(io)?;
            } else {
                txn.abort().map_err(io)?;
            }
            Ok(swapped)
        })
        .await
    }
}

/// The exclusive upper stamp of expired mappings (`stamp < end` means expired), or `None`
/// when nothing can be expired yet.
fn expiry_cutoff(limits: &StoreLimits) -> Option<u64> {
    // `is_expired` is `now >= stamp + ttl`, i.e. `stamp <= now - ttl`.
    now_ms().checked_sub(ttl_ms(limits))?.checked_add(1)
}
