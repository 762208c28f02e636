//! Parsing and validation of a `POST /v1/responses` body into a [`Chat`].
//!
//! `instructions` becomes the system prompt; `input` is a string (one user message) or items:
//! messages (`input_text`, `output_text`, `input_image` parts; `developer` and `system` roles
//! are system prompts), `function_call` and `function_call_output`. An assistant message and the
//! `function_call` items right after it are one assistant turn, as the proxy answered them.
//! `reasoning` items are dropped (reasoning is never echoed upstream), as are items of built-in
//! tools that ran on the vendor's servers. Every mistake is a 400 naming the field.

use std::collections::HashSet;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::conversation::message::split_point;
use crate::conversation::{Message, Role, ToolCall};
use crate::relay::Chat;
use crate::server::chat_body::{ChatBody, Field};
use crate::server::error::ApiError;
use crate::server::tool_defs::{self, NAMESPACE_SEP};
use crate::upstream::images::ImageSource;

/// A validated Responses request.
#[derive(Debug)]
pub struct ResponsesRequest {
    pub model: Option<String>,
    pub chat: Chat,
    pub stream: bool,
    /// Keep the response for a later `previous_response_id` (default true, as OpenAI's).
    pub store: bool,
    pub previous_response_id: Option<String>,
    /// The input items as given (after `previous_response_id`'s, when resolved by the caller):
    /// what a stored response keeps, as the JSON text each was sent as (compact: no tree).
    pub input_items: Vec<Box<RawValue>>,
    /// Namespaces whose functions were flattened to `NS__NAME` in the offer.
    pub namespaces: HashSet<String>,
    pub instructions: Option<String>,
}

fn bad(msg: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::bad_request(msg, Some(param))
}

impl ResponsesRequest {
    /// Parses `body`; `earlier` holds the input items of the response named by
    /// `previous_response_id` (already resolved), which come before this request's.
    pub fn parse(
        body: &ChatBody,
        earlier: Vec<Box<RawValue>>,
    ) -> Result<ResponsesRequest, ApiError> {
        let model = match body.get("model") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => return Err(bad("`model` must be a string.", "model")),
        };
        let flag = |name: &'static str, default: bool| match body.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(bad(format!("`{name}` must be a boolean."), name)),
        };
        let stream = flag("stream", false)?;
        let store = flag("store", true)?;
        let parallel = flag("parallel_tool_calls", true)?;
        let instructions = match body.get("instructions") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(bad("`instructions` must be a string.", "instructions")),
        };
        let previous_response_id = match body.get("previous_response_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                return Err(bad(
                    "`previous_response_id` must be a string.",
                    "previous_response_id",
                ));
            }
        };
        let mut items = earlier;
        match body.field("input") {
            Field::Missing | Field::Value(Value::Null) => {
                return Err(bad(
                    "`input` is required: a string or an array of input items.",
                    "input",
                ));
            }
            Field::Value(Value::String(s)) => {
                let item = serde_json::json!({"type": "message", "role": "user", "content": s});
                items.push(raw(item.to_string()));
            }
            Field::List(l) => items.extend(l.raw().map(|text| raw(text.to_string()))),
            Field::Value(_) => {
                return Err(bad("`input` must be a string or an array.", "input"));
            }
        }
        let namespaces = namespaces_of(body.get("tools"));
        let mut messages = Vec::with_capacity(items.len() + 1);
        if let Some(i) = instructions.as_ref().filter(|i| !i.trim().is_empty()) {
            messages.push(Message::new(Role::System, i.clone()));
        }
        let mut images_at: Vec<(usize, ImageSource)> = Vec::new();
        // One item at a time: each small `Value` is gone before the next is read.
        for (i, item) in items.iter().enumerate() {
            let item: Value = serde_json::from_str(item.get()).unwrap_or(Value::Null);
            parse_item(i, &item, &mut messages, &mut images_at)?;
        }
        let split = split_point(&messages);
        let images: Vec<ImageSource> = images_at
            .into_iter()
            .filter(|(at, _)| *at >= split)
            .map(|(_, s)| s)
            .collect();
        if !messages.iter().any(|m| m.role != Role::System) {
            return Err(bad(
                "`input` must hold at least one message or tool output.",
                "input",
            ));
        }
        let specs = tool_defs::responses(body.get("tools"))?;
        let choice = tool_defs::openai_choice(body.get("tool_choice"))?;
        let mut chat = Chat {
            messages,
            tools: tool_defs::offer(specs, choice, parallel)?,
            images,
            passthrough: None,
        };
        chat.link_results();
        Ok(ResponsesRequest {
            model,
            chat,
            stream,
            store,
            previous_response_id,
            input_items: items,
            namespaces,
            instructions,
        })
    }
}

/// JSON text known to be valid (an element of a parsed body, or serialized here) as a raw value.
fn raw(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| null())
}

fn null() -> Box<RawValue> {
    RawValue::from_string("null".to_string()).unwrap_or_default()
}

/// The names of the `namespace` tool groups.
fn namespaces_of(tools: Option<&Value>) -> HashSet<String> {
    tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| t.get("type").and_then(Value::as_str) == Some("namespace"))
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn parse_item(
    i: usize,
    item: &Value,
    out: &mut Vec<Message>,
    images: &mut Vec<(usize, ImageSource)>,
) -> Result<(), ApiError> {
    let kind = item.get("type").and_then(Value::as_str);
    let has_role = item.get("role").is_some();
    match kind {
        Some("message") | None if has_role => message_item(i, item, out, images),
        Some("function_call") => {
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("`input[{i}].name` must be a string."), "input"))?;
            let name = match item.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() => format!("{ns}{NAMESPACE_SEP}{name}"),
                _ => name.to_string(),
            };
            let call = ToolCall {
                id: call_id(i, item)?,
                name,
                arguments: crate::server::openai::request::arguments_text(item.get("arguments")),
            };
            // Calls right after an assistant message belong to it.
            match out.last_mut() {
                Some(m) if m.role == Role::Assistant => m.tool_calls.push(call),
                _ => out.push(Message::calls("", vec![call])),
            }
            Ok(())
        }
        Some("function_call_output") => {
            let content = output_text(item.get("output"));
            out.push(Message::result(call_id(i, item)?, content, false));
            Ok(())
        }
        Some("reasoning") => Ok(()),
        Some(other) => {
            tracing::debug!(
                kind = other.chars().take(40).collect::<String>(),
                "an input item of a kind the proxy cannot forward is left out"
            );
            Ok(())
        }
        None => Err(bad(
            format!("`input[{i}]` must have a `type` or a `role`."),
            "input",
        )),
    }
}

fn call_id(i: usize, item: &Value) -> Result<String, ApiError> {
    item.get("call_id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| bad(format!("`input[{i}].call_id` must be a string."), "input"))
}

/// A function's output: a string, or content items whose texts are joined.
fn output_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(other) => other.to_string(),
    }
}

fn message_item(
    i: usize,
    item: &Value,
    out: &mut Vec<Message>,
    images: &mut Vec<(usize, ImageSource)>,
) -> Result<(), ApiError> {
    let role_str = item.get("role").and_then(Value::as_str).unwrap_or("");
    let role = match role_str {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" | "developer" => Role::System,
        _ => {
            return Err(bad(
                format!(
                    "`input[{i}].role` is `{}`; expected user, assistant, system or developer.",
                    role_str.chars().take(32).collect::<String>()
                ),
                "input",
            ));
        }
    };
    let text = match item.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for (j, p) in parts.iter().enumerate() {
                match p.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text" | "summary_text") => {
                        texts.push(p.get("text").and_then(Value::as_str).ok_or_else(|| {
                            bad(
                                format!("`input[{i}].content[{j}].text` must be a string."),
                                "input",
                            )
                        })?);
                    }
                    Some("input_image") if role == Role::User => {
                        let url = p
                            .get("image_url")
                            .and_then(|u| u.as_str().or_else(|| u.get("url")?.as_str()))
                            .ok_or_else(|| {
                                bad(
                                    format!("`input[{i}].content[{j}].image_url` must be a URL string (file ids are not supported)."),
                                    "input",
                                )
                            })?;
                        images.push((out.len(), ImageSource::from_url(url)));
                    }
                    Some("refusal") => {
                        if let Some(t) = p.get("refusal").and_then(Value::as_str) {
                            texts.push(t);
                        }
                    }
                    other => {
                        return Err(bad(
                            format!(
                                "`input[{i}].content[{j}].type` is `{}`; expected input_text, output_text or input_image.",
                                other
                                    .unwrap_or("(missing)")
                                    .chars()
                                    .take(32)
                                    .collect::<String>()
                            ),
                            "input",
                        ));
                    }
                }
            }
            texts.join("\n")
        }
        None | Some(Value::Null) => String::new(),
        Some(_) => {
            return Err(bad(
                format!("`input[{i}].content` must be a string or an array of parts."),
                "input",
            ));
        }
    };
    out.push(Message::new(role, text));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: &Value, earlier: Vec<Box<RawValue>>) -> Result<ResponsesRequest, ApiError> {
        ResponsesRequest::parse(&ChatBody::of(v)?, earlier)
    }

    #[test]
    fn codex_style_items_map_to_the_internal_model() {
        let body = json!({"model":"GPT5","instructions":"be useful","input":[
            {"type":"message","role":"developer","content":[{"type":"input_text","text":"dev"}]},
            {"type":"message","role":"user","content":[{"type":"input_text","text":"make a file"}]},
            {"type":"reasoning","id":"rs_1","summary":[]},
            {"type":"message","role":"assistant","content":[{"type":"output_text","text":"I will."}]},
            {"type":"function_call","call_id":"call_1","name":"exec_command","arguments":"{\"cmd\":\"touch x\"}"},
            {"type":"function_call","call_id":"call_2","name":"spawn","namespace":"agents","arguments":"{}"},
            {"type":"function_call_output","call_id":"call_1","output":"done"}],
            "tools":[{"type":"function","name":"exec_command","parameters":{"type":"object"}},
                     {"type":"namespace","name":"agents","tools":[{"type":"function","name":"spawn"}]},
                     {"type":"web_search"}],
            "tool_choice":"auto","parallel_tool_calls":true,"store":false,"stream":true});
        let r = parse(&body, Vec::new()).expect("valid");
        assert!(r.stream && !r.store);
        let m = &r.chat.messages;
        assert_eq!(m.len(), 5, "{m:?}");
        assert_eq!((m[0].role, m[0].text.as_str()), (Role::System, "be useful"));
        assert_eq!((m[1].role, m[1].text.as_str()), (Role::System, "dev"));
        assert_eq!(m[3].text, "I will.");
        let names: Vec<&str> = m[3].tool_calls.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["exec_command", "agents__spawn"]);
        let res = m[4].result_of.as_ref().expect("result");
        assert_eq!(res.name.as_deref(), Some("exec_command"));
        assert_eq!(r.chat.tools.as_ref().expect("tools").specs().len(), 2);
        assert!(r.namespaces.contains("agents"));
    }

    #[test]
    fn string_input_and_earlier_items() {
        let earlier = vec![
            raw(json!({"role":"user","content":"first"}).to_string()),
            raw(json!({"type":"message","role":"assistant","content":[{"type":"output_text","text":"one"}]}).to_string()),
        ];
        let r = parse(&json!({"input":"second"}), earlier).expect("valid");
        let texts: Vec<&str> = r.chat.messages.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, ["first", "one", "second"]);
        assert_eq!(r.input_items.len(), 3);
    }

    #[test]
    fn rejects_bad_shapes_naming_the_field() {
        for body in [
            json!({}),
            json!({"input": 5}),
            json!({"input": [{"foo": 1}]}),
            json!({"input": [{"role": "wizard", "content": "x"}]}),
            json!({"input": [{"role": "user", "content": [{"type": "video"}]}]}),
            json!({"input": [{"type": "function_call", "name": "f"}]}),
            json!({"input": "x", "stream": "yes"}),
            json!({"input": "x", "instructions": 3}),
            json!({"input": [{"role": "system", "content": "only system"}]}),
        ] {
            let e = parse(&body, Vec::new()).expect_err("rejected");
            assert_eq!(e.status(), axum::http::StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
