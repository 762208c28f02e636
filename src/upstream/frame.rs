//! The WebSocket frame grammar (protocol notes §5.2-5.5) and [`TurnTracker`], which turns the
//! frames of one chat history into the events of *our* turn. Pure: no I/O, fed one text frame
//! at a time.
//!
//! The tracker has to tell our turn apart from everything else the socket carries: the idle
//! `state` sent at connect, `history` snapshots, frames replayed from earlier turns, and chunks
//! that may be deltas or (defensively) cumulative buffers.

use serde_json::Value;

use super::TurnEvent;
use super::http::log_unknown_once;
use super::resume::TextLedger;
use super::tap::FrameTap;

/// Which stream a chunk of assistant text belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Chat,
    Thinking,
}

/// Follows one turn through the frames of its chat history.
#[derive(Debug)]
pub struct TurnTracker {
    /// Frames before arming belong to earlier turns and are ignored entirely.
    armed: bool,
    /// Our prompt, trimmed, to recognise its echo.
    prompt: String,
    /// A user echo of someone else's prompt was seen: we are inside a replayed earlier turn.
    foreign: bool,
    /// `state{inProgress:true}` was seen since arming, on the current socket.
    seen_in_progress: bool,
    /// Some assistant text was received since arming, on the current socket (a replay of text
    /// already delivered counts: it proves the socket is inside our turn).
    saw_text: bool,
    finished: bool,
    /// Text per (message id, kind): cumulative buffers, and what a replay must not repeat.
    ledger: TextLedger<(String, Kind)>,
    /// The tracker was armed before its first socket connected: the server replays the turn to
    /// a new socket (Gen-1), so a dropped socket can be replaced without losing text.
    replays_on_connect: bool,
    /// Where every frame is copied to, when someone listens (`doctor`).
    tap: Option<FrameTap>,
}

impl TurnTracker {
    /// A tracker for the turn whose prompt is `prompt`; `armed` for Gen-1, which triggers
    /// before connecting, so everything after connect may be ours.
    pub fn new(prompt: &str, armed: bool) -> Self {
        TurnTracker {
            armed,
            prompt: prompt.trim().to_string(),
            foreign: false,
            seen_in_progress: false,
            saw_text: false,
            finished: false,
            ledger: TextLedger::default(),
            replays_on_connect: armed,
            tap: None,
        }
    }

    /// Copies every frame fed from now on to `tap` (whether or not it belongs to our turn).
    pub fn tapped(mut self, tap: Option<FrameTap>) -> Self {
        self.tap = tap;
        self
    }

    /// Whether a dropped socket can be replaced: only when the turn was triggered before the
    /// first connect, which works only because the server replays the running turn to a new
    /// socket (Gen-1). A tracker armed later (Gen-2: connect, then trigger) cannot resume.
    pub fn can_resume(&self) -> bool {
        self.replays_on_connect
    }

    /// A new socket replaces a dropped one: it starts with the idle/in-progress state and
    /// replays the turn from its start, so the per-socket view starts again while the record
    /// of delivered text is kept.
    pub fn reconnected(&mut self) {
        self.foreign = false;
        self.seen_in_progress = false;
        self.saw_text = false;
        self.ledger.new_socket();
    }

    /// Whether any assistant text was handed out so far (across sockets).
    pub fn delivered_any(&self) -> bool {
        self.ledger.delivered_any()
    }

    /// From now on frames may belong to our turn (Gen-2: right before the trigger is sent).
    pub fn arm(&mut self) {
        self.armed = true;
    }

    pub fn is_armed(&self) -> bool {
        self.armed
    }

    /// Whether the turn has ended (`Finished` was returned).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Feeds one text frame; returns what it means for our turn.
    pub fn feed(&mut self, frame: &str) -> Vec<TurnEvent> {
        if let Some(tap) = &self.tap {
            tap.record(frame);
        }
        let frame = frame.trim();
        if frame.is_empty() || frame == "pong" || self.finished || !self.armed {
            return Vec::new();
        }
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            log_unknown_once("non-json-frame", || {
                format!("a frame that is not JSON ({} bytes)", frame.len())
            });
            return Vec::new();
        };
        match value.get("type").and_then(Value::as_str) {
            Some("update") => self.on_update(value.get("buffer")),
            Some("state") => self.on_state(value.get("state").unwrap_or(&Value::Null)),
            Some("history" | "label") => Vec::new(),
            other => {
                let kind = other.unwrap_or("<none>").to_string();
                log_unknown_once(&format!("frame:{kind}"), || format!("frame type `{kind}`"));
                Vec::new()
            }
        }
    }

    fn on_update(&mut self, buffer: Option<&Value>) -> Vec<TurnEvent> {
        let mut out = Vec::new();
        for inner in inner_messages(buffer) {
            self.on_inner(&inner, &mut out);
        }
        out
    }

    fn on_inner(&mut self, inner: &Value, out: &mut Vec<TurnEvent>) {
        if inner.get("role").and_then(Value::as_str) == Some("user") {
            // The echo of a prompt: ours ends any foreign replay, anyone else's starts one.
            self.foreign = echo_text(inner).trim() != self.prompt;
            return;
        }
        if self.foreign {
            return;
        }
        let kind = match inner.get("type").and_then(Value::as_str) {
            Some("chat") => Kind::Chat,
            Some("thinking") => Kind::Thinking,
            other => {
                let kind = other.unwrap_or("<none>").to_string();
                log_unknown_once(&format!("inner:{kind}"), || {
                    format!("update of kind `{kind}`")
                });
                return;
            }
        };
        let Some(chunk) = inner
            .get("chat")
            .and_then(|c| c.get("content"))
            .or_else(|| inner.get("content"))
            .and_then(Value::as_str)
        else {
            return;
        };
        let id = inner
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !chunk.is_empty() {
            self.saw_text = true;
        }
        let Some(delta) = self.ledger.push(&(id, kind), chunk) else {
            return;
        };
        out.push(match kind {
            Kind::Chat => TurnEvent::Content(delta),
            Kind::Thinking => TurnEvent::Reasoning(delta),
        });
    }

    fn on_state(&mut self, state: &Value) -> Vec<TurnEvent> {
        let in_progress = state.get("inProgress").and_then(Value::as_bool);
        let cancelled = state.get("cancelled").and_then(Value::as_bool) == Some(true);
        if in_progress == Some(true) {
            self.foreign = false;
            self.seen_in_progress = true;
            return Vec::new();
        }
        if self.foreign {
            return Vec::new();
        }
        // The idle state sent at connect (or a stale cancelled flag) is not our end of turn.
        let ends = in_progress == Some(false) || cancelled;
        if ends && (self.seen_in_progress || self.saw_text) {
            self.finished = true;
            return vec![TurnEvent::Finished { cancelled }];
        }
        Vec::new()
    }
}

/// The inner messages of an `update.buffer`: a string of one or more JSON texts (separated by
/// newlines or whitespace), an object, or an array of objects.
fn inner_messages(buffer: Option<&Value>) -> Vec<Value> {
    match buffer {
        Some(Value::String(text)) => {
            let mut out = Vec::new();
            for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
                match item {
                    Ok(v) => out.push(v),
                    Err(_) => {
                        log_unknown_once("buffer-not-json", || {
                            "an update buffer that is not JSON".to_string()
                        });
                        break;
                    }
                }
            }
            out
        }
        Some(obj @ Value::Object(_)) => vec![obj.clone()],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// The text of a user echo: `content` as a list of `{type:"text", text}` parts, or a string.
fn echo_text(inner: &Value) -> String {
    match inner.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn update(inner: Value) -> String {
        json!({"type": "update", "buffer": format!("{inner}\n")}).to_string()
    }
    fn chat(id: &str, text: &str) -> String {
        update(json!({"id": id, "type": "chat", "chat": {"content": text}}))
    }
    fn thinking(id: &str, text: &str) -> String {
        update(json!({"id": id, "type": "thinking", "chat": {"content": text}}))
    }
    fn echo(text: &str) -> String {
        update(json!({"id": "u1", "role": "user", "content": [{"type": "text", "text": text}]}))
    }
    fn state(in_progress: bool) -> String {
        json!({"type": "state", "state": {"inProgress": in_progress}}).to_string()
    }
    fn content(s: &str) -> TurnEvent {
        TurnEvent::Content(s.to_string())
    }
    const DONE: TurnEvent = TurnEvent::Finished { cancelled: false };

    /// Feeds all frames and collects every event.
    fn run(t: &mut TurnTracker, frames: &[String]) -> Vec<TurnEvent> {
        frames.iter().flat_map(|f| t.feed(f)).collect()
    }

    #[test]
    fn a_plain_turn() {
        let mut t = TurnTracker::new("hi", true);
        let evs = run(
            &mut t,
            &[
                state(false),
                echo("hi"),
                state(true),
                chat("m1", "Hello"),
                chat("m1", " there"),
                json!({"type": "label", "label": "Greeting"}).to_string(),
                json!({"type": "state", "state": {"inProgress": false, "cancelled": false}})
                    .to_string(),
            ],
        );
        assert_eq!(evs, vec![content("Hello"), content(" there"), DONE]);
        assert!(t.is_finished());
        assert!(t.feed(&chat("m1", "late")).is_empty());
    }

    #[test]
    fn idle_state_at_connect_is_ignored() {
        let mut t = TurnTracker::new("hi", true);
        assert!(t.feed(&state(false)).is_empty());
        assert!(
            t.feed(
                &json!({"type":"state","state":{"inProgress":false,"cancelled":true}}).to_string()
            )
            .is_empty()
        );
        assert!(!t.is_finished());
        assert_eq!(t.feed(&chat("m", "x")), vec![content("x")]);
        // Without any inProgress:true, emitted content is enough to end on inProgress:false.
        assert_eq!(t.feed(&state(false)), vec![DONE]);
    }

    #[test]
    fn in_progress_then_idle_ends_even_without_content() {
        let mut t = TurnTracker::new("hi", true);
        assert_eq!(run(&mut t, &[state(true), state(false)]), vec![DONE]);
    }

    #[test]
    fn cumulative_buffers_emit_only_suffixes() {
        let mut t = TurnTracker::new("p", true);
        let evs = run(
            &mut t,
            &[
                chat("m", "Hello"),
                chat("m", "Hello wor"),
                chat("m", "Hello world, friend"),
                // A resent snapshot longer than 8 characters adds nothing.
                chat("m", "Hello world, friend"),
            ],
        );
        assert_eq!(
            evs,
            vec![content("Hello"), content(" wor"), content("ld, friend")]
        );
    }

    #[test]
    fn short_repeated_chunks_are_deltas() {
        let mut t = TurnTracker::new("p", true);
        let evs = run(&mut t, &[chat("m", "ha"), chat("m", "ha"), chat("m", "ha")]);
        assert_eq!(evs, vec![content("ha"), content("ha"), content("ha")]);
    }

    #[test]
    fn accumulation_is_per_id_and_kind() {
        let mut t = TurnTracker::new("p", true);
        let evs = run(
            &mut t,
            &[
                thinking("m1", "Let me think"),
                thinking("m1", " more"),
                chat("m1", "Let me think about it"),
                chat("m2", "Answer"),
                chat("m2", "Answer!"),
            ],
        );
        assert_eq!(
            evs,
            vec![
                TurnEvent::Reasoning("Let me think".into()),
                TurnEvent::Reasoning(" more".into()),
                // Another kind: not a continuation of the thinking text.
                content("Let me think about it"),
                content("Answer"),
                content("!"),
            ]
        );
    }

    #[test]
    fn our_echo_is_not_forwarded() {
        let mut t = TurnTracker::new("  hi there \n", true);
        let evs = run(&mut t, &[echo("hi there"), chat("m", "yo")]);
        assert_eq!(evs, vec![content("yo")]);
    }

    #[test]
    fn replayed_foreign_turn_is_ignored() {
        let mut t = TurnTracker::new("second question", true);
        let evs = run(
            &mut t,
            &[
                state(false),
                echo("first question"),
                chat("old", "old answer"),
                state(false),
                echo("second question"),
                chat("new", "new answer"),
                state(false),
            ],
        );
        assert_eq!(evs, vec![content("new answer"), DONE]);
    }

    #[test]
    fn foreign_mode_ends_on_in_progress() {
        let mut t = TurnTracker::new("mine", true);
        let evs = run(
            &mut t,
            &[
                echo("transformed by the server"),
                chat("a", "ignored"),
                state(true),
                chat("b", "counted"),
                state(false),
            ],
        );
        assert_eq!(evs, vec![content("counted"), DONE]);
    }

    #[test]
    fn unarmed_frames_are_history() {
        let mut t = TurnTracker::new("q", false);
        assert!(!t.is_armed());
        let evs = run(&mut t, &[state(true), chat("old", "old"), state(false)]);
        assert!(evs.is_empty());
        assert!(!t.is_finished());
        t.arm();
        let evs = run(
            &mut t,
            &[state(false), state(true), chat("n", "new"), state(false)],
        );
        assert_eq!(evs, vec![content("new"), DONE]);
    }

    #[test]
    fn cancelled_turn() {
        let mut t = TurnTracker::new("q", true);
        let evs = run(
            &mut t,
            &[
                state(true),
                chat("m", "part"),
                json!({"type":"state","state":{"inProgress":false,"cancelled":true,"taskId":"t"}})
                    .to_string(),
            ],
        );
        assert_eq!(
            evs,
            vec![content("part"), TurnEvent::Finished { cancelled: true }]
        );
    }

    #[test]
    fn noise_is_ignored() {
        let mut t = TurnTracker::new("q", true);
        let evs = run(
            &mut t,
            &[
                "pong".to_string(),
                "not json at all".to_string(),
                json!({"type": "history", "messages": [{"type": "chat", "chat": {"content": "old"}}]})
                    .to_string(),
                json!({"type": "label", "label": "x"}).to_string(),
                json!({"type": "whatever", "buffer": "x"}).to_string(),
                json!({"no": "type"}).to_string(),
                update(json!({"id": "t", "type": "tool_call", "chat": {"content": "ls"}})),
                json!({"type": "update", "buffer": "{broken"}).to_string(),
                json!({"type": "update"}).to_string(),
            ],
        );
        assert!(evs.is_empty(), "{evs:?}");
        assert!(!t.is_finished());
    }

    #[test]
    fn multi_line_buffer() {
        let mut t = TurnTracker::new("q", true);
        let buffer = format!(
            "{}\n{}\n\n{}\n",
            json!({"role": "user", "content": [{"type": "text", "text": "q"}]}),
            json!({"id": "m", "type": "thinking", "chat": {"content": "hmm"}}),
            json!({"id": "m", "type": "chat", "chat": {"content": "ok"}}),
        );
        let frame = json!({"type": "update", "buffer": buffer}).to_string();
        assert_eq!(
            t.feed(&frame),
            vec![TurnEvent::Reasoning("hmm".into()), content("ok")]
        );
    }

    #[test]
    fn object_buffer() {
        let mut t = TurnTracker::new("q", true);
        let frame = json!({"type": "update",
            "buffer": {"id": "m", "type": "chat", "chat": {"content": "obj"}}})
        .to_string();
        assert_eq!(t.feed(&frame), vec![content("obj")]);
    }
}
