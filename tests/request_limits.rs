//! `MAX_MESSAGES`: a request with more messages (Responses: input items) than allowed is a 400
//! in its API's error shape that names the field and the setting, before anything else is
//! parsed; a request at the limit is served. (What the limit and the compact request body save
//! in memory is measured by `bench --scenario many-messages`, not asserted here.)

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::*;
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

const LIMIT: usize = 4;

async fn harness() -> Harness {
    start(SimConfig::default(), |a| a.max_messages = LIMIT).await
}

fn users(n: usize) -> Vec<Value> {
    (0..n).map(|i| user(&format!("m{i}"))).collect()
}

#[tokio::test]
async fn chat_completions_over_the_limit_is_a_400_naming_the_setting() {
    let h = harness().await;
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": users(LIMIT + 1)}))
        .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert_eq!(v["error"]["param"], "messages", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("MAX_MESSAGES") && msg.contains("5 items"),
        "{msg}"
    );
    assert!(h.sim.stats().triggers.is_empty(), "nothing went upstream");
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": users(LIMIT)}))
        .await;
    assert_eq!(status, 200, "at the limit: {v}");
}

#[tokio::test]
async fn anthropic_messages_over_the_limit_is_a_400_in_anthropic_shape() {
    let h = harness().await;
    let resp = h
        .http
        .post(format!("{}/v1/messages", h.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "GPT5", "max_tokens": 100, "messages": users(LIMIT + 1)}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_MESSAGES"),
        "{v}"
    );
}

#[tokio::test]
async fn responses_input_over_the_limit_is_a_400_naming_input() {
    let h = harness().await;
    let items: Vec<Value> = (0..=LIMIT)
        .map(|i| json!({"type": "message", "role": "user", "content": format!("m{i}")}))
        .collect();
    let resp = h
        .post("/v1/responses")
        .json(&json!({"model": "GPT5", "input": items}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["param"], "input", "{v}");
    // A string input is one message, whatever the limit.
    let resp = h
        .post("/v1/responses")
        .json(&json!({"model": "GPT5", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}
