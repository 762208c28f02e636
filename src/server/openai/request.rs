//! Parsing and validation of a `POST /v1/chat/completions` body into a [`Chat`].
//!
//! The body is read as a JSON value and checked field by field, so every mistake gets a 400 that
//! names the field (`param`). `tools` (and the legacy `functions`), `tool_choice`,
//! `parallel_tool_calls`, assistant `tool_calls` and `role: "tool"` messages map to the internal
//! model; sampling fields (temperature, ...) are accepted and ignored, as the web agent has no
//! such knobs.
//!
//! `image_url` parts of user messages (a `data:` or `https:` URL) are carried beside the text:
//! those of the new turn (after the last assistant message) go upstream with it; the checks
//! that need the model and the limits happen later, before anything is fetched or uploaded.

use serde_json::Value;

use crate::conversation::message::split_point;
use crate::conversation::{Message, Role, ToolCall};
use crate::relay::Chat;
use crate::server::chat_body::{ChatBody, Field};
use crate::server::error::ApiError;
use crate::server::tool_defs;
use crate::upstream::images::ImageSource;

/// A validated chat request.
#[derive(Debug)]
pub struct ChatRequest {
    /// The model as the client named it (checked against the catalogue later).
    pub model: Option<String>,
    pub chat: Chat,
    pub stream: bool,
    pub include_usage: bool,
}

fn bad(msg: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::bad_request(msg, Some(param))
}

impl ChatRequest {
    pub fn parse(body: &ChatBody) -> Result<ChatRequest, ApiError> {
        let model = match body.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err(bad("`model` must be a string.", "model")),
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`stream` must be a boolean.", "stream")),
        };
        let include_usage = match body.get("stream_options") {
            None | Some(Value::Null) => false,
            Some(Value::Object(o)) => match o.get("include_usage") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(bad(
                        "`stream_options.include_usage` must be a boolean.",
                        "stream_options",
                    ));
                }
            },
            Some(_) => return Err(bad("`stream_options` must be an object.", "stream_options")),
        };
        let raw = match body.field("messages") {
            Field::Missing | Field::Value(Value::Null) => {
                return Err(bad(
                    "`messages` is required: a non-empty array of messages.",
                    "messages",
                ));
            }
            Field::List(l) if l.is_empty() => {
                return Err(bad("`messages` must not be empty.", "messages"));
            }
            Field::List(l) => l,
            Field::Value(_) => {
                return Err(bad("`messages` must be an array of messages.", "messages"));
            }
        };
        let mut messages = Vec::with_capacity(raw.len());
        let mut images_of = Vec::with_capacity(raw.len());
        // One message at a time: each small `Value` is gone before the next is read.
        for (i, m) in raw.iter().enumerate() {
            let (message, images) = parse_message(i, &m)?;
            messages.push(message);
            images_of.push(images);
        }
        let split = split_point(&messages);
        let images: Vec<ImageSource> = images_of.into_iter().skip(split).flatten().collect();
        if !messages
            .iter()
            .any(|m| m.role == Role::User && !m.text.trim().is_empty())
            && images.is_empty()
        {
            return Err(bad(
                "`messages` must contain at least one user message with text.",
                "messages",
            ));
        }
        let specs = tool_defs::openai(body.get("tools"), body.get("functions"))?;
        let choice = match body.get("tool_choice") {
            None | Some(Value::Null) => tool_defs::openai_choice(body.get("function_call"))?,
            v => tool_defs::openai_choice(v)?,
        };
        let parallel = match body.get("parallel_tool_calls") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(bad(
                    "`parallel_tool_calls` must be a boolean.",
                    "parallel_tool_calls",
                ));
            }
        };
        let mut chat = Chat {
            messages,
            tools: tool_defs::offer(specs, choice, parallel)?,
            images,
            passthrough: None,
        };
        chat.link_results();
        Ok(ChatRequest {
            model,
            chat,
            stream,
            include_usage,
        })
    }
}

fn parse_message(i: usize, m: &Value) -> Result<(Message, Vec<ImageSource>), ApiError> {
    let obj = m
        .as_object()
        .ok_or_else(|| bad(format!("`messages[{i}]` must be an object."), "messages"))?;
    let role_str = obj.get("role").and_then(Value::as_str).ok_or_else(|| {
        bad(
            format!("`messages[{i}].role` is required and must be a string."),
            "messages",
        )
    })?;
    let role = Role::parse(role_str).ok_or_else(|| {
        bad(
            format!("`messages[{i}].role` is `{role_str}`; expected one of system, developer, user, assistant, tool."),
            "messages",
        )
    })?;
    let mut images = Vec::new();
    let calls = if role == Role::Assistant {
        tool_calls(i, obj)?
    } else {
        Vec::new()
    };
    let text = match obj.get("content") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) if role == Role::Assistant => String::new(),
        Some(Value::Array(parts)) => content_parts(i, parts, role, &mut images)?,
        None | Some(Value::Null) => {
            return Err(bad(
                format!("`messages[{i}].content` is required."),
                "messages",
            ));
        }
        Some(_) => {
            return Err(bad(
                format!("`messages[{i}].content` must be a string or an array of content parts."),
                "messages",
            ));
        }
    };
    let mut message = Message::new(role, text);
    message.tool_calls = calls;
    if role == Role::Tool {
        // `role: tool` answers `tool_call_id`; the legacy `role: function` names the function.
        let id = obj
            .get("tool_call_id")
            .and_then(Value::as_str)
            .or_else(|| obj.get("name").and_then(Value::as_str))
            .unwrap_or("");
        let mut result = Message::result(id, std::mem::take(&mut message.text), false);
        if let (Some(r), Some(name)) = (
            result.result_of.as_mut(),
            obj.get("name").and_then(Value::as_str),
        ) {
            r.name = Some(name.to_string());
        }
        message = result;
    }
    Ok((message, images))
}

/// An assistant message's `tool_calls` (or legacy `function_call`).
fn tool_calls(i: usize, obj: &serde_json::Map<String, Value>) -> Result<Vec<ToolCall>, ApiError> {
    let mut out = Vec::new();
    if let Some(Value::Array(calls)) = obj.get("tool_calls") {
        for (j, c) in calls.iter().enumerate() {
            let f = c.get("function");
            let name = f.and_then(|f| f.get("name")).and_then(Value::as_str);
            let Some(name) = name else {
                return Err(bad(
                    format!("`messages[{i}].tool_calls[{j}].function.name` must be a string."),
                    "messages",
                ));
            };
            out.push(ToolCall {
                id: c
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                name: name.to_string(),
                arguments: arguments_text(f.and_then(|f| f.get("arguments"))),
            });
        }
    } else if let Some(f) = obj.get("function_call").filter(|f| f.is_object()) {
        let name = f.get("name").and_then(Value::as_str).unwrap_or("");
        out.push(ToolCall {
            id: name.to_string(),
            name: name.to_string(),
            arguments: arguments_text(f.get("arguments")),
        });
    }
    Ok(out)
}

/// Call arguments as JSON text: clients send a string holding JSON; an object is taken too.
pub fn arguments_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => "{}".to_string(),
        Some(other) => other.to_string(),
    }
}

/// Joins the text parts of an array content; collects the images of a user message.
fn content_parts(
    i: usize,
    parts: &[Value],
    role: Role,
    images: &mut Vec<ImageSource>,
) -> Result<String, ApiError> {
    let mut texts = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let kind = p.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" | "input_text" => {
                let t = p.get("text").and_then(Value::as_str).ok_or_else(|| {
                    bad(
                        format!("`messages[{i}].content[{j}].text` must be a string."),
                        "messages",
                    )
                })?;
                texts.push(t);
            }
            "image_url" | "input_image" | "image" if role == Role::User => {
                let url = p
                    .get("image_url")
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        bad(
                            format!("`messages[{i}].content[{j}].image_url.url` must be a string."),
                            "messages",
                        )
                    })?;
                images.push(ImageSource::from_url(url));
            }
            "image_url" | "input_image" | "image" => {
                return Err(bad(
                    format!(
                        "`messages[{i}].content[{j}]` is an image; only user messages may hold images."
                    ),
                    "messages",
                ));
            }
            other => {
                return Err(bad(
                    format!("`messages[{i}].content[{j}].type` is `{other}`; expected `text`."),
                    "messages",
                ));
            }
        }
    }
    Ok(texts.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value) -> Result<ChatRequest, ApiError> {
        ChatRequest::parse(&ChatBody::of(v)?)
    }

    #[test]
    fn parses_strings_and_parts() {
        let r = parse(&json!({"model":"m","stream":true,"stream_options":{"include_usage":true},
            "messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}))
        .expect("valid");
        assert!(r.stream && r.include_usage);
        assert_eq!(r.chat.messages[1].text, "a\nb");
    }

    #[test]
    fn images_of_the_new_turn_are_carried_beside_the_text() {
        let part = |url: &str| json!({"type":"image_url","image_url":{"url":url}});
        let r = parse(&json!({"messages":[
            {"role":"user","content":[{"type":"text","text":"old"},part("data:image/png;base64,AA==")]},
            {"role":"assistant","content":"seen"},
            {"role":"user","content":[{"type":"text","text":"new"},part("https://x/a.png"),
                {"type":"image_url","image_url":"data:image/gif;base64,R0lG"}]}]}))
        .expect("valid");
        assert_eq!(
            r.chat.images,
            [
                ImageSource::Url("https://x/a.png".into()),
                ImageSource::Base64 {
                    media_type: "image/gif".into(),
                    data: "R0lG".into()
                }
            ]
        );
        assert_eq!(r.chat.messages[2].text, "new");
        let from_assistant = json!({"messages":[{"role":"user","content":"x"},
            {"role":"assistant","content":[part("data:image/png;base64,AA==")]}]});
        assert!(parse(&from_assistant).is_err());
    }

    #[test]
    fn tools_calls_and_results_map_to_the_internal_model() {
        let r = parse(&json!({"messages":[
            {"role":"user","content":"write it"},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                "function":{"name":"Write","arguments":"{\"file_path\":\"/x\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"done"}]}],
            "tools":[{"type":"function","function":{"name":"Write","parameters":{"type":"object"}}}],
            "tool_choice":{"type":"function","function":{"name":"Write"}},"parallel_tool_calls":false}))
        .expect("valid");
        let tools = r.chat.tools.as_ref().expect("offered");
        assert_eq!(
            *tools.choice(),
            crate::tools::ToolChoice::Named("Write".into())
        );
        assert!(!tools.parallel());
        assert_eq!(r.chat.messages[1].tool_calls[0].name, "Write");
        let res = r.chat.messages[2].result_of.as_ref().expect("a result");
        assert_eq!(
            (res.call_id.as_str(), res.name.as_deref()),
            ("call_1", Some("Write"))
        );
        assert_eq!(r.chat.messages[2].text, "done");
        let none = parse(&json!({"messages":[{"role":"user","content":"x"}],
            "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}))
        .expect("valid");
        assert!(none.chat.tools.is_none());
        let unknown = json!({"messages":[{"role":"user","content":"x"}],
            "tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"g"}}});
        assert!(parse(&unknown).is_err());
    }

    #[test]
    fn rejects_bad_shapes_naming_the_field() {
        for body in [
            json!({"model":"m"}),
            json!({"model":"m","messages":[]}),
            json!({"model":"m","messages":"hi"}),
            json!({"model":"m","messages":[{"role":"wizard","content":"x"}]}),
            json!({"model":"m","messages":[{"role":"user","content":5}]}),
            json!({"model":"m","messages":[{"role":"user"}]}),
            json!({"model":"m","messages":[{"role":"system","content":"only system"}]}),
            json!({"model":5,"messages":[{"role":"user","content":"x"}]}),
            json!({"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}),
        ] {
            let e = parse(&body).expect_err("must be rejected");
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{body}");
            assert!(e.to_json()["error"]["param"].is_string(), "{body}");
        }
    }
}
