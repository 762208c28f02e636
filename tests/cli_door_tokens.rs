//! The CLI door's client (`upstream::cli`) against the simulator's CLI door, over real sockets:
//! access tokens cached and refreshed, refresh token rotation reported to the store, single
//! flight, a refused refresh, and a newer token adopted from the store.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::cli::{
    Recorder, account, client, collect, content, hello, raw_refresh, saved_credentials, token_door,
};
use common::sim::cfg;
use enginelabs_2api::pool::retry::{Verdict, classify};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use enginelabs_2api::upstream::UpstreamError;
use enginelabs_2api::upstream::cli::{CliAccount, Credentials, Secret};
use serde_json::{Value, json};

/// How many refresh calls the door granted this user.
fn refreshes(sim: &Simulator, user: &str) -> u64 {
    sim.stats().cli_refreshes.get(user).copied().unwrap_or(0)
}

#[tokio::test]
async fn access_tokens_are_cached_and_refreshed_before_they_expire() {
    let sim = Simulator::start(SimConfig {
        cli_token_ttl: Duration::from_secs(2),
        ..cfg()
    })
    .await
    .unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let first = cli.access_token(&acc).await.unwrap();
    assert_eq!(cli.access_token(&acc).await.unwrap(), first, "cached");
    assert_eq!(refreshes(&sim, &user), 1);
    // Half of a 2 s lifetime is the margin: after 1.1 s the token is replaced while still valid.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = cli.access_token(&acc).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(refreshes(&sim, &user), 2);
    let (events, err) = collect(cli.start_turn(&acc, "ses_x", hello("hi")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(content(&events), reply_text("hi", 1, 12));
    assert_eq!(
        sim.stats().cli_rejected_tokens,
        0,
        "never sent an expired token"
    );
}

#[tokio::test]
async fn a_refused_access_token_gets_one_refresh_and_one_retry() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let login = sim.add_cli_account();
    // A saved access token the door does not know, with time left: used, refused, replaced.
    let creds = saved_credentials(&json!("cto_at_stale"), &json!(login.refresh_token));
    let acc = CliAccount::new("test", &creds, Arc::new(Recorder::default()));
    let (events, err) = collect(cli.start_turn(&acc, "ses_x", hello("hi")).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(content(&events), reply_text("hi", 1, 12));
    let stats = sim.stats();
    assert_eq!(stats.cli_rejected_tokens, 1);
    assert_eq!(stats.cli_refreshes[&login.user_id], 1);
    assert_eq!(
        stats.cli_completions.len(),
        1,
        "the refused call is not recorded"
    );

    // `/models` does the same.
    let rotated = sim.cli_account(&login.user_id).unwrap().refresh_token;
    let creds = saved_credentials(&json!("cto_at_stale2"), &json!(rotated));
    let acc = CliAccount::new("test", &creds, Arc::new(Recorder::default()));
    let models = cli.models(&acc).await.unwrap();
    assert!(
        models.contains(&"gpt-5.4".to_string()) && models.contains(&"kimi-k2.5".to_string()),
        "{models:?}"
    );
    assert_eq!(sim.stats().cli_refreshes[&login.user_id], 2);
}

#[tokio::test]
async fn a_fresh_token_refused_again_is_the_dead_login_error() {
    // Tokens that expire as they are issued: the refresh works, the retry is refused anyway.
    let sim = Simulator::start(SimConfig {
        cli_token_ttl: Duration::ZERO,
        ..cfg()
    })
    .await
    .unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let err = cli
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, UpstreamError::CliLoginRejected { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("freshly refreshed"), "{err}");
    assert!(!err.to_string().contains("cto_at_"), "{err}");
    let stats = sim.stats();
    assert_eq!(stats.cli_rejected_tokens, 2, "one retry, no more");
    assert_eq!(stats.cli_refreshes[&user], 2);
}

#[tokio::test]
async fn every_rotation_is_reported_with_the_spent_token_which_is_dead_afterwards() {
    let sim = Simulator::start(SimConfig {
        cli_token_ttl: Duration::from_secs(2),
        ..cfg()
    })
    .await
    .unwrap();
    let cli = client(&sim.url());
    let store = Arc::new(Recorder::default());
    let login = sim.add_cli_account();
    let creds = Credentials::parse(&login.refresh_token).unwrap();
    let acc = CliAccount::new("test", &creds, store.clone());
    *store.stored.lock().unwrap() = Some(Secret::new(login.refresh_token.clone()));

    cli.access_token(&acc).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    cli.access_token(&acc).await.unwrap();

    let rotations = store.rotations.lock().unwrap().clone();
    assert_eq!(rotations.len(), 2);
    assert_eq!(acc.tokens().rotation_count(), 2);
    assert_eq!(rotations[0].spent.expose(), login.refresh_token);
    assert_eq!(rotations[1].spent, rotations[0].fresh, "a chain, in order");
    assert!(rotations.iter().all(|r| r.account_id == acc.id()));
    let live = sim.cli_account(&login.user_id).unwrap().refresh_token;
    assert_eq!(rotations[1].fresh.expose(), live);
    assert_eq!(acc.tokens().refresh_token().expose(), live);
    assert_eq!(
        store.stored.lock().unwrap().as_ref().unwrap().expose(),
        live
    );
    assert!(
        !format!("{rotations:?}").contains("cto_rt_"),
        "no token in Debug"
    );

    let r = raw_refresh(&sim, &login.refresh_token).await;
    assert_eq!(r.status(), 400, "the spent token is refused");
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
}

#[tokio::test]
async fn an_answer_without_a_refresh_token_keeps_the_old_one() {
    // A door that never rotates: a stub, since the simulator always does.
    let (url, seen) = token_door(
        Duration::ZERO,
        |n| json!({"access_token": format!("at_{n}"), "expires_in": 1}),
    )
    .await;
    let cli = client(&url);
    let store = Arc::new(Recorder::default());
    let creds = Credentials::parse("rt_keep").unwrap();
    let acc = CliAccount::new("test", &creds, store.clone());
    assert_eq!(cli.access_token(&acc).await.unwrap(), "at_1");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cli.access_token(&acc).await.unwrap(), "at_2");
    assert_eq!(*seen.lock().unwrap(), ["rt_keep", "rt_keep"]);
    assert!(store.rotations.lock().unwrap().is_empty());
    assert_eq!(acc.tokens().rotation_count(), 0);
    assert_eq!(acc.tokens().refresh_token().expose(), "rt_keep");
}

#[tokio::test]
async fn twenty_concurrent_callers_share_one_refresh() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let calls = (0..20).map(|_| cli.access_token(&acc));
    let tokens = futures_util::future::join_all(calls).await;
    let first = tokens[0].as_ref().unwrap().clone();
    assert!(tokens.iter().all(|t| t.as_ref().ok() == Some(&first)));
    assert_eq!(refreshes(&sim, &user), 1);
    assert_eq!(acc.tokens().refresh_count(), 1);

    // Twenty turns at once on a fresh account: still one refresh.
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let turns = (0..20).map(|i| cli.start_turn(&acc, "ses_many", hello(&format!("q{i}"))));
    for turn in futures_util::future::join_all(turns).await {
        let (_, err) = collect(turn.unwrap()).await;
        assert!(err.is_none(), "{err:?}");
    }
    assert_eq!(refreshes(&sim, &user), 1);
}

#[tokio::test]
async fn a_refused_refresh_is_the_dead_login_error_shared_by_all_waiters() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    sim.set_faults(Faults {
        cli_refresh_refused: vec![user.clone()],
        ..Faults::default()
    });
    let calls = (0..20).map(|_| cli.start_turn(&acc, "ses_x", hello("hi")));
    for result in futures_util::future::join_all(calls).await {
        let err = result.err().unwrap();
        assert!(
            matches!(err, UpstreamError::CliLoginRejected { .. }),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains("cto login") && text.contains("invalid_grant"),
            "{text}"
        );
        assert!(!text.contains("cto_rt_"), "{text}");
        assert_eq!(classify(&err), Verdict::Dead);
    }
    assert_eq!(sim.stats().cli_refused_refreshes, 1, "one flight, shared");
    // A later call tries again (the refusal is not cached forever).
    sim.set_faults(Faults::default());
    assert!(cli.access_token(&acc).await.is_ok());
}

/// An account whose token another replica spent, with the rotated one in `store` (which
/// answers `blind` lookups with nothing first); returns the stored token.
async fn rotated_elsewhere(
    sim: &Simulator,
    store: &Arc<Recorder>,
    blind: usize,
) -> (String, CliAccount, String) {
    let login = sim.add_cli_account();
    let creds = Credentials::parse(&login.refresh_token).unwrap();
    let acc = CliAccount::new("test", &creds, store.clone());
    let v: Value = raw_refresh(sim, &login.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let newer = v["refresh_token"].as_str().unwrap().to_string();
    *store.stored.lock().unwrap() = Some(Secret::new(newer.clone()));
    store.blind.store(blind, Ordering::SeqCst);
    (login.user_id, acc, newer)
}

/// Another replica rotated the token; the store tells us after `blind` looks. Expects
/// `refreshes` refresh calls (`why`), one recorded rotation spending the stored token, and the
/// account on the simulator's current token.
async fn adopts_the_newer_token(blind: usize, refreshes: u64, why: &str) {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let store = Arc::new(Recorder::default());
    let (user, acc, newer) = rotated_elsewhere(&sim, &store, blind).await;
    cli.access_token(&acc).await.unwrap();
    assert_eq!(acc.tokens().refresh_count(), refreshes, "{why}");
    let rotations = store.rotations.lock().unwrap().clone();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].spent.expose(), newer);
    assert_eq!(
        acc.tokens().refresh_token().expose(),
        sim.cli_account(&user).unwrap().refresh_token
    );
}

#[tokio::test]
async fn a_newer_token_in_the_store_is_adopted_before_anything_is_spent() {
    adopts_the_newer_token(0, 1, "the dead token is never sent").await;
}

#[tokio::test]
async fn a_newer_token_in_the_store_is_adopted_after_a_refusal() {
    // The store learns of the other replica's rotation only after our first look.
    adopts_the_newer_token(1, 2, "the dead one, then the stored one").await;
}
