//! End-to-end tests of the real cto.new client (`upstream::EngineClient`) against the project's
//! simulator over real sockets: both protocol generations, the `auto` fallback, continued
//! histories, cookie rotation, token refusal, faults and cancellation.

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text, thinking_text};
use enginelabs_2api::upstream::{
    Account, EngineClient, Generation, ProtocolChoice, Turn, TurnEvent, TurnRequest,
    UpstreamConfig, UpstreamError,
};

const WORDS: usize = 12;

async fn sim(cfg: SimConfig) -> Simulator {
    Simulator::start(SimConfig {
        reply_words: WORDS,
        ..cfg
    })
    .await
    .expect("simulator starts")
}

fn client(sim: &Simulator, protocol: ProtocolChoice) -> EngineClient {
    let mut cfg = UpstreamConfig::with_urls(&sim.url(), &sim.url());
    cfg.protocol = protocol;
    cfg.request_timeout = Duration::from_secs(10);
    cfg.idle_timeout = Duration::from_secs(10);
    EngineClient::new(cfg).expect("client")
}

fn account(sim: &Simulator) -> Arc<Account> {
    Arc::new(Account::new("test", &sim.account().cookie).expect("account"))
}

fn request(model: &str, prompt: &str) -> TurnRequest {
    TurnRequest {
        model: model.to_string(),
        prompt: prompt.to_string(),
        continue_history: None,
        images: Vec::new(),
    }
}

/// Everything a turn yielded: reasoning, content, and how it ended.
struct Outcome {
    reasoning: String,
    content: String,
    end: Result<bool, UpstreamError>,
}

async fn collect(mut turn: Turn) -> Outcome {
    let (mut reasoning, mut content) = (String::new(), String::new());
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(30), turn.next()).await {
            Err(_) => panic!("turn produced nothing for 30 s"),
            Ok(None) => panic!("turn ended without Finished or an error"),
            Ok(Some(Ok(TurnEvent::Reasoning(r)))) => reasoning.push_str(&r),
            Ok(Some(Ok(TurnEvent::Content(c)))) => content.push_str(&c),
            Ok(Some(Ok(TurnEvent::Finished { cancelled }))) => break Ok(cancelled),
            Ok(Some(Err(e))) => break Err(e),
            Ok(Some(Ok(other))) => panic!("the web door emits no {other:?}"),
        }
    };
    Outcome {
        reasoning,
        content,
        end,
    }
}

#[tokio::test]
async fn gen2_turn_then_continued_turn() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Auto);
    let acc = account(&sim);

    let turn = client
        .start_turn(&acc, request("gpt-5.4", "hello there"))
        .await
        .expect("turn starts");
    let history = turn.history.clone();
    assert_eq!(history.generation, Generation::Gen2);
    assert!(history.workspace_id.is_some());
    let out = collect(turn).await;
    assert!(!out.end.expect("finished"));
    assert_eq!(out.content, reply_text("hello there", 1, WORDS));
    assert_eq!(client.generation(), Some(Generation::Gen2));

    // The next turn goes into the same hosted project; the previous turn is replayed at
    // connect and must not leak into this answer.
    sim.set_faults(Faults {
        replay_previous_turn: true,
        ..Faults::default()
    });
    let mut req = request("GPT5_4", "and again");
    req.continue_history = Some(history.clone());
    let turn = client.start_turn(&acc, req).await.expect("turn starts");
    assert_eq!(turn.history, history);
    let out = collect(turn).await;
    assert!(!out.end.expect("finished"));
    assert_eq!(out.content, reply_text("and again", 2, WORDS));

    let stats = sim.stats();
    assert_eq!(stats.triggers.len(), 2);
    assert!(stats.triggers.iter().all(|t| t.generation == "gen2"));
    assert_eq!(stats.triggers[0].model, "gpt_5_4");
    assert_eq!(stats.triggers[1].turn, 2);
    assert_eq!(stats.projects, 1);
    // Same model twice: one PATCH; the JWT is reused within its lifetime.
    assert_eq!(stats.model_switches, 1);
    assert_eq!(acc.mint_count(), 1);
    assert_eq!(stats.mints, 1);
}

#[tokio::test]
async fn gen1_turn_and_continued_turn() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen1);
    let acc = account(&sim);
    let turn = client
        .start_turn(&acc, request("GPT5", "first"))
        .await
        .expect("turn starts");
    let history = turn.history.clone();
    assert_eq!(history.generation, Generation::Gen1);
    let out = collect(turn).await;
    assert!(!out.end.expect("finished"));
    assert_eq!(out.content, reply_text("first", 1, WORDS));

    sim.set_faults(Faults {
        replay_previous_turn: true,
        ..Faults::default()
    });
    let mut req = request("GPT5", "second");
    req.continue_history = Some(history);
    let out = collect(client.start_turn(&acc, req).await.expect("turn starts")).await;
    assert!(!out.end.expect("finished"));
    assert_eq!(out.content, reply_text("second", 2, WORDS));

    let stats = sim.stats();
    assert!(stats.triggers.iter().all(|t| t.generation == "gen1"));
    assert_eq!(stats.triggers[0].model, "GPT5");
    assert_eq!(stats.projects, 0);
}

#[tokio::test]
async fn auto_falls_back_to_gen1_when_gen2_is_missing() {
    let sim = sim(SimConfig {
        gen2: false,
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, ProtocolChoice::Auto);
    let acc = account(&sim);
    assert_eq!(client.generation(), None);
    let turn = client
        .start_turn(&acc, request("GPT5", "fallback please"))
        .await
        .expect("turn starts");
    assert_eq!(turn.history.generation, Generation::Gen1);
    let out = collect(turn).await;
    assert_eq!(out.content, reply_text("fallback please", 1, WORDS));
    assert_eq!(client.generation(), Some(Generation::Gen1));
    // Settled: the next turn goes straight to Gen-1.
    let out = collect(
        client
            .start_turn(&acc, request("GPT5", "again"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(!out.end.expect("finished"));
    assert_eq!(sim.stats().triggers.len(), 2);
}

#[tokio::test]
async fn thinking_and_cumulative_buffers() {
    let sim = sim(SimConfig::default()).await;
    sim.set_faults(Faults {
        thinking: true,
        cumulative: true,
        extra_frames: true,
        no_idle_state_at_connect: true,
        ..Faults::default()
    });
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let out = collect(
        client
            .start_turn(&acc, request("glm_5_1", "think first"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(!out.end.expect("finished"));
    assert_eq!(out.reasoning, thinking_text(1));
    assert_eq!(out.content, reply_text("think first", 1, WORDS));
}

#[tokio::test]
async fn cookie_rotation_is_published() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let before = acc.current_client_cookie();
    let mut rx = acc.subscribe_cookie();
    let identity = client.ensure_ready(&acc).await.expect("ready");
    assert_eq!(identity.user_id, sim.account().user_id);
    assert_eq!(
        identity.org_id.as_deref(),
        Some(sim.account().org_id.as_str())
    );
    assert!(rx.has_changed().expect("sender alive"));
    let rotated = rx.borrow_and_update().clone();
    assert_ne!(rotated, before);
    assert_eq!(rotated, acc.current_client_cookie());
    assert!(sim.account().cookie.contains(&rotated));
}

#[tokio::test]
async fn revoked_cookie_is_rejected() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    sim.revoke(&sim.account().user_id);
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("revoked");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );

    sim.set_faults(Faults {
        revoked_as_empty_client: true,
        ..Faults::default()
    });
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("revoked");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn cloudflare_challenge_is_not_a_dead_cookie() {
    let sim = sim(SimConfig::default()).await;
    sim.set_faults(Faults {
        cloudflare_challenge: true,
        ..Faults::default()
    });
    let client = client(&sim, ProtocolChoice::Gen2);
    let err = client
        .ensure_ready(&account(&sim))
        .await
        .expect_err("challenged");
    assert!(
        matches!(err, UpstreamError::CloudflareChallenge { status: 403, .. }),
        "{err:?}"
    );
}

/// What the cto.new hosts see of the proxy. The default transport sends the configured Chrome
/// user agent and nothing more; `impersonate` sends Chrome 149's own identity (user agent and
/// client hints, matching its TLS handshake) with the fetch metadata of the cto.new page.
#[tokio::test]
async fn the_transport_presents_itself_as_built() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let out = collect(
        client
            .start_turn(&acc, request("gpt_5_4", "who is asking"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(out.end.is_ok(), "{:?}", out.end.err());
    let clients = sim.stats().clients;
    for surface in ["clerk", "engine", "websocket"] {
        let seen = clients
            .get(surface)
            .unwrap_or_else(|| panic!("{surface} saw no call: {clients:?}"));
        assert_eq!(
            seen.origin.as_deref(),
            Some(client.config().origin.as_str()),
            "{surface}"
        );
        let ua = seen.user_agent.as_deref().unwrap_or_default();
        if cfg!(feature = "impersonate") {
            assert!(
                ua.contains("Chrome/149.") && ua.contains("Windows"),
                "{surface}: {ua}"
            );
            let hints = seen.sec_ch_ua.as_deref().unwrap_or_default();
            assert!(
                hints.contains(r#""Google Chrome";v="149""#),
                "{surface}: {hints}"
            );
            let mode = if surface == "websocket" {
                "websocket"
            } else {
                "cors"
            };
            assert_eq!(seen.sec_fetch_mode.as_deref(), Some(mode), "{surface}");
            // The page is https://cto.new and the simulator 127.0.0.1: another site, as
            // EngineLabs is to cto.new.
            assert_eq!(
                seen.sec_fetch_site.as_deref(),
                Some("cross-site"),
                "{surface}"
            );
        } else {
            assert_eq!(
                ua,
                enginelabs_2api::upstream::DEFAULT_USER_AGENT,
                "{surface}"
            );
            assert_eq!(seen.sec_ch_ua, None, "{surface}");
        }
    }
}

#[tokio::test]
async fn refused_token_is_reminted_once() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    sim.set_faults(Faults {
        trigger_status: Some(401),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let out = collect(
        client
            .start_turn(&acc, request("gpt_5_4", "retry me"))
            .await
            .expect("turn starts after one retry"),
    )
    .await;
    assert_eq!(out.content, reply_text("retry me", 1, WORDS));
    assert_eq!(acc.mint_count(), 2);

    // Refused twice: the session is no good.
    sim.set_faults(Faults {
        trigger_status: Some(403),
        trigger_status_count: 2,
        ..Faults::default()
    });
    let err = client
        .start_turn(&acc, request("gpt_5_4", "again"))
        .await
        .err()
        .expect("refused twice");
    assert!(
        matches!(err, UpstreamError::CookieRejected { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn trigger_errors_are_mapped() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen1);
    let acc = account(&sim);
    for (status, check) in [
        (
            413u16,
            (|e: &UpstreamError| matches!(e, UpstreamError::PromptTooLarge(_)))
                as fn(&UpstreamError) -> bool,
        ),
        (429, |e| {
            matches!(
                e,
                UpstreamError::RateLimited {
                    retry_after: Some(_),
                    ..
                }
            )
        }),
        (500, |e| {
            matches!(e, UpstreamError::Status { status: 500, .. })
        }),
    ] {
        sim.set_faults(Faults {
            trigger_status: Some(status),
            trigger_status_count: 1,
            ..Faults::default()
        });
        let err = client
            .start_turn(&acc, request("GPT5", "x"))
            .await
            .err()
            .expect("fails");
        assert!(check(&err), "{status}: {err:?}");
    }
}

#[tokio::test]
async fn unknown_model_is_reported() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let err = client
        .start_turn(&account(&sim), request("no-such-model", "x"))
        .await
        .err()
        .expect("unknown");
    assert!(matches!(err, UpstreamError::UnknownModel(ref m) if m == "no-such-model"));
    assert!(sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn dropped_socket_and_silence_fail_the_turn() {
    let sim = sim(SimConfig::default()).await;
    // A Gen-2 drop mid-turn whose snapshot does not hold the answer so far cannot be resumed.
    sim.set_faults(Faults {
        ws_drop_after: Some(2),
        slow_frame_ms: 20,
        history_without_running_turn: true,
        ..Faults::default()
    });
    let client_a = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let out = collect(
        client_a
            .start_turn(&acc, request("gpt_5_4", "drop"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(matches!(out.end, Err(UpstreamError::StreamClosed(_))));

    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let mut cfg = client_a.config().clone();
    cfg.idle_timeout = Duration::from_millis(300);
    cfg.ping_interval = Duration::from_secs(60);
    let quiet = EngineClient::new(cfg).expect("client");
    let out = collect(
        quiet
            .start_turn(&acc, request("gpt_5_4", "silence"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert!(matches!(out.end, Err(UpstreamError::IdleTimeout(_))));
}

#[tokio::test]
async fn dropping_the_turn_closes_the_socket() {
    let sim = sim(SimConfig {
        frame_delay: Duration::from_millis(200),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let mut turn = client
        .start_turn(&acc, request("gpt_5_4", "long answer"))
        .await
        .expect("turn starts");
    let first = turn.next().await.expect("an event").expect("no error");
    assert!(matches!(first, TurnEvent::Content(_)));
    drop(turn);
    // Wait (bounded) for the simulator to see the close.
    for _ in 0..100 {
        if sim.stats().ws_closed_early == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(sim.stats().ws_closed_early, 1);
    assert_eq!(sim.stats().ws_open_now, 0);
}

#[tokio::test]
async fn expired_session_and_tokens_are_recovered() {
    let sim = sim(SimConfig {
        token_ttl: Duration::from_secs(3),
        ..SimConfig::default()
    })
    .await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let acc = account(&sim);
    let first = client.ensure_ready(&acc).await.expect("ready");
    // A re-login elsewhere replaced the session: minting with the old id answers 404.
    let new_sid = sim.replace_session(&first.user_id);
    acc.invalidate_jwt();
    let out = collect(
        client
            .start_turn(&acc, request("gpt_5_4", "after relogin"))
            .await
            .expect("turn starts"),
    )
    .await;
    assert_eq!(out.content, reply_text("after relogin", 1, WORDS));
    assert_eq!(acc.identity().expect("identity").session_id, new_sid);
    assert_eq!(acc.mint_count(), 2);
}

#[tokio::test]
async fn persisted_session_skips_discovery_and_side_calls_work() {
    let sim = sim(SimConfig::default()).await;
    let client = client(&sim, ProtocolChoice::Gen2);
    let sa = sim.account();
    let acc = Arc::new(
        Account::with_session("persisted", &sa.cookie, Some(sa.session_id.clone()))
            .expect("account"),
    );
    let identity = client.ensure_ready(&acc).await.expect("ready");
    assert_eq!(identity.user_id, sa.user_id);
    assert_eq!(sim.stats().client_calls, 0);

    let turn = client
        .start_turn(&acc, request("gpt_5_4", "short"))
        .await
        .expect("turn starts");
    let history = turn.history.clone();
    collect(turn).await.end.expect("finished");
    client
        .delete_history(&acc, &history)
        .await
        .expect("deleted");
    assert_eq!(sim.stats().deletions, 1);
    let billing = client.billing(&acc).await.expect("billing");
    assert!(billing.is_object());
}

#[tokio::test]
async fn concurrent_turns_with_different_models_do_not_interleave() {
    let sim = sim(SimConfig {
        frame_delay: Duration::from_millis(5),
        ..SimConfig::default()
    })
    .await;
    let client = Arc::new(client(&sim, ProtocolChoice::Gen2));
    let acc = account(&sim);
    let models = ["gpt_5_4", "glm_5_1", "claude_sonnet_4_5", "gpt_5"];
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (client, acc) = (Arc::clone(&client), Arc::clone(&acc));
        let model = models[i % models.len()];
        // Spawning also proves the turn future and `Turn` are `Send`.
        tasks.push(tokio::spawn(async move {
            let prompt = format!("request {i} for {model}");
            let turn = client
                .start_turn(&acc, request(model, &prompt))
                .await
                .expect("turn starts");
            let out = collect(turn).await;
            assert!(!out.end.expect("finished"));
            (prompt, model)
        }));
    }
    let mut expected = Vec::new();
    for t in tasks {
        expected.push(t.await.expect("task"));
    }
    let stats = sim.stats();
    assert_eq!(stats.triggers.len(), 8);
    for (prompt, model) in expected {
        let record = stats
            .triggers
            .iter()
            .find(|t| t.prompt == prompt)
            .expect("trigger recorded");
        assert_eq!(record.model, model, "{prompt}");
    }
    // Every turn minted against one cached token.
    assert_eq!(acc.mint_count(), 1);
}
