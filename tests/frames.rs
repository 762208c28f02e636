//! The frame handling seen from the client: thinking never leaks into content, cumulative
//! buffers are not duplicated, replayed earlier turns and the idle state at connect are not
//! taken for the answer, unknown frames are ignored.

mod common;

use common::reply::words;
use common::*;
use enginelabs_2api::config::ReasoningMode;
use enginelabs_2api::config::values;
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use serde_json::json;

#[tokio::test]
async fn thinking_goes_to_reasoning_content_only() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let (status, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("think")]}))
        .await;
    assert_eq!(status, 200);
    let (content, reasoning) = stream_text(&data);
    assert_eq!(content, reply_text("think", 1, words()));
    assert_eq!(reasoning, thinking_text(1));
    let (_, v) = h
        .chat(json!({"model": "GPT5", "messages": [user("think")]}))
        .await;
    assert_eq!(
        v["choices"][0]["message"]["content"],
        reply_text("think", 1, words())
    );
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        thinking_text(1)
    );
}

#[tokio::test]
async fn think_tags_mode_wraps_reasoning_and_continuity_still_matches() {
    let h = start(SimConfig::default(), |a| {
        a.reasoning = ReasoningMode::ThinkTags
    })
    .await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let (_, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("q1")]}))
        .await;
    let (content, reasoning) = stream_text(&data);
    assert!(reasoning.is_empty());
    assert_eq!(
        content,
        format!(
            "<think>{}</think>\n\n{}",
            thinking_text(1),
            reply_text("q1", 1, words())
        )
    );
    // The client echoes the tagged text back: the conversation still continues.
    let (status, _) = h
        .chat(json!({"model": "GPT5", "messages": [user("q1"), assistant(&content), user("q2")]}))
        .await;
    assert_eq!(status, 200);
    let t = h.sim.stats().triggers;
    assert_eq!(t[1].chat_history_id, t[0].chat_history_id);
}

#[tokio::test]
async fn hide_mode_drops_reasoning() {
    let h = start(SimConfig::default(), |a| a.reasoning = ReasoningMode::Hide).await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let (_, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("q")]}))
        .await;
    assert_eq!(
        stream_text(&data),
        (reply_text("q", 1, words()), String::new())
    );
}

#[tokio::test]
async fn cumulative_buffers_are_not_duplicated() {
    for protocol in ["gen1", "gen2"] {
        let h = start(SimConfig::default(), |a| {
            a.upstream_protocol = values::protocol(protocol).expect("valid upstream_protocol")
        })
        .await;
        h.sim.set_faults(Faults {
            cumulative: true,
            thinking: true,
            ..Faults::default()
        });
        let (_, data) = h
            .chat_stream(json!({"model": "GPT5", "messages": [user("cumulative")]}))
            .await;
        assert_eq!(
            stream_text(&data),
            (reply_text("cumulative", 1, words()), thinking_text(1)),
            "{protocol}"
        );
    }
}

#[tokio::test]
async fn replayed_previous_turn_is_not_taken_for_the_answer() {
    for protocol in ["gen1", "gen2"] {
        let h = start(SimConfig::default(), |a| {
            a.upstream_protocol = values::protocol(protocol).expect("valid upstream_protocol")
        })
        .await;
        let (_, v) = h
            .chat(json!({"model": "GPT5", "messages": [user("first")]}))
            .await;
        let a1 = v["choices"][0]["message"]["content"]
            .as_str()
            .expect("a1")
            .to_string();
        h.sim.set_faults(Faults {
            replay_previous_turn: true,
            ..Faults::default()
        });
        let (_, data) =
            h.chat_stream(json!({"model": "GPT5", "messages": [user("first"), assistant(&a1), user("second")]})).await;
        assert_eq!(
            stream_text(&data).0,
            reply_text("second", 2, words()),
            "{protocol}"
        );
    }
}

#[tokio::test]
async fn without_idle_state_and_with_unknown_frames_the_answer_is_exact() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        no_idle_state_at_connect: true,
        extra_frames: true,
        ..Faults::default()
    });
    let (_, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("odd frames")]}))
        .await;
    assert_eq!(stream_text(&data).0, reply_text("odd frames", 1, words()));
}

#[tokio::test]
async fn slow_frames_still_arrive_complete() {
    let h = start(SimConfig::default(), |_| {}).await;
    h.sim.set_faults(Faults {
        slow_frame_ms: 20,
        ..Faults::default()
    });
    let (_, data) = h
        .chat_stream(json!({"model": "GPT5", "messages": [user("slow")]}))
        .await;
    assert_eq!(stream_text(&data).0, reply_text("slow", 1, words()));
}

#[tokio::test]
async fn non_ascii_prompts_survive_both_generations() {
    for protocol in ["gen1", "gen2"] {
        let h = start(SimConfig::default(), |a| {
            a.upstream_protocol = values::protocol(protocol).expect("valid upstream_protocol")
        })
        .await;
        let (status, _) = h
            .chat(json!({"model": "GPT5", "messages": [user("你好，世界 — ünïcödé 🚀")]}))
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            h.sim.stats().triggers[0].prompt,
            "你好，世界 — ünïcödé 🚀",
            "{protocol}"
        );
    }
}
