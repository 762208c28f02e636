//! [`StoreFile`]: the embedded store's redb database handle, which closes itself on an I/O
//! error and opens the file again on the schedule of [`Recovery`].
//!
//! After an I/O error (a full disk) redb refuses every later call until the database is closed
//! and opened again. So the failing call closes it, and a later call (or `/readyz` through
//! `Store::health`) reopens it, writing a probe row to prove the file takes writes again.
//! Meanwhile calls fail at once with [`StoreError::Unwritable`], which names the file.
//!
//! Writes go through [`StoreFile::call`] on the store's writer thread, which is also the one
//! that reopens; reads go through [`StoreFile::read`] on the caller's thread and never wait for
//! a reopen (a file being reopened is a closed file to them).

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, TryLockError};
use std::time::Instant;

use redb::Database;
use redb::backends::FileBackend;

use super::fault::{FaultyFile, WriteFaults};
use super::recovery::Recovery;
use super::tables::{ACCOUNTS, CONVERSATIONS, HEALTH, LRU, SECRETS};
use super::{StoreError, StoreHealth, now_ms};

/// redb's default page cache is 1 GiB; our records are small, so a modest cache is plenty.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The database and what reopening it needs, shared by the store and its writer thread.
pub(super) struct StoreFile {
    path: PathBuf,
    /// Set by tests to make the file's writes fail (see [`WriteFaults`]).
    faults: Option<Arc<WriteFaults>>,
    /// `None` while closed after an I/O error. Calls hold the read side for their whole
    /// transaction; a reopen takes the write side, so the old handle is gone (and its file lock
    /// released) before the new one opens.
    db: RwLock<Option<Database>>,
    recovery: Mutex<Recovery>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a redb error is an I/O failure of the file (after which redb must be reopened).
fn is_io(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
    )
}

/// Opens the database and creates the tables, so that read transactions always find them.
/// A file altered outside redb may make a plain open panic; the integrity check turns that into
/// an error, and catch_unwind covers anything the check misses.
fn open_database(path: &Path, faults: Option<&Arc<WriteFaults>>) -> Result<Database, String> {
    let opened = std::panic::catch_unwind(|| {
        let mut builder = Database::builder();
        builder
            .set_cache_size(CACHE_BYTES)
            .set_check_integrity_on_open(true);
        match faults {
            None => builder.create(path),
            Some(faults) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(redb::DatabaseError::from)?;
                builder.create_with_backend(FaultyFile {
                    file: FileBackend::new(file)?,
                    faults: Arc::clone(faults),
                })
            }
        }
    })
    .map_err(|_| "the database file is corrupt (redb panicked)".to_string())?;
    let db = opened.map_err(|e| e.to_string())?;
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    for result in [
        txn.open_table(CONVERSATIONS).map(drop),
        txn.open_table(LRU).map(drop),
        txn.open_table(ACCOUNTS).map(drop),
        txn.open_table(SECRETS).map(drop),
    ] {
        result.map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())?;
    Ok(db)
}

/// Writes the probe row: proof that the file takes writes.
fn probe(db: &Database) -> Result<(), redb::Error> {
    let txn = db.begin_write()?;
    txn.open_table(HEALTH)?.insert("probe", now_ms())?;
    txn.commit()?;
    Ok(())
}

impl StoreFile {
    /// Opens (or creates) the database at `path`; the error says what went wrong.
    pub(super) fn open(path: &Path, faults: Option<Arc<WriteFaults>>) -> Result<StoreFile, String> {
        let db = open_database(path, faults.as_ref())?;
        Ok(StoreFile {
            path: path.to_path_buf(),
            faults,
            db: RwLock::new(Some(db)),
            recovery: Mutex::new(Recovery::default()),
        })
    }

    /// Runs `op` on the open database, reopening it first when that is due; an I/O error
    /// closes it.
    pub(super) fn call<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        self.reopen_if_due();
        self.run_on(self.db.read().unwrap_or_else(|e| e.into_inner()), op)
    }

    /// Runs a read on the open database, on the caller's thread. It never reopens and never
    /// waits for a reopen: while the file is closed (or being reopened) it fails with
    /// [`StoreError::Unwritable`]; an I/O error closes the file as in [`StoreFile::call`].
    pub(super) fn read<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        match self.try_open() {
            Some(db) => self.run_on(db, op),
            None => Err(self.unwritable(None)),
        }
    }

    /// Runs `op` on the database `db` holds; fails while it is closed, and closes it on an I/O
    /// error (after letting go of `db`, so the close can take the lock).
    fn run_on<T>(
        &self,
        db: RwLockReadGuard<'_, Option<Database>>,
        op: impl FnOnce(&Database) -> Result<T, redb::Error>,
    ) -> Result<T, StoreError> {
        let Some(open) = db.as_ref() else {
            return Err(self.unwritable(None));
        };
        match op(open) {
            Ok(v) => Ok(v),
            Err(e) if is_io(&e) => {
                drop(db);
                self.close(e.to_string());
                Err(self.unwritable(Some(e.to_string())))
            }
            Err(e) => Err(StoreError::Io(e.to_string())),
        }
    }

    /// Whether the database is open now (without waiting: one being reopened is not).
    pub(super) fn is_open(&self) -> bool {
        self.try_open().is_some_and(|db| db.is_some())
    }

    /// Whether a closed database is due for a reopen attempt.
    pub(super) fn reopen_due(&self) -> bool {
        lock(&self.recovery).due(Instant::now())
    }

    fn try_open(&self) -> Option<RwLockReadGuard<'_, Option<Database>>> {
        match self.db.try_read() {
            Ok(db) => Some(db),
            Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// The error of a call made while the file is closed, naming it and the next attempt.
    pub(super) fn unwritable(&self, detail: Option<String>) -> StoreError {
        let r = lock(&self.recovery);
        let detail = detail.unwrap_or_else(|| {
            let retry = r
                .retry_in(Instant::now())
                .map(|d| format!("; next reopen attempt in {} ms", d.as_millis()))
                .unwrap_or_default();
            format!(
                "{}{retry}",
                r.closed_because().unwrap_or("the file is closed")
            )
        });
        StoreError::Unwritable {
            path: self.path.display().to_string(),
            detail,
        }
    }

    /// Closes the database after an I/O error and schedules the reopen.
    fn close(&self, reason: String) {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // Dropping the handle releases the file lock, so the reopen can take it.
        *db = None;
        metrics::gauge!(crate::metrics::STORE_WRITABLE).set(0.0);
        if lock(&self.recovery).failed(reason.clone(), Instant::now()) {
            tracing::warn!(
                file = %self.path.display(),
                error = %reason,
                "the store file cannot be written; requests go on without conversation memory, and the file is reopened with back-off"
            );
        }
    }

    /// Reopens the database when it is closed and the schedule says so; the probe write must
    /// succeed too, else it stays closed.
    fn reopen_if_due(&self) {
        if !lock(&self.recovery).due(Instant::now()) {
            return;
        }
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        // Another caller may have reopened it while this one waited for the lock.
        if db.is_some() || !lock(&self.recovery).due(Instant::now()) {
            return;
        }
        let attempt = open_database(&self.path, self.faults.as_ref())
            .and_then(|fresh| probe(&fresh).map(|()| fresh).map_err(|e| e.to_string()));
        let now = Instant::now();
        match attempt {
            Ok(fresh) => {
                *db = Some(fresh);
                metrics::gauge!(crate::metrics::STORE_WRITABLE).set(1.0);
                let outage = lock(&self.recovery).recovered(now);
                tracing::warn!(
                    file = %self.path.display(),
                    unwritable_ms = outage.map_or(0, |d| d.as_millis() as u64),
                    "the store file was reopened and takes writes again"
                );
            }
            Err(e) => {
                lock(&self.recovery).failed(e.clone(), now);
                tracing::debug!(file = %self.path.display(), error = %e, "reopening the store file failed");
            }
        }
    }

    pub(super) fn health(&self) -> StoreHealth {
        self.reopen_if_due();
        if self.db.read().unwrap_or_else(|e| e.into_inner()).is_some() {
            return StoreHealth::Writable;
        }
        StoreHealth::Unwritable(self.unwritable(None).to_string())
    }
}
