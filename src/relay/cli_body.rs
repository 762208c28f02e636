//! The body of a turn on the CLI door: an OpenAI Chat Completions request.
//!
//! A client that spoke Chat Completions has its own body forwarded with every field intact
//! (unknown ones too), only `model` set to the door's model id and the answer streamed with
//! usage. Any other client API (Anthropic Messages, Responses) is written from the internal
//! model: system prompt, messages with their tool calls and results, the new turn's images as
//! `image_url` parts, the tools as functions with the client's `tool_choice`.

use base64::Engine;
use serde_json::{Map, Value, json};

use super::Chat;
use crate::conversation::{Message, Role};
use crate::tools::ToolChoice;
use crate::upstream::images::ImageData;

/// The request body for `model` on the CLI door.
pub fn body(chat: &Chat, model: &str, images: &[ImageData]) -> Value {
    // The client's bytes were valid JSON when its request was parsed.
    let raw = chat
        .passthrough
        .as_ref()
        .and_then(|b| serde_json::from_slice::<Value>(b).ok())
        .filter(Value::is_object);
    let mut body = raw.unwrap_or_else(|| from_model(chat, images));
    body["model"] = Value::String(model.to_string());
    // The answer always streams from the door (the client's `stream` is about our answer).
    body["stream"] = Value::Bool(true);
    let opts = body
        .as_object_mut()
        .map(|o| o.entry("stream_options").or_insert_with(|| json!({})));
    if let Some(Value::Object(o)) = opts {
        o.insert("include_usage".into(), Value::Bool(true));
    }
    body
}

fn from_model(chat: &Chat, images: &[ImageData]) -> Value {
    let last_user = chat.messages.iter().rposition(|m| m.role == Role::User);
    let messages: Vec<Value> = chat
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(m, if Some(i) == last_user { images } else { &[] }))
        .collect();
    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if let Some(tools) = chat.offered_tools() {
        let specs: Vec<Value> = tools
            .specs()
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {"name": t.name,
                    "description": t.description, "parameters": t.parameters}})
            })
            .collect();
        body.insert("tools".into(), Value::Array(specs));
        let choice = match tools.choice() {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
        };
        body.insert("tool_choice".into(), choice);
        body.insert("parallel_tool_calls".into(), Value::Bool(tools.parallel()));
    }
    Value::Object(body)
}

fn message(m: &Message, images: &[ImageData]) -> Value {
    match m.role {
        Role::System => json!({"role": "system", "content": m.text}),
        Role::User if images.is_empty() => json!({"role": "user", "content": m.text}),
        Role::User => {
            let mut parts = vec![json!({"type": "text", "text": m.text})];
            parts.extend(images.iter().map(|img| {
                let data = base64::engine::general_purpose::STANDARD.encode(&img.bytes);
                json!({"type": "image_url",
                    "image_url": {"url": format!("data:{};base64,{data}", img.media_type)}})
            }));
            json!({"role": "user", "content": parts})
        }
        Role::Assistant if m.tool_calls.is_empty() => {
            json!({"role": "assistant", "content": m.text})
        }
        Role::Assistant => {
            let calls: Vec<Value> = m
                .tool_calls
                .iter()
                .map(|c| {
                    json!({"id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments}})
                })
                .collect();
            let content = if m.text.is_empty() {
                Value::Null
            } else {
                Value::String(m.text.clone())
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Role::Tool => match &m.result_of {
            Some(r) => {
                let text = if r.is_error {
                    format!("Error: {}", m.text)
                } else {
                    m.text.clone()
                };
                json!({"role": "tool", "tool_call_id": r.call_id, "content": text})
            }
            None => json!({"role": "user", "content": m.text}),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversation::ToolCall;
    use crate::tools::{ToolSet, ToolSpec};
    use std::sync::Arc;

    #[test]
    fn the_client_body_is_forwarded_with_its_fields() {
        let raw = json!({"model": "x", "messages": [], "temperature": 0.3, "x_custom": {"a": 1},
            "stream": false});
        let chat = Chat {
            passthrough: Some(bytes::Bytes::from(raw.to_string())),
            ..Chat::default()
        };
        let b = body(&chat, "gpt-5.4", &[]);
        assert_eq!(b["model"], "gpt-5.4");
        assert_eq!(b["x_custom"]["a"], 1);
        assert_eq!(b["temperature"], 0.3);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
    }

    #[test]
    fn the_internal_model_becomes_chat_completions() {
        let call = ToolCall {
            id: "toolu_1".into(),
            name: "Write".into(),
            arguments: "{\"a\":1}".into(),
        };
        let tools = ToolSet::new(
            vec![ToolSpec {
                name: "Write".into(),
                description: "d".into(),
                parameters: json!({"type": "object"}),
            }],
            ToolChoice::Required,
            false,
        );
        let chat = Chat {
            messages: vec![
                Message::new(Role::System, "sys"),
                Message::new(Role::User, "go"),
                Message::calls("", vec![call]),
                Message::result("toolu_1", "boom", true),
            ],
            tools: Some(Arc::new(tools)),
            ..Chat::default()
        };
        let img = ImageData {
            media_type: "image/png".into(),
            bytes: bytes::Bytes::from_static(b"\x89PNG"),
        };
        let b = body(&chat, "m", &[img]);
        let m = b["messages"].as_array().expect("messages");
        assert_eq!(m[0], json!({"role": "system", "content": "sys"}));
        assert_eq!(
            m[1]["content"][1]["image_url"]["url"],
            "data:image/png;base64,iVBORw=="
        );
        assert_eq!(m[2]["tool_calls"][0]["function"]["name"], "Write");
        assert_eq!(m[2]["content"], Value::Null);
        assert_eq!(
            m[3],
            json!({"role": "tool", "tool_call_id": "toolu_1", "content": "Error: boom"})
        );
        assert_eq!(b["tool_choice"], "required");
        assert_eq!(b["parallel_tool_calls"], false);
        assert_eq!(b["tools"][0]["function"]["name"], "Write");
    }
}
