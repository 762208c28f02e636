//! [`TextLedger`]: how much of each message of a turn was already handed to the consumer, so
//! that a replay after a reconnect delivers only what lies beyond it. Pure: no sockets (the
//! reconnect itself is `stream::reconnect`'s), fed by the [`super::frame::TurnTracker`].
//!
//! A Gen-1 history replays the running turn's frames from its start to every new socket
//! (protocol notes §5.1), as deltas or as cumulative buffers: the ledger skips the part already
//! delivered. Gen-2 does not replay; its `history` snapshot after a reconnect is matched
//! against [`TextLedger::delivered_text`] and adopted with [`TextLedger::adopt`].

use std::collections::HashMap;
use std::hash::Hash;

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
