//! The CLI door's client (`upstream::cli`) against the simulator's CLI door, over real sockets:
//! token refresh and rotation, single flight, refusals, streamed and whole answers, headers,
//! the body as sent, and a dropped turn closing its connection.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::relay::{all_closed, relay};
use common::sim::cfg;
use enginelabs_2api::pool::retry::{Verdict, classify};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use enginelabs_2api::upstream::cli::{
    CliAccount, CliClient, Credentials, DEFAULT_CLI_USER_AGENT, RefreshStore, Rotation, Secret,
    chat, session_id,
};
use enginelabs_2api::upstream::{
    FinishReason, Turn, TurnEvent, UpstreamConfig, UpstreamError, Usage,
};
use serde_json::{Value, json};

/// A store that records every rotation and applies it with compare-and-set.
#[derive(Default)]
struct Recorder {
    rotations: Mutex<Vec<Rotation>>,
    stored: Mutex<Option<Secret>>,
    /// `current()` answers `None` this many times first (a store that learns late).
    blind: AtomicUsize,
}

#[async_trait::async_trait]
impl RefreshStore for Recorder {
    async fn rotated(&self, rotation: &Rotation) {
        self.rotations.lock().unwrap().push(rotation.clone());
        let mut stored = self.stored.lock().unwrap();
        if stored.as_ref().is_none_or(|s| *s == rotation.spent) {
            *stored = Some(rotation.fresh.clone());
        }
    }

    async fn current(&self) -> Option<Secret> {
        let blind = self
            .blind
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if blind.is_ok() {
            return None;
        }
        self.stored.lock().unwrap().clone()
    }
}

fn client(base: &str) -> CliClient {
    let mut up = UpstreamConfig::with_urls(base, base);
    up.idle_timeout = Duration::from_secs(5);
    up.request_timeout = Duration::from_secs(5);
    CliClient::new(&up).unwrap()
}

/// A new simulator account logged in on the CLI door, as the proxy would hold it.
fn account(sim: &Simulator, store: Arc<dyn RefreshStore>) -> (String, CliAccount) {
    let login = sim.add_cli_account();
    let creds = Credentials::parse(&login.refresh_token).unwrap();
    (login.user_id, CliAccount::new("test", &creds, store))
}

fn refreshes(sim: &Simulator, user: &str) -> u64 {
    sim.stats().cli_refreshes.get(user).copied().unwrap_or(0)
}

fn hello(text: &str) -> Value {
    json!({"model": "gpt-5.4", "messages": [{"role": "user", "content": text}]})
}

/// Every event of a turn, and the error that ended it, if one did.
async fn collect(mut turn: Turn) -> (Vec<TurnEvent>, Option<UpstreamError>) {
    let mut events = Vec::new();
    while let Some(next) = turn.next().await {
        match next {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

fn content(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::Content(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

async fn raw_refresh(sim: &Simulator, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/oauth/token", sim.url()))
        .json(&json!({"grant_type": "refresh_token", "refresh_token": token}))
        .send()
        .await
        .unwrap()
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
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 600_000;
    let creds = Credentials::parse(
        &json!({"accessToken": "cto_at_stale", "refreshToken": login.refresh_token, "expiresAt": far})
            .to_string(),
    )
    .unwrap();
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
    let creds = Credentials::parse(
        &json!({"accessToken": "cto_at_stale2", "refreshToken": sim.cli_account(&login.user_id).unwrap().refresh_token, "expiresAt": far})
            .to_string(),
    )
    .unwrap();
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
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/oauth/token",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                log.push(v["refresh_token"].as_str().unwrap_or_default().to_string());
                axum::Json(json!({"access_token": format!("at_{}", log.len()), "expires_in": 1}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
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

#[tokio::test]
async fn a_newer_token_in_the_store_is_adopted_before_anything_is_spent() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let store = Arc::new(Recorder::default());
    let (user, acc, newer) = rotated_elsewhere(&sim, &store, 0).await;
    cli.access_token(&acc).await.unwrap();
    assert_eq!(
        acc.tokens().refresh_count(),
        1,
        "the dead token is never sent"
    );
    let rotations = store.rotations.lock().unwrap().clone();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].spent.expose(), newer);
    assert_eq!(
        acc.tokens().refresh_token().expose(),
        sim.cli_account(&user).unwrap().refresh_token
    );
}

#[tokio::test]
async fn a_newer_token_in_the_store_is_adopted_after_a_refusal() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let store = Arc::new(Recorder::default());
    // The store learns of the other replica's rotation only after our first look.
    let (user, acc, newer) = rotated_elsewhere(&sim, &store, 1).await;
    cli.access_token(&acc).await.unwrap();
    assert_eq!(
        acc.tokens().refresh_count(),
        2,
        "the dead one, then the stored one"
    );
    let rotations = store.rotations.lock().unwrap().clone();
    assert_eq!(rotations.len(), 1);
    assert_eq!(rotations[0].spent.expose(), newer);
    assert_eq!(
        acc.tokens().refresh_token().expose(),
        sim.cli_account(&user).unwrap().refresh_token
    );
}

#[tokio::test]
async fn tool_calls_stream_as_events_with_byte_exact_arguments() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    let args = r#"{"file_path": "/tmp/naïve \"q\".txt",  "n": [1, 2]}"#;
    let body = json!({
        "model": "gpt-5.4",
        "messages": [{"role": "user", "content": format!("Look.\ncall Read {args}\ncall Write")}],
        "tools": [
            {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "Write", "parameters": {"type": "object"}}}
        ],
    });
    let (events, err) = collect(cli.start_turn(&acc, "ses_t", body).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let starts: Vec<(usize, &str)> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolCallStart { index, id, name } => {
                assert!(id.starts_with("call_"), "{id}");
                Some((*index, name.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, "Read"), (1, "Write")]);
    let args_of = |index: usize| -> (usize, String) {
        let pieces: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                TurnEvent::ToolCallArgs { index: i, delta } if *i == index => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        (pieces.len(), pieces.concat())
    };
    let (pieces, read) = args_of(0);
    assert_eq!(read, args);
    assert!(pieces > 2, "streamed in pieces: {pieces}");
    assert_eq!(args_of(1).1, "{}");
    let n = events.len();
    assert_eq!(
        events[n - 5..n - 2],
        [
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::ToolCallEnd { index: 1 },
            TurnEvent::Stopped(FinishReason::ToolCalls),
        ]
    );
    assert!(
        matches!(events[n - 2], TurnEvent::Usage(Usage { prompt_tokens, .. }) if prompt_tokens > 0)
    );
    assert_eq!(events[n - 1], TurnEvent::Finished { cancelled: false });
    assert_eq!(content(&events), "");
}

#[tokio::test]
async fn a_whole_json_answer_gives_the_same_events() {
    let sim = Simulator::start(cfg()).await.unwrap();
    sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    let mut body = hello("hello");
    body["stream"] = json!(false);
    let (events, err) = collect(cli.start_turn(&acc, "ses_j", body.clone()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(matches!(&events[0], TurnEvent::Reasoning(r) if !r.is_empty()));
    assert_eq!(events[1], TurnEvent::Content(reply_text("hello", 1, 12)));
    assert_eq!(events[2], TurnEvent::Stopped(FinishReason::Stop));
    assert!(matches!(events[3], TurnEvent::Usage(_)));
    assert_eq!(events[4], TurnEvent::Finished { cancelled: false });
    assert_eq!(sim.stats().cli_completions[0].body, body, "sent as asked");
}

#[tokio::test]
async fn headers_and_unknown_body_fields_reach_the_door_intact() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let ses = session_id("conversation 42");
    let body = json!({
        "model": "kimi-k2.5",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "question"}]}],
        "providerOptions": {"opencode": {"x": [1, 2.5, null, "é"]}},
        "temperature": 0.3,
        "max_tokens": 77,
        "stream_options": {"other": true},
    });
    let (events, err) = collect(cli.start_turn(&acc, &ses, body.clone()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(content(&events), reply_text("question", 1, 12));
    let stats = sim.stats();
    let rec = &stats.cli_completions[0];
    assert_eq!(rec.user_id, user);
    assert_eq!(rec.session_id.as_deref(), Some(ses.as_str()));
    assert_eq!(rec.session_affinity.as_deref(), Some(ses.as_str()));
    assert_eq!(rec.user_agent.as_deref(), Some(DEFAULT_CLI_USER_AGENT));
    assert_eq!(rec.body, chat::prepare(body.clone()));
    let mut expected = body;
    expected["stream"] = json!(true);
    expected["stream_options"] = json!({"other": true, "include_usage": true});
    assert_eq!(rec.body, expected);
    assert!(events.iter().any(|e| matches!(e, TurnEvent::Usage(_))));
}

#[tokio::test]
async fn refusals_map_to_what_the_pool_understands() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let err = cli
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), "rate_limited", "{err}");
    assert_eq!(classify(&err), Verdict::Cool(Some(Duration::from_secs(1))));
    assert!(
        err.to_string().contains("Simulated upstream failure"),
        "{err}"
    );

    sim.set_faults(Faults {
        trigger_status: Some(503),
        ..Faults::default()
    });
    let err = cli
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(classify(&err), Verdict::Transient, "{err}");
    sim.set_faults(Faults::default());

    let mut body = hello("hi");
    body["model"] = json!("gpt_5_4");
    let err = cli.start_turn(&acc, "ses_x", body).await.err().unwrap();
    assert!(
        matches!(&err, UpstreamError::UnknownModel(m) if m == "gpt_5_4"),
        "{err:?}"
    );

    // Nobody listening: a network error, transient.
    let gone = client("http://127.0.0.1:9");
    let err = gone
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(classify(&err), Verdict::Transient, "{err}");
}

#[tokio::test]
async fn a_stream_that_breaks_off_ends_with_a_closed_stream_error() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    sim.set_faults(Faults {
        ws_drop_after: Some(2),
        ..Faults::default()
    });
    let (events, err) = collect(cli.start_turn(&acc, "ses_x", hello("hi")).await.unwrap()).await;
    assert!(!content(&events).is_empty());
    let err = err.unwrap();
    assert_eq!(err.kind(), "stream_closed", "{err}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TurnEvent::Finished { .. }))
    );
}

/// A client behind a counting relay, and an account whose access token came from the
/// simulator directly, so the only connection through the relay is the completion's.
async fn behind_relay(sim: &Simulator) -> (CliClient, CliAccount, Arc<AtomicUsize>) {
    let (url, open) = relay(sim.addr()).await;
    let login = sim.add_cli_account();
    let v: Value = raw_refresh(sim, &login.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let far = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 600_000;
    let creds = Credentials::parse(
        &json!({"accessToken": v["access_token"], "refreshToken": v["refresh_token"], "expiresAt": far})
            .to_string(),
    )
    .unwrap();
    let acc = CliAccount::new("test", &creds, Arc::new(Recorder::default()));
    (client(&url), acc, open)
}

#[tokio::test]
async fn dropping_a_turn_mid_stream_closes_its_connection() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (cli, acc, open) = behind_relay(&sim).await;
    // A second between chunks: the close must come from the drop, not from the next chunk.
    sim.set_faults(Faults {
        slow_frame_ms: 1000,
        ..Faults::default()
    });
    let mut turn = cli.start_turn(&acc, "ses_d", hello("hi")).await.unwrap();
    let first = turn.next().await.unwrap().unwrap();
    assert!(matches!(first, TurnEvent::Content(_)), "{first:?}");
    assert_eq!(open.load(Ordering::SeqCst), 1);
    drop(turn);
    all_closed(&open, Duration::from_millis(400)).await;
    assert_eq!(acc.tokens().refresh_count(), 0);
}

#[tokio::test]
async fn dropping_a_turn_that_hears_nothing_closes_its_connection() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (cli, acc, open) = behind_relay(&sim).await;
    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let mut turn = cli.start_turn(&acc, "ses_s", hello("hi")).await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_millis(200), turn.next()).await;
    assert!(
        nothing.is_err(),
        "a silent answer has no events: {nothing:?}"
    );
    assert_eq!(open.load(Ordering::SeqCst), 1);
    drop(turn);
    all_closed(&open, Duration::from_millis(400)).await;
}
