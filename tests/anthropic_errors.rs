//! The Anthropic surface over real sockets, in front of the simulator: Anthropic-shaped errors,
//! upstream failures before and after the first byte, `/v1/messages/count_tokens`, and the
//! admin overview counting these requests. A client that hangs up: tests/disconnect.rs.

mod common;

use common::anthropic::{body, create_stream, messages_req, names};
use common::*;
use enginelabs_2api::conversation::{Message, Role};
use enginelabs_2api::simulator::{Faults, SimConfig};
use enginelabs_2api::tokens;
use serde_json::{Value, json};

/// Asserts an Anthropic-shaped error with this status and type; returns its message.
async fn expect_error(resp: reqwest::Response, status: u16, kind: &str) -> String {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().await.expect("error body is JSON");
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], kind, "{v}");
    assert!(
        v.get("choices").is_none() && v["error"].get("code").is_none(),
        "{v}"
    );
    v["error"]["message"].as_str().expect("message").to_string()
}

#[tokio::test]
async fn errors_have_anthropics_shape() {
    let h = start(SimConfig::default(), |_| {}).await;
    let url = |p: &str| format!("{}{p}", h.base);
    for path in ["/v1/messages", "/v1/messages/count_tokens"] {
        let resp = h
            .http
            .post(url(path))
            .json(&body("x"))
            .send()
            .await
            .expect("send");
        let msg = expect_error(resp, 401, "authentication_error").await;
        assert!(msg.contains("x-api-key"), "{msg}");
        let resp = h
            .http
            .post(url(path))
            .header("x-api-key", "sk-wrong")
            .json(&body("x"))
            .send()
            .await
            .expect("send");
        expect_error(resp, 401, "authentication_error").await;
    }
    for max_tokens in [json!(0), json!(-1), json!("100"), json!(null)] {
        let resp = messages_req(&h, "/v1/messages")
            .json(&json!({"model": "GPT5", "max_tokens": max_tokens, "messages": [user("x")]}))
            .send()
            .await
            .expect("send");
        let msg = expect_error(resp, 400, "invalid_request_error").await;
        assert!(msg.contains("max_tokens"), "{msg}");
    }
    let resp = messages_req(&h, "/v1/messages")
        .json(&json!({"model": "nonexistent-model", "max_tokens": 5, "messages": [user("x")]}))
        .send()
        .await
        .expect("send");
    let msg = expect_error(resp, 404, "not_found_error").await;
    assert!(msg.contains("nonexistent-model"), "{msg}");
    let resp = messages_req(&h, "/v1/messages")
        .header("content-type", "application/json")
        .body("{\"model\": \"GPT5\", ")
        .send()
        .await
        .expect("send");
    expect_error(resp, 400, "invalid_request_error").await;
    let resp = messages_req(&h, "/v1/messages")
        .json(&json!({"model": "glm_5_1", "max_tokens": 5, "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}}]}]}))
        .send()
        .await
        .expect("send");
    let msg = expect_error(resp, 400, "invalid_request_error").await;
    assert!(msg.contains("does not accept images"), "{msg}");
    let resp = messages_req(&h, "/v1/messages")
        .header("content-type", "application/json")
        .body(format!(
            "{{\"max_tokens\":5,\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
            "x".repeat(70_000)
        ))
        .send()
        .await
        .expect("send");
    expect_error(resp, 413, "request_too_large").await;
    assert!(
        h.sim.stats().triggers.is_empty(),
        "nothing reached upstream"
    );
}

#[tokio::test]
async fn upstream_failures_before_and_after_the_first_byte() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 100,
        ..Faults::default()
    });
    let resp = messages_req(&h, "/v1/messages")
        .json(&body("x"))
        .send()
        .await
        .expect("send");
    assert!(resp.headers().get("retry-after").is_some());
    expect_error(resp, 429, "rate_limit_error").await;
    // The only account now rests for the upstream's Retry-After (1 s).
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    h.sim.set_faults(Faults {
        // A drop the Gen-2 snapshot cannot resume: the turn is still running and the
        // snapshot holds finished turns only.
        ws_drop_after: Some(5),
        slow_frame_ms: 20,
        history_without_running_turn: true,
        ..Faults::default()
    });
    let (status, evs) = create_stream(&h, body("hello")).await;
    assert_eq!(status, 200, "the first words were already streamed");
    let (name, err) = evs.last().expect("events");
    assert_eq!(name, "error", "{:?}", names(&evs));
    assert_eq!(err["error"]["type"], "api_error", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{err}"
    );
    assert!(!names(&evs).contains(&"message_stop"));
}

async fn count(h: &Harness, body: Value) -> (u16, Value) {
    let resp = messages_req(h, "/v1/messages/count_tokens")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json"))
}

#[tokio::test]
async fn count_tokens_is_stable_and_grows_with_the_text() {
    let h = start(SimConfig::default(), |_| {}).await;
    let short = json!({"model": "GPT5", "messages": [user("How many tokens is this?")]});
    let (status, a) = count(&h, short.clone()).await;
    assert_eq!(status, 200, "{a}");
    let n = a["input_tokens"].as_u64().expect("input_tokens");
    assert!(n > 0);
    assert_eq!(count(&h, short).await.1["input_tokens"], n, "stable");
    assert_eq!(
        n,
        tokens::count_messages(&[Message::new(Role::User, "How many tokens is this?")])
    );
    let (_, b) = count(
        &h,
        json!({"model": "GPT5", "system": "You are terse.",
               "messages": [user("How many tokens is this? And this longer sentence too?")]}),
    )
    .await;
    assert!(b["input_tokens"].as_u64().expect("n") > n, "{b}");
    let (status, v) = count(&h, json!({"model": "nope", "messages": [user("x")]})).await;
    assert_eq!(status, 404);
    assert_eq!(v["error"]["type"], "not_found_error");
    assert!(
        h.sim.stats().triggers.is_empty(),
        "counting never runs a turn"
    );
}

/// The admin overview's time to first token counts Anthropic requests too (one start path for
/// every API; the copies had drifted and left this surface out).
#[tokio::test]
async fn anthropic_requests_feed_the_overview_ttfb() {
    let h = start(SimConfig::default(), |_| {}).await;
    let resp = h
        .post("/v1/messages")
        .json(&json!({"model": "GPT5", "max_tokens": 50, "messages": [user("timing")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let w = enginelabs_2api::server::traffic::window(5);
    assert!(w.ttfb_p50_ms.is_some(), "{w:?}");
}
