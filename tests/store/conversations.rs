//! The conversation mappings' part of the store contract: round trips, a mapping taken once,
//! replaced, taken by one of many racing callers, the LRU cap and the TTL.

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::store::Store;

use crate::common::store::record;

pub async fn round_trip(store: Arc<dyn Store>) {
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

pub async fn take_twice(store: Arc<dyn Store>) {
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

pub async fn put_replaces(store: Arc<dyn Store>) {
    store.put_conversation("pr", &record(5)).await.expect("put");
    store.put_conversation("pr", &record(6)).await.expect("put");
    assert_eq!(store.conversation_count().await.expect("count"), 1);
    assert_eq!(
        store.take_conversation("pr").await.expect("take"),
        Some(record(6))
    );
    assert_eq!(store.take_conversation("pr").await.expect("take"), None);
}

pub async fn concurrent_take(store: Arc<dyn Store>) {
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

/// Expects a store with `max_conversations = 3`.
pub async fn lru_cap(store: Arc<dyn Store>) {
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
pub async fn ttl_expiry(store: Arc<dyn Store>) {
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

/// A write that returned is seen by the next read at once, even when the backend has not
/// committed it yet (the embedded store's queued writes): the follow-up sent right after an
/// answer finds the mapping the answer stored, and a take right after a take finds nothing.
pub async fn read_your_writes(store: Arc<dyn Store>) {
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
pub async fn a_burst_of_writes(store: Arc<dyn Store>) {
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
