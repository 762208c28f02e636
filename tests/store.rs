//! One contract suite for every `Store` backend, run unchanged against memory, embedded (redb)
//! and Redis (when `REDIS_URL` is set), plus the checks only one backend has: the embedded
//! file (reopen, mode, corrupt and locked files) and Redis going away and coming back.
//! The account lock and the secret's compare-and-set are part of the contract.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::store::{
    AccountKind, AccountRecord, ConversationRecord, EmbeddedStore, MemoryStore, RedisStore, Store,
    StoreError, StoreKind, StoreLimits, open_store,
};
use enginelabs_2api::upstream::{Generation, HistoryRef};

// ---------------------------------------------------------------- fixtures

fn record(n: u32) -> ConversationRecord {
    ConversationRecord {
        account_id: format!("acct-{n}"),
        history: HistoryRef {
            generation: if n.is_multiple_of(2) {
                Generation::Gen1
            } else {
                Generation::Gen2
            },
            chat_history_id: format!("history-{n}"),
            workspace_id: (n % 2 == 1).then(|| format!("ws-{n}")),
        },
        turns: n,
        model: "claude-sonnet-4-5".to_string(),
        last_used_ms: 1_700_000_000_000 + u64::from(n),
        transcript: n.is_multiple_of(3).then(|| format!("[{{\"n\":{n}}}]")),
    }
}

fn account(seed: &str, cookie: &str) -> AccountRecord {
    AccountRecord {
        seed_hash: seed.to_string(),
        account_id: Some(format!("id-{seed}")),
        label: Some(format!("label {seed}")),
        client_cookie: cookie.to_string(),
        session_id: Some(format!("sess_{seed}")),
        updated_ms: 1_700_000_000_000,
        disabled: false,
        kind: AccountKind::Web,
    }
}

/// A CLI login's record: the secret is its refresh token, the id its seed hash.
fn cli_account(seed: &str, refresh_token: &str) -> AccountRecord {
    AccountRecord {
        account_id: Some(seed.to_string()),
        session_id: None,
        kind: AccountKind::Cli,
        ..account(seed, refresh_token)
    }
}

fn long_ttl() -> StoreLimits {
    StoreLimits::default()
}

fn short_ttl() -> StoreLimits {
    StoreLimits {
        conversation_ttl: Duration::from_secs(1),
        ..StoreLimits::default()
    }
}

fn cap(max: usize) -> StoreLimits {
    StoreLimits {
        max_conversations: max,
        ..StoreLimits::default()
    }
}

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("el2a-store-{tag}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------- backends

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
            let path = dir.path().join(format!("{id}.redb"));
            let store = EmbeddedStore::open(&path, limits).expect("open store");
            return Arc::new(store.write_behind());
        }
        let kind = match self {
            Backend::Memory => StoreKind::Memory,
            Backend::Embedded { dir } | Backend::EmbeddedWriteBehind { dir } => {
                StoreKind::Embedded {
                    path: dir.path().join(format!("{id}.redb")),
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
    round_trip(store.clone()).await;
    take_twice(store.clone()).await;
    put_replaces(store.clone()).await;
    concurrent_take(store.clone()).await;
    accounts(store.clone()).await;
    secrets(store.clone()).await;
    secret_swap(store.clone()).await;
    account_locks(store.clone()).await;
    read_your_writes(store.clone()).await;
    a_burst_of_writes(store).await;
    lru_cap(backend.store(cap(3)).await).await;
    ttl_expiry(backend.store(short_ttl()).await).await;
}

// ---------------------------------------------------------------- the suite

async fn round_trip(store: Arc<dyn Store>) {
    assert_eq!(
        store.take_conversation("rt-missing").await.expect("take"),
        None
    );
    store
        .put_conversation("rt-a", &record(1))
        .await
        .expect("put");
    store
        .put_conversation("rt-b", &record(2))
        .await
        .expect("put");
    assert_eq!(store.conversation_count().await.expect("count"), 2);
    assert_eq!(
        store.take_conversation("rt-a").await.expect("take"),
        Some(record(1))
    );
    assert_eq!(store.conversation_count().await.expect("count"), 1);
    assert_eq!(
        store.take_conversation("rt-b").await.expect("take"),
        Some(record(2))
    );
    assert_eq!(store.conversation_count().await.expect("count"), 0);
}

async fn take_twice(store: Arc<dyn Store>) {
    store.put_conversation("tt", &record(3)).await.expect("put");
    assert_eq!(
        store.take_conversation("tt").await.expect("take"),
        Some(record(3))
    );
    assert_eq!(store.take_conversation("tt").await.expect("take"), None);
    // A taken key can be written again.
    store.put_conversation("tt", &record(4)).await.expect("put");
    assert_eq!(
        store.take_conversation("tt").await.expect("take"),
        Some(record(4))
    );
}

async fn put_replaces(store: Arc<dyn Store>) {
    store.put_conversation("pr", &record(5)).await.expect("put");
    store.put_conversation("pr", &record(6)).await.expect("put");
    assert_eq!(store.conversation_count().await.expect("count"), 1);
    assert_eq!(
        store.take_conversation("pr").await.expect("take"),
        Some(record(6))
    );
    assert_eq!(store.take_conversation("pr").await.expect("take"), None);
}

async fn concurrent_take(store: Arc<dyn Store>) {
    for round in 0..5u32 {
        let key = format!("race-{round}");
        store
            .put_conversation(&key, &record(round))
            .await
            .expect("put");
        let barrier = Arc::new(tokio::sync::Barrier::new(20));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.take_conversation(&key).await.expect("take")
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            if let Some(found) = task.await.expect("task") {
                winners.push(found);
            }
        }
        assert_eq!(
            winners,
            vec![record(round)],
            "round {round}: exactly one taker wins"
        );
    }
    assert_eq!(store.conversation_count().await.expect("count"), 0);
}

async fn accounts(store: Arc<dyn Store>) {
    assert_eq!(store.get_account("seed-a").await.expect("get"), None);
    assert!(store.list_accounts().await.expect("list").is_empty());
    store
        .put_account(&account("seed-b", "cookie-b1"))
        .await
        .expect("put");
    store
        .put_account(&account("seed-a", "cookie-a1"))
        .await
        .expect("put");
    // A rotated cookie replaces the old one.
    store
        .put_account(&account("seed-b", "cookie-b2"))
        .await
        .expect("put");
    assert_eq!(
        store.get_account("seed-b").await.expect("get"),
        Some(account("seed-b", "cookie-b2"))
    );
    let mut listed = store.list_accounts().await.expect("list");
    listed.sort_by(|x, y| x.seed_hash.cmp(&y.seed_hash));
    assert_eq!(
        listed,
        vec![
            account("seed-a", "cookie-a1"),
            account("seed-b", "cookie-b2")
        ]
    );
    store.remove_account("seed-a").await.expect("remove");
    store
        .remove_account("seed-never-stored")
        .await
        .expect("removing nothing is fine");
    assert_eq!(store.get_account("seed-a").await.expect("get"), None);
    assert_eq!(
        store.list_accounts().await.expect("list"),
        vec![account("seed-b", "cookie-b2")]
    );
    // The admin's disabled flag is kept.
    let disabled = AccountRecord {
        disabled: true,
        ..account("seed-b", "cookie-b2")
    };
    store.put_account(&disabled).await.expect("put");
    assert_eq!(
        store.get_account("seed-b").await.expect("get"),
        Some(disabled)
    );
    // Accounts are not conversations.
    assert_eq!(store.conversation_count().await.expect("count"), 0);
}

async fn secrets(store: Arc<dyn Store>) {
    let first = store.secret("s-a", b"first value").await.expect("secret");
    assert_eq!(first, b"first value");
    // The first value stays; another name is another secret.
    let again = store.secret("s-a", b"second value").await.expect("secret");
    assert_eq!(again, b"first value");
    let other = store.secret("s-b", &[0, 255, 7]).await.expect("secret");
    assert_eq!(other, [0, 255, 7], "any bytes");
    // Replicas starting together all get one winner.
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let (store, barrier) = (store.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.secret("s-race", &[i; 32]).await.expect("secret")
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.expect("task"));
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
    // Secrets are neither accounts nor conversations.
    assert_eq!(store.conversation_count().await.expect("count"), 0);
    assert!(
        store
            .list_accounts()
            .await
            .expect("list")
            .iter()
            .all(|a| !a.seed_hash.starts_with("s-"))
    );
}

async fn secret_swap(store: Arc<dyn Store>) {
    assert!(
        !store
            .swap_account_secret("cas-absent", "rt_0", "rt_1")
            .await
            .expect("swap"),
        "no record, no swap"
    );
    assert_eq!(store.get_account("cas-absent").await.expect("get"), None);

    let first = AccountRecord {
        label: Some("work".to_string()),
        ..cli_account("cli_cas", "rt_0")
    };
    store.put_account(&first).await.expect("put");
    assert_eq!(
        store.get_account("cli_cas").await.expect("get"),
        Some(first.clone())
    );
    assert!(
        !store
            .swap_account_secret("cli_cas", "rt_other", "rt_1")
            .await
            .expect("swap"),
        "a stale expectation writes nothing"
    );
    assert_eq!(
        store.get_account("cli_cas").await.expect("get"),
        Some(first.clone())
    );
    assert!(
        store
            .swap_account_secret("cli_cas", "rt_0", "rt_1")
            .await
            .expect("swap")
    );
    let swapped = store
        .get_account("cli_cas")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(swapped.client_cookie, "rt_1");
    assert!(
        swapped.updated_ms > first.updated_ms,
        "the write is stamped"
    );
    assert_eq!(
        AccountRecord {
            client_cookie: "rt_0".to_string(),
            updated_ms: first.updated_ms,
            ..swapped
        },
        first,
        "every other field is kept"
    );

    // Twenty writers expecting the same secret: exactly one wins.
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let new = format!("rt_2_{n}");
                let won = store
                    .swap_account_secret("cli_cas", "rt_1", &new)
                    .await
                    .expect("swap");
                won.then_some(new)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.expect("task"));
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = store
        .get_account("cli_cas")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(stored.client_cookie, winners[0]);
    assert_eq!(stored.kind, AccountKind::Cli);
    store.remove_account("cli_cas").await.expect("remove");
}

async fn account_locks(store: Arc<dyn Store>) {
    let long = Duration::from_secs(30);
    let first = store
        .lock_account("lk-a", long)
        .await
        .expect("lock")
        .expect("free at first");
    assert_eq!(first.seed_hash, "lk-a");
    assert_eq!(
        store.lock_account("lk-a", long).await.expect("lock"),
        None,
        "a second holder is refused while the first holds it"
    );
    let other = store
        .lock_account("lk-b", long)
        .await
        .expect("lock")
        .expect("locks are per account");
    assert!(store.unlock_account(&first).await.expect("unlock"));
    assert!(
        !store.unlock_account(&first).await.expect("unlock"),
        "released once"
    );
    let again = store
        .lock_account("lk-a", long)
        .await
        .expect("lock")
        .expect("free after the release");
    assert!(store.unlock_account(&again).await.expect("unlock"));
    assert!(store.unlock_account(&other).await.expect("unlock"));

    // A holder that never releases blocks others only for its TTL; its late release then
    // leaves the next holder's lock alone.
    let dead = store
        .lock_account("lk-ttl", Duration::from_millis(300))
        .await
        .expect("lock")
        .expect("free");
    assert_eq!(
        store.lock_account("lk-ttl", long).await.expect("lock"),
        None
    );
    tokio::time::sleep(Duration::from_millis(450)).await;
    let next = store
        .lock_account("lk-ttl", long)
        .await
        .expect("lock")
        .expect("expired");
    assert!(
        !store.unlock_account(&dead).await.expect("unlock"),
        "expired"
    );
    assert_eq!(
        store.lock_account("lk-ttl", long).await.expect("lock"),
        None,
        "the late release freed nothing"
    );
    assert!(store.unlock_account(&next).await.expect("unlock"));

    // Twenty contenders at once: one holder.
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.lock_account("lk-race", long).await.expect("lock")
            })
        })
        .collect();
    let mut held = Vec::new();
    for task in tasks {
        held.extend(task.await.expect("task"));
    }
    assert_eq!(held.len(), 1, "{held:?}");
    assert!(store.unlock_account(&held[0]).await.expect("unlock"));
}

/// A write that returned is seen by the next read at once, even when the backend has not
/// committed it yet (the embedded store's queued writes): the follow-up sent right after an
/// answer finds the mapping the answer stored, and a take right after a take finds nothing.
async fn read_your_writes(store: Arc<dyn Store>) {
    for n in 0..50u32 {
        let key = format!("ryw-{n}");
        store.put_conversation(&key, &record(n)).await.expect("put");
        assert_eq!(
            store.take_conversation(&key).await.expect("take"),
            Some(record(n)),
            "{key}: the follow-up finds it"
        );
        assert_eq!(store.take_conversation(&key).await.expect("take"), None);
        // Replaced right away: the newest put wins.
        store.put_conversation(&key, &record(n)).await.expect("put");
        store
            .put_conversation(&key, &record(n + 1))
            .await
            .expect("put");
        assert_eq!(
            store.take_conversation(&key).await.expect("take"),
            Some(record(n + 1))
        );
    }
    // From other tasks too, each follow-up racing the writes of the others.
    let tasks: Vec<_> = (0..40u32)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = format!("ryw-task-{n}");
                store.put_conversation(&key, &record(n)).await.expect("put");
                store.take_conversation(&key).await.expect("take")
            })
        })
        .collect();
    for (n, task) in (0..40u32).zip(tasks) {
        assert_eq!(task.await.expect("task"), Some(record(n)));
    }
    assert_eq!(store.conversation_count().await.expect("count"), 0);
}

/// Many writes at once (one batch, or a few, in the embedded store): each is kept, a flush
/// makes them durable, and they come out as they went in.
async fn a_burst_of_writes(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..200u32)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .put_conversation(&format!("burst-{n}"), &record(n))
                    .await
                    .expect("put")
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    store.flush().await.expect("flush");
    assert_eq!(store.conversation_count().await.expect("count"), 200);
    for n in 0..200u32 {
        assert_eq!(
            store
                .take_conversation(&format!("burst-{n}"))
                .await
                .expect("take"),
            Some(record(n))
        );
    }
    assert_eq!(store.conversation_count().await.expect("count"), 0);
}

/// Expects a store with `max_conversations = 3`.
async fn lru_cap(store: Arc<dyn Store>) {
    for n in 0..5 {
        store
            .put_conversation(&format!("cap-{n}"), &record(n))
            .await
            .expect("put");
        assert!(store.conversation_count().await.expect("count") <= 3);
    }
    assert_eq!(store.conversation_count().await.expect("count"), 3);
    assert_eq!(
        store.take_conversation("cap-0").await.expect("take"),
        None,
        "oldest evicted"
    );
    assert_eq!(
        store.take_conversation("cap-1").await.expect("take"),
        None,
        "2nd oldest evicted"
    );
    for n in 2..5 {
        let key = format!("cap-{n}");
        assert_eq!(
            store.take_conversation(&key).await.expect("take"),
            Some(record(n))
        );
    }

    // Re-putting an old mapping makes it the most recently used.
    for (key, n) in [
        ("lru-a", 10),
        ("lru-b", 11),
        ("lru-c", 12),
        ("lru-a", 13),
        ("lru-d", 14),
    ] {
        store.put_conversation(key, &record(n)).await.expect("put");
    }
    assert_eq!(store.conversation_count().await.expect("count"), 3);
    assert_eq!(
        store.take_conversation("lru-b").await.expect("take"),
        None,
        "b was oldest"
    );
    assert_eq!(
        store.take_conversation("lru-a").await.expect("take"),
        Some(record(13))
    );
    assert_eq!(
        store.take_conversation("lru-c").await.expect("take"),
        Some(record(12))
    );
    assert_eq!(
        store.take_conversation("lru-d").await.expect("take"),
        Some(record(14))
    );
}

/// Expects a store with a 1 s TTL. Only the state after sleeping past the TTL is asserted.
async fn ttl_expiry(store: Arc<dyn Store>) {
    store
        .put_conversation("ttl-taken", &record(20))
        .await
        .expect("put");
    store
        .put_conversation("ttl-purged", &record(21))
        .await
        .expect("put");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        store.conversation_count().await.expect("count"),
        0,
        "expired are not counted"
    );
    assert_eq!(
        store.take_conversation("ttl-taken").await.expect("take"),
        None
    );
    assert_eq!(
        store.purge_expired().await.expect("purge"),
        vec![record(21)]
    );
    assert_eq!(store.purge_expired().await.expect("purge"), Vec::new());
    assert_eq!(
        store.take_conversation("ttl-purged").await.expect("take"),
        None
    );
}

// ---------------------------------------------------------------- per backend

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
async fn redis_backend_meets_the_contract() {
    let Ok(url) = std::env::var("REDIS_URL") else {
        println!("skipped: REDIS_URL unset (redis backend not tested)");
        return;
    };
    let run_prefix = format!("el2a-test-{}", uuid::Uuid::new_v4());
    let backend = Backend::Redis {
        url: url.clone(),
        run_prefix: run_prefix.clone(),
    };
    run_suite(&backend, "redis").await;
    let leftovers = delete_redis_keys(&url, &run_prefix).await;
    // Everything the suite left should be account keys and index sets, not stray mappings.
    assert!(
        leftovers.iter().all(|k| !k.contains(":conv:")
            || k.ends_with(":conv:lru")
            || k.ends_with(":conv:meta")),
        "unexpected leftovers: {leftovers:?}"
    );
}

/// Deletes every key of this test run and returns their names.
async fn delete_redis_keys(url: &str, run_prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{run_prefix}-*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
    keys
}

// ---------------------------------------------------------------- embedded only

#[tokio::test]
async fn embedded_data_survives_drop_and_reopen() {
    let dir = TempDir::new("reopen");
    let path = dir.path().join("nested/deeper/store.redb");
    {
        let store = EmbeddedStore::open(&path, long_ttl()).expect("first open creates dirs");
        store
            .put_conversation("kept", &record(7))
            .await
            .expect("put");
        store
            .put_conversation("taken", &record(8))
            .await
            .expect("put");
        store.take_conversation("taken").await.expect("take");
        store
            .put_account(&account("seed", "cookie-rotated"))
            .await
            .expect("put");
        store.secret("kept-secret", b"v1").await.expect("secret");
    }
    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen");
    assert_eq!(
        store.secret("kept-secret", b"v2").await.expect("secret"),
        b"v1"
    );
    assert_eq!(store.conversation_count().await.expect("count"), 1);
    assert_eq!(store.take_conversation("taken").await.expect("take"), None);
    assert_eq!(
        store.take_conversation("kept").await.expect("take"),
        Some(record(7))
    );
    assert_eq!(
        store.get_account("seed").await.expect("get"),
        Some(account("seed", "cookie-rotated"))
    );
}

/// The embedded store's conversation writes return before their commit; a flush (or dropping
/// the store) commits them, so a burst queued just before a shutdown is all in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_queued_writes_are_in_the_file_after_a_flush_or_a_drop() {
    let dir = TempDir::new("batch");
    let path = dir.path().join("batch.redb");
    let store = Arc::new(
        EmbeddedStore::open(&path, long_ttl())
            .expect("open")
            .write_behind(),
    );
    for n in 0..300u32 {
        store
            .put_conversation(&format!("flushed-{n}"), &record(n))
            .await
            .expect("put");
    }
    store.flush().await.expect("flush");
    for n in 0..100u32 {
        store
            .put_conversation(&format!("dropped-{n}"), &record(n))
            .await
            .expect("put");
    }
    drop(store);
    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen");
    assert_eq!(store.conversation_count().await.expect("count"), 400);
    for (prefix, count) in [("flushed", 300u32), ("dropped", 100)] {
        for n in 0..count {
            assert_eq!(
                store
                    .take_conversation(&format!("{prefix}-{n}"))
                    .await
                    .expect("take"),
                Some(record(n)),
                "{prefix}-{n}"
            );
        }
    }
}

#[tokio::test]
async fn embedded_file_is_private() {
    let dir = TempDir::new("mode");
    let fresh = dir.path().join("fresh.redb");
    drop(EmbeddedStore::open(&fresh, long_ttl()).expect("open"));
    let mode = std::fs::metadata(&fresh)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "new file mode {mode:o}");

    // An existing file with a wider mode is narrowed.
    let wide = dir.path().join("wide.redb");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(&wide)
        .expect("create");
    std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(EmbeddedStore::open(&wide, long_ttl()).expect("open"));
    let mode = std::fs::metadata(&wide).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "narrowed mode {mode:o}");
}

fn assert_open_error_names(result: Result<EmbeddedStore, StoreError>, path: &Path) {
    let shown = path.display().to_string();
    match result {
        Err(err @ StoreError::Open { .. }) => {
            let StoreError::Open { path: named, .. } = &err else {
                unreachable!()
            };
            assert_eq!(named, &shown);
            assert!(
                err.to_string().contains(&shown),
                "message names the file: {err}"
            );
        }
        Err(other) => panic!("expected StoreError::Open, got {other:?}"),
        Ok(_) => panic!("expected StoreError::Open, the open succeeded"),
    }
}

#[tokio::test]
async fn embedded_corrupt_file_is_an_open_error_naming_it() {
    let dir = TempDir::new("corrupt");
    let path = dir.path().join("garbage.redb");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).expect("write garbage");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);

    // Text that is not a database at all.
    let text = dir.path().join("text.redb");
    std::fs::write(&text, b"this is not a redb file\n").expect("write text");
    assert_open_error_names(EmbeddedStore::open(&text, long_ttl()), &text);

    // Through open_store too.
    match open_store(StoreKind::Embedded { path: path.clone() }, long_ttl()).await {
        Err(StoreError::Open { path: named, .. }) => assert_eq!(named, path.display().to_string()),
        other => panic!("expected StoreError::Open, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn embedded_locked_file_is_an_open_error_naming_it() {
    let dir = TempDir::new("locked");
    let path = dir.path().join("busy.redb");
    let _holder = EmbeddedStore::open(&path, long_ttl()).expect("first open");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);
}

#[tokio::test]
async fn embedded_unwritable_directory_is_an_open_error() {
    // A regular file where the parent directory should be.
    let dir = TempDir::new("notdir");
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"x").expect("write");
    let path = blocker.join("store.redb");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);
}

// ---------------------------------------------------------------- redis faults (no REDIS_URL needed)

#[test]
fn redis_bad_url_is_rejected_at_once() {
    for bad in ["not a url", "http://127.0.0.1:6379", "redis://"] {
        match RedisStore::new(bad, "el2a", long_ttl()) {
            Err(StoreError::Redis(_)) => {}
            Err(other) => panic!("{bad}: expected StoreError::Redis, got {other:?}"),
            Ok(_) => panic!("{bad}: accepted"),
        }
    }
}

/// A TCP port on 127.0.0.1 with nothing listening (just released by the OS).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Hang guard only: the store's own timeout must fire long before this.
const HANG_GUARD: Duration = Duration::from_secs(30);

async fn expect_redis_error<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    match tokio::time::timeout(HANG_GUARD, call).await {
        Ok(Err(StoreError::Redis(_))) => {}
        Ok(other) => panic!("{what}: expected StoreError::Redis, got {other:?}"),
        Err(_) => panic!("{what}: hung while Redis was unreachable"),
    }
}

#[tokio::test]
async fn redis_unreachable_fails_fast_with_a_redis_error() {
    let url = format!("redis://127.0.0.1:{}/", free_port());
    let store = RedisStore::new(&url, "el2a-down", long_ttl()).expect("url is valid");
    expect_redis_error("put", store.put_conversation("k", &record(1))).await;
    expect_redis_error("take", store.take_conversation("k")).await;
    expect_redis_error("count", store.conversation_count()).await;
    expect_redis_error("purge", store.purge_expired()).await;
    expect_redis_error("put_account", store.put_account(&account("s", "c"))).await;
    expect_redis_error("get_account", store.get_account("s")).await;
    expect_redis_error("list_accounts", store.list_accounts()).await;
    expect_redis_error("remove_account", store.remove_account("s")).await;
    expect_redis_error(
        "lock_account",
        store.lock_account("s", Duration::from_secs(1)),
    )
    .await;
    expect_redis_error(
        "swap_account_secret",
        store.swap_account_secret("s", "a", "b"),
    )
    .await;
}

/// A throwaway `redis-server` on `port`, killed on drop.
struct LocalRedis(std::process::Child);

impl LocalRedis {
    async fn start(port: u16) -> Option<Self> {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let server = LocalRedis(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server on port {port} never accepted connections");
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Calls until one succeeds (the connection manager may need a call or two to notice the
/// server is back); fails the test if none does within the hang guard.
async fn until_ok(store: &RedisStore, key: &str, n: u32) {
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        if store.put_conversation(key, &record(n)).await.is_ok() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "store never recovered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.take_conversation(key).await.expect("take"),
        Some(record(n))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_recovers_when_redis_comes_back() {
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("skipped: no redis-server binary (recovery not tested)");
        return;
    }
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let store = RedisStore::new(&url, "el2a-recover", long_ttl()).expect("url is valid");

    // Down before the first connection ever succeeded.
    expect_redis_error("put while down", store.put_conversation("k", &record(1))).await;
    let server = LocalRedis::start(port).await.expect("start redis-server");
    until_ok(&store, "k", 1).await;

    // Down after it was connected, then back again.
    drop(server);
    expect_redis_error(
        "put after the server died",
        store.put_conversation("k", &record(2)),
    )
    .await;
    let _server = LocalRedis::start(port).await.expect("restart redis-server");
    until_ok(&store, "k", 3).await;
}

// ---------------------------------------------------------------- embedded crash safety

/// Set in the child process of [`embedded_sigkill_keeps_committed_writes`]: the path to write.
const CRASH_CHILD_ENV: &str = "EL2A_STORE_CRASH_CHILD_PATH";

/// Re-runs this test binary as a child that writes mappings, reports them committed, and is
/// then killed with SIGKILL; every reported write must be there on reopen.
#[tokio::test]
async fn embedded_sigkill_keeps_committed_writes() {
    if let Ok(path) = std::env::var(CRASH_CHILD_ENV) {
        // Child side: write, say so, then wait to be killed.
        let store = EmbeddedStore::open(Path::new(&path), long_ttl()).expect("child open");
        for n in 0..20 {
            store
                .put_conversation(&format!("crash-{n}"), &record(n))
                .await
                .expect("child put");
        }
        store
            .put_account(&account("crash-seed", "crash-cookie"))
            .await
            .expect("child put account");
        println!("committed");
        use std::io::Write as _;
        std::io::stdout().flush().expect("flush");
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }

    let dir = TempDir::new("crash");
    let path = dir.path().join("crash.redb");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "embedded_sigkill_keeps_committed_writes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let committed = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("committed"))
    })
    .await
    .expect("reader");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    assert!(committed, "the child never reported its writes");

    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen after SIGKILL");
    assert_eq!(store.conversation_count().await.expect("count"), 20);
    for n in 0..20 {
        let key = format!("crash-{n}");
        assert_eq!(
            store.take_conversation(&key).await.expect("take"),
            Some(record(n))
        );
    }
    assert_eq!(
        store.get_account("crash-seed").await.expect("get"),
        Some(account("crash-seed", "crash-cookie"))
    );
}
