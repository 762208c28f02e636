//! The Anthropic surface (`/v1/messages`, `/v1/messages/count_tokens`) over real sockets, in
//! front of the simulator: answer shapes, the exact streamed event sequence, thinking blocks,
//! conversation continuity through the shared relay, and Anthropic-shaped errors.

mod common;

use common::*;
use enginelabs_2api::conversation::{Message, Role};
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use enginelabs_2api::tokens;
use serde_json::{Value, json};

fn words() -> usize {
    SimConfig::default().reply_words
}

/// A Messages request the way Anthropic SDKs send it (`x-api-key`, `anthropic-version`).
fn messages_req(h: &Harness, path: &str) -> reqwest::RequestBuilder {
    h.http
        .post(format!("{}{path}", h.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
}

async fn create(h: &Harness, body: Value) -> (u16, Value) {
    let resp = messages_req(h, "/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// A streamed answer read to its end: (status, [(event name, data)]) without `ping`s.
async fn create_stream(h: &Harness, mut body: Value) -> (u16, Vec<(String, Value)>) {
    body["stream"] = json!(true);
    let resp = messages_req(h, "/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, events(&text))
}

fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event:"))
            .map(|n| n.trim().to_string());
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        if let Some(name) = name
            && name != "ping"
        {
            let v: Value = serde_json::from_str(&data.join("\n")).expect("event data is JSON");
            assert_eq!(v["type"], name.as_str(), "data type matches the event name");
            out.push((name, v));
        }
    }
    out
}

fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

/// Concatenated deltas of one kind (`text_delta` / `thinking_delta`) at one block index.
fn deltas(evs: &[(String, Value)], index: u64, kind: &str, field: &str) -> String {
    evs.iter()
        .filter(|(n, v)| n == "content_block_delta" && v["index"] == index)
        .map(|(_, v)| {
            assert_eq!(v["delta"]["type"], kind, "{v}");
            v["delta"][field].as_str().expect("delta text").to_string()
        })
        .collect()
}

fn body(text: &str) -> Value {
    json!({"model": "GPT5", "max_tokens": 256, "messages": [user(text)]})
}

#[tokio::test]
async fn non_streamed_answer_has_anthropics_shape_and_the_exact_text() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, v) = create(&h, body("hello there")).await;
    assert_eq!(status, 200, "{v}");
    let text = reply_text("hello there", 1, words());
    assert!(
        v["id"].as_str().is_some_and(|id| id.starts_with("msg_")),
        "{v}"
    );
    assert_eq!(v["type"], "message");
    assert_eq!(v["role"], "assistant");
    assert_eq!(v["model"], "gpt_5");
    assert_eq!(v["content"], json!([{"type": "text", "text": text}]));
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["stop_sequence"], Value::Null);
    let input = tokens::count_messages(&[Message::new(Role::User, "hello there")]);
    assert_eq!(v["usage"]["input_tokens"], input);
    assert_eq!(v["usage"]["output_tokens"], tokens::count(&text));
    assert!(tokens::count(&text) > 0);
}

#[tokio::test]
async fn bearer_auth_and_lowercase_model_work_too() {
    let h = start(SimConfig::default(), |_| {}).await;
    let resp = h
        .post("/v1/messages")
        .json(&json!({"model": "gpt5", "max_tokens": 5, "messages": [user("hi")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["model"], "gpt_5");
}

#[tokio::test]
async fn streamed_answer_is_the_exact_event_sequence() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, evs) = create_stream(&h, body("stream it")).await;
    assert_eq!(status, 200);
    let text = reply_text("stream it", 1, words());
    let n = names(&evs);
    assert_eq!(n[..2], ["message_start", "content_block_start"], "{n:?}");
    assert_eq!(
        n[n.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"],
        "{n:?}"
    );
    assert!(
        n[2..n.len() - 3]
            .iter()
            .all(|e| *e == "content_block_delta")
            && n.len() > 6,
        "{n:?}"
    );
    let start = &evs[0].1["message"];
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["model"], "gpt_5");
    assert_eq!(start["stop_reason"], Value::Null);
    let input = tokens::count_messages(&[Message::new(Role::User, "stream it")]);
    assert_eq!(start["usage"]["input_tokens"], input);
    assert_eq!(
        evs[1].1,
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(deltas(&evs, 0, "text_delta", "text"), text);
    assert_eq!(evs[n.len() - 3].1["index"], 0);
    let delta = &evs[n.len() - 2].1;
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], tokens::count(&text));
}

#[tokio::test]
async fn thinking_comes_first_in_its_own_block() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let (status, v) = create(&h, body("think first")).await;
    assert_eq!(status, 200, "{v}");
    let text = reply_text("think first", 1, words());
    let thinking = thinking_text(1);
    assert_eq!(
        v["content"],
        json!([{"type": "thinking", "thinking": thinking, "signature": ""}, {"type": "text", "text": text}])
    );
    assert_eq!(
        v["usage"]["output_tokens"],
        tokens::count(&thinking) + tokens::count(&text)
    );

    let (status, evs) = create_stream(&h, body("think again")).await;
    assert_eq!(status, 200);
    let n = names(&evs);
    let thinking_deltas = n[2..]
        .iter()
        .take_while(|e| **e == "content_block_delta")
        .count();
    assert!(thinking_deltas > 0, "{n:?}");
    let text_start = 2 + thinking_deltas;
    assert_eq!(
        n[text_start..text_start + 2],
        ["content_block_stop", "content_block_start"],
        "{n:?}"
    );
    assert_eq!(
        evs[1].1["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(evs[text_start].1["index"], 0);
    assert_eq!(
        evs[text_start + 1].1,
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}})
    );
    assert_eq!(
        deltas(&evs, 0, "thinking_delta", "thinking"),
        thinking_text(1)
    );
    let streamed = deltas(&evs, 1, "text_delta", "text");
    assert_eq!(streamed, reply_text("think again", 1, words()));
    assert!(!streamed.contains(&thinking_text(1)));
    assert_eq!(
        n[n.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
}

#[tokio::test]
async fn thinking_blocks_ignore_think_tags_but_obey_hide() {
    for (mode, shown) in [("think-tags", true), ("hide", false)] {
        let h = start(SimConfig::default(), |a| a.reasoning = mode.into()).await;
        h.sim.set_faults(Faults {
            thinking: true,
            ..Faults::default()
        });
        let (status, v) = create(&h, body("modes")).await;
        assert_eq!(status, 200, "{v}");
        let content = v["content"].as_array().expect("content");
        assert_eq!(content[0]["type"] == "thinking", shown, "{mode}: {v}");
        let text = content.last().expect("text block");
        assert_eq!(text["text"], reply_text("modes", 1, words()), "{mode}");
        assert!(!text["text"].as_str().unwrap_or("").contains("<think>"));
        let (_, evs) = create_stream(&h, body("modes")).await;
        let has_thinking = evs
            .iter()
            .any(|(_, v)| v["content_block"]["type"] == "thinking");
        assert_eq!(has_thinking, shown, "{mode}");
    }
}

#[tokio::test]
async fn system_prompt_goes_first_upstream() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, v) = create(
        &h,
        json!({"model": "GPT5", "max_tokens": 64, "system": [{"type": "text", "text": "Be brief."}],
               "messages": [{"role": "user", "content": [{"type": "text", "text": "first question"}]}]}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let t = h.sim.stats().triggers;
    assert_eq!(t[0].prompt, "[System]\nBe brief.\n\n[User]\nfirst question");
    let input = tokens::count_messages(&[
        Message::new(Role::System, "Be brief."),
        Message::new(Role::User, "first question"),
    ]);
    assert_eq!(v["usage"]["input_tokens"], input);
}

#[tokio::test]
async fn follow_up_turns_continue_one_upstream_history() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let sys = "Be brief.";
    let (_, evs) = create_stream(
        &h,
        json!({"model": "GPT5", "max_tokens": 64, "system": sys, "messages": [user("q1")]}),
    )
    .await;
    let a1 = deltas(&evs, 1, "text_delta", "text");
    assert_eq!(a1, reply_text("q1", 1, words()));
    // The second turn echoes the answer as plain text.
    let mut msgs = vec![user("q1"), assistant(&a1), user("q2")];
    let (status, v) = create(
        &h,
        json!({"model": "GPT5", "max_tokens": 64, "system": sys, "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"][1]["text"], reply_text("q2", 2, words()));
    // The third echoes the whole content array, thinking block included (what SDK users do).
    msgs.push(json!({"role": "assistant", "content": v["content"]}));
    msgs.push(json!({"role": "user", "content": [{"type": "text", "text": "q3"}]}));
    let (status, v) = create(
        &h,
        json!({"model": "GPT5", "max_tokens": 64, "system": sys, "messages": msgs}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["content"][1]["text"], reply_text("q3", 3, words()));

    let t = h.sim.stats().triggers;
    assert_eq!(t.len(), 3);
    assert!(
        t.iter().all(|x| x.chat_history_id == t[0].chat_history_id),
        "one upstream history: {t:?}"
    );
    assert_eq!(t.iter().map(|x| x.turn).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(t[1].prompt, "q2", "only the new user text is sent");
    assert_eq!(t[2].prompt, "q3");
}

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

#[tokio::test]
async fn client_disconnect_closes_the_upstream_socket() {
    let h = start(
        SimConfig {
            reply_words: 200,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    h.sim.set_faults(Faults {
        slow_frame_ms: 30,
        ..Faults::default()
    });
    let mut b = body("long answer please");
    b["stream"] = json!(true);
    let mut resp = messages_req(&h, "/v1/messages")
        .json(&b)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let mut got = 0;
    while got < 4 {
        let chunk = resp.chunk().await.expect("bytes").expect("a chunk");
        got += chunk.windows(2).filter(|w| w == b"\n\n").count();
    }
    assert_eq!(h.sim.stats().ws_open_now, 1, "open while streaming");
    drop(resp);
    assert!(
        eventually(5, || {
            let s = h.sim.stats();
            s.ws_open_now == 0 && s.ws_closed_early == 1
        })
        .await,
        "the upstream socket was closed after the client left: {:?}",
        h.sim.stats()
    );
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
