//! [`EmbeddedStore`]: the default backend, one redb file under `DATA_DIR`.
//!
//! Tables:
//! - `conversations`: key -> (use stamp, JSON of the [`ConversationRecord`]);
//! - `conversations_lru`: (use stamp, key) -> (), oldest first, for expiry and LRU eviction;
//! - `accounts`: seed_hash -> JSON of the [`AccountRecord`];
//! - `health`: one probe row, written when the file is reopened after an I/O error.
//!
//! Every write is one redb transaction committed with the default (immediate) durability, so a
//! SIGKILL after a call returned never loses that write. redb is blocking, so each operation
//! runs on tokio's blocking pool. The file holds cookies and refresh tokens, so it is created
//! (and kept) with mode 0600.
//!
//! redb holds an exclusive lock on the file, so no other process ever uses this store: the
//! account locks are in-process (`LocalLocks`), and the secret's compare-and-set is one write
//! transaction.
//!
//! After an I/O error (a full disk) the file is closed and reopened by itself: see
//! `store::redb_file`.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use super::fault::WriteFaults;
use super::lock::LocalLocks;
use super::redb_file::StoreFile;
use super::{
    AccountLock, AccountRecord, ConversationRecord, Store, StoreError, StoreHealth, StoreLimits,
    is_expired, next_stamp, now_ms, ttl_ms,
};

pub(super) const CONVERSATIONS: TableDefinition<&str, (u64, &[u8])> =
    TableDefinition::new("conversations");
pub(super) const LRU: TableDefinition<(u64, &str), ()> = TableDefinition::new("conversations_lru");
pub(super) const ACCOUNTS: TableDefinition<&str, &[u8]> = TableDefinition::new("accounts");
pub(super) const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

/// The redb-backed store.
pub struct EmbeddedStore {
    file: Arc<StoreFile>,
    limits: StoreLimits,
    locks: LocalLocks,
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
        Self::open_with(path, limits, None)
    }

    /// [`EmbeddedStore::open`] with a switch that makes the file's writes fail as on a full
    /// disk, for tests of the recovery (it also applies to every reopened file).
    pub fn open_with_faults(
        path: &Path,
        limits: StoreLimits,
        faults: Arc<WriteFaults>,
    ) -> Result<Self, StoreError> {
        Self::open_with(path, limits, Some(faults))
    }

    fn open_with(
        path: &Path,
        limits: StoreLimits,
        faults: Option<Arc<WriteFaults>>,
    ) -> Result<Self, StoreError> {
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
        Ok(EmbeddedStore {
            file: Arc::new(StoreFile::open(path, faults).map_err(open_err)?),
            limits,
            locks: LocalLocks::default(),
        })
    }

    /// Runs a blocking database operation on tokio's blocking pool.
    async fn run<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database, StoreLimits) -> Result<T, redb::Error> + Send + 'static,
    {
        let file = Arc::clone(&self.file);
        let limits = self.limits;
        tokio::task::spawn_blocking(move || file.call(|db| op(db, limits)))
            .await
            .map_err(|e| StoreError::Io(format!("the store task failed: {e}")))?
    }
}

/// Removes a mapping and its LRU entry inside `txn`, returning its stamp and JSON.
fn remove_conversation(
    txn: &WriteTransaction,
    key: &str,
) -> Result<Option<(u64, Vec<u8>)>, redb::Error> {
    let mut conversations = txn.open_table(CONVERSATIONS)?;
    let removed = conversations.remove(key)?.map(|guard| {
        let (stamp, json) = guard.value();
        (stamp, json.to_vec())
    });
    if let Some((stamp, _)) = &removed {
        let mut lru = txn.open_table(LRU)?;
        lru.remove((*stamp, key))?;
    }
    Ok(removed)
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn health(&self) -> StoreHealth {
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.health())
            .await
            .unwrap_or_else(|e| StoreHealth::Unwritable(format!("the store task failed: {e}")))
    }

    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError> {
        let key = key.to_string();
        let json = encode(record)?;
        self.run(move |db, limits| {
            let txn = db.begin_write()?;
            remove_conversation(&txn, &key)?;
            {
                let mut conversations = txn.open_table(CONVERSATIONS)?;
                let mut lru = txn.open_table(LRU)?;
                let newest = lru.last()?.map(|(k, _)| k.value().0);
                let stamp = next_stamp(now_ms(), newest);
                conversations.insert(key.as_str(), (stamp, json.as_slice()))?;
                lru.insert((stamp, key.as_str()), ())?;
                while conversations.len()? > limits.max_conversations as u64 {
                    let oldest = lru.pop_first()?.map(|(k, _)| k.value().1.to_string());
                    let Some(oldest) = oldest else { break };
                    conversations.remove(oldest.as_str())?;
                }
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        let key = key.to_string();
        let removed = self
            .run(move |db, _| {
                let txn = db.begin_write()?;
                let removed = remove_conversation(&txn, &key)?;
                if removed.is_some() {
                    txn.commit()?;
                } else {
                    txn.abort()?;
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
            let txn = db.begin_read()?;
            let conversations = txn.open_table(CONVERSATIONS)?;
            let lru = txn.open_table(LRU)?;
            let total = conversations.len()?;
            let expired = match cutoff {
                Some(end) => lru.range((0u64, "")..(end, ""))?.count() as u64,
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
                let txn = db.begin_write()?;
                let mut purged = Vec::new();
                {
                    let mut conversations = txn.open_table(CONVERSATIONS)?;
                    let mut lru = txn.open_table(LRU)?;
                    let expired = lru.extract_from_if((0u64, "")..(end, ""), |_, _| true)?;
                    for entry in expired {
                        let (k, _) = entry?;
                        let key = k.value().1.to_string();
                        if let Some(guard) = conversations.remove(key.as_str())? {
                            purged.push(guard.value().1.to_vec());
                        }
                    }
                }
                txn.commit()?;
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
            let txn = db.begin_write()?;
            {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                accounts.insert(seed_hash.as_str(), json.as_slice())?;
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let seed_hash = seed_hash.to_string();
        let json = self
            .run(move |db, _| {
                let txn = db.begin_read()?;
                let accounts = txn.open_table(ACCOUNTS)?;
                let found = accounts.get(seed_hash.as_str())?;
                Ok(found.map(|guard| guard.value().to_vec()))
            })
            .await?;
        json.as_deref().map(decode).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let all = self
            .run(|db, _| {
                let txn = db.begin_read()?;
                let accounts = txn.open_table(ACCOUNTS)?;
                let mut all = Vec::new();
                for entry in accounts.iter()? {
                    let (_, value) = entry?;
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
            let txn = db.begin_write()?;
            {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                accounts.remove(seed_hash.as_str())?;
            }
            Ok(txn.commit()?)
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        self.run(move |db, _| {
            // One write transaction: redb runs them one at a time, so the first value stays.
            let txn = db.begin_write()?;
            let kept = {
                let mut secrets = txn.open_table(SECRETS)?;
                let existing = secrets
                    .get(name.as_str())?
                    .map(|guard| guard.value().to_vec());
                match existing {
                    Some(kept) => kept,
                    None => {
                        secrets.insert(name.as_str(), fresh.as_slice())?;
                        fresh
                    }
                }
            };
            txn.commit()?;
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
            let txn = db.begin_write()?;
            let swapped = {
                let mut accounts = txn.open_table(ACCOUNTS)?;
                let stored = accounts
                    .get(seed_hash.as_str())?
                    .map(|guard| guard.value().to_vec());
                // A record that does not decode never matches (nothing is written).
                let record = stored
                    .as_deref()
                    .and_then(|b| decode::<AccountRecord>(b).ok());
                match record {
                    Some(mut record) if record.client_cookie == expected => {
                        record.client_cookie = new;
                        record.updated_ms = now_ms();
                        match encode(&record) {
                            Ok(json) => {
                                accounts.insert(seed_hash.as_str(), json.as_slice())?;
                                true
                            }
                            Err(_) => false,
                        }
                    }
                    _ => false,
                }
            };
            if swapped {
                txn.commit()?;
            } else {
                txn.abort()?;
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
