//! End-to-end tests of the real cto.new client (`upstream::EngineClient`) against the project's
//! simulator over real sockets: both protocol generations, the `auto` fallback, continued
//! histories, thinking, the transport's identity and concurrent turns. Accounts, refusals,
//! faults and cancellation: tests/upstream_faults.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::upstream::{WORDS, account, client, collect, request, sim};
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use enginelabs_2api::upstream::{Generation, ProtocolChoice};

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
