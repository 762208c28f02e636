//! The capture file: `{"version": 1, "events": [...]}`, each event an HTTP exchange or a
//! WebSocket, numbered in the order they started (`seq`). Bodies are JSON values when they
//! parse as JSON, else strings (an SSE stream, a form), so a capture reads and edits like the
//! traffic it holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// A whole capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    pub version: u32,
    pub events: Vec<Event>,
}

/// One call or one socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Http(Exchange),
    Socket(SocketLog),
}

/// One HTTP request and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub seq: usize,
    /// Milliseconds from the start of the capture to the request.
    pub at_ms: u64,
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub status: u16,
    #[serde(default)]
    pub request_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub request_body: Value,
    #[serde(default)]
    pub response_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub response_body: Value,
}

/// One WebSocket and the text frames it carried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketLog {
    pub seq: usize,
    pub at_ms: u64,
    pub path: String,
    #[serde(default)]
    pub frames: Vec<FrameLog>,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameLog {
    /// The `seq` of the last HTTP request sent before the frame arrived: a replay sends the
    /// frame only once that request has come in (a Gen-2 turn streams after its trigger).
    pub after: Option<usize>,
    pub at_ms: u64,
    pub text: String,
}

/// A body as the capture keeps it: JSON when it parses, else the text (`Null` when empty).
pub fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => v,
        Err(_) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// A body as it goes on the wire again (the inverse of [`body_value`]).
pub fn body_text(body: &Value) -> String {
    match body {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The path of a URL, without query or fragment (the URL itself when it does not parse).
pub fn path_of(url: &str) -> String {
    url::Url::parse(url).map_or_else(
        |_| url.split('?').next().unwrap_or(url).to_string(),
        |u| u.path().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_round_trip_as_json_or_text() {
        assert_eq!(body_value(b""), Value::Null);
        assert_eq!(body_text(&body_value(br#"{"a":1}"#)), r#"{"a":1}"#);
        assert_eq!(body_text(&body_value(b"data: x\n\n")), "data: x\n\n");
        assert_eq!(path_of("ws://h:1/a/b?token=u"), "/a/b");
    }
}
