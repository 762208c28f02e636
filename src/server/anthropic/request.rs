//! Parsing and validation of a `POST /v1/messages` (or `count_tokens`) body into a [`Chat`].
//!
//! Every mistake is a 400 naming the field. `system` becomes the first message, and
//! `role: "system"` messages inside `messages` (Claude Code sends them) are folded into the
//! system prompt in order; `text` blocks are joined; `tool_use` blocks become the assistant's
//! tool calls and `tool_result` blocks tool results (with `is_error`); `thinking` blocks that
//! clients echo back from our own answers are dropped, so the echoed conversation fingerprints
//! the same as the one we remembered. `image` blocks of user messages (`source` base64 or url)
//! are carried beside the text, those of the new turn (after the last assistant message) going
//! upstream with it; documents, and images inside tool results, are refused clearly rather than
//! dropped silently. `tools` and `tool_choice` make the offer; fields we do not use
//! (`temperature`, `metadata`, `context_management`, `thinking`, ...) are accepted and ignored.

use serde_json::Value;

use crate::conversation::message::split_point;
use crate::conversation::{Message, Role, ToolCall};
use crate::relay::Chat;
use crate::server::chat_body::{ChatBody, Field};
use crate::server::error::ApiError;
use crate::server::tool_defs;
use crate::upstream::images::ImageSource;

/// A validated Messages request.
#[derive(Debug)]
pub struct MessagesRequest {
    /// The model as the client named it (checked against the catalogue later).
    pub model: Option<String>,
    /// `system` first, then the conversation; the tools; the new turn's images.
    pub chat: Chat,
    pub stream: bool,
    pub max_tokens: Option<u64>,
}

fn bad(msg: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::bad_request(msg, Some(param))
}

impl MessagesRequest {
    /// Parses a body; `max_tokens` is required for `/v1/messages` (as Anthropic requires it)
    /// and optional for `count_tokens`.
    pub fn parse(body: &ChatBody, require_max_tokens: bool) -> Result<MessagesRequest, ApiError> {
        let model = match body.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err(bad("`model` must be a string.", "model")),
        };
        let max_tokens = match body.get("max_tokens") {
            None | Some(Value::Null) if !require_max_tokens => None,
            None | Some(Value::Null) => {
                return Err(bad(
                    "`max_tokens` is required: a positive integer.",
                    "max_tokens",
                ));
            }
            Some(v) => match v.as_u64() {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return Err(bad(
                        format!("`max_tokens` must be a positive integer, not {v}."),
                        "max_tokens",
                    ));
                }
            },
        };
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`stream` must be a boolean.", "stream")),
        };
        let mut messages = Vec::new();
        let mut system = system_text(body.get("system"))?;
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
        // Each image with the index of the message it sits in.
        let mut images: Vec<(usize, ImageSource)> = Vec::new();
        // One message at a time: each small `Value` is gone before the next is read.
        for (i, m) in raw.iter().enumerate() {
            let m = &m;
            if m.get("role").and_then(Value::as_str) == Some("system") {
                let text = match m.get("content") {
                    Some(c @ Value::String(_)) | Some(c @ Value::Array(_)) => {
                        system_text(Some(c)).map_err(|_| {
                            bad(
                                format!("`messages[{i}].content` of a system message must be a string or text blocks."),
                                "messages",
                            )
                        })?
                    }
                    _ => {
                        return Err(bad(
                            format!("`messages[{i}].content` is required."),
                            "messages",
                        ));
                    }
                };
                if let Some(t) = text {
                    system = Some(match system.take() {
                        Some(s) => format!("{s}\n\n{t}"),
                        None => t,
                    });
                }
                continue;
            }
            parse_message(i, m, &mut messages, &mut images)?;
        }
        if let Some(system) = system {
            messages.insert(0, Message::new(Role::System, system));
            for (at, _) in &mut images {
                *at += 1;
            }
        }
        let split = split_point(&messages);
        let images: Vec<ImageSource> = images
            .into_iter()
            .filter(|(at, _)| *at >= split)
            .map(|(_, s)| s)
            .collect();
        if !messages
            .iter()
            .any(|m| m.role != Role::System && !m.text.trim().is_empty())
            && images.is_empty()
        {
            return Err(bad(
                "`messages` must contain at least one message with text.",
                "messages",
            ));
        }
        let specs = tool_defs::anthropic(body.get("tools"))?;
        let (choice, parallel) = tool_defs::anthropic_choice(body.get("tool_choice"))?;
        let chat = Chat {
            messages,
            tools: tool_defs::offer(specs, choice, parallel)?,
            images,
            passthrough: None,
        };
        Ok(MessagesRequest {
            model,
            chat,
            stream,
            max_tokens,
        })
    }
}

/// `system`: a string or an array of `text` blocks.
fn system_text(v: Option<&Value>) -> Result<Option<String>, ApiError> {
    let text = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => {
            let mut parts = Vec::with_capacity(blocks.len());
            for (j, b) in blocks.iter().enumerate() {
                match (
                    b.get("type").and_then(Value::as_str),
                    b.get("text").and_then(Value::as_str),
                ) {
                    (Some("text"), Some(t)) => parts.push(t),
                    _ => {
                        return Err(bad(
                            format!("`system[{j}]` must be a `text` block with a string `text`."),
                            "system",
                        ));
                    }
                }
            }
            parts.join("\n")
        }
        Some(_) => {
            return Err(bad(
                "`system` must be a string or an array of text blocks.",
                "system",
            ));
        }
    };
    Ok((!text.trim().is_empty()).then_some(text))
}

/// One message. A user message pushes one `Tool` message per `tool_result` block and one user
/// message per run of text, in the order they came; an assistant message pushes one message
/// holding its text and its `tool_use` calls.
fn parse_message(
    i: usize,
    m: &Value,
    out: &mut Vec<Message>,
    images: &mut Vec<(usize, ImageSource)>,
) -> Result<(), ApiError> {
    let obj = m
        .as_object()
        .ok_or_else(|| bad(format!("`messages[{i}]` must be an object."), "messages"))?;
    let role = match obj.get("role").and_then(Value::as_str) {
        Some("user") => Role::User,
        Some("assistant") => Role::Assistant,
        Some(other) => {
            return Err(bad(
                format!(
                    "`messages[{i}].role` is `{}`; expected `user`, `assistant` or `system`.",
                    other.chars().take(32).collect::<String>()
                ),
                "messages",
            ));
        }
        None => {
            return Err(bad(
                format!("`messages[{i}].role` is required and must be a string."),
                "messages",
            ));
        }
    };
    match obj.get("content") {
        Some(Value::String(s)) => out.push(Message::new(role, s.clone())),
        Some(Value::Array(blocks)) => {
            let mut text: Vec<&str> = Vec::new();
            let mut calls: Vec<ToolCall> = Vec::new();
            for (j, b) in blocks.iter().enumerate() {
                match block(i, j, b)? {
                    Block::Text(t) => text.push(t),
                    Block::Skip => {}
                    Block::Call(c) if role == Role::Assistant => calls.push(c),
                    Block::Call(_) => {
                        return Err(bad(
                            format!(
                                "`messages[{i}].content[{j}]` is a `tool_use` block; only assistant messages may hold them."
                            ),
                            "messages",
                        ));
                    }
                    Block::Image(_) if role != Role::User => {
                        return Err(bad(
                            format!(
                                "`messages[{i}].content[{j}]` is an image; only user messages may hold images."
                            ),
                            "messages",
                        ));
                    }
                    Block::Image(source) => images.push((out.len(), source)),
                    Block::Result(_) if role == Role::Assistant => {
                        return Err(bad(
                            format!(
                                "`messages[{i}].content[{j}]` is a `tool_result` block; only user messages may hold them."
                            ),
                            "messages",
                        ));
                    }
                    Block::Result(r) => {
                        if !text.is_empty() {
                            out.push(Message::new(role, text.join("\n")));
                            text.clear();
                        }
                        out.push(r);
                    }
                }
            }
            // An assistant turn always leaves a message of its role, so that the split between
            // an earlier answer and the new turn stays where the client put it.
            if role == Role::Assistant {
                out.push(Message::calls(text.join("\n"), calls));
            } else if !text.is_empty() {
                out.push(Message::new(role, text.join("\n")));
            }
        }
        None | Some(Value::Null) => {
            return Err(bad(
                format!("`messages[{i}].content` is required."),
                "messages",
            ));
        }
        Some(_) => {
            return Err(bad(
                format!("`messages[{i}].content` must be a string or an array of content blocks."),
                "messages",
            ));
        }
    }
    Ok(())
}

enum Block<'a> {
    Text(&'a str),
    Image(ImageSource),
    Call(ToolCall),
    Result(Message),
    Skip,
}

fn block<'a>(i: usize, j: usize, b: &'a Value) -> Result<Block<'a>, ApiError> {
    let at = format!("`messages[{i}].content[{j}]`");
    let kind = b.get("type").and_then(Value::as_str).ok_or_else(|| {
        bad(
            format!("{at} must be a content block with a string `type`."),
            "messages",
        )
    })?;
    Ok(match kind {
        "text" => Block::Text(
            b.get("text")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{at}.text must be a string."), "messages"))?,
        ),
        "thinking" | "redacted_thinking" => Block::Skip,
        "image" => Block::Image(image_source(&at, b.get("source"))?),
        "document" => {
            return Err(bad(
                format!("{at} is a document; documents are not forwarded yet by this proxy."),
                "messages",
            ));
        }
        "tool_use" => {
            let name = b
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{at}.name must be a string."), "messages"))?;
            let id = b.get("id").and_then(Value::as_str).unwrap_or("");
            let input = match b.get("input") {
                None | Some(Value::Null) => "{}".to_string(),
                Some(v) => v.to_string(),
            };
            Block::Call(ToolCall {
                id: id.to_string(),
                name: name.to_string(),
                arguments: input,
            })
        }
        // Server tools ran on the vendor's side; their blocks are history only.
        "server_tool_use" | "web_search_tool_result" => Block::Skip,
        "tool_result" => {
            let id = b.get("tool_use_id").and_then(Value::as_str).unwrap_or("");
            let failed = b.get("is_error").and_then(Value::as_bool).unwrap_or(false);
            let content = tool_result_text(&at, b.get("content"))?;
            Block::Result(Message::result(id, content, failed))
        }
        other => {
            return Err(bad(
                format!(
                    "{at}.type is `{other}`; expected `text`, `tool_use`, `tool_result` or `thinking`."
                ),
                "messages",
            ));
        }
    })
}

/// An image block's `source`: `{type: base64, media_type, data}` or `{type: url, url}`.
fn image_source(at: &str, source: Option<&Value>) -> Result<ImageSource, ApiError> {
    let field = |name: &str| source.and_then(|s| s.get(name)).and_then(Value::as_str);
    match field("type") {
        Some("base64") => match (field("media_type"), field("data")) {
            (Some(media_type), Some(data)) => Ok(ImageSource::Base64 {
                media_type: media_type.to_string(),
                data: data.to_string(),
            }),
            _ => Err(bad(
                format!("{at}.source needs string `media_type` and `data`."),
                "messages",
            )),
        },
        Some("url") => field("url")
            .map(|u| ImageSource::Url(u.to_string()))
            .ok_or_else(|| bad(format!("{at}.source.url must be a string."), "messages")),
        _ => Err(bad(
            format!("{at}.source.type must be `base64` or `url`."),
            "messages",
        )),
    }
}

/// A tool result's content: a string, or `text` blocks (anything else is shown as JSON).
fn tool_result_text(at: &str, content: Option<&Value>) -> Result<String, ApiError> {
    Ok(match content {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut out = Vec::with_capacity(parts.len());
            for p in parts {
                match p.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(
                        p.get("text")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    ),
                    Some("image") => {
                        return Err(bad(
                            format!(
                                "{at} holds an image; images are not forwarded yet by this proxy."
                            ),
                            "messages",
                        ));
                    }
                    _ => out.push(p.to_string()),
                }
            }
            out.join("\n")
        }
        Some(other) => other.to_string(),
    })
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
