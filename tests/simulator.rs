//! The cto.new simulator driven over real sockets (reqwest + tokio-tungstenite), checked against
//! the protocol notes: Clerk discovery/mint/rotation, EngineLabs REST of both generations, the
//! WebSocket frames and replays, every fault, and the `/__sim` control plane.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use enginelabs_2api::simulator::{
    Faults, SimAccount, SimConfig, Simulator, reply_text, thinking_text,
};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::sim::*;

#[tokio::test]
async fn client_discovery_has_the_documented_shape() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    assert!(acc.cookie.starts_with("__client=sim_client_"));
    assert!(acc.cookie.contains("__client_uat="));
    let resp = get_client(&sim, &acc.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body["client"].is_null());
    let client = &body["response"];
    assert_eq!(client["object"], "client");
    assert_eq!(client["last_active_session_id"], acc.session_id.as_str());
    let session = &client["sessions"][0];
    assert_eq!(session["status"], "active");
    assert_eq!(session["last_active_organization_id"], acc.org_id.as_str());
    assert_eq!(session["user"]["id"], acc.user_id.as_str());
    assert_eq!(
        session["user"]["organization_memberships"][0]["organization"]["id"],
        acc.org_id.as_str()
    );
    // Milliseconds, not seconds.
    assert!(session["last_active_at"].as_u64().unwrap() > 1_000_000_000_000);
    let stale = claims(session["last_active_token"]["jwt"].as_str().unwrap());
    assert!(stale["exp"].as_u64().unwrap() < now_secs());
    assert_eq!(sim.stats().client_calls, 1);

    let resp = get_client(&sim, "__client=nonsense").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "signed_out");
    assert!(body["clerk_trace_id"].is_string());
}

#[tokio::test]
async fn mint_returns_a_bare_token_with_the_configured_ttl() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(7),
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let resp = mint_raw(&sim, &acc.session_id, &acc.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "token");
    assert!(body.get("response").is_none());
    let jwt = body["jwt"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    let c = claims(jwt);
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["exp"].as_u64().unwrap(), iat + 7);
    assert_eq!(c["nbf"].as_u64().unwrap(), iat - 10);
    assert_eq!(c["sub"], acc.user_id.as_str());
    assert_eq!(c["sid"], acc.session_id.as_str());
    assert_eq!(c["azp"], ORIGIN);
    assert_eq!(c["v"], 2);
    assert_eq!(c["o"]["id"], acc.org_id.as_str());
    assert_eq!(sim.stats().mints, 1);
}

fn set_cookie_value(resp: &reqwest::Response) -> Option<String> {
    let raw = resp.headers().get("set-cookie")?.to_str().ok()?.to_owned();
    assert!(
        raw.contains("Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{raw}"
    );
    let first = raw.split(';').next()?;
    first.strip_prefix("__client=").map(str::to_owned)
}

#[tokio::test]
async fn rotation_keeps_one_grace_value_and_kills_older_ones() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let sid = acc.session_id.clone();
    let c0 = acc.cookie.clone();
    let r = mint_raw(&sim, &sid, &c0).await;
    let c1 = format!("__client={}", set_cookie_value(&r).expect("rotated"));
    let r = mint_raw(&sim, &sid, &c1).await;
    let c2 = format!("__client={}", set_cookie_value(&r).expect("rotated"));
    assert_ne!(c1, c2);
    // c0 is two rotations old: dead.
    let r = mint_raw(&sim, &sid, &c0).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "signed_out");
    assert_eq!(
        get_client(&sim, &c0).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // c1 is the grace value, c2 the current one.
    assert_eq!(get_client(&sim, &c1).await.status(), StatusCode::OK);
    assert_eq!(get_client(&sim, &c2).await.status(), StatusCode::OK);
    assert!(sim.account().cookie.starts_with(&c2));
    let r = mint_raw(&sim, &sid, &c2).await;
    assert_eq!(r.status(), StatusCode::OK);

    let fixed = Simulator::start(SimConfig {
        rotate_cookies: false,
        ..cfg()
    })
    .await
    .unwrap();
    let a = fixed.account();
    let r = mint_raw(&fixed, &a.session_id, &a.cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn revoke_and_restore() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    sim.revoke(&acc.user_id);
    assert_eq!(
        get_client(&sim, &acc.cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mint_raw(&sim, &acc.session_id, &acc.cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    sim.set_faults(Faults {
        revoked_as_empty_client: true,
        ..Faults::default()
    });
    let r = get_client(&sim, &acc.cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["response"]["last_active_session_id"].is_null());
    assert_eq!(body["response"]["sessions"].as_array().unwrap().len(), 0);
    sim.restore(&acc.user_id);
    assert_eq!(get_client(&sim, &acc.cookie).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().mints, 0);
    mint(&sim, &acc).await;
}

#[tokio::test]
async fn replaced_session_answers_404_and_discovery_shows_the_new_one() {
    let sim = Simulator::start(SimConfig {
        rotate_cookies: false,
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let new_sid = sim.replace_session(&acc.user_id);
    assert_ne!(new_sid, acc.session_id);
    let r = mint_raw(&sim, &acc.session_id, &acc.cookie).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "resource_not_found");
    let body: Value = get_client(&sim, &acc.cookie).await.json().await.unwrap();
    assert_eq!(body["response"]["last_active_session_id"], new_sid.as_str());
    assert_eq!(
        mint_raw(&sim, &new_sid, &acc.cookie).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn engine_rejects_expired_forged_and_missing_tokens() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let body: Value = get_client(&sim, &acc.cookie).await.json().await.unwrap();
    let stale = body["response"]["sessions"][0]["last_active_token"]["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api(&sim, reqwest::Method::GET, "/current-user", &stale, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Unauthorized");

    let good = mint(&sim, &acc).await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c = claims(&good);
    c["sub"] = json!("user_someoneelse");
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    let forged = parts.join(".");
    let r = api(&sim, reqwest::Method::GET, "/billing", &forged, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http()
        .get(format!("{}/billing", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().rejected_jwts, 3);

    let r = api(&sim, reqwest::Method::GET, "/current-user", &good, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["currentUser"]["id"], acc.user_id.as_str());
    assert_eq!(body["currentUser"]["team"]["id"], acc.org_id.as_str());
    assert_eq!(sim.stats().rejected_jwts, 3);
}

#[tokio::test]
async fn a_minted_token_dies_at_its_exp() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..cfg()
    })
    .await
    .unwrap();
    let jwt = mint(&sim, &sim.account()).await;
    let exp = claims(&jwt)["exp"].as_u64().unwrap();
    while now_secs() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = api(&sim, reqwest::Method::GET, "/billing", &jwt, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().rejected_jwts, 1);
}

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
async fn trigger_status_fault_fails_the_next_calls_only() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 2,
        ..Faults::default()
    });
    let history = uuid::Uuid::new_v4().to_string();
    for _ in 0..2 {
        let r = gen1_trigger(&sim, &jwt, &history, "hi").await;
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()["retry-after"], "1");
    }
    assert!(sim.stats().triggers.is_empty());
    let r = gen1_trigger(&sim, &jwt, &history, "hi").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(sim.stats().triggers.len(), 1);
    assert_eq!(sim.stats().triggers[0].turn, 1);
}

#[tokio::test]
async fn cumulative_thinking_and_extra_frames() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    sim.set_faults(Faults {
        cumulative: true,
        thinking: true,
        extra_frames: true,
        ..Faults::default()
    });
    let (project, workspace) = gen2_project(&sim, &jwt).await;
    let mut ws = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "think").await,
        StatusCode::ACCEPTED
    );
    let frames = read_turn(&mut ws).await;
    let msgs: Vec<Value> = frames.iter().filter_map(inner).collect();
    let last_of = |kind: &str| -> String {
        msgs.iter().rfind(|m| m["type"] == kind).unwrap()["chat"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // Cumulative: the last update carries the whole text.
    assert_eq!(last_of("chat"), reply_text("think", 1, 12));
    assert_eq!(last_of("thinking"), thinking_text(1));
    let first_chat = msgs.iter().position(|m| m["type"] == "chat").unwrap();
    let last_thinking = msgs.iter().rposition(|m| m["type"] == "thinking").unwrap();
    assert!(last_thinking < first_chat);
    let chats: Vec<&Value> = msgs.iter().filter(|m| m["type"] == "chat").collect();
    assert_eq!(chats[1]["chat"]["content"], "Turn 1:");
    assert!(frames.iter().any(|f| f["type"] == "presence"));
    assert!(
        msgs.iter()
            .any(|m| m["type"] == "tool_call" && m["tool"]["name"] == "ls")
    );
}

#[tokio::test]
async fn ws_drop_after_closes_abruptly() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    sim.set_faults(Faults {
        ws_drop_after: Some(3),
        ..Faults::default()
    });
    let history = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        gen1_trigger(&sim, &jwt, &history, "drop me").await.status(),
        StatusCode::OK
    );
    let mut ws = connect(&ws_url(&sim, &history, &format!("token={}", acc.user_id))).await;
    let mut assistant = 0;
    let mut saw_close_frame = false;
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("socket ends within 10 s");
        match msg {
            Some(Ok(Message::Text(t))) => {
                let f: Value = serde_json::from_str(t.as_str()).unwrap();
                if inner(&f).is_some_and(|m| m["type"] == "chat") {
                    assistant += 1;
                }
                assert!(
                    f["state"]["cancelled"].is_null(),
                    "turn must not finish: {f}"
                );
            }
            Some(Ok(Message::Close(_))) => saw_close_frame = true,
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert_eq!(assistant, 3);
    assert!(!saw_close_frame);
    wait_stats(&sim, |s| s.ws_open_now == 0).await;
    assert_eq!(sim.stats().ws_closed_early, 0);
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

#[tokio::test]
async fn client_dropping_mid_turn_is_counted_and_ping_gets_pong() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    sim.set_faults(Faults {
        slow_frame_ms: 100,
        ..Faults::default()
    });
    let (project, workspace) = gen2_project(&sim, &jwt).await;
    let mut ws = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    next_json(&mut ws).await.unwrap();
    ws.send(Message::text("ping")).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::text("pong"));
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "slow").await,
        StatusCode::ACCEPTED
    );
    // Two frames of a 16-frame turn at 100 ms each, then the client vanishes.
    next_json(&mut ws).await.unwrap();
    next_json(&mut ws).await.unwrap();
    assert_eq!(sim.stats().ws_open_now, 1);
    drop(ws);
    wait_stats(&sim, |s| s.ws_closed_early == 1 && s.ws_open_now == 0).await;
    assert_eq!(sim.stats().ws_opened, 1);

    // Gen-2 does not replay what the running turn sent before a socket connected (the echo).
    let mut late = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    let rest = read_turn(&mut late).await;
    assert_eq!(
        rest[0],
        json!({"type": "state", "state": {"inProgress": true}})
    );
    assert!(rest.iter().filter_map(inner).all(|m| m["role"] != "user"));
    let tail = text_of(&rest, "chat");
    assert!(reply_text("slow", 1, 12).ends_with(&tail));
    drop(late);
    wait_stats(&sim, |s| s.ws_opened == 2 && s.ws_open_now == 0).await;
    assert_eq!(sim.stats().ws_closed_early, 1);

    // A socket that saw its turn end, then closed between turns, is not early.
    sim.set_faults(Faults::default());
    let (project, workspace) = gen2_project(&sim, &jwt).await;
    let mut ws = connect(&ws_url(&sim, &project, &gen2_query(&acc, &workspace))).await;
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, "fast").await,
        StatusCode::ACCEPTED
    );
    read_turn(&mut ws).await;
    ws.close(None).await.unwrap();
    // The server answers a client close with its own close frame.
    let mut acknowledged = false;
    while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        acknowledged |= matches!(m, Message::Close(_));
    }
    assert!(acknowledged);
    wait_stats(&sim, |s| s.ws_opened == 3 && s.ws_open_now == 0).await;
    assert_eq!(sim.stats().ws_closed_early, 1);
}

#[tokio::test]
async fn silent_turn_is_accepted_and_reported_running() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let history = uuid::Uuid::new_v4().to_string();
    assert_eq!(
        gen1_trigger(&sim, &jwt, &history, "hello?").await.status(),
        StatusCode::OK
    );
    assert_eq!(sim.stats().triggers.len(), 1);
    let mut ws = connect(&ws_url(&sim, &history, &format!("token={}", acc.user_id))).await;
    assert_eq!(
        next_json(&mut ws).await.unwrap(),
        json!({"type": "state", "state": {"inProgress": true}})
    );
    let more = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(more.is_err(), "a silent turn sends nothing: {more:?}");
}

#[tokio::test]
async fn control_plane_and_cloudflare_fault() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let base = sim.url();
    let c = http();
    let r = c
        .post(format!("{base}/__sim/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let acc: SimAccount = r.json().await.unwrap();
    assert!(acc.user_id.starts_with("user_") && acc.org_id.starts_with("org_"));
    assert!(acc.session_id.starts_with("sess_"));
    assert_eq!(get_client(&sim, &acc.cookie).await.status(), StatusCode::OK);
    let list: Vec<SimAccount> = c
        .get(format!("{base}/__sim/accounts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].user_id, sim.account().user_id);

    let r = c
        .post(format!("{base}/__sim/accounts/{}/revoke", acc.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        get_client(&sim, &acc.cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    c.post(format!("{base}/__sim/accounts/{}/restore", acc.user_id))
        .send()
        .await
        .unwrap();
    assert_eq!(get_client(&sim, &acc.cookie).await.status(), StatusCode::OK);
    let r = c
        .post(format!("{base}/__sim/accounts/user_nobody/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let jwt = mint(&sim, &acc).await;
    gen1_trigger(&sim, &jwt, &uuid::Uuid::new_v4().to_string(), "x").await;
    let stats: Value = c
        .get(format!("{base}/__sim/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["client_calls"], 3);
    assert_eq!(stats["mints"], 1);
    assert!(stats.get("triggers").is_none());
    let stats: Value = c
        .get(format!("{base}/__sim/stats?triggers=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["triggers"][0]["prompt"], "x");
    assert_eq!(stats["triggers"][0]["generation"], "gen1");

    let r = c
        .post(format!("{base}/__sim/faults"))
        .json(&json!({"cloudflare_challenge": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(sim.faults().cloudflare_challenge);
    for r in [
        get_client(&sim, &acc.cookie).await,
        api(&sim, reqwest::Method::GET, "/billing", &jwt, None).await,
    ] {
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.headers()["cf-mitigated"], "challenge");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(r.text().await.unwrap().contains("Just a moment..."));
    }
    // The control plane itself is never challenged.
    let r = c
        .post(format!("{base}/__sim/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(get_client(&sim, &acc.cookie).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn dropping_the_simulator_stops_it() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let addr = sim.addr();
    assert_eq!(
        get_client(&sim, &sim.account().cookie).await.status(),
        StatusCode::OK
    );
    drop(sim);
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener should close after drop");
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
