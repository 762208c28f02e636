//! Durable state: conversation mappings and rotated account cookies, behind one trait.
//!
//! # Layout
//! - [`memory`]: in-process store (tests, and the fallback when nothing durable is configured);
//! - [`embedded`]: a crash-safe redb file under `DATA_DIR` (the default);
//! - [`redis`]: Redis through the async connection manager, for several replicas;
//! - [`error`]: the store's error enum.
//!
//! All backends share one contract, checked by one test suite (`tests/store.rs`):
//! `take_conversation` is atomic (two callers never both get the same record), records
//! expire after the configured TTL of disuse, and the number of conversations is capped with
//! least-recently-used eviction.

pub mod embedded;
pub mod error;
pub mod memory;
pub mod redis;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::upstream::HistoryRef;
pub use error::StoreError;

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
}

/// What survives a restart for one account: the latest rotated cookie and the discovered
/// session, so that a restart never falls back to the stale pasted cookie.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Key: a hash of the cookie as the user pasted it (never the cookie itself).
    pub seed_hash: String,
    /// Stable account id derived from the Clerk user id, once known.
    pub account_id: Option<String>,
    pub label: Option<String>,
    /// The latest `__client` value (a secret; stored as given, see the README).
    pub client_cookie: String,
    pub session_id: Option<String>,
    pub updated_ms: u64,
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
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Which backend to open.
#[derive(Debug, Clone)]
pub enum StoreKind {
    Memory,
    Embedded { path: std::path::PathBuf },
    Redis { url: String, prefix: String },
}

/// Opens the configured backend.
pub async fn open_store(
    kind: StoreKind,
    limits: StoreLimits,
) -> Result<std::sync::Arc<dyn Store>, StoreError> {
    let _ = (kind, limits);
    todo!()
}
