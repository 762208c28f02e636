//! Durable state: conversation mappings and the rotated secrets of accounts (web cookies, CLI
//! refresh tokens), behind one trait.
//!
//! # Layout
//! - [`memory`]: in-process store (tests, and the fallback when nothing durable is configured);
//! - [`embedded`]: a crash-safe redb file under `DATA_DIR` (the default);
//! - `tables`: the embedded file's tables and the transaction steps that change them;
//! - `writer`: the embedded store's one writer thread, which commits writes in batches;
//! - `pending`: the embedded store's queued, uncommitted conversation writes, which reads see;
//! - [`redis`]: Redis through the async connection manager, for several replicas;
//! - [`lock`]: [`AccountLock`], and the in-process locks of the two single-process backends;
//! - `redb_file`: the embedded store's database handle, closed on an I/O error and reopened;
//! - [`recovery`]: when the embedded file is reopened after an I/O error (a full disk);
//! - [`fault`]: a switch that makes the embedded file's writes fail, for tests of that;
//! - [`error`]: the one error enum of the layer, [`StoreError`].
//!
//! All backends share one contract, checked by one test suite (`tests/store.rs`):
//! `take_conversation` is atomic (two callers never both get the same record), records
//! expire after the configured TTL of disuse, and the number of conversations is capped with
//! least-recently-used eviction. Reads see every write that returned, in every backend: a
//! follow-up sent right after an answer finds the mapping that answer stored.
//!
//! # When a write is durable
//! The embedded store queues conversation puts and takes for its writer thread and answers at
//! once (the response does not wait for a disk commit; see [`embedded`]); its other writes, and
//! [`Store::flush`], wait for the commit. Redis writes are always awaited: the store is shared,
//! and another replica may serve the client's next turn, so the mapping must be in Redis before
//! the answer ends (a round trip on the network, no `fsync`). The memory store has nothing to
//! wait for.
//!
//! # Secrets that must not be spent twice
//! A CLI refresh token is refused once spent, so replicas sharing an account coordinate
//! through the store: `lock_account` is a short-lived per-account lock (at most one holder
//! until it is released or its TTL runs out; a release by a holder whose lock expired and was
//! taken by another frees nothing), and `swap_account_secret` is a compare-and-set of the
//! record's secret (written only if the stored one is still the expected one). Memory and
//! embedded stores are never shared between processes (redb holds an exclusive file lock), so
//! their locks are in-process; Redis's are Redis keys.
//!
//! # Time rules (the same in every backend)
//! - Each put gives the mapping a *use stamp*: `now_ms()` at the put, bumped to one millisecond
//!   past the newest stamp in the store when the clock has not moved on (several puts in the same
//!   millisecond, or a clock stepping back). Stamps are therefore strictly increasing, so "least
//!   recently used" is always the order of the puts.
//! - The TTL runs from that stamp, not from the record's `last_used_ms` (which is the caller's
//!   data and is returned untouched). A mapping is expired once `now_ms() >= stamp + ttl`.
//! - `take_conversation` never returns an expired mapping: it deletes it and answers `None`.
//!   Expired mappings that nobody takes are removed (and returned) by `purge_expired`.
//! - Over `max_conversations`, a put evicts the mappings with the oldest stamps.

pub mod embedded;
pub mod error;
pub mod fault;
pub mod lock;
pub mod memory;
mod pending;
pub mod recovery;
mod redb_file;
pub mod redis;
mod tables;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::upstream::HistoryRef;
pub use embedded::EmbeddedStore;
pub use error::StoreError;
pub use fault::WriteFaults;
pub use lock::AccountLock;
pub use memory::MemoryStore;
pub use redis::RedisStore;

/// Whether the store takes writes, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreHealth {
    Writable,
    /// Writes fail; the reason names the file (or server) and what to do.
    Unwritable(String),
}

/// Lifetime rules shared by every backend.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// A conversation unused for this long is forgotten (`CONVERSATION_TTL`).
    pub conversation_ttl: Duration,
    /// At most this many conversations are kept; the least recently used go first.
    pub max_conversations: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            conversation_ttl: Duration::from_secs(7 * 24 * 3600),
            max_conversations: 100_000,
        }
    }
}

/// Everything needed to send the next turn of a conversation into its upstream history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConversationRecord {
    /// Stable id of the account that owns the upstream history.
    pub account_id: String,
    pub history: HistoryRef,
    /// Completed turns in this history.
    pub turns: u32,
    pub model: String,
    /// Unix milliseconds of the last completed turn.
    pub last_used_ms: u64,
    /// Responses API only: the conversation as Responses input items (JSON), so that a later
    /// request naming this response in `previous_response_id` can rebuild it. Absent in
    /// fingerprint records and in records of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
}

/// Which door an account record belongs to, and so what its secret is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    /// A cto.new web login: the secret is the Clerk `__client` cookie.
    #[default]
    Web,
    /// A `cto login` of the CLI door: the secret is the OAuth refresh token.
    Cli,
}

/// What survives a restart for one account: its latest rotated secret (and, for a web
/// account, the discovered session), so that a restart never falls back to the stale pasted
/// cookie or a spent refresh token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Key: a hash of the secret as the user first gave it (never the secret itself). For a
    /// CLI account, `crate::upstream::cli::seed_hash` of the first refresh token (`cli_…`).
    pub seed_hash: String,
    /// Stable account id: derived from the Clerk user id once known (web), or the seed hash
    /// itself (CLI).
    pub account_id: Option<String>,
    pub label: Option<String>,
    /// The account's current secret (stored as given, see the README): the latest `__client`
    /// value of a web account, the current (latest rotated) refresh token of a CLI account.
    /// The name predates CLI accounts and stays, so that records of every version read alike.
    pub client_cookie: String,
    /// The Clerk session of a web account; `None` for a CLI account.
    pub session_id: Option<String>,
    pub updated_ms: u64,
    /// Taken out by the admin: stays out after a restart. Absent in records of older versions.
    #[serde(default)]
    pub disabled: bool,
    /// Absent in records of versions before CLI accounts, which were all web accounts.
    #[serde(default)]
    pub kind: AccountKind,
}

impl std::fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("seed_hash", &self.seed_hash)
            .field("account_id", &self.account_id)
            .field("label", &self.label)
            .field("client_cookie", &"<redacted>")
            .field("session_id", &self.session_id)
            .field("updated_ms", &self.updated_ms)
            .field("disabled", &self.disabled)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The store contract. Keys are opaque strings chosen by the caller (fingerprints).
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Short backend name for logs, metrics and the admin page: `memory`, `embedded`, `redis`.
    fn backend(&self) -> &'static str;
    /// Writes (or replaces) a mapping and marks it used now.
    async fn put_conversation(
        &self,
        key: &str,
        record: &ConversationRecord,
    ) -> Result<(), StoreError>;
    /// Removes and returns a mapping in one atomic step; `None` when absent or expired.
    async fn take_conversation(&self, key: &str) -> Result<Option<ConversationRecord>, StoreError>;
    /// Number of live conversation mappings (for tests and the admin page).
    async fn conversation_count(&self) -> Result<usize, StoreError>;
    /// Removes expired mappings now and returns them (so callers may clean up upstream).
    async fn purge_expired(&self) -> Result<Vec<ConversationRecord>, StoreError>;
    async fn put_account(&self, record: &AccountRecord) -> Result<(), StoreError>;
    async fn get_account(&self, seed_hash: &str) -> Result<Option<AccountRecord>, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError>;
    async fn remove_account(&self, seed_hash: &str) -> Result<(), StoreError>;
    /// The secret stored under `name`; when there is none yet, `fresh` is stored and returned.
    /// The first value stored wins (atomically: replicas starting together all get the same
    /// one), and it never expires. The admin page signs its sessions with a key derived from
    /// one (`server::admin::session`), so that the key is not a function of ADMIN_KEY alone.
    ///
    /// Every backend implements it; the default, for test doubles, keeps nothing and fails
    /// (callers then use `fresh` for the life of the process).
    async fn secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        let _ = (name, fresh);
        Err(StoreError::Io(format!(
            "the {} store keeps no secrets",
            self.backend()
        )))
    }

    /// Takes the account's short-lived lock for `ttl`: `None` while another holder has it.
    /// Never waits; callers poll. Release it with [`Store::unlock_account`]; one never released
    /// (a crashed holder) frees itself when `ttl` runs out.
    ///
    /// Every backend implements these three; the defaults, for test doubles, fail.
    async fn lock_account(
        &self,
        seed_hash: &str,
        ttl: Duration,
    ) -> Result<Option<AccountLock>, StoreError> {
        let _ = (seed_hash, ttl);
        Err(StoreError::Io(format!(
            "the {} store keeps no locks",
            self.backend()
        )))
    }
    /// Releases a lock taken by [`Store::lock_account`]. `false` when it had expired already
    /// (and perhaps been taken by another holder, whose lock is left alone).
    async fn unlock_account(&self, lock: &AccountLock) -> Result<bool, StoreError> {
        let _ = lock;
        Err(StoreError::Io(format!(
            "the {} store keeps no locks",
            self.backend()
        )))
    }
    /// Compare-and-set of the account's secret (`client_cookie`): writes `new` (and bumps
    /// `updated_ms`) only if the stored secret is still `expected`, in one atomic step.
    /// `false` when the record is absent or holds another secret; nothing is written then.
    async fn swap_account_secret(
        &self,
        seed_hash: &str,
        expected: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let _ = (seed_hash, expected, new);
        Err(StoreError::Io(format!(
            "the {} store keeps no accounts",
            self.backend()
        )))
    }
    /// Waits until every write that returned is durable (the embedded store's queued writes are
    /// committed). Called on a graceful shutdown; backends that write through need nothing.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Whether writes work, as far as the backend knows without a write of its own (the
    /// embedded file: not while it is closed after an I/O error; it may try its reopen here).
    async fn health(&self) -> StoreHealth {
        StoreHealth::Writable
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Which backend [`open_store`] builds (chosen by configuration).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// Nothing survives a restart.
    Memory,
    /// A redb file; the parent directories are created on first start.
    Embedded { path: PathBuf },
    /// Redis, shared by several replicas; every key starts with `prefix`.
    Redis { url: String, prefix: String },
}

/// The URL may carry a password, so `Debug` shows only its scheme, host and port.
impl std::fmt::Debug for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreKind::Memory => f.write_str("Memory"),
            StoreKind::Embedded { path } => f.debug_struct("Embedded").field("path", path).finish(),
            StoreKind::Redis { url, prefix } => f
                .debug_struct("Redis")
                .field("url", &redacted_url(url))
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// `redis://user:secret@host:6379/0` -> `redis://host:6379/0`, safe to print.
pub(crate) fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{host}{port}{}", u.scheme(), u.path())
        }
        Err(_) => "<unparseable url>".to_string(),
    }
}

/// Builds the configured backend. Opening the embedded file runs on the blocking pool; Redis
/// is not contacted here (it connects on first use, see [`RedisStore`]).
pub async fn open_store(
    kind: StoreKind,
    limits: StoreLimits,
) -> Result<Arc<dyn Store>, StoreError> {
    match kind {
        StoreKind::Memory => Ok(Arc::new(MemoryStore::new(limits))),
        StoreKind::Embedded { path } => {
            let shown = path.display().to_string();
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(&path, limits))
                .await
                .map_err(|e| StoreError::Open {
                    path: shown,
                    detail: format!("the open task failed: {e}"),
                })??;
            Ok(Arc::new(store))
        }
        StoreKind::Redis { url, prefix } => Ok(Arc::new(RedisStore::new(&url, &prefix, limits)?)),
    }
}

/// The next use stamp: `now`, or one past the newest stamp when the clock has not moved on.
pub(crate) fn next_stamp(now: u64, newest: Option<u64>) -> u64 {
    match newest {
        Some(top) if top >= now => top.saturating_add(1),
        _ => now,
    }
}

/// The TTL in whole milliseconds (saturating; a zero TTL expires mappings at once).
pub(crate) fn ttl_ms(limits: &StoreLimits) -> u64 {
    u64::try_from(limits.conversation_ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Whether a mapping stamped `stamp` is expired at `now`.
pub(crate) fn is_expired(stamp: u64, ttl_ms: u64, now: u64) -> bool {
    now >= stamp.saturating_add(ttl_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase_when_the_clock_stalls_or_steps_back() {
        assert_eq!(next_stamp(100, None), 100);
        assert_eq!(next_stamp(100, Some(50)), 100);
        assert_eq!(next_stamp(100, Some(100)), 101);
        assert_eq!(next_stamp(90, Some(100)), 101);
    }

    #[test]
    fn expiry_boundary_is_inclusive() {
        assert!(!is_expired(1000, 500, 1499));
        assert!(is_expired(1000, 500, 1500));
        assert!(!is_expired(u64::MAX - 1, u64::MAX, u64::MAX - 1));
    }

    #[test]
    fn records_of_older_versions_are_web_accounts() {
        let old = r#"{"seed_hash":"s","account_id":null,"label":null,"client_cookie":"c",
                      "session_id":null,"updated_ms":1}"#;
        let record: AccountRecord = serde_json::from_str(old).expect("old record");
        assert_eq!(record.kind, AccountKind::Web);
        assert!(!record.disabled);
        let cli = AccountRecord {
            kind: AccountKind::Cli,
            ..record
        };
        let json = serde_json::to_string(&cli).expect("encode");
        assert!(json.contains(r#""kind":"cli""#), "{json}");
        assert_eq!(
            serde_json::from_str::<AccountRecord>(&json).expect("decode"),
            cli
        );
        assert!(!format!("{cli:?}").contains("\"c\""), "{cli:?}");
    }

    #[test]
    fn redis_url_password_is_not_printed() {
        let kind = StoreKind::Redis {
            url: "redis://user:hunter2@cache.local:6380/2".to_string(),
            prefix: "el2a".to_string(),
        };
        let shown = format!("{kind:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("cache.local:6380"), "{shown}");
    }
}
