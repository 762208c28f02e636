//! The Anthropic surface (`/v1/messages`) over real sockets, in front of the simulator: answer
//! shapes, the exact streamed event sequence, thinking blocks, and conversation continuity
//! through the shared relay. Errors, disconnects and `count_tokens`: tests/anthropic_errors.rs.

mod common;

use common::anthropic::{body, create, create_stream, deltas, names};
use common::reply::words;
use common::*;
use enginelabs_2api::config::values;
use enginelabs_2api::conversation::{Message, Role};
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use enginelabs_2api::tokens;
use serde_json::{Value, json};

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
        let h = start(SimConfig::default(), |a| {
            a.reasoning = values::reasoning(mode).expect("valid reasoning")
        })
        .await;
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
