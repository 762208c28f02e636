//! Upstream failures become clear errors: before the first byte an HTTP error that says what
//! failed and what to do, after it an SSE error event; never a hang.

mod common;

use std::time::{Duration, Instant};

use common::*;
use enginelabs_2api::simulator::{Faults, SimConfig};
use serde_json::{Value, json};

fn body() -> Value {
    json!({"model": "GPT5", "messages": [user("hello")]})
}

#[tokio::test]
async fn revoked_cookie_is_a_clear_503_within_the_timeout() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.revoke(&h.sim.account().user_id);
    let started = Instant::now();
    let (status, v) = h.chat(body()).await;
    assert!(started.elapsed() < Duration::from_secs(5), "no hang");
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "cookie_rejected");
    let msg = v["error"]["message"].as_str().expect("message");
    assert!(msg.contains("paste a fresh"), "{msg}");
    // Streaming requests get the same HTTP error (nothing was streamed yet).
    let (status, _) = h.chat_stream(body()).await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn revoked_as_signed_out_client_is_also_cookie_rejected() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        revoked_as_empty_client: true,
        ..Faults::default()
    });
    h.sim.revoke(&h.sim.account().user_id);
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "cookie_rejected");
}

#[tokio::test]
async fn restored_cookie_works_again() {
    let h = start(SimConfig::default(), |_| {}).await;
    let user_id = h.sim.account().user_id;
    h.sim.revoke(&user_id);
    assert_eq!(h.chat(body()).await.0, 503);
    h.sim.restore(&user_id);
    assert_eq!(h.chat(body()).await.0, 200);
}

#[tokio::test]
async fn cloudflare_challenge_is_named_as_such() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        cloudflare_challenge: true,
        ..Faults::default()
    });
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "cloudflare_challenge");
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("fresh"),
        "not reported as a bad cookie"
    );
}

#[tokio::test]
async fn trigger_5xx_is_a_502_that_names_the_call() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(503),
        trigger_status_count: 100,
        ..Faults::default()
    });
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 502, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap_or("").contains("503"),
        "{v}"
    );
}

#[tokio::test]
async fn trigger_429_is_a_429_with_retry_after() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 100,
        ..Faults::default()
    });
    let resp = h
        .post("/v1/chat/completions")
        .json(&body())
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn silent_upstream_times_out_instead_of_hanging() {
    let h = start(SimConfig::default(), |a| {
        a.stream_idle_timeout_secs = Duration::from_secs(1)
    })
    .await;
    h.sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let started = Instant::now();
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 504, "{v}");
    assert_eq!(v["error"]["code"], "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn websocket_drop_mid_stream_ends_with_an_error_event_and_done() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        // A drop the Gen-2 snapshot cannot resume: the turn is still running and the
        // snapshot holds finished turns only.
        ws_drop_after: Some(5),
        slow_frame_ms: 20,
        history_without_running_turn: true,
        ..Faults::default()
    });
    let (status, data) = h.chat_stream(body()).await;
    assert_eq!(status, 200, "the first words were already streamed");
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).expect("error event is JSON");
    assert!(
        err["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("closed")),
        "{err}"
    );
    // Non-streamed: the same failure is a 502 and nothing half-done is returned as success.
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 502, "{v}");
}

#[tokio::test]
async fn a_failed_turn_is_not_remembered() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (_, v) = h.chat(body()).await;
    let a1 = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    h.sim.set_faults(Faults {
        // A drop the Gen-2 snapshot cannot resume: the turn is still running and the
        // snapshot holds finished turns only.
        ws_drop_after: Some(2),
        slow_frame_ms: 20,
        history_without_running_turn: true,
        ..Faults::default()
    });
    let follow =
        json!({"model": "GPT5", "messages": [user("hello"), assistant(&a1), user("more")]});
    assert_eq!(h.chat(follow.clone()).await.0, 502);
    h.sim.set_faults(Faults::default());
    assert_eq!(h.chat(follow).await.0, 200);
    let t = h.sim.stats().triggers;
    // The retry could not continue the history the failed turn moved on: it started a new one.
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id);
    assert_ne!(t[2].chat_history_id, t[0].chat_history_id);
}

#[tokio::test]
async fn no_cookie_configured_is_a_clear_503() {
    let h = start(SimConfig::default(), |a| a.clerk_cookie = None).await;
    let (status, v) = h.chat(body()).await;
    assert_eq!(status, 503);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("CLERK_COOKIE")
    );
}
