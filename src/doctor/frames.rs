//! [`FrameSurvey`]: what the WebSocket frames of one turn looked like: the frame types seen
//! (with the kinds inside `update` frames), and whatever the turn tracker does not know: frame
//! types, update kinds, fields. Pure, fed the frames a [`crate::upstream::tap::FrameTap`]
//! copied.
//!
//! Unknown things are listed, not failed: cto.new adds frame types over time and the tracker
//! ignores what it does not know, so they only matter when a turn also goes wrong. The lists
//! are what a bug report needs to update the tracker.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Outer frame types the tracker understands, and the fields it knows on them.
const KNOWN_OUTER: &[&str] = &["update", "state", "history", "label"];
const KNOWN_OUTER_FIELDS: &[&str] = &["type", "buffer", "state", "label", "messages"];
/// Kinds of the inner messages of an `update` the tracker understands.
const KNOWN_INNER: &[&str] = &["chat", "thinking"];
const KNOWN_INNER_FIELDS: &[&str] = &["id", "type", "role", "chat", "content"];

/// Counts of everything seen in one turn's frames, in name order (stable output).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FrameSurvey {
    /// Outer `type` (an update's inner kind as `update/<kind>`, a user echo as `update/user`).
    pub seen: BTreeMap<String, usize>,
    /// Outer types and update kinds the tracker does not know.
    pub unknown_types: BTreeMap<String, usize>,
    /// Fields the tracker does not know on frames it does know, as `type.field`.
    pub unknown_fields: BTreeMap<String, usize>,
    /// Frames that are not JSON at all.
    pub not_json: usize,
}

impl FrameSurvey {
    /// Surveys the frames in order.
    pub fn of<'a>(frames: impl IntoIterator<Item = &'a str>) -> FrameSurvey {
        let mut survey = FrameSurvey::default();
        for frame in frames {
            survey.feed(frame);
        }
        survey
    }

    fn feed(&mut self, frame: &str) {
        let Ok(value) = serde_json::from_str::<Value>(frame) else {
            self.not_json += 1;
            return;
        };
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("<none>")
            .to_string();
        if !KNOWN_OUTER.contains(&kind.as_str()) {
            bump(&mut self.seen, &kind);
            bump(&mut self.unknown_types, &kind);
            return;
        }
        self.unknown_fields_of(&kind, &value, KNOWN_OUTER_FIELDS);
        if kind != "update" {
            bump(&mut self.seen, &kind);
            return;
        }
        for inner in inner_messages(value.get("buffer")) {
            let inner_kind = if inner.get("role").and_then(Value::as_str) == Some("user") {
                "user".to_string()
            } else {
                inner
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("<none>")
                    .to_string()
            };
            let name = format!("update/{inner_kind}");
            bump(&mut self.seen, &name);
            if inner_kind != "user" && !KNOWN_INNER.contains(&inner_kind.as_str()) {
                bump(&mut self.unknown_types, &name);
                continue;
            }
            self.unknown_fields_of(&name, &inner, KNOWN_INNER_FIELDS);
        }
    }

    fn unknown_fields_of(&mut self, kind: &str, value: &Value, known: &[&str]) {
        if let Some(map) = value.as_object() {
            for key in map.keys().filter(|k| !known.contains(&k.as_str())) {
                bump(&mut self.unknown_fields, &format!("{kind}.{key}"));
            }
        }
    }

    /// Whether anything unknown was seen.
    pub fn has_unknown(&self) -> bool {
        !self.unknown_types.is_empty() || !self.unknown_fields.is_empty() || self.not_json > 0
    }

    /// One line: `seen: a×2, b; unknown types: …; unknown fields: …`.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("seen: {}", counts(&self.seen))];
        if !self.unknown_types.is_empty() {
            parts.push(format!("unknown types: {}", counts(&self.unknown_types)));
        }
        if !self.unknown_fields.is_empty() {
            parts.push(format!("unknown fields: {}", counts(&self.unknown_fields)));
        }
        if self.not_json > 0 {
            parts.push(format!("{} frame(s) not JSON", self.not_json));
        }
        parts.join("; ")
    }
}

fn bump(map: &mut BTreeMap<String, usize>, key: &str) {
    *map.entry(key.to_string()).or_default() += 1;
}

fn counts(map: &BTreeMap<String, usize>) -> String {
    if map.is_empty() {
        return "none".to_string();
    }
    map.iter()
        .map(|(k, n)| {
            if *n == 1 {
                k.clone()
            } else {
                format!("{k}×{n}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The inner messages of an `update.buffer`: a string of JSON texts, an object or an array
/// (the shapes the tracker accepts).
fn inner_messages(buffer: Option<&Value>) -> Vec<Value> {
    match buffer {
        Some(Value::String(text)) => serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .map_while(Result::ok)
            .collect(),
        Some(Value::Array(items)) => items.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(inner: &str) -> String {
        serde_json::json!({"type": "update", "buffer": format!("{inner}\n")}).to_string()
    }

    #[test]
    fn an_ordinary_turn_has_nothing_unknown() {
        let frames = [
            r#"{"type":"state","state":{"inProgress":true}}"#.to_string(),
            update(r#"{"role":"user","content":"hi"}"#),
            update(r#"{"id":"m","type":"chat","chat":{"content":"ok"}}"#),
            update(r#"{"id":"m","type":"chat","chat":{"content":" then"}}"#),
            r#"{"type":"label","label":"hi"}"#.to_string(),
        ];
        let s = FrameSurvey::of(frames.iter().map(String::as_str));
        assert!(!s.has_unknown(), "{s:?}");
        assert_eq!(
            s.summary(),
            "seen: label, state, update/chat×2, update/user"
        );
    }

    #[test]
    fn unknown_types_kinds_and_fields_are_listed() {
        let frames = [
            r#"{"type":"presence","users":1}"#.to_string(),
            update(r#"{"id":"c","type":"tool_call","tool":{"name":"ls"}}"#),
            r#"{"type":"state","state":{},"extra":1}"#.to_string(),
            "not json".to_string(),
        ];
        let s = FrameSurvey::of(frames.iter().map(String::as_str));
        assert!(s.has_unknown());
        let line = s.summary();
        assert!(
            line.contains("unknown types: presence, update/tool_call"),
            "{line}"
        );
        assert!(line.contains("unknown fields: state.extra"), "{line}");
        assert!(line.contains("1 frame(s) not JSON"), "{line}");
    }
}
