//! CLI refresh tokens kept in the store (`pool::refresh`), against the simulator's CLI door,
//! which refuses a spent refresh token: a restart starts from the stored (rotated) token, and
//! two holders of one login (replicas on one Redis, or two in one process on the embedded
//! store) never spend the same token, however hard they are driven.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cli::{client, collect, content, hello, raw_refresh, token_door};
use common::proc::TempDir;
use common::redis::Prefix;
use common::sim::cfg;
use enginelabs_2api::pool::refresh::{LOCK_TTL, StoredRefresh, starting_credentials};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use enginelabs_2api::store::{AccountKind, MemoryStore, Store, StoreKind, StoreLimits, open_store};
use enginelabs_2api::upstream::cli::{CliAccount, CliClient, Credentials, seed_hash};
use enginelabs_2api::upstream::{Turn, UpstreamError};
use serde_json::{Value, json};

/// A login as configured (a bare refresh token), and its stable id.
fn configured(refresh_token: &str) -> (Credentials, String) {
    (
        Credentials::parse(refresh_token).unwrap(),
        seed_hash(refresh_token),
    )
}

/// One holder of the login, as the proxy builds it at start: from the store's token if any.
async fn holder(store: &Arc<dyn Store>, seed: &str, creds: &Credentials) -> CliAccount {
    let start = starting_credentials(store, seed, "work", creds.clone()).await;
    let refresh = StoredRefresh::new(store.clone(), seed, "work");
    CliAccount::with_id(seed, "work", &start, Arc::new(refresh))
}

/// The text of a turn, or the error that ended it.
async fn answer(turn: Turn) -> Result<String, UpstreamError> {
    match collect(turn).await {
        (events, None) => Ok(content(&events)),
        (_, Some(e)) => Err(e),
    }
}

async fn ask(cli: &CliClient, acc: &CliAccount, text: &str) -> Result<String, UpstreamError> {
    answer(cli.start_turn(acc, "ses_refresh", hello(text)).await?).await
}

async fn stored_token(store: &Arc<dyn Store>, seed: &str) -> String {
    store
        .get_account(seed)
        .await
        .unwrap()
        .unwrap()
        .client_cookie
}

/// Opens the embedded file, waiting for the last handle of a previous opening to go.
async fn reopen(path: &std::path::Path) -> Arc<dyn Store> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let kind = StoreKind::Embedded {
            path: path.to_path_buf(),
        };
        match open_store(kind, StoreLimits::default()).await {
            Ok(store) => return store,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the store file never came free: {e}"),
        }
    }
}

#[tokio::test]
async fn a_restart_after_a_rotation_starts_from_the_stored_token() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let login = sim.add_cli_account();
    let (creds, seed) = configured(&login.refresh_token);
    let dir = TempDir::new("cli-restart");
    let path = dir.0.join("store.redb");

    let store = reopen(&path).await;
    let first = holder(&store, &seed, &creds).await;
    let record = store.get_account(&seed).await.unwrap().unwrap();
    assert_eq!(record.kind, AccountKind::Cli);
    assert_eq!(record.account_id.as_deref(), Some(seed.as_str()));
    assert_eq!(
        record.client_cookie, login.refresh_token,
        "recorded at start"
    );
    assert_eq!(
        ask(&cli, &first, "one").await.unwrap(),
        reply_text("one", 1, 12)
    );
    assert_eq!(first.tokens().rotation_count(), 1);
    let rotated = stored_token(&store, &seed).await;
    assert_ne!(rotated, login.refresh_token);
    assert_eq!(
        rotated,
        sim.cli_account(&login.user_id).unwrap().refresh_token
    );
    let spent_before = first.tokens().refresh_count();
    drop(first);
    drop(store);

    // The restart: the same configuration, the original (spent) token.
    let store = reopen(&path).await;
    let second = holder(&store, &seed, &creds).await;
    assert_eq!(second.tokens().refresh_token().expose(), rotated);
    assert_eq!(
        ask(&cli, &second, "two").await.unwrap(),
        reply_text("two", 1, 12)
    );
    let stats = sim.stats();
    assert_eq!(
        stats.cli_refreshes[&login.user_id],
        spent_before + second.tokens().refresh_count(),
        "every refresh call was granted: nothing spent twice"
    );
    assert_eq!(stats.cli_refused_refreshes, 0);
    assert_eq!(
        stored_token(&store, &seed).await,
        sim.cli_account(&login.user_id).unwrap().refresh_token
    );

    // The configured token is spent: the door refuses it.
    let r = raw_refresh(&sim, &login.refresh_token).await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

/// Drives every holder with turns for `span` from `workers` tasks each; every turn must be
/// answered. Returns the number of turns.
async fn hammer(
    holders: Vec<(CliClient, Arc<CliAccount>)>,
    workers: usize,
    span: Duration,
) -> usize {
    let end = Instant::now() + span;
    let mut tasks = Vec::new();
    for (h, (cli, acc)) in holders.into_iter().enumerate() {
        for w in 0..workers {
            let (cli, acc) = (cli.clone(), acc.clone());
            tasks.push(tokio::spawn(async move {
                let mut done = 0;
                while Instant::now() < end {
                    let text = format!("h{h} w{w} n{done}");
                    let got = ask(&cli, &acc, &text).await;
                    assert_eq!(got.unwrap(), reply_text(&text, 1, 12), "holder {h}");
                    done += 1;
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                done
            }));
        }
    }
    let mut turns = 0;
    for task in tasks {
        turns += task.await.unwrap();
    }
    turns
}

/// Two holders of one login over `stores` (one each, or the same twice), driven across
/// several lifetimes of 1 s access tokens: no refresh is ever refused.
async fn two_holders_never_spend_one_token(stores: [Arc<dyn Store>; 2]) {
    let sim = Simulator::start(SimConfig {
        cli_token_ttl: Duration::from_secs(1),
        ..cfg()
    })
    .await
    .unwrap();
    let login = sim.add_cli_account();
    let (creds, seed) = configured(&login.refresh_token);
    let mut holders = Vec::new();
    for store in &stores {
        let acc = Arc::new(holder(store, &seed, &creds).await);
        holders.push((client(&sim.url()), acc));
    }
    let accounts: Vec<Arc<CliAccount>> = holders.iter().map(|(_, a)| a.clone()).collect();

    let turns = hammer(holders, 3, Duration::from_secs(4)).await;

    let refreshes: Vec<u64> = accounts
        .iter()
        .map(|a| a.tokens().refresh_count())
        .collect();
    let stats = sim.stats();
    assert_eq!(stats.cli_refused_refreshes, 0);
    assert_eq!(
        stats.cli_refreshes[&login.user_id],
        refreshes.iter().sum::<u64>(),
        "every refresh call of either holder was granted: {refreshes:?}"
    );
    assert!(
        refreshes.iter().all(|n| *n >= 2),
        "both holders refreshed, over several token lifetimes: {refreshes:?}"
    );
    let live = sim.cli_account(&login.user_id).unwrap().refresh_token;
    assert_eq!(stored_token(&stores[0], &seed).await, live);
    println!("{turns} turns, refreshes per holder {refreshes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Redis (REDIS_URL)"]
async fn two_replicas_on_one_redis_never_spend_one_refresh_token_twice() {
    // A prefix of this run only, so that parallel runs never share keys.
    let keys = Prefix::new();
    let replica = || {
        let kind = StoreKind::Redis {
            url: keys.url.clone(),
            prefix: keys.prefix.clone(),
        };
        open_store(kind, StoreLimits::default())
    };
    let stores = [replica().await.unwrap(), replica().await.unwrap()];
    two_holders_never_spend_one_token(stores).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_holders_on_one_embedded_store_never_spend_one_refresh_token_twice() {
    let dir = TempDir::new("cli-two-holders");
    let store = reopen(&dir.0.join("store.redb")).await;
    two_holders_never_spend_one_token([store.clone(), store]).await;
}

#[tokio::test]
async fn a_lock_nobody_releases_delays_a_refresh_but_does_not_stop_it() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let login = sim.add_cli_account();
    let (creds, seed) = configured(&login.refresh_token);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
    let start = starting_credentials(&store, &seed, "work", creds).await;
    // A replica took the lock and died.
    let _stuck = store.lock_account(&seed, LOCK_TTL).await.unwrap().unwrap();
    let wait = Duration::from_millis(200);
    let refresh = StoredRefresh::new(store.clone(), &seed, "work").with_lock_timing(LOCK_TTL, wait);
    let acc = CliAccount::with_id(&seed, "work", &start, Arc::new(refresh));
    let began = Instant::now();
    cli.access_token(&acc).await.unwrap();
    assert!(began.elapsed() >= wait, "waited for the lock first");
    assert_eq!(
        stored_token(&store, &seed).await,
        sim.cli_account(&login.user_id).unwrap().refresh_token
    );
}

#[tokio::test]
async fn a_refused_login_is_dead_says_to_log_in_again_and_keeps_its_record() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let login = sim.add_cli_account();
    let (creds, seed) = configured(&login.refresh_token);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
    let acc = holder(&store, &seed, &creds).await;
    sim.set_faults(Faults {
        cli_refresh_refused: vec![login.user_id.clone()],
        ..Faults::default()
    });
    let err = ask(&cli, &acc, "hi").await.err().unwrap();
    assert!(
        matches!(err, UpstreamError::CliLoginRejected { .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(text.contains("run `cto login` again"), "{text}");
    assert!(!text.contains("cto_rt_"), "{text}");
    assert_eq!(
        enginelabs_2api::pool::retry::classify(&err),
        enginelabs_2api::pool::Verdict::Dead
    );
    assert_eq!(stored_token(&store, &seed).await, login.refresh_token);
}

#[tokio::test]
async fn a_refresh_its_caller_gave_up_on_still_stores_its_rotation() {
    // A door that takes 300 ms to rotate rt_0 into rt_1.
    let (url, seen) = token_door(Duration::from_millis(300), |n| {
        json!({
            "access_token": format!("at_{n}"),
            "refresh_token": format!("rt_{n}"),
            "expires_in": 900,
        })
    })
    .await;
    let cli = client(&url);
    let (creds, seed) = configured("rt_0");
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
    let acc = holder(&store, &seed, &creds).await;

    let cut = tokio::time::timeout(Duration::from_millis(50), cli.access_token(&acc)).await;
    assert!(cut.is_err(), "the caller gave up");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(stored_token(&store, &seed).await, "rt_1");
    assert_eq!(acc.tokens().refresh_token().expose(), "rt_1");
    assert_eq!(
        cli.access_token(&acc).await.unwrap(),
        "at_1",
        "its access token is kept"
    );
    assert_eq!(*seen.lock().unwrap(), ["rt_0"]);
}
