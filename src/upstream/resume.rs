//! Resuming a turn after its WebSocket dropped: the reconnect schedule and [`TextLedger`], which
//! remembers how much of each message was already handed to the consumer so that a replay
//! after a reconnect delivers only what lies beyond it.
//!
//! What the protocol gives (notes §5.1): a Gen-1 history replays the running turn's frames from
//! its start to every new socket (Gen-1 clients trigger first and connect after, so this replay
//! is what they rely on even without a drop). A reconnect therefore sees the same messages
//! again, as deltas or as cumulative buffers, and the ledger skips the part already delivered.
//! Gen-2 documents no replay of a running turn (a socket that connects mid-turn only gets live
//! frames), so a dropped Gen-2 stream is not resumed: it ends with an error instead of silently
//! losing text.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

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

    /// Whether any text was delivered at all.
    pub fn delivered_any(&self) -> bool {
        self.delivered.values().any(|n| *n > 0)
    }
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
