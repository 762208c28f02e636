//! What a capture may hold when it leaves the machine: the shape of every call, and none of
//! the account's secrets or the user's words. Applied once, to the whole capture, when it is
//! written:
//! - headers that carry credentials (`cookie`, `set-cookie`, `authorization`, anything named
//!   like a token, key or secret) are dropped;
//! - JSON fields named like a credential become `<redacted>`; request fields that carry the
//!   prompt (`prompt`, `content`) become `<prompt>`;
//! - in frames, a user echo's text and the chat's `label` become `<prompt>` / `<label>`, in
//!   `history` frames too;
//! - any known secret still left anywhere (it may be quoted in an error body) becomes
//!   `<redacted>`, and so does anything shaped like a JWT.
//!
//! A replay puts fresh stand-ins back where the placeholders are (see the simulator's
//! `replay`).

use serde_json::{Map, Value};

use super::format::{Capture, Event};

pub const REDACTED: &str = "<redacted>";
pub const PROMPT: &str = "<prompt>";
pub const LABEL: &str = "<label>";

/// Header names never kept.
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "cookie" | "set-cookie" | "authorization" | "proxy-authorization"
    ) || ["token", "key", "secret", "session", "auth"]
        .iter()
        .any(|w| n.contains(w))
}

/// JSON field names whose values are credentials.
pub fn secret_field(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace(['_', '-'], "");
    matches!(
        n.as_str(),
        "jwt"
            | "token"
            | "accesstoken"
            | "refreshtoken"
            | "idtoken"
            | "apikey"
            | "clientsecret"
            | "password"
            | "cookie"
            | "secret"
    )
}

/// Request fields that carry what the user wrote.
fn prompt_field(name: &str) -> bool {
    matches!(name, "prompt" | "content")
}

/// Redacts `capture` (see the module doc); `secrets` are the account's known secrets.
pub fn redact(capture: &Capture, secrets: &[String]) -> Capture {
    let mut out = capture.clone();
    for event in &mut out.events {
        match event {
            Event::Http(x) => {
                x.request_headers.retain(|k, _| !secret_header(k));
                x.response_headers.retain(|k, _| !secret_header(k));
                walk(&mut x.request_body, true);
                walk(&mut x.response_body, false);
            }
            Event::Socket(s) => {
                for f in &mut s.frames {
                    f.text = frame(&f.text);
                }
            }
        }
    }
    // Last: every known secret and anything shaped like a JWT, wherever it is left.
    let mut text = serde_json::to_string(&out).unwrap_or_default();
    let mut keys: Vec<&String> = secrets.iter().filter(|s| s.len() >= 8).collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
    for k in keys {
        // Secrets as they appear inside JSON strings.
        let escaped = serde_json::to_string(k).unwrap_or_default();
        let escaped = escaped.trim_matches('"');
        text = text.replace(escaped, REDACTED);
    }
    text = jwts_out(&text);
    serde_json::from_str(&text).unwrap_or(out)
}

/// Replaces credential fields (and, in requests, prompt fields) in a JSON body.
fn walk(value: &mut Value, request: bool) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_field(k) && !v.is_null() {
                    *v = Value::String(REDACTED.into());
                } else if request && prompt_field(k) && v.is_string() {
                    *v = Value::String(PROMPT.into());
                } else {
                    walk(v, request);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| walk(v, request)),
        _ => {}
    }
}

/// A frame with the user's words replaced (unparseable frames are kept as they are).
fn frame(text: &str) -> String {
    let Ok(mut v) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    match v.get("type").and_then(Value::as_str) {
        Some("label") => {
            if let Some(l) = v.get_mut("label") {
                *l = Value::String(LABEL.into());
            }
        }
        Some("history") => {
            if let Some(Value::Array(messages)) = v.get_mut("messages") {
                messages.iter_mut().for_each(user_echo);
            }
        }
        Some("update") => {
            if let Some(Value::String(buffer)) = v.get("buffer").cloned() {
                let inner: Vec<String> = serde_json::Deserializer::from_str(&buffer)
                    .into_iter::<Value>()
                    .map_while(Result::ok)
                    .map(|mut m| {
                        user_echo(&mut m);
                        m.to_string()
                    })
                    .collect();
                let trailing = if buffer.ends_with('\n') { "\n" } else { "" };
                v["buffer"] = Value::String(inner.join("\n") + trailing);
            } else if let Some(b) = v.get_mut("buffer") {
                match b {
                    Value::Array(items) => items.iter_mut().for_each(user_echo),
                    other => user_echo(other),
                }
            }
        }
        _ => {}
    }
    v.to_string()
}

/// A user message's text becomes `<prompt>`.
fn user_echo(m: &mut Value) {
    if m.get("role").and_then(Value::as_str) != Some("user") {
        return;
    }
    if let Some(obj) = m.as_object_mut() {
        replace_text(obj);
    }
}

fn replace_text(obj: &mut Map<String, Value>) {
    for key in ["content", "text", "prompt"] {
        match obj.get_mut(key) {
            Some(v @ Value::String(_)) => *v = Value::String(PROMPT.into()),
            // Text parts collapse into one, so a replay has one place to put the prompt back.
            Some(v @ Value::Array(_)) => *v = serde_json::json!([{"type": "text", "text": PROMPT}]),
            _ => {}
        }
    }
    if let Some(Value::Object(chat)) = obj.get_mut("chat") {
        replace_text(chat);
    }
}

/// Replaces every `eyJ…` run of base64url and dots (a JWT's header starts so) with
/// `<redacted>`.
fn jwts_out(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("eyJ") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .unwrap_or(tail.len());
        if tail[..end].matches('.').count() >= 2 {
            out.push_str(REDACTED);
        } else {
            out.push_str(&tail[..end]);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::format::{Exchange, FrameLog, SocketLog};
    use serde_json::json;

    fn exchange(req: Value, resp: Value) -> Event {
        Event::Http(Exchange {
            seq: 0,
            at_ms: 0,
            method: "POST".into(),
            path: "/x".into(),
            status: 200,
            request_headers: [
                ("cookie".to_string(), "__client=abc".to_string()),
                ("content-type".to_string(), "application/json".to_string()),
                ("x-session-token".to_string(), "t".to_string()),
            ]
            .into(),
            request_body: req,
            response_headers: [("set-cookie".to_string(), "__client=new".to_string())].into(),
            response_body: resp,
        })
    }

    #[test]
    fn credentials_and_prompts_are_replaced() {
        let c = Capture {
            version: 1,
            events: vec![
                exchange(
                    json!({"prompt": "secret plan", "messages": [{"role": "user", "content": "hi there"}], "refresh_token": "rt-0123456789"}),
                    json!({"jwt": "eyJhbGc.eyJzdWIi.sig", "object": "x", "error": "bad token rt-0123456789"}),
                ),
                Event::Socket(SocketLog {
                    seq: 1,
                    at_ms: 0,
                    path: "/s".into(),
                    frames: vec![
                        FrameLog {
                            after: None,
                            at_ms: 0,
                            text: json!({"type": "update", "buffer": "{\"role\":\"user\",\"content\":\"secret plan\"}\n{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi there\"}]}\n"}).to_string(),
                        },
                        FrameLog {
                            after: None,
                            at_ms: 0,
                            text: json!({"type": "label", "label": "secret plan"}).to_string(),
                        },
                    ],
                }),
            ],
        };
        let out = redact(&c, &["rt-0123456789".to_string()]);
        let text = serde_json::to_string(&out).unwrap_or_default();
        for gone in [
            "secret plan",
            "hi there",
            "rt-0123456789",
            "eyJ",
            "__client",
            "x-session-token",
        ] {
            assert!(!text.contains(gone), "{gone} left in {text}");
        }
        assert!(text.contains("content-type"), "{text}");
        assert!(text.contains(PROMPT) && text.contains(LABEL), "{text}");
        assert!(text.contains("\"object\":\"x\""), "{text}");
    }
}
