//! Resuming a turn after its WebSocket dropped: the reconnect schedule and loop
//! (`reconnect`, called by the reader task in `stream`), and [`TextLedger`], which remembers
//! how much of each message was already handed to the consumer so that a replay after a
//! reconnect delivers only what lies beyond it. The tests drive the tracker and the reader task
//! through drops and replays.
//!
//! What the protocol gives (notes §5.1): a Gen-1 history replays the running turn's frames from
//! its start to every new socket (Gen-1 clients trigger first and connect after, so this replay
//! is what they rely on even without a drop). A reconnect therefore sees the same messages
//! again, as deltas or as cumulative buffers, and the ledger skips the part already delivered.
//! Gen-2 does not replay a running turn (a socket that connects mid-turn only gets live frames),
//! but it pushes a `history` snapshot right after connect (notes §5.3): the tracker finds the
//! in-progress message in it by the text already delivered ([`super::snapshot`]), hands on only
//! the rest, and live frames continue from there. When the snapshot holds no such text, the
//! turn ends with an error instead of silently losing text.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::sync::mpsc;

use super::stream::{Ws, connect};
use super::transport::Transport;
use super::{TurnEvent, UpstreamConfig, UpstreamError};

/// Pauses before the reconnect attempts that follow a drop. Each attempt's handshake is bounded
/// by the request timeout; the count starts again once a resumed socket delivers new text.
pub const BACKOFF: [Duration; 3] = [
    Duration::from_millis(100),
    Duration::from_millis(300),
    Duration::from_millis(900),
];

/// Reconnects allowed for one turn in total, progress or not: a server that keeps dropping the
/// socket after a little new text must not keep the turn alive forever.
pub const MAX_RECONNECTS: u32 = 10;

/// The text of a turn per message (`(id, kind)`), split into what the current socket sent and
/// how much of it the consumer already has.
#[derive(Debug)]
pub struct TextLedger<K> {
    /// The message text as received on the current socket (deltas concatenated, or the latest
    /// cumulative buffer). Cleared on reconnect: the replay rebuilds it from the start.
    received: HashMap<K, String>,
    /// Bytes of each message already delivered. Survives reconnects.
    delivered: HashMap<K, usize>,
}

impl<K: Hash + Eq + Clone> Default for TextLedger<K> {
    fn default() -> Self {
        TextLedger {
            received: HashMap::new(),
            delivered: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> TextLedger<K> {
    /// Records one chunk of message `key` and returns the text not delivered yet, if any.
    ///
    /// A chunk is taken as a cumulative buffer when it extends everything received so far for
    /// its message (protocol notes §5.4: a cheap guard, deltas are the norm); the same snapshot
    /// sent again adds nothing; anything else is a delta.
    pub fn push(&mut self, key: &K, chunk: &str) -> Option<String> {
        let received = self.received.entry(key.clone()).or_default();
        if !received.is_empty() && chunk.len() > received.len() && chunk.starts_with(&**received) {
            *received = chunk.to_string();
        } else if chunk == received && received.len() > 8 {
            // The same snapshot sent again.
        } else {
            received.push_str(chunk);
        }
        let delivered = self.delivered.entry(key.clone()).or_default();
        // A replay shorter than what was delivered (or cut inside a character) adds nothing yet.
        let new = received.get(*delivered..).filter(|s| !s.is_empty())?;
        *delivered = received.len();
        Some(new.to_string())
    }

    /// A new socket starts: its replay rebuilds each message from the start.
    pub fn new_socket(&mut self) {
        self.received.clear();
    }

    /// The text of message `key` as delivered so far (Gen-2 keeps it across a reconnect, to
    /// find its continuation in the `history` snapshot).
    pub fn delivered_text(&self, key: &K) -> &str {
        let text = self.received.get(key).map_or("", String::as_str);
        let n = self.delivered.get(key).copied().unwrap_or(0);
        text.get(..n).unwrap_or(text)
    }

    /// Takes `full` as the whole text of message `key` so far (read from a snapshot) and returns
    /// the part not delivered yet, if any. Live chunks after it continue from there.
    pub fn adopt(&mut self, key: &K, full: &str) -> Option<String> {
        self.received.insert(key.clone(), full.to_string());
        let delivered = self.delivered.entry(key.clone()).or_default();
        let new = full.get(*delivered..).filter(|s| !s.is_empty())?;
        *delivered = full.len();
        Some(new.to_string())
    }

    /// The messages that had text delivered.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.delivered
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, _)| k.clone())
    }

    /// Whether any text was delivered at all.
    pub fn delivered_any(&self) -> bool {
        self.delivered.values().any(|n| *n > 0)
    }
}

/// Tries new sockets after the pauses of [`BACKOFF`] while the budgets allow. `Ok(None)` when
/// the consumer went away meanwhile; `Err` with the last reason when every attempt failed.
pub(super) async fn reconnect(
    transport: &Transport,
    cfg: &UpstreamConfig,
    url: &str,
    tx: &mpsc::Sender<Result<TurnEvent, UpstreamError>>,
    fruitless: &mut usize,
    total: &mut u32,
) -> Result<Option<Ws>, String> {
    let mut last = "the socket kept dropping without new text".to_string();
    while let Some(pause) = BACKOFF.get(*fruitless).copied() {
        if *total >= MAX_RECONNECTS {
            return Err(format!("{last} (limit of {MAX_RECONNECTS} reached)"));
        }
        *fruitless += 1;
        *total += 1;
        metrics::counter!(crate::metrics::WS_RECONNECTS).increment(1);
        let attempt = async {
            tokio::time::sleep(pause).await;
            connect(transport, cfg, url).await
        };
        tokio::select! {
            () = tx.closed() => return Ok(None),
            result = attempt => match result {
                Ok(ws) => return Ok(Some(ws)),
                Err(e) => {
                    tracing::debug!(error = %e, attempt = *total, "reconnect failed");
                    last = e.to_string();
                }
            },
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(l: &mut TextLedger<&'static str>, key: &'static str, chunks: &[&str]) -> String {
        chunks.iter().filter_map(|c| l.push(&key, c)).collect()
    }

    #[test]
    fn deltas_replayed_after_a_drop_are_delivered_once() {
        let mut l = TextLedger::default();
        assert_eq!(feed(&mut l, "m", &["Turn", " 1:", " you"]), "Turn 1: you");
        l.new_socket();
        // The replay starts from the beginning and goes further.
        assert_eq!(l.push(&"m", "Turn"), None);
        assert_eq!(l.push(&"m", " 1:"), None);
        assert_eq!(l.push(&"m", " you"), None);
        assert_eq!(feed(&mut l, "m", &[" said", " hi"]), " said hi");
    }

    #[test]
    fn cumulative_buffers_replayed_after_a_drop_are_delivered_once() {
        let mut l = TextLedger::default();
        assert_eq!(
            feed(&mut l, "m", &["Hello", "Hello wor", "Hello world"]),
            "Hello world"
        );
        l.new_socket();
        assert_eq!(l.push(&"m", "Hello"), None);
        assert_eq!(l.push(&"m", "Hello wor"), None);
        assert_eq!(l.push(&"m", "Hello world"), None);
        assert_eq!(
            l.push(&"m", "Hello world, friend").as_deref(),
            Some(", friend")
        );
    }

    #[test]
    fn a_replay_chunk_that_straddles_the_delivered_point_yields_its_tail() {
        let mut l = TextLedger::default();
        assert_eq!(feed(&mut l, "m", &["abc", "def"]), "abcdef");
        l.new_socket();
        // The server may re-chunk its buffer: one chunk covering old and new text.
        assert_eq!(l.push(&"m", "abcdefgh").as_deref(), Some("gh"));
    }

    #[test]
    fn messages_are_counted_separately() {
        let mut l = TextLedger::default();
        assert_eq!(feed(&mut l, "think", &["Let me", " see"]), "Let me see");
        assert_eq!(feed(&mut l, "chat", &["Answer"]), "Answer");
        l.new_socket();
        assert_eq!(feed(&mut l, "think", &["Let me", " see"]), "");
        // A message first seen on the new socket is delivered whole.
        assert_eq!(feed(&mut l, "other", &["New"]), "New");
        assert_eq!(feed(&mut l, "chat", &["Answer", "!"]), "!");
    }

    #[test]
    fn a_drop_before_any_text_loses_nothing() {
        let mut l: TextLedger<&str> = TextLedger::default();
        assert!(!l.delivered_any());
        l.new_socket();
        assert_eq!(feed(&mut l, "m", &["a", "b"]), "ab");
        assert!(l.delivered_any());
    }

    #[test]
    fn multibyte_text_is_cut_on_character_boundaries() {
        let mut l = TextLedger::default();
        assert_eq!(feed(&mut l, "m", &["héllo"]), "héllo");
        l.new_socket();
        assert_eq!(feed(&mut l, "m", &["h", "é", "llo", " wörld"]), " wörld");
    }

    #[test]
    fn repeated_short_chunks_stay_deltas_and_snapshots_are_not_doubled() {
        let mut l = TextLedger::default();
        assert_eq!(feed(&mut l, "m", &["ha", "ha", "ha"]), "hahaha");
        let mut l = TextLedger::default();
        assert_eq!(
            feed(&mut l, "m", &["Hello world", "Hello world"]),
            "Hello world"
        );
    }
}

/// The tracker across a reconnect, frame by frame.
#[cfg(test)]
mod tracker_tests {
    use super::super::TurnEvent;
    use super::super::frame::TurnTracker;
    use serde_json::json;

    fn chat(id: &str, text: &str) -> String {
        let inner = json!({"id": id, "type": "chat", "chat": {"content": text}});
        json!({"type": "update", "buffer": format!("{inner}\n")}).to_string()
    }
    fn echo(text: &str) -> String {
        let inner =
            json!({"id": "u1", "role": "user", "content": [{"type": "text", "text": text}]});
        json!({"type": "update", "buffer": format!("{inner}\n")}).to_string()
    }
    fn state(in_progress: bool) -> String {
        json!({"type": "state", "state": {"inProgress": in_progress}}).to_string()
    }
    fn content(s: &str) -> TurnEvent {
        TurnEvent::Content(s.to_string())
    }
    const DONE: TurnEvent = TurnEvent::Finished { cancelled: false };

    fn run(t: &mut TurnTracker, frames: &[String]) -> Vec<TurnEvent> {
        frames.iter().flat_map(|f| t.feed(f)).collect()
    }

    fn gen1_turn(prompt: &str, words: &[&str]) -> Vec<String> {
        let mut frames = vec![state(true), echo(prompt)];
        frames.extend(words.iter().map(|w| chat("m", w)));
        frames.push(state(false));
        frames
    }

    fn text_of(evs: &[TurnEvent]) -> String {
        evs.iter()
            .filter_map(|e| match e {
                TurnEvent::Content(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_gen1_replay_after_a_drop_mid_turn_delivers_each_piece_once() {
        let words = ["Turn", " 1:", " you", " said", " hi"];
        let frames = gen1_turn("hi", &words);
        let mut t = TurnTracker::new("hi", true);
        assert!(t.can_resume());
        // Connect preamble (running turn), then the turn until the drop after 3 words.
        let mut evs = run(&mut t, &[state(true)]);
        evs.extend(run(&mut t, &frames[..5]));
        assert_eq!(text_of(&evs), "Turn 1: you");
        t.reconnected();
        // The new socket's preamble then the whole turn from its start.
        let mut after = run(&mut t, &[state(true)]);
        after.extend(run(&mut t, &frames));
        assert_eq!(text_of(&after), " said hi");
        assert_eq!(after.last(), Some(&DONE));
        assert!(t.is_finished());
    }

    #[test]
    fn a_gen1_reconnect_after_the_turn_ended_ignores_the_idle_state_at_connect() {
        let frames = gen1_turn("hi", &["a", "b", "c"]);
        let mut t = TurnTracker::new("hi", true);
        let evs = run(&mut t, &frames[..3]);
        assert_eq!(text_of(&evs), "a");
        t.reconnected();
        // The turn finished meanwhile: the preamble says idle, then the turn is replayed.
        assert!(t.feed(&state(false)).is_empty());
        assert!(!t.is_finished());
        let after = run(&mut t, &frames);
        assert_eq!(after, vec![content("b"), content("c"), DONE]);
    }

    #[test]
    fn a_drop_before_any_text_replays_everything() {
        let frames = gen1_turn("q", &["x", "y"]);
        let mut t = TurnTracker::new("q", true);
        assert!(run(&mut t, &frames[..2]).is_empty());
        assert!(!t.delivered_any());
        t.reconnected();
        assert_eq!(run(&mut t, &frames), vec![content("x"), content("y"), DONE]);
        assert!(t.delivered_any());
    }

    #[test]
    fn a_replay_with_cumulative_buffers_after_a_drop() {
        let frames: Vec<String> = [state(true), echo("q")]
            .into_iter()
            .chain(["Hello", "Hello wor", "Hello world"].map(|c| chat("m", c)))
            .chain([state(false)])
            .collect();
        let mut t = TurnTracker::new("q", true);
        assert_eq!(text_of(&run(&mut t, &frames[..4])), "Hello wor");
        t.reconnected();
        assert_eq!(run(&mut t, &frames), vec![content("ld"), DONE]);
    }

    #[test]
    fn a_tracker_armed_after_connect_resumes_only_once_answer_text_was_delivered() {
        let mut t = TurnTracker::new("q", false);
        t.arm();
        assert!(!t.can_resume());
        t.feed(&chat("m", "a"));
        assert!(t.can_resume());
    }
}

/// The reader task against small WebSocket servers that drop and replay.
#[cfg(test)]
#[path = "resume_socket_tests.rs"]
mod socket_tests;
