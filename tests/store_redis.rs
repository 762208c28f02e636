//! The checks only the Redis store has, none of them needing `REDIS_URL`: a bad URL is refused
//! at once, an unreachable server fails each call fast with a Redis error, and the store
//! recovers when a server that went away comes back.

mod common;

use std::time::Duration;

use common::proc::free_port;
use common::redis::LocalRedis;
use common::store::{account, long_ttl, record};
use enginelabs_2api::store::{RedisStore, Store, StoreError};

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

/// Stops and starts a `redis-server` of its own (the suite's Redis stays up for the others).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (the redis-server binary)"]
async fn redis_store_recovers_when_redis_comes_back() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let store = RedisStore::new(&url, "el2a-recover", long_ttl()).expect("url is valid");

    // Down before the first connection ever succeeded.
    expect_redis_error("put while down", store.put_conversation("k", &record(1))).await;
    let server = LocalRedis::start(port).await;
    until_ok(&store, "k", 1).await;

    // Down after it was connected, then back again.
    drop(server);
    expect_redis_error(
        "put after the server died",
        store.put_conversation("k", &record(2)),
    )
    .await;
    let _server = LocalRedis::start(port).await;
    until_ok(&store, "k", 3).await;
}
