//! The `history` frame a socket gets right after connect (protocol notes §5.3: "full history
//! snapshot pushed right after connect"; its shape is unpublished). Each finished turn is a
//! user and an assistant message; the running turn is its prompt and an assistant message
//! marked in progress, holding the thinking and text produced so far as typed parts. That is
//! all a Gen-2 client that reconnects mid-turn can learn of what it missed, since live frames
//! start only after the socket opened.

use serde_json::{Value, json};

use super::state::{Turn, TurnLog};

/// The snapshot of `log`, or `None` for a history without turns. `with_running` is false under
/// the `history_without_running_turn` fault (a snapshot of finished turns only).
pub(super) fn history(log: &TurnLog, with_running: bool) -> Option<Value> {
    let mut messages = Vec::new();
    for t in &log.turns {
        if t.done {
            messages.push(json!({"role": "user", "content": t.prompt}));
            messages.push(json!({"role": "assistant", "content": t.reply}));
        } else if with_running && !t.silent {
            let (thinking, text) = so_far(t);
            messages.push(json!({"role": "user", "content": t.prompt}));
            messages.push(
                json!({"id": t.script.msg_id, "role": "assistant", "inProgress": true,
                "parts": [{"type": "thinking", "text": thinking}, {"type": "text", "text": text}]}),
            );
        }
    }
    (!messages.is_empty()).then(|| json!({"type": "history", "messages": messages}))
}

/// The thinking and the text a running turn has streamed so far, read back from its frames.
fn so_far(turn: &Turn) -> (String, String) {
    let (mut thinking, mut text) = (String::new(), String::new());
    for frame in turn.frames().iter().filter(|f| f.assistant) {
        let Some(inner) = serde_json::from_str::<Value>(&frame.text)
            .ok()
            .and_then(|v| v["buffer"].as_str().map(str::to_owned))
            .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        else {
            continue;
        };
        let target = match inner["type"].as_str() {
            Some("thinking") => &mut thinking,
            Some("chat") => &mut text,
            _ => continue,
        };
        let content = inner["chat"]["content"].as_str().unwrap_or_default();
        if turn.script.shape.cumulative {
            *target = content.to_owned();
        } else {
            target.push_str(content);
        }
    }
    (thinking, text)
}
