//! The cto.new simulator's EngineLabs side driven over real sockets (reqwest +
//! tokio-tungstenite), checked against the protocol notes: the REST calls and WebSocket frames
//! of both generations, generation switches, replays on connect, and many turns at once.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;

use common::sim::*;

#[tokio::test]
async fn gen2_full_flow() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;

    let r = api(&sim, reqwest::Method::GET, "/chat/adapters", &jwt, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = r.json().await.unwrap();
    let gpt = list["chatAdapters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["key"] == "gpt_5_4")
        .expect("gpt_5_4 listed")
        .clone();
    assert_eq!(gpt["engineAgentKey"], "GPT5_4");
    assert_eq!(gpt["usageMultiplier"], 3);

    // No preferred model yet: a Gen-2 trigger is refused.
    let r = api(
        &sim,
        reqwest::Method::PATCH,
        "/teams/preferred-model",
        &jwt,
        Some(json!({"model": "gpt_5_4"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "body must have required property modelKey");
    let r = api(
        &sim,
        reqwest::Method::PATCH,
        "/teams/preferred-model",
        &jwt,
        Some(json!({"modelKey": "nope"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let (project, workspace) = gen2_project(&sim, &jwt).await;
    assert!(uuid::Uuid::parse_str(&project).is_ok());

    // Wrong socket credentials are refused at the upgrade.
    for query in [
        format!("token={}&workspaceId={workspace}", acc.user_id),
        gen2_query(&acc, "other-workspace"),
    ] {
        let err = tokio_tungstenite::connect_async(ws_url(&sim, &project, &query))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("401"), "{err}");
    }
    let err = tokio_tungstenite::connect_async(ws_url(
        &sim,
        "00000000-0000-4000-8000-000000000000",
        &gen2_query(&acc, &workspace),
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");

    let mut ws = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(
        first,
        json!({"type": "state", "state": {"inProgress": false}})
    );

    let r = api(
        &sim,
        reqwest::Method::POST,
        "/engine-agent/offers",
        &jwt,
        Some(json!({"chatHistoryId": project, "surface": "ENGINE_AGENT"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"offers": []}));

    let prompt = "System: be brief\nUser: grüße aus Köln";
    let r = api(
        &sim,
        reqwest::Method::POST,
        "/engine-agent/chat",
        &jwt,
        Some(json!({"prompt": STANDARD.encode(prompt), "chatHistoryId": project, "encoded": true})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(r.bytes().await.unwrap().is_empty());

    let frames = read_turn(&mut ws).await;
    assert_eq!(
        frames[0],
        json!({"type": "state", "state": {"inProgress": true, "taskId": "task_1"}})
    );
    let echo = inner(&frames[1]).unwrap();
    assert_eq!(echo["role"], "user");
    assert_eq!(echo["content"][0]["text"], prompt);
    let expected = reply_text(prompt, 1, 12);
    assert!(expected.starts_with("Turn 1: you said \"User: grüße aus Köln\"."));
    assert_eq!(text_of(&frames, "chat"), expected);
    let chats: Vec<Value> = frames
        .iter()
        .filter_map(inner)
        .filter(|m| m["type"] == "chat")
        .collect();
    assert_eq!(chats.len(), 12);
    assert!(chats[0]["id"].as_str().unwrap().starts_with("msg_"));
    assert!(
        !chats[0]["chat"]["content"]
            .as_str()
            .unwrap()
            .starts_with(' ')
    );
    assert!(
        chats[1]["chat"]["content"]
            .as_str()
            .unwrap()
            .starts_with(' ')
    );
    let n = frames.len();
    assert_eq!(frames[n - 2]["type"], "label");
    assert_eq!(
        frames[n - 1],
        json!({"type": "state", "state": {"inProgress": false, "cancelled": false}})
    );

    let stats = sim.stats();
    assert_eq!(stats.triggers.len(), 1);
    let t = &stats.triggers[0];
    assert_eq!(
        (t.generation, t.prompt.as_str(), t.model.as_str(), t.turn),
        ("gen2", prompt, "gpt_5_4", 1)
    );
    assert_eq!(t.chat_history_id, project);
    assert_eq!(t.user_id, acc.user_id);

    // A second turn flows live on the same socket, without a label.
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "and again").await,
        StatusCode::ACCEPTED
    );
    let frames = read_turn(&mut ws).await;
    assert_eq!(frames[0]["state"]["taskId"], "task_2");
    assert_eq!(text_of(&frames, "chat"), reply_text("and again", 2, 12));
    assert!(frames.iter().all(|f| f["type"] != "label"));
    assert_eq!(sim.stats().triggers[1].turn, 2);

    // A fresh socket now gets the idle state and the history of both turns.
    let mut ws2 = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    assert_eq!(
        next_json(&mut ws2).await.unwrap()["state"]["inProgress"],
        false
    );
    let hist = next_json(&mut ws2).await.unwrap();
    assert_eq!(hist["type"], "history");
    assert_eq!(hist["messages"].as_array().unwrap().len(), 4);

    // Billing counts credits; another user cannot use the project.
    let billing: Value = api(&sim, reqwest::Method::GET, "/billing", &jwt, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(billing["dailyUsage"], 6);
    assert_eq!(billing["dailyLimit"], 300);
    let other = sim.add_account();
    let other_jwt = mint(&sim, &other).await;
    assert_eq!(
        gen2_trigger(&sim, &other_jwt, &project, "hi").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn gen1_trigger_first_then_connect_replays_the_turn() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let history = uuid::Uuid::new_v4().to_string();
    let r = gen1_trigger(&sim, &jwt, &history, "Write a haiku").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));

    // Gen-1 token is the bare user id; the Gen-2 form is refused.
    let bad = tokio_tungstenite::connect_async(ws_url(
        &sim,
        &history,
        &format!("token={}%3A{}", acc.user_id, acc.org_id),
    ))
    .await;
    assert!(bad.is_err());
    let mut ws = connect(&ws_url(&sim, &history, &format!("token={}", acc.user_id))).await;
    let frames = read_turn(&mut ws).await;
    assert_eq!(text_of(&frames, "chat"), reply_text("Write a haiku", 1, 12));
    assert!(
        frames
            .iter()
            .filter_map(inner)
            .any(|m| m["role"] == "user" && m["content"][0]["text"] == "Write a haiku")
    );
    assert_eq!(frames.last().unwrap()["state"]["inProgress"], false);

    // A follow-up on the same uuid is turn 2 and flows on the open socket.
    assert_eq!(
        gen1_trigger(&sim, &jwt, &history, "Another one")
            .await
            .status(),
        StatusCode::OK
    );
    let frames = read_turn(&mut ws).await;
    assert_eq!(text_of(&frames, "chat"), reply_text("Another one", 2, 12));
    let stats = sim.stats();
    let t = &stats.triggers[1];
    assert_eq!(
        (t.generation, t.model.as_str(), t.turn),
        ("gen1", "ClaudeSonnet4_5", 2)
    );

    // Errors: unknown adapter, someone else's history.
    let r = api(
        &sim,
        reqwest::Method::POST,
        "/engine-agent/chat",
        &jwt,
        Some(json!({"prompt": "x", "chatHistoryId": uuid::Uuid::new_v4().to_string(), "adapterName": "Nope"})),
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let other = sim.add_account();
    let other_jwt = mint(&sim, &other).await;
    assert_eq!(
        gen1_trigger(&sim, &other_jwt, &history, "mine?")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );

    // Deleting forgets the history.
    let path = format!("/engine-agent/chat-histories/{history}");
    let r = api(&sim, reqwest::Method::DELETE, &path, &jwt, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sim.stats().deletions, 1);
    let r = api(&sim, reqwest::Method::DELETE, &path, &jwt, None).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn generation_switches() {
    let sim = Simulator::start(SimConfig {
        gen1: false,
        gen2: false,
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let calls = [
        (reqwest::Method::GET, "/chat/adapters", None),
        (
            reqwest::Method::PATCH,
            "/teams/preferred-model",
            Some(json!({"modelKey": "gpt_5_4"})),
        ),
        (
            reqwest::Method::POST,
            "/projects/create-hosted",
            Some(json!({"projectName": "x"})),
        ),
        (
            reqwest::Method::POST,
            "/engine-agent/offers",
            Some(json!({"chatHistoryId": "x", "surface": "ENGINE_AGENT"})),
        ),
    ];
    for (method, path, body) in calls {
        let r = api(&sim, method, path, &jwt, body).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = gen1_trigger(&sim, &jwt, &uuid::Uuid::new_v4().to_string(), "hi").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "adapterName is not supported");
    assert!(sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn replay_previous_turn_on_connect() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let (project, workspace) = gen2_project(&sim, &jwt).await;
    let url = ws_url(&sim, &project, &gen2_query(&acc, &workspace));
    let mut ws = connect(&url).await;
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "one").await,
        StatusCode::ACCEPTED
    );
    read_turn(&mut ws).await;
    drop(ws);

    sim.set_faults(Faults {
        replay_previous_turn: true,
        no_idle_state_at_connect: true,
        ..Faults::default()
    });
    let mut ws = connect(&url).await;
    // No idle state: the history comes first, then all of turn 1 again.
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "history");
    let replay = read_turn(&mut ws).await;
    assert_eq!(replay[0]["state"]["taskId"], "task_1");
    assert_eq!(text_of(&replay, "chat"), reply_text("one", 1, 12));
    // Then the new turn, live.
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "two").await,
        StatusCode::ACCEPTED
    );
    let live = read_turn(&mut ws).await;
    assert_eq!(live[0]["state"]["taskId"], "task_2");
    assert_eq!(text_of(&live, "chat"), reply_text("two", 2, 12));
}

/// Many turns at once: each socket gets exactly its own reply (shared, pre-serialized frames
/// must not leak between histories). `SIM_LOAD_TURNS`/`SIM_LOAD_WORDS` scale it up by hand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_turns_each_get_their_own_reply() {
    let turns: usize = std::env::var("SIM_LOAD_TURNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let words: usize = std::env::var("SIM_LOAD_WORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let sim = Simulator::start(SimConfig {
        reply_words: words,
        frame_delay: Duration::from_millis(1),
        rotate_cookies: false,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let sim = std::sync::Arc::new(sim);
    // One pooled client, as the proxy has: a fresh connection per call would only test the
    // kernel's accept queue.
    let client = http();
    let mut tasks = Vec::new();
    for i in 0..turns {
        let (sim, acc, jwt, client) = (sim.clone(), acc.clone(), jwt.clone(), client.clone());
        tasks.push(tokio::spawn(async move {
            let history = uuid::Uuid::new_v4().to_string();
            let url = ws_url(&sim, &history, &format!("token={}", acc.user_id));
            let prompt = format!("request number {i}");
            let r = client
                .post(format!("{}/engine-agent/chat", sim.url()))
                .bearer_auth(&jwt)
                .json(&json!({"prompt": prompt, "chatHistoryId": history, "adapterName": "GPT5"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let mut ws = connect(&url).await;
            let frames = read_turn(&mut ws).await;
            assert_eq!(text_of(&frames, "chat"), reply_text(&prompt, 1, words));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(sim.stats().triggers.len(), turns);
    wait_stats(&sim, |s| s.ws_open_now == 0).await;
}
