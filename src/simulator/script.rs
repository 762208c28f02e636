//! What a turn says and how it is streamed: the deterministic reply and reasoning texts and the
//! frames of one turn (protocol notes §5.2); `turn` runs the task that appends them.
//! Which answer a prompt gets is the simulated model's decision (`model`); this file only
//! cuts it into frames.
//!
//! Each frame is serialized once and shared by every socket of the history (`Utf8Bytes` is a
//! reference-counted buffer), so a thousand concurrent turns cost one JSON encoding per frame.

use axum::extract::ws::Utf8Bytes;
use serde_json::{Value, json};

use super::Faults;
use super::model::Split;
use super::util::now_ms;

/// Filler words of the deterministic replies.
const FILLER: &[&str] = &[
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
];

/// The deterministic reply for `turn` of a history whose latest prompt is `prompt`: the prefix
/// `Turn {turn}: you said "{snippet}".` then filler words up to exactly `words` words (never
/// fewer than the prefix). The snippet is the last non-empty line of the prompt with its
/// whitespace collapsed, cut to 60 characters, so the reply is its words joined by one space and
/// a client that concatenates the streamed deltas gets exactly this string.
pub fn reply_text(prompt: &str, turn: u32, words: usize) -> String {
    let line = prompt
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let collapsed = line.split_whitespace().collect::<Vec<_>>().join(" ");
    let snippet: String = collapsed.chars().take(60).collect();
    let mut out = format!("Turn {turn}: you said \"{}\".", snippet.trim_end());
    let mut count = out.split_whitespace().count();
    let mut i = turn as usize;
    while count < words {
        out.push(' ');
        out.push_str(FILLER[i % FILLER.len()]);
        i += 1;
        count += 1;
    }
    out
}

/// The deterministic reasoning streamed before the reply when `Faults::thinking` is on.
pub fn thinking_text(turn: u32) -> String {
    format!("Considering turn {turn} carefully before answering.")
}

fn outer(v: &Value) -> Frame {
    Frame {
        text: v.to_string().into(),
        assistant: false,
    }
}

/// An `update` frame whose `buffer` is the JSON text of `inner` plus a newline.
fn update(inner: &Value, assistant: bool) -> Frame {
    let frame = json!({"type": "update", "buffer": format!("{inner}\n")});
    Frame {
        text: frame.to_string().into(),
        assistant,
    }
}

/// `chat`/`thinking` updates for the words of `text`: deltas (" word"), or with `cumulative`
/// everything so far for that message.
fn word_updates(msg_id: &str, kind: &str, text: &str, cumulative: bool) -> Vec<Frame> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut so_far = String::new();
    words
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let delta = if i == 0 {
                (*w).to_owned()
            } else {
                format!(" {w}")
            };
            so_far.push_str(&delta);
            let content = if cumulative { so_far.clone() } else { delta };
            update(
                &json!({"id": msg_id, "type": kind, "chat": {"content": content}}),
                true,
            )
        })
        .collect()
}

/// Characters per `update` of a byte-exact answer: small enough that a tool-call block and
/// its markers are split over several frames, as a real model's tokens would split them.
const CHUNK_CHARS: usize = 12;

/// `chat` updates for `text` cut into [`CHUNK_CHARS`]-character pieces, kept byte-exact:
/// deltas, or with `cumulative` everything so far.
fn chunk_updates(msg_id: &str, kind: &str, text: &str, cumulative: bool) -> Vec<Frame> {
    let mut bounds: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .step_by(CHUNK_CHARS)
        .collect();
    bounds.push(text.len());
    bounds
        .windows(2)
        .map(|w| {
            let content = if cumulative {
                &text[..w[1]]
            } else {
                &text[w[0]..w[1]]
            };
            update(
                &json!({"id": msg_id, "type": kind, "chat": {"content": content}}),
                true,
            )
        })
        .collect()
}

/// The switches read from [`Faults`] when a turn is triggered.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub thinking: bool,
    pub cumulative: bool,
    pub extra_frames: bool,
}

impl Shape {
    pub fn from_faults(f: &Faults) -> Shape {
        Shape {
            thinking: f.thinking,
            cumulative: f.cumulative,
            extra_frames: f.extra_frames,
        }
    }
}

/// What fixes the frames of a turn, so a compacted turn can rebuild exactly the same frames.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    /// 1-based turn number.
    pub n: u32,
    pub shape: Shape,
    /// The `msg_<ms>_0` id of the assistant message.
    pub msg_id: String,
    /// The id of the user echo.
    pub echo_id: String,
    /// How the answer is cut into frames.
    pub split: Split,
}

impl Script {
    pub fn new(n: u32, shape: Shape, split: Split) -> Script {
        Script {
            n,
            shape,
            split,
            msg_id: format!("msg_{}_0", now_ms()),
            echo_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// Every frame of a turn, in order, the last one being `state{inProgress:false}`.
pub(crate) fn turn_frames(script: &Script, prompt: &str, reply: &str) -> Vec<Frame> {
    let (n, shape, msg_id) = (script.n, script.shape, script.msg_id.as_str());
    let mut frames = vec![outer(
        &json!({"type": "state", "state": {"inProgress": true, "taskId": format!("task_{n}")}}),
    )];
    let echo = json!({
        "id": script.echo_id,
        "role": "user",
        "content": [{"type": "text", "text": prompt}],
    });
    frames.push(update(&echo, false));
    if shape.thinking {
        frames.extend(word_updates(
            msg_id,
            "thinking",
            &thinking_text(n),
            shape.cumulative,
        ));
    }
    let chat = match script.split {
        Split::Words => word_updates(msg_id, "chat", reply, shape.cumulative),
        Split::Exact => chunk_updates(msg_id, "chat", reply, shape.cumulative),
    };
    let middle = chat.len() / 2;
    for (i, f) in chat.into_iter().enumerate() {
        if shape.extra_frames && i == middle {
            frames.push(outer(&json!({"type": "presence", "users": 1})));
            frames.push(update(
                &json!({"id": format!("call_{n}"), "type": "tool_call", "tool": {"name": "ls"}}),
                false,
            ));
        }
        frames.push(f);
    }
    if n == 1 {
        let label: Vec<&str> = prompt.split_whitespace().take(5).collect();
        let label = if label.is_empty() {
            "New chat".to_owned()
        } else {
            label.join(" ")
        };
        frames.push(outer(&json!({"type": "label", "label": label})));
    }
    frames.push(outer(
        &json!({"type": "state", "state": {"inProgress": false, "cancelled": false}}),
    ));
    frames
}

/// One pre-serialized outgoing frame, shared by every socket that sends it.
#[derive(Clone)]
pub(crate) struct Frame {
    pub text: Utf8Bytes,
    /// Counts toward `Faults::ws_drop_after`.
    pub assistant: bool,
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn reply_has_exact_word_count_and_prefix() {
        let r = reply_text("first line\n\n  last   line here  \n\n", 3, 20);
        assert!(r.starts_with("Turn 3: you said \"last line here\"."), "{r}");
        assert_eq!(r.split_whitespace().count(), 20);
        assert_eq!(
            r,
            reply_text("first line\n\n  last   line here  \n\n", 3, 20)
        );
        // Never shorter than the prefix.
        assert_eq!(reply_text("a b c", 1, 1), "Turn 1: you said \"a b c\".");
    }

    #[test]
    fn snippet_is_cut_to_sixty_chars() {
        let long = "x".repeat(100);
        let r = reply_text(&long, 1, 0);
        assert_eq!(r, format!("Turn 1: you said \"{}\".", "x".repeat(60)));
    }

    #[test]
    fn deltas_concatenate_to_the_reply() {
        let reply = reply_text("hello", 1, 12);
        let script = Script::new(1, SHAPE, Split::Words);
        let frames = turn_frames(&script, "hello", &reply);
        let again = turn_frames(&script, "hello", &reply);
        assert!(frames.iter().zip(&again).all(|(a, b)| a.text == b.text));
        let mut text = String::new();
        for f in &frames {
            let v: Value = serde_json::from_str(f.text.as_str()).unwrap();
            if v["type"] == "update" {
                let inner: Value = serde_json::from_str(v["buffer"].as_str().unwrap()).unwrap();
                if inner["type"] == "chat" {
                    text.push_str(inner["chat"]["content"].as_str().unwrap());
                }
            }
        }
        assert_eq!(text, reply);
        assert_eq!(frames.iter().filter(|f| f.assistant).count(), 12);
    }

    const SHAPE: Shape = Shape {
        thinking: false,
        cumulative: false,
        extra_frames: false,
    };

    /// `chat.content` of every chat update, in order.
    fn contents(frames: &[Frame]) -> Vec<String> {
        frames
            .iter()
            .filter_map(|f| {
                let v: Value = serde_json::from_str(f.text.as_str()).unwrap();
                let inner: Value = serde_json::from_str(v["buffer"].as_str()?).unwrap();
                (inner["type"] == "chat").then(|| inner["chat"]["content"].as_str().unwrap().into())
            })
            .collect()
    }

    #[test]
    fn exact_chunks_keep_every_byte_in_both_modes() {
        let reply = "I will call Wr\u{e9}te.\n<<<TOOL_CALLS>>>\n[{\"a\":  \"\u{1f980} x\"}]\n";
        let script = Script::new(1, SHAPE, Split::Exact);
        let deltas = contents(&turn_frames(&script, "p", reply));
        assert!(deltas.len() > 3);
        assert!(deltas.iter().all(|d| d.chars().count() <= CHUNK_CHARS));
        assert_eq!(deltas.concat(), reply);
        let cumulative = Script::new(
            1,
            Shape {
                cumulative: true,
                ..SHAPE
            },
            Split::Exact,
        );
        let snapshots = contents(&turn_frames(&cumulative, "p", reply));
        assert_eq!(snapshots.len(), deltas.len());
        assert_eq!(snapshots.last().map(String::as_str), Some(reply));
        assert!(snapshots.windows(2).all(|w| w[1].starts_with(&w[0])));
    }
}
