//! A WebSocket that drops mid-turn: Gen-1 reconnects and resumes from the server's replay, Gen-2
//! from the `history` snapshot its new socket gets first, so the client gets every word exactly
//! once; when the snapshot does not hold the answer so far, Gen-2 ends the stream with an error
//! event and `[DONE]` instead of losing text.
//!
//! `Faults::ws_drop_after` applies to every socket, and a Gen-1 replay counts the same frames
//! again, so a reconnect would be dropped at the very same point: the tests clear the fault as
//! soon as the first socket is gone (the proxy waits 100 ms before reconnecting).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use enginelabs_2api::simulator::{Faults, SimConfig, reply_text, thinking_text};
use enginelabs_2api::upstream::ProtocolChoice;
use serde_json::{Value, json};

const WORDS: usize = 24;

fn sim_cfg(frame_delay_ms: u64) -> SimConfig {
    SimConfig {
        reply_words: WORDS,
        frame_delay: Duration::from_millis(frame_delay_ms),
        ..SimConfig::default()
    }
}

async fn gen1(frame_delay_ms: u64) -> Arc<Harness> {
    Arc::new(
        start(sim_cfg(frame_delay_ms), |a| {
            a.upstream_protocol = ProtocolChoice::Gen1;
        })
        .await,
    )
}

fn body(prompt: &str) -> Value {
    json!({"model": "GPT5", "messages": [user(prompt)]})
}

/// Sets `faults` and, once the next socket has dropped, the same faults without the drop.
fn drop_first_socket_only(h: &Arc<Harness>, faults: Faults) -> tokio::task::JoinHandle<()> {
    h.sim.set_faults(faults.clone());
    let before = h.sim.stats().ws_opened;
    let h = Arc::clone(h);
    tokio::spawn(async move {
        let dropped = eventually(30, || {
            let s = h.sim.stats();
            s.ws_opened > before && s.ws_open_now == 0
        })
        .await;
        assert!(dropped, "the first socket never dropped");
        h.sim.set_faults(Faults {
            ws_drop_after: None,
            ..faults
        });
    })
}

async fn resumes_exactly(frame_delay_ms: u64, faults: Faults, prompt: &str) {
    let h = gen1(frame_delay_ms).await;
    let thinking = faults.thinking;
    let clearer = drop_first_socket_only(&h, faults);
    let (status, data) = h.chat_stream(body(prompt)).await;
    clearer.await.expect("fault clearer");
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    assert!(
        !data.iter().any(|d| d.contains("\"error\"")),
        "no error event: {data:?}"
    );
    let (content, reasoning) = stream_text(&data);
    assert_eq!(content, reply_text(prompt, 1, WORDS));
    let expected_reasoning = if thinking {
        thinking_text(1)
    } else {
        String::new()
    };
    assert_eq!(reasoning, expected_reasoning);
    let stats = h.sim.stats();
    assert!(stats.ws_opened >= 2, "a reconnect happened: {stats:?}");
    assert_eq!(stats.triggers.len(), 1, "resumed, not retried");
    assert!(eventually(5, || h.sim.stats().ws_open_now == 0).await);
}

#[tokio::test]
async fn gen1_drop_while_the_turn_runs_is_resumed_without_loss_or_repeats() {
    let faults = Faults {
        ws_drop_after: Some(9),
        ..Faults::default()
    };
    resumes_exactly(5, faults, "resume me while running").await;
}

#[tokio::test]
async fn gen1_drop_after_which_the_turn_ends_is_resumed_from_the_finished_replay() {
    // No frame delay: the turn is over long before the reconnect, whose replay starts with the
    // idle state, then the whole finished turn.
    let faults = Faults {
        ws_drop_after: Some(7),
        ..Faults::default()
    };
    resumes_exactly(0, faults, "resume me after the end").await;
}

#[tokio::test]
async fn gen1_drop_with_cumulative_buffers_is_resumed_exactly() {
    let faults = Faults {
        ws_drop_after: Some(13),
        cumulative: true,
        ..Faults::default()
    };
    resumes_exactly(5, faults, "cumulative resume").await;
}

#[tokio::test]
async fn gen1_drop_after_the_first_word_with_reasoning_first() {
    let faults = Faults {
        ws_drop_after: Some(1),
        thinking: true,
        ..Faults::default()
    };
    resumes_exactly(5, faults, "thinking then a drop").await;
}

#[tokio::test]
async fn gen1_non_streamed_answer_survives_a_drop() {
    let h = gen1(5).await;
    let clearer = drop_first_socket_only(
        &h,
        Faults {
            ws_drop_after: Some(10),
            ..Faults::default()
        },
    );
    let (status, v) = h.chat(body("non-streamed resume")).await;
    clearer.await.expect("fault clearer");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"].as_str(),
        Some(reply_text("non-streamed resume", 1, WORDS).as_str())
    );
    assert!(h.sim.stats().ws_opened >= 2);
}

#[tokio::test]
async fn gen1_drop_that_keeps_happening_ends_with_an_error_event_and_done() {
    // The fault stays: every replay is dropped at the same point, no new text ever arrives.
    let h = gen1(0).await;
    h.sim.set_faults(Faults {
        ws_drop_after: Some(6),
        ..Faults::default()
    });
    let (status, data) = h.chat_stream(body("always dropped")).await;
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).expect("error event is JSON");
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("resuming failed"), "{err}");
    // What was delivered before the error is a prefix of the reply, never a repeat.
    let (content, _) = stream_text(&data[..data.len() - 2]);
    assert!(
        reply_text("always dropped", 1, WORDS).starts_with(&content),
        "{content:?}"
    );
    let opened = h.sim.stats().ws_opened;
    assert!(
        (2..=4).contains(&opened),
        "1 socket + up to 3 reconnects: {opened}"
    );
    assert!(eventually(5, || h.sim.stats().ws_open_now == 0).await);
}

async fn gen2(frame_delay_ms: u64) -> Arc<Harness> {
    Arc::new(
        start(sim_cfg(frame_delay_ms), |a| {
            a.upstream_protocol = ProtocolChoice::Gen2;
        })
        .await,
    )
}

/// A Gen-2 stream whose first socket drops as `faults` say, read to its end.
async fn gen2_dropped(
    frame_delay_ms: u64,
    faults: Faults,
    prompt: &str,
) -> (Arc<Harness>, Vec<String>) {
    let h = gen2(frame_delay_ms).await;
    let clearer = drop_first_socket_only(&h, faults);
    let (status, data) = h.chat_stream(body(prompt)).await;
    clearer.await.expect("fault clearer");
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    (h, data)
}

#[tokio::test]
async fn gen2_drop_while_the_turn_runs_is_resumed_from_the_history_snapshot() {
    let faults = Faults {
        ws_drop_after: Some(5),
        ..Faults::default()
    };
    let (h, data) = gen2_dropped(5, faults, "gen2 resume while running").await;
    assert!(!data.iter().any(|d| d.contains("\"error\"")), "{data:?}");
    let (content, _) = stream_text(&data);
    assert_eq!(content, reply_text("gen2 resume while running", 1, WORDS));
    let stats = h.sim.stats();
    assert!(stats.ws_opened >= 2, "a reconnect happened: {stats:?}");
    assert_eq!(stats.triggers.len(), 1, "resumed, not retried");
}

#[tokio::test]
async fn gen2_drop_after_which_the_turn_ends_is_finished_from_the_snapshot() {
    // No frame delay: the turn is over before the reconnect, whose snapshot holds all of it.
    let faults = Faults {
        ws_drop_after: Some(7),
        ..Faults::default()
    };
    let (h, data) = gen2_dropped(0, faults, "gen2 resume after the end").await;
    assert!(!data.iter().any(|d| d.contains("\"error\"")), "{data:?}");
    let (content, _) = stream_text(&data);
    assert_eq!(content, reply_text("gen2 resume after the end", 1, WORDS));
    assert!(h.sim.stats().ws_opened >= 2);
}

#[tokio::test]
async fn gen2_drop_whose_snapshot_lacks_the_turn_ends_with_an_error_event_that_says_why() {
    let faults = Faults {
        ws_drop_after: Some(5),
        history_without_running_turn: true,
        ..Faults::default()
    };
    let (h, data) = gen2_dropped(5, faults, "gen2 drop").await;
    let err: Value = serde_json::from_str(&data[data.len() - 2]).expect("error event is JSON");
    let msg = err["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("cannot resume"), "{err}");
    assert!(msg.contains("history snapshot"), "{err}");
    let (content, _) = stream_text(&data[..data.len() - 2]);
    assert!(reply_text("gen2 drop", 1, WORDS).starts_with(&content));
    assert_eq!(
        h.sim.stats().ws_opened,
        2,
        "one reconnect, no retry of the turn"
    );
    assert_eq!(h.sim.stats().triggers.len(), 1);
}

#[tokio::test]
async fn gen1_drop_in_a_continued_conversation_resumes_only_the_new_turn() {
    let h = gen1(5).await;
    let (status, v) = h.chat(body("first question")).await;
    assert_eq!(status, 200, "{v}");
    assert!(eventually(5, || h.sim.stats().ws_open_now == 0).await);
    let a1 = v["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_string();
    // The reconnect also replays the previous, finished turn before the current one.
    let clearer = drop_first_socket_only(
        &h,
        Faults {
            ws_drop_after: Some(8),
            replay_previous_turn: true,
            ..Faults::default()
        },
    );
    let opened_before = h.sim.stats().ws_opened;
    let follow = json!({"model": "GPT5", "messages": [
        user("first question"), assistant(&a1), user("second question")
    ]});
    let (status, data) = h.chat_stream(follow).await;
    clearer.await.expect("fault clearer");
    assert_eq!(status, 200);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let (content, _) = stream_text(&data);
    assert_eq!(content, reply_text("second question", 2, WORDS));
    let stats = h.sim.stats();
    assert!(stats.ws_opened >= opened_before + 2, "a reconnect happened");
    assert_eq!(stats.triggers.len(), 2);
    assert_eq!(stats.triggers[1].turn, 2);
}

#[tokio::test]
async fn reconnects_are_counted_in_the_metrics() {
    let h = gen1(0).await;
    h.sim.set_faults(Faults {
        ws_drop_after: Some(3),
        ..Faults::default()
    });
    let (status, _) = h.chat_stream(body("counted reconnects")).await;
    assert_eq!(status, 200);
    let text = h
        .get("/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let count: f64 = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("el2a_ws_reconnects_total ")?
                .trim()
                .parse()
                .ok()
        })
        .expect("the reconnect counter is exported");
    // This process-wide counter also sees the other tests; this one made 3 attempts itself.
    assert!(count >= 3.0, "{count}");
}
