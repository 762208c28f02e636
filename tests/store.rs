//! One contract suite for every `Store` backend, run unchanged against memory, embedded (redb)
//! and Redis (`#[ignore]`d: it needs `REDIS_URL`). The conversation mappings' checks are in
//! tests/store/conversations.rs, the accounts' (with the account lock and the secret's
//! compare-and-set) in tests/store/accounts.rs. The checks only one backend has are in
//! tests/store_embedded.rs and tests/store_redis.rs.

#[path = "store/accounts.rs"]
mod accounts;
mod common;
#[path = "store/conversations.rs"]
mod conversations;

use std::sync::Arc;

use common::proc::TempDir;
use common::redis::Prefix;
use common::store::{cap, long_ttl, short_ttl};
use enginelabs_2api::store::{
    EmbeddedStore, MemoryStore, Store, StoreKind, StoreLimits, open_store,
};

/// Builds fresh, isolated stores of one backend.
enum Backend {
    Memory,
    Embedded {
        dir: TempDir,
    },
    /// The embedded store with puts that return before their commit.
    EmbeddedWriteBehind {
        dir: TempDir,
    },
    Redis {
        url: String,
        run_prefix: String,
    },
}

impl Backend {
    async fn store(&self, limits: StoreLimits) -> Arc<dyn Store> {
        let id = uuid::Uuid::new_v4();
        if let Backend::EmbeddedWriteBehind { dir } = self {
            let path = dir.0.join(format!("{id}.redb"));
            let store = EmbeddedStore::open(&path, limits).expect("open store");
            return Arc::new(store.write_behind());
        }
        let kind = match self {
            Backend::Memory => StoreKind::Memory,
            Backend::Embedded { dir } | Backend::EmbeddedWriteBehind { dir } => {
                StoreKind::Embedded {
                    path: dir.0.join(format!("{id}.redb")),
                }
            }
            Backend::Redis { url, run_prefix } => StoreKind::Redis {
                url: url.clone(),
                prefix: format!("{run_prefix}-{id}"),
            },
        };
        open_store(kind, limits).await.expect("open store")
    }
}

/// Every contract check, against stores built by `backend`.
async fn run_suite(backend: &Backend, expected_name: &str) {
    let store = backend.store(long_ttl()).await;
    assert_eq!(store.backend(), expected_name);
    conversations::round_trip(store.clone()).await;
    conversations::take_twice(store.clone()).await;
    conversations::put_replaces(store.clone()).await;
    conversations::concurrent_take(store.clone()).await;
    accounts::accounts(store.clone()).await;
    accounts::secrets(store.clone()).await;
    accounts::secret_swap(store.clone()).await;
    accounts::account_locks(store.clone()).await;
    conversations::read_your_writes(store.clone()).await;
    conversations::a_burst_of_writes(store).await;
    conversations::lru_cap(backend.store(cap(3)).await).await;
    conversations::ttl_expiry(backend.store(short_ttl()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory_backend_meets_the_contract() {
    run_suite(&Backend::Memory, "memory").await;
    // The direct constructor behaves like open_store's.
    let direct = MemoryStore::new(long_ttl());
    assert_eq!(direct.backend(), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_backend_meets_the_contract() {
    let backend = Backend::Embedded {
        dir: TempDir::new("suite"),
    };
    run_suite(&backend, "embedded").await;
}

/// The same contract when puts do not wait for their commit: the overlay of queued writes
/// keeps every read exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_write_behind_meets_the_contract() {
    let backend = Backend::EmbeddedWriteBehind {
        dir: TempDir::new("behind"),
    };
    run_suite(&backend, "embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Redis (REDIS_URL)"]
async fn redis_backend_meets_the_contract() {
    let keys = Prefix::new();
    let backend = Backend::Redis {
        url: keys.url.clone(),
        run_prefix: keys.prefix.clone(),
    };
    run_suite(&backend, "redis").await;
    let leftovers = keys.clean().await;
    // Everything the suite left should be account keys and index sets, not stray mappings.
    assert!(
        leftovers.iter().all(|k| !k.contains(":conv:")
            || k.ends_with(":conv:lru")
            || k.ends_with(":conv:meta")),
        "unexpected leftovers: {leftovers:?}"
    );
}
