//! Unit tests of [`StoredRefresh`] and [`starting_credentials`] over the memory store (the
//! simulator-driven ones, restarts and replicas, are in `tests/cli_refresh.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::store::{MemoryStore, StoreLimits};

const SEED: &str = "cli_0123456789abcdef01234567";

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(StoreLimits::default()))
}

fn rotation(spent: &str, fresh: &str) -> Rotation {
    Rotation {
        account_id: SEED.to_string(),
        spent: Secret::new(spent),
        fresh: Secret::new(fresh),
    }
}

async fn stored(store: &Arc<dyn Store>) -> Option<String> {
    let record = store.get_account(SEED).await.expect("get")?;
    Some(record.client_cookie)
}

#[tokio::test]
async fn rotations_are_compared_and_set_and_a_lost_race_keeps_the_stored_token() {
    let store = memory();
    store
        .put_account(&record(SEED, "work", "rt_0"))
        .await
        .expect("put");
    let refresh = StoredRefresh::new(store.clone(), SEED, "work");
    refresh.rotated(&rotation("rt_0", "rt_1")).await;
    assert_eq!(stored(&store).await.as_deref(), Some("rt_1"));
    assert_eq!(refresh.current().await, Some(Secret::new("rt_1")));
    // Another replica rotated rt_1 meanwhile; a late rotation of rt_0 must not undo that.
    assert!(
        store
            .swap_account_secret(SEED, "rt_1", "rt_2")
            .await
            .expect("swap")
    );
    refresh.rotated(&rotation("rt_0", "rt_late")).await;
    assert_eq!(stored(&store).await.as_deref(), Some("rt_2"));
}

#[tokio::test]
async fn a_spent_token_left_by_a_failed_write_is_replaced() {
    let store = memory();
    let refresh = StoredRefresh::new(store.clone(), SEED, "work");
    // rt_0 -> rt_1 happened while the store was down: the record still holds rt_0.
    refresh.remember_spent(&Secret::new("rt_0"));
    store
        .put_account(&record(SEED, "work", "rt_0"))
        .await
        .expect("put");
    refresh.rotated(&rotation("rt_1", "rt_2")).await;
    assert_eq!(stored(&store).await.as_deref(), Some("rt_2"));
}

#[tokio::test]
async fn a_missing_record_is_written_by_the_next_rotation() {
    let store = memory();
    let refresh = StoredRefresh::new(store.clone(), SEED, "work");
    assert_eq!(refresh.current().await, None);
    refresh.rotated(&rotation("rt_0", "rt_1")).await;
    let written = store
        .get_account(SEED)
        .await
        .expect("get")
        .expect("written");
    assert_eq!(written.client_cookie, "rt_1");
    assert_eq!(written.kind, AccountKind::Cli);
    assert_eq!(written.account_id.as_deref(), Some(SEED));
    assert_eq!(written.label.as_deref(), Some("work"));
}

#[tokio::test]
async fn start_up_prefers_the_stored_token_and_records_a_new_login() {
    let store = memory();
    let configured = Credentials::parse(
        r#"{"refreshToken":"rt_pasted","accessToken":"at_saved","expiresAt":1}"#,
    )
    .expect("credentials");
    let first = starting_credentials(&store, SEED, "work", configured.clone()).await;
    assert_eq!(first.refresh_token.expose(), "rt_pasted");
    let written = store
        .get_account(SEED)
        .await
        .expect("get")
        .expect("recorded");
    assert_eq!(
        written,
        AccountRecord {
            updated_ms: written.updated_ms,
            ..record(SEED, "work", "rt_pasted")
        }
    );

    assert!(
        store
            .swap_account_secret(SEED, "rt_pasted", "rt_rotated")
            .await
            .expect("swap")
    );
    let again = starting_credentials(&store, SEED, "work", configured.clone()).await;
    assert_eq!(again.refresh_token.expose(), "rt_rotated");
    assert_eq!(
        again.access_token, configured.access_token,
        "the rest is kept"
    );

    // A record of another kind under the id is left alone.
    let web = AccountRecord {
        kind: AccountKind::Web,
        ..record(SEED, "web", "cookie")
    };
    store.put_account(&web).await.expect("put");
    let other = starting_credentials(&store, SEED, "work", configured).await;
    assert_eq!(other.refresh_token.expose(), "rt_pasted");
    assert_eq!(store.get_account(SEED).await.expect("get"), Some(web));
}

#[tokio::test]
async fn a_refresh_holds_the_lock_and_a_second_waits_a_bounded_time() {
    let store = memory();
    let quick = Duration::from_millis(150);
    let refresh = StoredRefresh::new(store.clone(), SEED, "work").with_lock_timing(LOCK_TTL, quick);
    let first = refresh.begin().await;
    assert!(first.is::<Held>(), "the lock is held");
    assert_eq!(
        store.lock_account(SEED, LOCK_TTL).await.expect("lock"),
        None
    );
    let started = Instant::now();
    let second = refresh.begin().await;
    assert!(started.elapsed() >= quick, "{:?}", started.elapsed());
    assert!(second.is::<()>(), "went ahead without the lock");
    drop(first);
    // The release is a task of its own.
    let mut freed = None;
    for _ in 0..50 {
        freed = store.lock_account(SEED, LOCK_TTL).await.expect("lock");
        if freed.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(freed.is_some(), "released on drop");
}

#[tokio::test]
async fn disabling_keeps_the_stored_token() {
    let store = memory();
    assert!(
        !set_disabled(&store, SEED, true).await.expect("set"),
        "no record"
    );
    store
        .put_account(&record(SEED, "work", "rt_0"))
        .await
        .expect("put");
    assert!(
        store
            .swap_account_secret(SEED, "rt_0", "rt_1")
            .await
            .expect("swap")
    );
    assert!(set_disabled(&store, SEED, true).await.expect("set"));
    let now = store.get_account(SEED).await.expect("get").expect("kept");
    assert!(now.disabled);
    assert_eq!(now.client_cookie, "rt_1");
    assert!(
        store
            .lock_account(SEED, LOCK_TTL)
            .await
            .expect("lock")
            .is_some(),
        "the lock is released at once"
    );
}

#[test]
fn store_errors_are_logged_without_tokens() {
    let secret = Secret::new("cto_rt_abc");
    let e = StoreError::Redis("echoed cto_rt_abc back".to_string());
    assert!(!shown(&e, &[&secret]).contains("cto_rt_abc"));
    let e = StoreError::Decode(r#"invalid type: string "cto_rt_other", expected u64"#.to_string());
    let text = shown(&e, &[]);
    assert!(!text.contains("cto_rt_other"), "{text}");
    assert!(text.contains("invalid type"), "{text}");
}
