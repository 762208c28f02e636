//! [`StoredRefresh`]: a CLI account's rotating refresh token kept in the [`Store`], and
//! [`starting_credentials`], the token an account starts from.
//!
//! Why in the store, at once: the door refuses a spent refresh token forever, and every refresh
//! spends one. A rotation kept only in memory is lost by a restart (which would then start from
//! the pasted, spent token), and two replicas each holding their own copy would both spend it.
//! So each rotation is written when it happens, as a compare-and-set (`fresh` only if the store
//! still holds `spent`), and each refresh holds the account's store lock, so that across
//! replicas one refresh runs at a time and the next one starts from the token the last stored.
//!
//! The record is an [`AccountRecord`] of kind [`AccountKind::Cli`]: `seed_hash` and
//! `account_id` are the account's stable id (`cli_…`), `client_cookie` holds the refresh token.
//! A store failure never stops a refresh (the door is still there); it is logged, without the
//! token, and the next rotation's write repairs the record.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::{AccountKind, AccountLock, AccountRecord, Store, StoreError, now_ms};
use crate::upstream::cli::{Credentials, RefreshGuard, RefreshStore, Rotation, Secret};

/// How long a refresh may hold the account's lock: a refresh call (bounded by the request
/// timeout, 30 s by default) and the rotation's write (its tries, each bounded by the store's
/// own timeout), with room to spare. A replica that dies holding it blocks the others this
/// long at most (each of their refreshes waits [`LOCK_WAIT`], then goes ahead).
pub const LOCK_TTL: Duration = Duration::from_secs(60);

/// How long a refresh waits for another replica's refresh before going ahead without the lock
/// (with a warning): a request should not hang on a stuck replica, and the stored token is read
/// again before anything is spent.
pub const LOCK_WAIT: Duration = Duration::from_secs(5);

/// Between two tries of a held lock (plus up to as much again at random, so that replicas
/// waiting for the same lock do not ask in step).
const LOCK_POLL: Duration = Duration::from_millis(20);

/// Tries of one rotation's write before giving up on it until the next rotation.
const WRITE_TRIES: u32 = 3;

/// Spent tokens remembered to tell a stale record (a write of ours that failed) from a newer
/// token another replica stored.
const REMEMBERED: usize = 8;

/// One CLI account's [`RefreshStore`] over the proxy's [`Store`].
pub struct StoredRefresh {
    store: Arc<dyn Store>,
    seed_hash: String,
    /// Written into a record this creates (when the record went missing).
    label: String,
    lock_ttl: Duration,
    lock_wait: Duration,
    /// Tokens spent through this account, newest last: a stored one among them is stale.
    spent: Mutex<VecDeque<Secret>>,
}

impl std::fmt::Debug for StoredRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredRefresh")
            .field("backend", &self.store.backend())
            .field("seed_hash", &self.seed_hash)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl StoredRefresh {
    /// The account `seed_hash` (its stable id) in `store`, with [`LOCK_TTL`] and [`LOCK_WAIT`].
    pub fn new(store: Arc<dyn Store>, seed_hash: &str, label: &str) -> Self {
        StoredRefresh {
            store,
            seed_hash: seed_hash.to_string(),
            label: label.to_string(),
            lock_ttl: LOCK_TTL,
            lock_wait: LOCK_WAIT,
            spent: Mutex::new(VecDeque::new()),
        }
    }

    /// Other lock timings (tests of a stuck replica).
    pub fn with_lock_timing(mut self, ttl: Duration, wait: Duration) -> Self {
        self.lock_ttl = ttl;
        self.lock_wait = wait;
        self
    }

    fn remember_spent(&self, token: &Secret) {
        let mut spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        if spent.len() == REMEMBERED {
            spent.pop_front();
        }
        spent.push_back(token.clone());
    }

    fn is_spent(&self, token: &str) -> bool {
        let spent = self.spent.lock().unwrap_or_else(PoisonError::into_inner);
        spent.iter().any(|s| s.expose() == token)
    }

    /// One try of a rotation's write: the compare-and-set, and what a refused one means.
    async fn write(&self, rotation: &Rotation) -> Result<(), StoreError> {
        let (spent, fresh) = (rotation.spent.expose(), rotation.fresh.expose());
        let store = &self.store;
        if store
            .swap_account_secret(&self.seed_hash, spent, fresh)
            .await?
        {
            return Ok(());
        }
        let Some(record) = store.get_account(&self.seed_hash).await? else {
            tracing::info!(account = %self.seed_hash, "no stored record of this CLI login; writing one");
            return store
                .put_account(&record(&self.seed_hash, &self.label, fresh))
                .await;
        };
        let stored = record.client_cookie.as_str();
        if stored == fresh {
            // An earlier try wrote it and timed out before its answer.
            return Ok(());
        }
        if self.is_spent(stored) {
            // A write of ours failed earlier and left a spent token: repair it.
            if store
                .swap_account_secret(&self.seed_hash, stored, fresh)
                .await?
            {
                tracing::info!(account = %self.seed_hash, "stored refresh token repaired");
                return Ok(());
            }
        }
        tracing::info!(
            account = %self.seed_hash,
            "the store holds another refresh token (another replica rotated it); keeping that one"
        );
        Ok(())
    }
}

#[async_trait::async_trait]
impl RefreshStore for StoredRefresh {
    async fn rotated(&self, rotation: &Rotation) {
        self.remember_spent(&rotation.spent);
        for attempt in 1..=WRITE_TRIES {
            match self.write(rotation).await {
                Ok(()) => return,
                Err(e) => tracing::warn!(
                    account = %self.seed_hash,
                    attempt,
                    error = %shown(&e, &[&rotation.spent, &rotation.fresh]),
                    "cannot store the rotated CLI refresh token"
                ),
            }
            if attempt < WRITE_TRIES {
                tokio::time::sleep(Duration::from_millis(100) * attempt).await;
            }
        }
        tracing::error!(
            account = %self.seed_hash,
            "the rotated CLI refresh token is not stored: a restart before the next rotation \
             starts from a spent token (run `cto login` again then)"
        );
    }

    async fn current(&self) -> Option<Secret> {
        match self.store.get_account(&self.seed_hash).await {
            Ok(record) => record
                .filter(|r| r.kind == AccountKind::Cli && !r.client_cookie.is_empty())
                .map(|r| Secret::new(r.client_cookie)),
            Err(e) => {
                tracing::warn!(
                    account = %self.seed_hash,
                    error = %shown(&e, &[]),
                    "cannot read the stored CLI refresh token"
                );
                None
            }
        }
    }

    async fn begin(&self) -> RefreshGuard {
        match hold(&self.store, &self.seed_hash, self.lock_ttl, self.lock_wait).await {
            Some(held) => Box::new(held),
            None => Box::new(()),
        }
    }
}

/// The credentials a CLI account starts from: the refresh token stored at its last rotation
/// (the configured one is spent then), else the configured one, recorded now so that the first
/// rotation has a record to compare and set. `seed_hash` is the account's stable id
/// (`crate::upstream::cli::seed_hash` of the first token); `label` goes into a new record.
///
/// Runs under the account's lock, so a replica starting late cannot write the configured
/// token over one that another replica rotated meanwhile. A store failure is logged and the
/// configured credentials are used.
pub async fn starting_credentials(
    store: &Arc<dyn Store>,
    seed_hash: &str,
    label: &str,
    configured: Credentials,
) -> Credentials {
    let held = hold(store, seed_hash, LOCK_TTL, LOCK_WAIT).await;
    let start = start_from(store, seed_hash, label, configured).await;
    if let Some(held) = held {
        held.release().await;
    }
    start
}

/// [`starting_credentials`] once the lock is held.
async fn start_from(
    store: &Arc<dyn Store>,
    seed_hash: &str,
    label: &str,
    configured: Credentials,
) -> Credentials {
    let configured_token = configured.refresh_token.expose();
    let found = match store.get_account(seed_hash).await {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(
                account = %seed_hash,
                error = %shown(&e, &[&configured.refresh_token]),
                "cannot read the stored CLI login; starting from the configured token"
            );
            return configured;
        }
    };
    match found {
        None => {
            if let Err(e) = store
                .put_account(&record(seed_hash, label, configured_token))
                .await
            {
                tracing::warn!(
                    account = %seed_hash,
                    error = %shown(&e, &[&configured.refresh_token]),
                    "cannot record the CLI login; its first rotation will try again"
                );
            }
            configured
        }
        Some(r) if r.kind != AccountKind::Cli || r.client_cookie.is_empty() => {
            tracing::warn!(
                account = %seed_hash,
                kind = ?r.kind,
                "the stored record of this id is not a CLI login; starting from the configured token"
            );
            configured
        }
        Some(r) if r.client_cookie == configured_token => configured,
        Some(r) => {
            tracing::info!(
                account = %seed_hash,
                "starting from the refresh token stored at the last rotation"
            );
            Credentials {
                refresh_token: Secret::new(r.client_cookie),
                ..configured
            }
        }
    }
}

/// Sets the admin's `disabled` flag of a CLI login's record; `false` when there is none.
///
/// A CLI record must never be written back from an earlier read: a rotation in between would
/// be undone, putting a spent token back. So the record is read and written at once, under the
/// account's lock, which every refresh holds while it rotates.
pub async fn set_disabled(
    store: &Arc<dyn Store>,
    seed_hash: &str,
    disabled: bool,
) -> Result<bool, StoreError> {
    let held = hold(store, seed_hash, LOCK_TTL, LOCK_WAIT).await;
    let outcome = async {
        let Some(mut record) = store.get_account(seed_hash).await? else {
            return Ok(false);
        };
        record.disabled = disabled;
        record.updated_ms = now_ms();
        store.put_account(&record).await.map(|()| true)
    }
    .await;
    if let Some(held) = held {
        held.release().await;
    }
    outcome
}

/// A new record of a CLI login holding `refresh_token`.
fn record(seed_hash: &str, label: &str, refresh_token: &str) -> AccountRecord {
    AccountRecord {
        seed_hash: seed_hash.to_string(),
        account_id: Some(seed_hash.to_string()),
        label: Some(label.to_string()),
        client_cookie: refresh_token.to_string(),
        session_id: None,
        updated_ms: now_ms(),
        disabled: false,
        kind: AccountKind::Cli,
    }
}

/// The account's lock, waiting for it up to `wait`; `None` (after a warning) when it stays
/// taken or the store fails: the caller goes ahead without it.
async fn hold(
    store: &Arc<dyn Store>,
    seed_hash: &str,
    ttl: Duration,
    wait: Duration,
) -> Option<Held> {
    let deadline = Instant::now() + wait;
    loop {
        match store.lock_account(seed_hash, ttl).await {
            Ok(Some(lock)) => {
                return Some(Held {
                    store: Arc::clone(store),
                    lock: Some(lock),
                });
            }
            Ok(None) if Instant::now() < deadline => {
                let jitter = rand::random_range(0..=LOCK_POLL.as_millis() as u64);
                tokio::time::sleep(LOCK_POLL + Duration::from_millis(jitter)).await;
            }
            Ok(None) => {
                tracing::warn!(
                    account = %seed_hash,
                    waited_ms = wait.as_millis() as u64,
                    "the CLI login is still locked by another refresh; going ahead without the lock"
                );
                return None;
            }
            Err(e) => {
                tracing::warn!(
                    account = %seed_hash,
                    error = %shown(&e, &[]),
                    "cannot lock the CLI login in the store; going ahead without the lock"
                );
                return None;
            }
        }
    }
}

/// A held account lock, released by [`Held::release`] or, failing that, when dropped (in a
/// task: the release is a store call, and `Drop` cannot wait for it).
struct Held {
    store: Arc<dyn Store>,
    lock: Option<AccountLock>,
}

impl Held {
    /// Releases the lock now, so that the next holder need not wait for a task to run.
    async fn release(mut self) {
        if let Some(lock) = self.lock.take() {
            unlock(&self.store, &lock).await;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let Some(lock) = self.lock.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime left (shutting down): the lock expires by itself.
        };
        let store = Arc::clone(&self.store);
        runtime.spawn(async move { unlock(&store, &lock).await });
    }
}

async fn unlock(store: &Arc<dyn Store>, lock: &AccountLock) {
    match store.unlock_account(lock).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            account = %lock.seed_hash,
            "the CLI login's lock expired before its holder was done"
        ),
        Err(e) => tracing::debug!(
            account = %lock.seed_hash,
            error = %shown(&e, &[]),
            "cannot release the CLI login's lock; it expires by itself"
        ),
    }
}

/// A store error as logged: our own messages never hold a token, but a decode error may
/// quote a stored value, so the tokens at hand and, in a decode error, anything quoted are cut
/// out.
fn shown(err: &StoreError, secrets: &[&Secret]) -> String {
    let mut text = err.to_string();
    for secret in secrets.iter().map(|s| s.expose()).filter(|s| !s.is_empty()) {
        text = text.replace(secret, "<redacted>");
    }
    if matches!(err, StoreError::Decode(_)) {
        // serde quotes the offending value: drop anything quoted.
        text = text
            .split('"')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { "<redacted>" } else { part })
            .collect::<Vec<_>>()
            .join("\"");
    }
    text
}

#[cfg(test)]
#[path = "refresh_tests.rs"]
mod tests;
