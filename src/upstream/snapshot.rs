//! Reading the Gen-2 `history` frame (protocol notes §5.3: a full history snapshot pushed right
//! after connect; its shape is unpublished) to resume a turn whose socket dropped.
//!
//! Gen-2 does not replay a running turn to a new socket, only live frames from then on; what
//! the turn produced while no socket was open is only in the snapshot. The reader makes no
//! assumption about the snapshot's shape: it collects every text in it (strings at any depth,
//! JSON held in strings, and the joined `text` of the parts of an array) and looks
//! for the one that continues what the client already has. Pure, no I/O.

use serde_json::Value;

/// The text in `snapshot` that starts with `seen` (the message as delivered so far), if any:
/// the last such text in document order, as the in-progress message comes last in a history.
/// `seen` must not be empty: an empty prefix would match anything.
pub fn continuation(snapshot: &Value, seen: &str) -> Option<String> {
    if seen.is_empty() {
        return None;
    }
    let mut texts = Vec::new();
    collect(snapshot, &mut texts, 0);
    texts.into_iter().rev().find(|t| t.starts_with(seen))
}

/// The short, space-free texts of the snapshot (message ids among them): a message whose id is
/// here began before the snapshot was taken, so a client that first sees it live missed its
/// start. Bounded, so a huge snapshot costs little to keep.
pub fn ids(snapshot: &Value) -> Vec<String> {
    let mut texts = Vec::new();
    collect(snapshot, &mut texts, 0);
    texts.retain(|t| !t.is_empty() && t.len() <= 128 && !t.contains(char::is_whitespace));
    texts.sort_unstable();
    texts.dedup();
    texts.truncate(10_000);
    texts
}

/// How deep the reader follows nesting (JSON in strings included), against hostile input.
const MAX_DEPTH: usize = 32;

fn collect(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match v {
        Value::String(s) => {
            out.push(s.clone());
            let t = s.trim_start();
            if (t.starts_with('{') || t.starts_with('['))
                && let Ok(inner) = serde_json::from_str::<Value>(s)
            {
                collect(&inner, out, depth + 1);
            }
        }
        Value::Array(items) => {
            // A message cut into parts: their texts joined. Before the parts themselves, so
            // that a whole message among them (listed later) wins over a join across messages.
            let joined: String = items.iter().filter_map(part_text).collect();
            if !joined.is_empty() {
                out.push(joined);
            }
            for item in items {
                collect(item, out, depth + 1);
            }
        }
        Value::Object(map) => {
            for value in map.values() {
                collect(value, out, depth + 1);
            }
        }
        _ => {}
    }
}

/// The text of one part of a message: a string, or an object's `text` string.
fn part_text(part: &Value) -> Option<&str> {
    match part {
        Value::String(s) => Some(s),
        Value::Object(o) => o.get("text").and_then(Value::as_str),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_the_message_that_continues_what_was_seen_whatever_the_shape() {
        let seen = "Turn 2: you said";
        for snapshot in [
            json!({"messages": [{"role": "assistant", "content": "Turn 2: you said hi"}]}),
            json!({"history": {"items": [{"chat": {"content": "Turn 2: you said hi"}}]}}),
            json!([{"role": "assistant", "content": [{"type": "text", "text": "Turn 2:"},
                {"type": "text", "text": " you said hi"}]}]),
            json!({"buffer": "{\"type\":\"chat\",\"chat\":{\"content\":\"Turn 2: you said hi\"}}\n"}),
            json!({"parts": ["Turn 2: you", " said", " hi"]}),
        ] {
            assert_eq!(
                continuation(&snapshot, seen).as_deref(),
                Some("Turn 2: you said hi"),
                "{snapshot}"
            );
        }
    }

    #[test]
    fn the_last_match_wins_so_an_earlier_turn_with_the_same_start_is_skipped() {
        let snapshot = json!({"messages": [
            {"role": "user", "content": "q1"}, {"role": "assistant", "content": "Sure, first answer"},
            {"role": "user", "content": "q2"}, {"role": "assistant", "content": "Sure, sec"}]});
        assert_eq!(
            continuation(&snapshot, "Sure, s").as_deref(),
            Some("Sure, sec")
        );
    }

    #[test]
    fn nothing_matches_when_the_snapshot_lacks_the_text_or_nothing_was_seen() {
        let snapshot = json!({"messages": [{"role": "assistant", "content": "other words"}]});
        assert_eq!(continuation(&snapshot, "Turn 2"), None);
        assert_eq!(continuation(&snapshot, ""), None);
        assert_eq!(continuation(&json!(null), "x"), None);
    }

    #[test]
    fn ids_are_the_short_words_of_the_snapshot() {
        let snapshot = json!({"messages": [{"id": "msg_1_0", "role": "assistant",
            "content": "an answer with spaces"}]});
        assert_eq!(ids(&snapshot), ["assistant", "msg_1_0"]);
    }

    #[test]
    fn deep_nesting_is_cut_off_without_overflowing() {
        let mut v = json!("needle and more");
        for _ in 0..1_000 {
            v = json!([v]);
        }
        assert_eq!(continuation(&v, "needle"), None);
    }
}
