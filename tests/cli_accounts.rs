//! `cto login` accounts end to end through the proxy and the simulator's CLI door: every client
//! API maps to the door's Chat Completions with native tool calls; the client's own Chat
//! Completions body is forwarded intact with stable session headers; a mixed pool routes each
//! model to the kind of account that serves it; a refused refresh token says to log in again;
//! no conversation is stored per request.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::*;
use enginelabs_2api::config::ConfigArgs;
use enginelabs_2api::config::Secret;
use enginelabs_2api::simulator::{Faults, SimConfig};
use serde_json::{Value, json};

const ARGS: &str = r#"{"file_path":"/tmp/x","content":"hi"}"#;

/// A proxy whose only account is a `cto login` of the simulator.
async fn cli_only() -> Harness {
    start_cli(|a| a.clerk_cookie = None).await
}

/// A proxy with the simulator's cookie account and a `cto login` of it; `tweak` adjusts.
async fn start_cli(tweak: impl FnOnce(&mut ConfigArgs)) -> Harness {
    let sim = enginelabs_2api::simulator::Simulator::start(SimConfig::default())
        .await
        .unwrap();
    let login = sim.cli_login(&sim.account().user_id).unwrap();
    let mut a = args_for(&sim);
    a.cto_refresh_token = Some(Secret::new(login.refresh_token));
    a.cto_credentials_file = Some("none".into());
    tweak(&mut a);
    let store = std::sync::Arc::new(enginelabs_2api::store::memory::MemoryStore::new(
        Default::default(),
    ));
    start_with(sim, a, store).await
}

fn write_tool() -> Value {
    json!({"type": "function", "function": {"name": "Write",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}})
}

#[tokio::test]
async fn openai_tools_are_native_stream_and_not_with_the_body_forwarded_intact() {
    let h = cli_only().await;
    let body = json!({"model": "gpt-5.4", "messages": [user(&format!("call Write {ARGS}"))],
        "tools": [write_tool()], "temperature": 0.25, "x_vendor_field": {"keep": [1, 2]}});
    let (status, v) = h.chat(body.clone()).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "Write");
    assert_eq!(call["function"]["arguments"], ARGS);
    let rec = h.sim.stats().cli_completions.pop().unwrap();
    assert_eq!(rec.body["x_vendor_field"], json!({"keep": [1, 2]}));
    assert_eq!(rec.body["temperature"], 0.25);
    assert_eq!(rec.body["model"], "gpt-5.4");
    assert!(rec.user_agent.unwrap().starts_with("opencode/"));
    let session = rec.session_id.clone().unwrap();
    assert!(session.starts_with("ses_"), "{session}");
    assert_eq!(rec.session_affinity.as_deref(), Some(session.as_str()));
    // Nothing is triggered on the web door; nothing is remembered per request.
    assert!(h.sim.stats().triggers.is_empty());
    assert_eq!(h.state.store().conversation_count().await.unwrap(), 0);

    // Streamed; the follow-up with the result keeps the conversation's session id.
    let (status, data) = h.chat_stream(body.clone()).await;
    assert_eq!(status, 200);
    let joined = data.join("\n");
    assert!(joined.contains("\"tool_calls\""), "{joined}");
    assert!(
        joined.contains("\"finish_reason\":\"tool_calls\""),
        "{joined}"
    );
    let mut follow = body;
    follow["messages"] = json!([user(&format!("call Write {ARGS}")), v["choices"][0]["message"],
        {"role": "tool", "tool_call_id": call["id"], "content": "written"}]);
    let (status, v) = h.chat(follow).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "The tool returned: written"
    );
    let recs = h.sim.stats().cli_completions;
    assert_eq!(
        recs.last().unwrap().session_id.as_deref(),
        Some(session.as_str())
    );
}

#[tokio::test]
async fn anthropic_and_responses_map_to_the_door_with_native_tools() {
    let h = cli_only().await;
    let msg = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
        "tools": [{"name": "Write", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "system": "be brief", "messages": [user(&format!("call Write {ARGS}"))]});
    let resp = h.post("/v1/messages").json(&msg).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use", "{v}");
    let tool = v["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap();
    assert_eq!(tool["input"], serde_json::from_str::<Value>(ARGS).unwrap());
    let rec = h.sim.stats().cli_completions.pop().unwrap();
    assert_eq!(
        rec.body["model"], "claude-sonnet-4.5",
        "the door's own id for the model"
    );
    assert_eq!(
        rec.body["messages"][0],
        json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(rec.body["tool_choice"], "required");
    assert_eq!(rec.body["tools"][0]["function"]["name"], "Write");

    let resp = h
        .post("/v1/responses")
        .json(
            &json!({"model": "gpt-5.4", "input": format!("call Write {ARGS}"),
            "tools": [{"type": "function", "name": "Write", "parameters": {"type": "object"}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let r: Value = resp.json().await.unwrap();
    let fc = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["type"] == "function_call")
        .unwrap();
    assert_eq!(fc["name"], "Write");
    assert_eq!(fc["arguments"], ARGS);
    assert!(h.sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn a_mixed_pool_routes_each_model_to_the_door_that_serves_it() {
    let mixed = start_cli(|_| {}).await;
    let ids: Vec<String> = mixed
        .get("/v1/models")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ids.iter().filter(|i| *i == "gpt_5_4").count(),
        1,
        "once: {ids:?}"
    );
    assert!(ids.contains(&"kimi-k2.5".to_string()), "{ids:?}");
    assert!(
        !ids.contains(&"gpt-5.4".to_string()),
        "the door's id joins the web model: {ids:?}"
    );

    // A model only the CLI door serves goes there.
    let (status, _) = mixed
        .chat(json!({"model": "kimi-k2.5", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(mixed.sim.stats().cli_completions.len(), 1);
    assert!(mixed.sim.stats().triggers.is_empty());
    // A model only the web agent serves goes there.
    let (status, _) = mixed
        .chat(json!({"model": "gpt_5", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(mixed.sim.stats().triggers.len(), 1);
    // Both serve it: with tools the CLI door (native tool calls) is preferred.
    let (status, v) = mixed
        .chat(
            json!({"model": "gpt_5_4", "messages": [user(&format!("call Write {ARGS}"))],
            "tools": [write_tool()]}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let rec = mixed.sim.stats().cli_completions.pop().unwrap();
    assert_eq!(rec.body["model"], "gpt-5.4");
}

#[tokio::test]
async fn a_refused_refresh_token_says_to_log_in_again() {
    // Access tokens of 2 s: the second request needs a refresh.
    let sim = enginelabs_2api::simulator::Simulator::start(SimConfig {
        cli_token_ttl: std::time::Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let login = sim.cli_login(&sim.account().user_id).unwrap();
    let mut a = args_for(&sim);
    a.clerk_cookie = None;
    a.cto_refresh_token = Some(Secret::new(login.refresh_token));
    a.cto_credentials_file = Some("none".into());
    let store = std::sync::Arc::new(enginelabs_2api::store::memory::MemoryStore::new(
        Default::default(),
    ));
    let h = start_with(sim, a, store).await;
    let (status, _) = h
        .chat(json!({"model": "gpt-5.4", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let user_id = h.sim.account().user_id;
    h.sim.set_faults(Faults {
        cli_refresh_refused: vec![user_id],
        ..Faults::default()
    });
    let (status, v) = h
        .chat(json!({"model": "gpt-5.4", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 503, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("cto login"), "{msg}");
    assert_eq!(v["error"]["code"], "cli_login_rejected");
    let accounts = h.state.pool().snapshot();
    assert_eq!(accounts[0].state.as_str(), "dead");
    assert_eq!(serde_json::to_value(accounts[0].kind).unwrap(), "cli");
    assert!(!format!("{v}").contains("rt_"), "no token in the error");
}

#[tokio::test]
async fn a_model_of_the_other_door_names_the_missing_account_kind() {
    let h = cli_only().await;
    // Configured web models are not offered without a cookie account: unknown here.
    let (status, _) = h
        .chat(json!({"model": "GPT5", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 404);
}
