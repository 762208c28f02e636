//! [`EmbeddedStore`]: the default backend, one redb file under `DATA_DIR` (tables in
//! `store::tables`).
//!
//! # Writes: one writer thread, in batches
//! Every write goes to the store's writer thread (`store::writer`), which commits whatever is
//! queued in one transaction with redb's default (immediate) durability: no blocking thread per
//! write, and one `fsync` for a burst of completing streams. The `Pending` overlay makes
//! queued writes visible to reads until they are committed, so no caller has to wait for a
//! commit to keep reads exact: a follow-up sent right after `[DONE]` finds its conversation, and
//! a mapping is never handed out twice.
//!
//! Takes do not wait for their commit (the lookup at the start of a request is on the path to
//! the first token). Puts do, while [`WAIT_FOR_PUT_COMMIT`] says so: the promise that a turn
//! whose answer completed survives a SIGKILL (`tests/persistence.rs`) needs its mapping on disk
//! before the answer's last chunk. Without that wait the last chunk would go out a commit
//! (about a millisecond) sooner, and a SIGKILL in that moment would lose the mapping (the next
//! turn would start a new upstream history). Account records, secrets and their compare-and-set
//! always wait (a rotated cookie or a spent refresh token must not be lost), and since the
//! queue is in order, so does everything queued before them. A graceful shutdown flushes
//! ([`Store::flush`]), and dropping the store commits what is queued and joins the thread.
//!
//! # Reads: on the caller's thread
//! Reads (`get_account`, `list_accounts`, and a take's lookup of a key the overlay does not
//! hold) open a redb read transaction right where they are called, without a blocking thread:
//! a read transaction takes no lock a writer holds (redb is MVCC), and our records are a few
//! small pages that sit in redb's cache, so one costs microseconds, less than the hop to a
//! blocking thread and back. Counting and purging go through the writer instead, so that they
//! see every queued write.
//!
//! The file holds cookies and refresh tokens, so it is created (and kept) with mode 0600.
//! redb holds an exclusive lock on the file, so no other process ever uses this store: the
//! account locks are in-process (`LocalLocks`), and the secret's compare-and-set is one write
//! transaction.
//!
//! After an I/O error (a full disk) the file is closed and reopened by the writer: see
//! `store::redb_file`. While it is closed, puts and takes fail at once (and wake the writer to
//! try the reopen when due), so a closed store remembers nothing, as before.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::fault::WriteFaults;
use super::lock::LocalLocks;
use super::pending::Pending;
use super::redb_file::StoreFile;
use super::tables::{self, ACCOUNTS, CONVERSATIONS, LRU, SECRETS};
use super::writer::{Call, Job, Writer, lock};
use super::{
    AccountLock, AccountRecord, ConversationRecord, Store, StoreError, StoreHealth, StoreLimits,
    is_expired, now_ms, ttl_ms,
};

/// Whether a conversation put returns only once it is committed, by default (see the module
/// doc): the SIGKILL promise for completed turns. [`EmbeddedStore::write_behind`] turns it off:
/// a put then returns once queued (the overlay keeps reads exact either way).
pub const WAIT_FOR_PUT_COMMIT: bool = true;

/// The redb-backed store.
pub struct EmbeddedStore {
    file: Arc<StoreFile>,
    limits: StoreLimits,
    locks: LocalLocks,
    /// Conversation writes queued but not yet committed.
    pending: Arc<Mutex<Pending>>,
    writer: Writer,
    /// See [`WAIT_FOR_PUT_COMMIT`].
    wait_for_put_commit: bool,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Decode(e.to_string()))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::Io(format!("cannot encode a record: {e}")))
}

impl EmbeddedStore {
    /// Opens (or creates) the store file and starts its writer thread. Blocking: call it from
    /// start-up code or through [`super::open_store`], which runs it on the blocking pool.
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
        let file = Arc::new(StoreFile::open(path, faults).map_err(open_err)?);
        let newest = file
            .read(tables::newest_stamp)
            .map_err(|e| open_err(e.to_string()))?;
        let pending = Arc::new(Mutex::new(Pending::new(newest)));
        let writer =
            Writer::start(Arc::clone(&file), Arc::clone(&pending), limits).map_err(open_err)?;
        Ok(EmbeddedStore {
            file,
            limits,
            locks: LocalLocks::default(),
            pending,
            writer,
            wait_for_put_commit: WAIT_FOR_PUT_COMMIT,
        })
    }

    /// Conversation puts return once queued, before their commit: the answer's last chunk does
    /// not wait for the disk, and a SIGKILL right after it may lose that one mapping.
    pub fn write_behind(mut self) -> Self {
        self.wait_for_put_commit = false;
        self
    }

    /// Queues a write whose caller waits for its commit, and waits.
    async fn write<T, F>(&self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction, StoreLimits) -> Result<T, redb::Error> + Send + 'static,
    {
        let (task, reply) = Call::task(op);
        self.writer.send(Job::Call(task))?;
        reply
            .await
            .map_err(|_| StoreError::Io("the store's writer thread has stopped".into()))?
    }

    /// The error for a put or take while the file is closed; wakes the writer so that it tries
    /// the reopen when that is due (it is the one that reopens).
    fn closed(&self) -> StoreError {
        if self.file.reopen_due() {
            let _ = self.writer.send(Job::Nudge);
        }
        self.file.unwritable(None)
    }
}

#[async_trait::async_trait]
impl Store for EmbeddedStore {
    fn backend(&self) -> &'static str {
        "embedded"
    }

    async fn health(&self) -> StoreHealth {
        // Rare (`/readyz`), and it may reopen the file: the blocking pool is the right place.
        let file = Arc::clone(&self.file);
        tokio::task::spawn_blocking(move || file.health())
            .await
            .unwrap_or_else(|e| StoreHealth::Unwritable(format!("the store task failed: {e}")))
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.write(|_, _| Ok(())).await
    }

    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError> {
        if !self.file.is_open() {
            return Err(self.closed());
        }
        let json = encode(record)?;
        let (done, committed) = match self.wait_for_put_commit {
            true => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        {
            let mut pending = lock(&self.pending);
            let (seq, stamp) = pending.put(key, record, now_ms());
            let job = Job::Put {
                key: key.to_string(),
                stamp,
                json,
                seq,
                done,
            };
            if let Err(e) = self.writer.send(job) {
                pending.settled(key, seq);
                return Err(e);
            }
        }
        match committed {
            Some(rx) => rx
                .await
                .map_err(|_| StoreError::Io("the store's writer thread has stopped".into()))?,
            None => Ok(()),
        }
    }

    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError> {
        if !self.file.is_open() {
            return Err(self.closed());
        }
        // The lock is held across the file lookup, so that two takers of one key are ordered:
        // the second finds the first's take in the overlay.
        let mut pending = lock(&self.pending);
        let found = match pending.get(key) {
            Some(entry) => entry
                .value
                .clone()
                .map(|(stamp, record)| (stamp, Ok(record))),
            None => self
                .file
                .read(|db| tables::read_conversation(db, key))?
                .map(|(stamp, json)| (stamp, decode::<ConversationRecord>(&json))),
        };
        // A record that does not decode is taken (deleted) all the same, and the error returned.
        let Some((stamp, record)) = found else {
            return Ok(None);
        };
        let seq = pending.take(key);
        if let Err(e) = self.writer.send(Job::Remove {
            key: key.to_string(),
            seq,
        }) {
            pending.settled(key, seq);
            return Err(e);
        }
        drop(pending);
        let record = record?;
        Ok((!is_expired(stamp, ttl_ms(&self.limits), now_ms())).then_some(record))
    }

    async fn conversation_count(&self) -> Result<usize, StoreError> {
        self.write(|txn, limits| {
            let cutoff = expiry_cutoff(&limits);
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
            .write(|txn, limits| {
                let Some(end) = expiry_cutoff(&limits) else {
                    return Ok(Vec::new());
                };
                let mut purged = Vec::new();
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
        self.write(move |txn, _| {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            accounts.insert(seed_hash.as_str(), json.as_slice())?;
            Ok(())
        })
        .await
    }

    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError> {
        let json = self.file.read(|db| {
            let txn = db.begin_read()?;
            let accounts = txn.open_table(ACCOUNTS)?;
            let found = accounts.get(seed_hash)?;
            Ok(found.map(|guard| guard.value().to_vec()))
        })?;
        json.as_deref().map(decode).transpose()
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let all = self.file.read(|db| {
            let txn = db.begin_read()?;
            let accounts = txn.open_table(ACCOUNTS)?;
            let mut all = Vec::new();
            for entry in accounts.iter()? {
                let (_, value) = entry?;
                all.push(value.value().to_vec());
            }
            Ok(all)
        })?;
        all.iter().map(|json| decode(json)).collect()
    }

    async fn remove_account(&self, seed_hash: &str) -> Result<(), StoreError> {
        let seed_hash = seed_hash.to_string();
        self.write(move |txn, _| {
            let mut accounts = txn.open_table(ACCOUNTS)?;
            accounts.remove(seed_hash.as_str())?;
            Ok(())
        })
        .await
    }

    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let (name, fresh) = (name.to_string(), fresh.to_vec());
        // The writer runs one job at a time, so the first value stays.
        self.write(move |txn, _| {
            let mut secrets = txn.open_table(SECRETS)?;
            let existing = secrets
                .get(name.as_str())?
                .map(|guard| guard.value().to_vec());
            match existing {
                Some(kept) => Ok(kept),
                None => {
                    secrets.insert(name.as_str(), fresh.as_slice())?;
                    Ok(fresh)
                }
            }
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
        // One job on the writer: nothing else writes between the read and the write.
        self.write(move |txn, _| {
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
                            Ok(true)
                        }
                        Err(_) => Ok(false),
                    }
                }
                _ => Ok(false),
            }
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
