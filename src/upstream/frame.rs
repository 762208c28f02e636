//! The WebSocket frame grammar (protocol notes §5.2-5.5) and [`TurnTracker`], which turns the
//! frames of one chat history into the events of *our* turn. Pure: no I/O, fed one text frame
//! at a time.
//!
//! The tracker has to tell our turn apart from everything else the socket carries: the idle
//! `state` sent at connect, `history` snapshots, frames replayed from earlier turns, and chunks
//! that may be deltas or (defensively) cumulative buffers. After a Gen-2 reconnect it reads the
//! `history` snapshot to pick up where the dropped socket left off (see [`super::stream::reconnect`]).

use serde_json::Value;

use super::TurnEvent;
use super::answer::log_unknown_once;
use super::ledger::TextLedger;
use super::snapshot;
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
    /// The message that received text last: the one in progress when a socket drops.
    last_key: Option<(String, Kind)>,
    /// Gen-2, after a reconnect: the `history` snapshot has not been read yet.
    awaiting_snapshot: bool,
    /// Gen-2, after a reconnect: the state sent at connect said the chat is idle, so our turn
    /// ended while no socket was open; it finishes once the snapshot delivered the rest.
    idle_at_connect: bool,
    /// Why resuming failed (the reader ends the turn with it).
    resume_failed: Option<String>,
    /// Gen-2: the ids of messages the last snapshot mentions, to tell a message that began
    /// while no socket was open (its start is lost) from one that begins live.
    snapshot_ids: Vec<String>,
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
            last_key: None,
            awaiting_snapshot: false,
            idle_at_connect: false,
            resume_failed: None,
            snapshot_ids: Vec::new(),
            tap: None,
        }
    }

    /// Copies every frame fed from now on to `tap` (whether or not it belongs to our turn).
    pub fn tapped(mut self, tap: Option<FrameTap>) -> Self {
        self.tap = tap;
        self
    }

    /// Whether a dropped socket can be replaced. Gen-1 (triggered before the first connect):
    /// always, as the server replays the running turn to a new socket. Gen-2 (connect, then
    /// trigger): while answer text is in progress, whose continuation the `history` snapshot of
    /// the new socket can hold. Not before any text (nothing to find it by), nor during
    /// reasoning: the answer may begin while no socket is open, with no prefix to find it by.
    pub fn can_resume(&self) -> bool {
        self.replays_on_connect
            || (self.armed && self.last_key.as_ref().is_some_and(|k| k.1 == Kind::Chat))
    }

    /// A new socket replaces a dropped one. Gen-1: it starts with the idle/in-progress state and
    /// replays the turn from its start, so the per-socket view starts again while the record
    /// of delivered text is kept. Gen-2: it starts with the state and the `history` snapshot,
    /// then only live frames, so the text delivered so far is kept to be found in the snapshot.
    pub fn reconnected(&mut self) {
        self.foreign = false;
        self.seen_in_progress = false;
        self.saw_text = false;
        if self.replays_on_connect {
            self.ledger.new_socket();
        } else {
            self.awaiting_snapshot = true;
            self.idle_at_connect = false;
        }
    }

    /// Why resuming the turn failed, if it did: the turn cannot go on without losing text.
    pub fn resume_failed(&self) -> Option<&str> {
        self.resume_failed.as_deref()
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
        if frame.is_empty()
            || frame == "pong"
            || self.finished
            || !self.armed
            || self.resume_failed.is_some()
        {
            return Vec::new();
        }
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            log_unknown_once("non-json-frame", || {
                format!("a frame that is not JSON ({} bytes)", frame.len())
            });
            return Vec::new();
        };
        if self.awaiting_snapshot {
            return self.before_snapshot(&value);
        }
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
        let key = (id, kind);
        if !chunk.is_empty() {
            self.saw_text = true;
        }
        if !key.0.is_empty()
            && self.ledger.delivered_text(&key).is_empty()
            && self.snapshot_ids.binary_search(&key.0).is_ok()
        {
            self.fail("a message began while no socket was open, so its start is missing");
            return;
        }
        let Some(delta) = self.ledger.push(&key, chunk) else {
            return;
        };
        self.last_key = Some(key);
        out.push(event(kind, delta));
    }

    /// Gen-2 after a reconnect: the state at connect says whether the chat is idle; the
    /// `history` snapshot must hold the in-progress message, continuing what was delivered.
    /// A live update before any snapshot means the snapshot is not coming.
    fn before_snapshot(&mut self, value: &Value) -> Vec<TurnEvent> {
        match value.get("type").and_then(Value::as_str) {
            Some("state") => {
                let in_progress = value
                    .get("state")
                    .and_then(|s| s.get("inProgress"))
                    .and_then(Value::as_bool);
                match in_progress {
                    Some(true) => self.seen_in_progress = true,
                    Some(false) => self.idle_at_connect = true,
                    None => {}
                }
                Vec::new()
            }
            Some("history") => self.on_snapshot(value),
            Some("update") => {
                self.fail("no history snapshot came before the live frames");
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Hands on what the snapshot holds beyond the delivered text of each message it continues;
    /// the message in progress at the drop must be among them.
    fn on_snapshot(&mut self, snapshot: &Value) -> Vec<TurnEvent> {
        let Some(current) = self.last_key.clone() else {
            self.fail("nothing was delivered to find in the history snapshot");
            return Vec::new();
        };
        let found = snapshot::continuation(snapshot, self.ledger.delivered_text(&current));
        let Some(text) = found else {
            self.fail("the history snapshot after reconnecting does not hold the answer so far");
            return Vec::new();
        };
        self.awaiting_snapshot = false;
        self.saw_text = true;
        self.snapshot_ids = snapshot::ids(snapshot);
        let mut out = Vec::new();
        let others: Vec<_> = self.ledger.keys().filter(|k| *k != current).collect();
        for key in others {
            let seen = self.ledger.delivered_text(&key);
            if let Some(more) = snapshot::continuation(snapshot, seen)
                .and_then(|full| self.ledger.adopt(&key, &full))
            {
                out.push(event(key.1, more));
            }
        }
        if let Some(more) = self.ledger.adopt(&current, &text) {
            out.push(event(current.1, more));
        }
        if self.idle_at_connect {
            self.finished = true;
            out.push(TurnEvent::Finished { cancelled: false });
        }
        out
    }

    fn fail(&mut self, why: &str) {
        self.resume_failed = Some(format!(
            "the stream dropped and Gen-2 cannot resume it without losing text: {why}"
        ));
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

fn event(kind: Kind, text: String) -> TurnEvent {
    match kind {
        Kind::Chat => TurnEvent::Content(text),
        Kind::Thinking => TurnEvent::Reasoning(text),
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
#[path = "frame_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "frame_props.rs"]
mod props;

#[cfg(test)]
#[path = "frame_resume_tests.rs"]
mod resume_tests;
