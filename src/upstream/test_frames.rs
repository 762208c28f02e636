//! Upstream WebSocket frames as the unit tests of the tracker and the stream build them (one
//! definition; the integration tests use the simulator, which writes its own).

use serde_json::{Value, json};

use super::TurnEvent;
use super::frame::TurnTracker;

/// An `update` frame carrying one JSON line in its `buffer`.
pub fn update(inner: Value) -> String {
    json!({"type": "update", "buffer": format!("{inner}\n")}).to_string()
}

/// A piece of the answer of message `id`.
pub fn chat(id: &str, text: &str) -> String {
    update(json!({"id": id, "type": "chat", "chat": {"content": text}}))
}

/// A piece of thinking of message `id`.
pub fn thinking(id: &str, text: &str) -> String {
    update(json!({"id": id, "type": "thinking", "chat": {"content": text}}))
}

/// The echo of the user's prompt.
pub fn echo(text: &str) -> String {
    update(json!({"id": "u1", "role": "user", "content": [{"type": "text", "text": text}]}))
}

/// The `state` frame: whether a turn is running.
pub fn state(in_progress: bool) -> String {
    json!({"type": "state", "state": {"inProgress": in_progress}}).to_string()
}

pub fn content(s: &str) -> TurnEvent {
    TurnEvent::Content(s.to_string())
}

pub const DONE: TurnEvent = TurnEvent::Finished { cancelled: false };

/// Feeds all frames and collects every event.
pub fn run(t: &mut TurnTracker, frames: &[String]) -> Vec<TurnEvent> {
    frames.iter().flat_map(|f| t.feed(f)).collect()
}
