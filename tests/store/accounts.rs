//! The accounts' part of the store contract: records, the shared secrets, the refresh token's
//! compare-and-set and the account lock.

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::store::{AccountKind, AccountRecord, Store};

use crate::common::store::{account, cli_account};

pub async fn accounts(store: Arc<dyn Store>) {
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

pub async fn secrets(store: Arc<dyn Store>) {
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

pub async fn secret_swap(store: Arc<dyn Store>) {
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

pub async fn account_locks(store: Arc<dyn Store>) {
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
