//! The model catalogue end to end: live names and aliases, `/v1/models`, the Gen-1 fallback,
//! and `/readyz`.

mod common;

use common::{start, user};
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

async fn models(h: &common::Harness) -> Vec<(String, String)> {
    let v: Value = h
        .get("/v1/models")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|m| {
            (
                m["id"].as_str().unwrap_or("").to_string(),
                m["owned_by"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn every_name_form_and_an_alias_reach_the_same_adapter() {
    let h = start(SimConfig::default(), |a| {
        a.model_aliases = "gpt-4o=gpt_5_4,claude-3-5-sonnet=claude_sonnet_4_5".into();
    })
    .await;
    h.state.catalog().ensure_loaded(h.state.relay()).await;
    assert!(h.state.catalog().snapshot().is_live());
    for (i, name) in ["gpt_5_4", "GPT5_4", "gpt-5.4", "GPT-4O"]
        .iter()
        .enumerate()
    {
        let (status, v) = h
            .chat(json!({"model": name, "messages": [user(&format!("q{i}"))]}))
            .await;
        assert_eq!(status, 200, "{name}: {v}");
        assert_eq!(v["model"], "gpt_5_4", "{name}");
    }
    let (status, _) = h
        .chat(json!({"model": "claude-3-5-sonnet", "messages": [user("c")]}))
        .await;
    assert_eq!(status, 200);
    let models: Vec<String> = h
        .sim
        .stats()
        .triggers
        .iter()
        .map(|t| t.model.clone())
        .collect();
    assert_eq!(
        models,
        [
            "gpt_5_4",
            "gpt_5_4",
            "gpt_5_4",
            "gpt_5_4",
            "claude_sonnet_4_5"
        ]
    );
}

#[tokio::test]
async fn unknown_disabled_and_paid_models_are_not_found() {
    let h = start(SimConfig::default(), |_| {}).await;
    for name in ["nope", "old_model", "claude_opus_4_6"] {
        let (status, v) = h
            .chat(json!({"model": name, "messages": [user("x")]}))
            .await;
        assert_eq!(status, 404, "{name}: {v}");
        assert_eq!(v["error"]["code"], "model_not_found");
    }
    let missing = h.get("/v1/models/old_model").send().await.expect("send");
    assert_eq!(missing.status().as_u16(), 404);
    let one: Value = h
        .get("/v1/models/GPT-5.4")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(one["id"], "gpt_5_4");
    assert_eq!(one["owned_by"], "openai");
    assert!(h.sim.stats().triggers.is_empty());
}

#[tokio::test]
async fn models_lists_the_live_catalogue_once_each() {
    let h = start(SimConfig::default(), |a| {
        a.model_aliases = "gpt-4o=gpt_5_4".into();
    })
    .await;
    assert_eq!(
        models(&h).await,
        [
            ("gpt_5_4".into(), "openai".into()),
            ("gpt_5".into(), "openai".into()),
            ("claude_sonnet_4_5".into(), "anthropic".into()),
            ("glm_5_1".into(), "openrouter".into()),
            // The Claude family names, for Claude Code's gateway discovery.
            (
                "claude-sonnet-4-5".into(),
                "alias of claude_sonnet_4_5".into()
            ),
            (
                "claude-opus-4-5".into(),
                "alias of claude_sonnet_4_5".into()
            ),
            (
                "claude-haiku-4-5".into(),
                "alias of claude_sonnet_4_5".into()
            ),
        ]
    );
    let paid = start(SimConfig::default(), |a| a.include_paid_models = true).await;
    let ids: Vec<String> = models(&paid).await.into_iter().map(|m| m.0).collect();
    assert!(ids.contains(&"claude_opus_4_6".to_string()), "{ids:?}");
    assert!(!ids.contains(&"old_model".to_string()), "{ids:?}");
}

#[tokio::test]
async fn gen1_falls_back_to_the_configured_models() {
    let sim = SimConfig {
        gen2: false,
        ..SimConfig::default()
    };
    let h = start(sim, |a| a.model_aliases = "fast=gpt5".into()).await;
    h.state.catalog().ensure_loaded(h.state.relay()).await;
    assert!(!h.state.catalog().snapshot().is_live());
    let ids: Vec<String> = models(&h).await.into_iter().map(|m| m.0).collect();
    assert_eq!(
        ids,
        [
            "ClaudeSonnet4_5",
            "GPT5",
            "gpt_5_4",
            "claude-sonnet-4-5",
            "claude-opus-4-5",
            "claude-haiku-4-5"
        ]
    );
    let (status, v) = h
        .chat(json!({"model": "fast", "messages": [user("x")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["model"], "GPT5");
    assert_eq!(h.sim.stats().triggers[0].model, "GPT5");
    let (status, _) = h
        .chat(json!({"model": "gpt-5.4", "messages": [user("x")]}))
        .await;
    assert_eq!(
        status, 404,
        "only the configured names exist without a live list"
    );
}

#[tokio::test]
async fn readyz_reports_account_state() {
    let h = start(SimConfig::default(), |_| {}).await;
    let r = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v, json!({"status": "ready", "accounts": 1}));

    let none = start(SimConfig::default(), |a| a.clerk_cookie = None).await;
    let r = none
        .http
        .get(format!("{}/readyz", none.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["accounts"], 0);
    assert!(
        v["reason"].as_str().unwrap_or("").contains("CLERK_COOKIE"),
        "{v}"
    );

    // An account whose cookie Clerk refuses at start is known dead.
    let sim = enginelabs_2api::simulator::Simulator::start(SimConfig::default())
        .await
        .expect("sim");
    sim.revoke(&sim.account().user_id);
    let args = common::args_for(&sim);
    let store = std::sync::Arc::new(enginelabs_2api::store::memory::MemoryStore::new(
        enginelabs_2api::store::StoreLimits {
            conversation_ttl: std::time::Duration::from_secs(60),
            max_conversations: 10,
        },
    ));
    let dead = common::start_with(sim, args, store).await;
    let r = dead
        .http
        .get(format!("{}/readyz", dead.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.expect("json");
    assert!(v["reason"].as_str().unwrap_or("").contains("cookie"), "{v}");
}
