//! End to end through the simulator: streamed and non-streamed completions, both protocol
//! generations and the `auto` fallback, the model list.

mod common;

use common::*;
use enginelabs_2api::simulator::{SimConfig, reply_text};
use enginelabs_2api::upstream::ProtocolChoice;
use serde_json::{Value, json};

#[tokio::test]
async fn streamed_completion_has_openai_shape_and_exact_text() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("Hello there")], "stream_options": {"include_usage": true}}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("json chunk"))
        .collect();
    let first = &chunks[0];
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(first["model"], "gpt_5");
    let id = first["id"].as_str().expect("id");
    assert!(id.starts_with("chatcmpl-"));
    assert!(
        chunks.iter().all(|c| c["id"] == id),
        "one id for the whole answer"
    );
    // The last choice chunk carries finish_reason; then the usage chunk with no choices.
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["choices"].as_array().map(Vec::len), Some(0));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap_or(0) > 0);
    assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap_or(0) > 0);
    let last_choice = &chunks[chunks.len() - 2];
    assert_eq!(last_choice["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks[..chunks.len() - 2]
            .iter()
            .all(|c| c["choices"][0]["finish_reason"].is_null())
    );
    let (content, reasoning) = stream_text(&data);
    assert_eq!(
        content,
        reply_text("Hello there", 1, SimConfig::default().reply_words)
    );
    assert!(reasoning.is_empty());
    let stats = h.sim.stats();
    assert_eq!(stats.triggers.len(), 1);
    assert_eq!(
        stats.triggers[0].generation, "gen2",
        "auto picks Gen-2 when it exists"
    );
    assert_eq!(stats.triggers[0].prompt, "Hello there");
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("hi")]}))
        .await;
    assert_eq!(status, 200);
    for d in &data[..data.len() - 1] {
        let v: Value = serde_json::from_str(d).expect("json");
        assert!(v.get("usage").is_none(), "{d}");
        assert_eq!(v["choices"].as_array().map(Vec::len), Some(1));
    }
}

#[tokio::test]
async fn non_streamed_completion_has_openai_shape() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, v) = h
        .chat(json!({"model": "ClaudeSonnet4_5", "messages": [user("Write a haiku")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["model"], "claude_sonnet_4_5");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        reply_text("Write a haiku", 1, SimConfig::default().reply_words)
    );
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64(),
        Some(
            u["prompt_tokens"].as_u64().unwrap_or(0) + u["completion_tokens"].as_u64().unwrap_or(0)
        )
    );
}

#[tokio::test]
async fn default_model_is_used_when_none_is_named() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, v) = h.chat(json!({"messages": [user("hi")]})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "claude_sonnet_4_5");
}

#[tokio::test]
async fn gen1_forced_works_end_to_end() {
    let h = start(SimConfig::default(), |a| {
        a.upstream_protocol = ProtocolChoice::Gen1
    })
    .await;
    let (status, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("old protocol")]}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        stream_text(&data).0,
        reply_text("old protocol", 1, SimConfig::default().reply_words)
    );
    let t = &h.sim.stats().triggers;
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].generation, "gen1");
    assert_eq!(t[0].model, "GPT5");
}

#[tokio::test]
async fn gen2_forced_resolves_engine_names_to_model_keys() {
    let h = start(SimConfig::default(), |a| {
        a.upstream_protocol = ProtocolChoice::Gen2
    })
    .await;
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [user("x")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    let t = &h.sim.stats().triggers;
    assert_eq!(t[0].generation, "gen2");
}

#[tokio::test]
async fn auto_falls_back_to_gen1_when_gen2_is_absent_and_remembers() {
    let h = start(
        SimConfig {
            gen2: false,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    for i in 0..2 {
        let (status, v) = h
            .chat(json!({"model": "GPT5", "messages": [user(&format!("q{i}"))]}))
            .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            reply_text(&format!("q{i}"), 1, SimConfig::default().reply_words)
        );
    }
    let t = &h.sim.stats().triggers;
    assert!(t.iter().all(|t| t.generation == "gen1"));
    assert_eq!(h.state.generation_label(), "gen1");
}

#[tokio::test]
async fn models_list_and_get() {
    // Gen-1 has no live model list: the configured MODELS are the catalogue (tests/catalog.rs
    // covers the live one).
    let sim = SimConfig {
        gen2: false,
        ..SimConfig::default()
    };
    let h = start(sim, |_| {}).await;
    let v: Value = h
        .get("/v1/models")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter(|m| !m["owned_by"].as_str().unwrap_or("").starts_with("alias of"))
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["ClaudeSonnet4_5", "GPT5", "gpt_5_4"]);
    assert!(
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .all(|m| m["object"] == "model" && m["owned_by"].is_string())
    );
    let one = h.get("/v1/models/GPT5").send().await.expect("send");
    assert_eq!(one.status().as_u16(), 200);
    let missing = h.get("/v1/models/nope").send().await.expect("send");
    assert_eq!(missing.status().as_u16(), 404);
    let e: Value = missing.json().await.expect("json");
    assert_eq!(e["error"]["code"], "model_not_found");
}
