//! The cto.new simulator's faults driven over real sockets (reqwest + tokio-tungstenite):
//! refused triggers, cumulative and extra frames, dropped and silent sockets, clients that
//! vanish mid-turn, the Cloudflare challenge, the `/__sim` control plane, and shutdown on drop.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use enginelabs_2api::simulator::{Faults, SimAccount, Simulator, reply_text, thinking_text};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::sim::*;

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
