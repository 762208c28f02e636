//! Operations: `/metrics` exposes every declared metric with help text, `/healthz` answers,
//! expired conversations are purged and (with UPSTREAM_CLEANUP) deleted upstream.

mod common;

use std::time::Duration;

use common::*;
use enginelabs_2api::simulator::SimConfig;
use serde_json::json;

#[tokio::test]
async fn metrics_expose_every_declared_metric_after_one_request() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, _) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("count me")]}))
        .await;
    assert_eq!(status, 200);
    let text = h
        .http
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .expect("send")
        .text()
        .await
        .expect("text");
    for name in enginelabs_2api::metrics::ALL {
        assert!(
            text.contains(&format!("# HELP {name}")),
            "{name} has help text:\n{text}"
        );
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} has a series:\n{text}"
        );
    }
    assert!(
        text.contains(r#"el2a_http_requests_total{route="/v1/chat/completions",status="200"}"#),
        "{text}"
    );
    assert!(text.contains(r#"el2a_turns_total{kind="new"}"#), "{text}");
    let transport = if cfg!(feature = "impersonate") {
        "impersonate"
    } else {
        "plain"
    };
    assert!(
        text.contains(&format!(r#"transport="{transport}""#)),
        "build info names the transport: {text}"
    );
    assert!(!text.contains(KEY), "no secrets in metrics");
    assert!(!text.contains("__client"), "no cookies in metrics");
}

#[tokio::test]
async fn healthz_answers_without_a_key() {
    let h = start(SimConfig::default(), |_| {}).await;
    let r = h
        .http
        .get(format!("{}/healthz", h.base))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["status"], "ok");
    // The transport the binary was built with, named for operators.
    let transport = v["transport"].as_str().expect("transport named");
    if cfg!(feature = "impersonate") {
        assert!(transport.starts_with("impersonate"), "{transport}");
    } else {
        assert!(transport.starts_with("plain"), "{transport}");
    }
    // `/` names every client API route, each of which answers (not 404) when called.
    let root: serde_json::Value = h
        .http
        .get(format!("{}/", h.base))
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let listed: Vec<&str> = root["endpoints"]
        .as_array()
        .expect("endpoints")
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    for api in [
        "/v1/chat/completions",
        "/v1/responses",
        "/v1/messages",
        "/v1/models",
    ] {
        assert!(listed.contains(&api), "{api} missing from {root}");
    }
    for path in listed {
        let status = h
            .http
            .get(format!("{}{path}", h.base))
            .send()
            .await
            .expect("send")
            .status();
        assert_ne!(status.as_u16(), 404, "{path} is listed but not routed");
    }
}

#[tokio::test]
async fn expired_conversations_are_deleted_upstream_with_cleanup_on() {
    let h = start(SimConfig::default(), |a| {
        a.conversation_ttl = Duration::from_secs(1);
        a.upstream_cleanup = true;
    })
    .await;
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [user("short-lived")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        eventually(10, || h.sim.stats().deletions >= 1).await,
        "the expired conversation's chat history was deleted upstream: {:?}",
        h.sim.stats()
    );
    // And the mapping is gone: the follow-up starts a new history.
    let a = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    let (status, _) = h.chat(json!({"model": "GPT5", "messages": [user("short-lived"), assistant(&a), user("next")]})).await;
    assert_eq!(status, 200);
    let t = h.sim.stats().triggers;
    assert_ne!(t[1].chat_history_id, t[0].chat_history_id);
}

#[tokio::test]
async fn without_cleanup_nothing_is_deleted_upstream() {
    let h = start(SimConfig::default(), |a| {
        a.conversation_ttl = Duration::from_secs(1)
    })
    .await;
    assert_eq!(
        h.chat(json!({"model": "GPT5", "messages": [user("keep upstream")]}))
            .await
            .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(h.sim.stats().deletions, 0);
    assert_eq!(
        h.state.store().conversation_count().await.expect("count"),
        0,
        "the mapping itself expired"
    );
}
