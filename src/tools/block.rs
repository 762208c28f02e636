//! The text between the markers, turned into calls or into the reason it cannot be used.
//!
//! Accepted shapes (the contract, plus two unambiguous habits): an array of calls, a single
//! call, or calls one per line (models imitate the JSON Lines of the tools list); the body may
//! sit in a code fence of its own. A call is `{"name", "arguments"}`, `{"tool", "input"}` or
//! `{"function": {"name", "arguments"}}` (an `id` or `type` beside them is ignored: ids are
//! always fresh). `arguments` is an object or a JSON string holding one; missing or `null`
//! means `{}`, which the schema then judges. Any other key is refused rather than guessed at: a
//! model that writes `{"name": "Write", "file_path": ...}` is told to put the parameters under
//! `arguments`.
//!
//! A reason is one short sentence for two readers: the client's log and the model's repair
//! turn (`Your <<<TOOL_CALLS>>> block could not be used: <reason>.`).

use serde_json::{Map, Value};

use super::{ToolCall, ToolChoice, ToolSet, lenient_json, new_call_id};

/// How many offered names an "unknown tool" reason lists.
const MAX_NAMES: usize = 30;

/// The calls in `body` (the text between the markers). `closed`: the closing marker was seen;
/// without it, text after the JSON is the model carrying on, not part of the block.
pub(crate) fn read_calls(set: &ToolSet, body: &str, closed: bool) -> Result<Vec<ToolCall>, String> {
    let body = unwrap_fence(body.trim());
    if body.is_empty() {
        return Err("the block holds no JSON".into());
    }
    let found = lenient_json::values(body);
    if let Some(junk) = found.junk
        && (closed || found.values.is_empty())
    {
        return Err(format!("the block is not valid JSON ({junk})"));
    }
    let mut items = Vec::new();
    for v in found.values {
        match v {
            Value::Array(calls) => items.extend(calls),
            other => items.push(other),
        }
    }
    if items.is_empty() {
        return Err("the block holds no calls".into());
    }
    let mut calls = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let (name, arguments) = read_call(set, item).map_err(|e| e.describe(i + 1))?;
        calls.push(ToolCall {
            id: new_call_id(),
            name,
            arguments: arguments.to_string(),
        });
    }
    if !set.parallel() {
        // The rules said one call per reply; the first is the one the model led with. The
        // transcript shows the client's history, so the model sees the rest was not made.
        calls.truncate(1);
    }
    Ok(calls)
}

/// What is wrong with one call; its position is added while no tool name is known.
enum CallError {
    /// No tool name known yet.
    Shape(String),
    /// About the named tool.
    Tool(String),
}

impl CallError {
    fn describe(self, position: usize) -> String {
        match self {
            CallError::Shape(what) => format!("call {position} {what}"),
            CallError::Tool(what) => what,
        }
    }
}

/// The tool name and the arguments (always an object) of one call.
fn read_call(set: &ToolSet, item: Value) -> Result<(String, Value), CallError> {
    let Value::Object(mut outer) = item else {
        return Err(CallError::Shape("is not a JSON object".into()));
    };
    let mut call = match outer.remove("function") {
        Some(Value::Object(inner)) => {
            if let Some(key) = outer.keys().find(|k| !matches!(k.as_str(), "id" | "type")) {
                return Err(CallError::Shape(format!("has an unexpected key `{key}`")));
            }
            inner
        }
        Some(_) => {
            return Err(CallError::Shape(
                "has a `function` that is not an object".into(),
            ));
        }
        None => outer,
    };
    let name = match take_one_of(&mut call, "name", "tool").map_err(CallError::Shape)? {
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(CallError::Shape(
                "has a tool name that is not a string".into(),
            ));
        }
        None => return Err(CallError::Shape("has no tool name (`name`)".into())),
    };
    if let Some(key) = call
        .keys()
        .find(|k| !matches!(k.as_str(), "arguments" | "input" | "id" | "type"))
    {
        return Err(CallError::Tool(format!(
            "the call to `{name}` has an unexpected key `{key}` (put the tool's parameters under \"arguments\")"
        )));
    }
    let Some(spec) = set.get(&name) else {
        let offered: Vec<&str> = set
            .specs()
            .iter()
            .take(MAX_NAMES)
            .map(|s| s.name.as_str())
            .collect();
        let more = if set.specs().len() > MAX_NAMES {
            ", …"
        } else {
            ""
        };
        return Err(CallError::Tool(format!(
            "`{name}` is not one of the offered tools ({}{more})",
            offered.join(", ")
        )));
    };
    if let ToolChoice::Named(required) = set.choice()
        && *required != spec.name
    {
        return Err(CallError::Tool(format!(
            "the tool to call is `{required}`, not `{name}`"
        )));
    }
    let arguments = match take_one_of(&mut call, "arguments", "input").map_err(CallError::Shape)? {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(args @ Value::Object(_)) => args,
        Some(Value::String(text)) => match lenient_json::value(&text) {
            Ok(args @ Value::Object(_)) => args,
            Ok(_) => return Err(not_an_object(&name)),
            Err(e) => {
                return Err(CallError::Tool(format!(
                    "the arguments of `{name}` are not valid JSON ({e})"
                )));
            }
        },
        Some(_) => return Err(not_an_object(&name)),
    };
    if let Some(validator) = set.validator(&name) {
        validator.check(&arguments).map_err(|e| {
            CallError::Tool(format!("the arguments of `{name}` break its schema: {e}"))
        })?;
    }
    Ok((name, arguments))
}

fn not_an_object(name: &str) -> CallError {
    CallError::Tool(format!("the arguments of `{name}` are not a JSON object"))
}

/// Takes the value under `a` or its alternative spelling `b`; both at once is ambiguous.
fn take_one_of(call: &mut Map<String, Value>, a: &str, b: &str) -> Result<Option<Value>, String> {
    if call.contains_key(a) && call.contains_key(b) {
        return Err(format!("has both `{a}` and `{b}`"));
    }
    Ok(call.remove(a).or_else(|| call.remove(b)))
}

/// The body without a code fence wrapped around it (```` ```json ```` ... ```` ``` ````).
fn unwrap_fence(body: &str) -> &str {
    if !(body.starts_with("```") || body.starts_with("~~~")) {
        return body;
    }
    let Some((_, rest)) = body.split_once('\n') else {
        return body;
    };
    let rest = rest.trim_end();
    rest.strip_suffix("```")
        .or_else(|| rest.strip_suffix("~~~"))
        .unwrap_or(rest)
        .trim()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::tools::ToolSpec;

    fn set(choice: ToolChoice, parallel: bool) -> ToolSet {
        let spec = |name: &str, parameters| ToolSpec {
            name: name.into(),
            description: String::new(),
            parameters,
        };
        ToolSet::new(
            vec![
                spec(
                    "Write",
                    json!({"type": "object", "properties": {"file_path": {"type": "string"},
                        "content": {"type": "string"}}, "required": ["file_path", "content"]}),
                ),
                spec(
                    "Read",
                    json!({"type": "object", "properties": {"file_path": {"type": "string"}},
                    "required": ["file_path"]}),
                ),
                spec("Now", Value::Null),
            ],
            choice,
            parallel,
        )
    }

    fn calls(body: &str) -> Result<Vec<(String, Value)>, String> {
        read_calls(&set(ToolChoice::Auto, true), body, true).map(|calls| {
            calls
                .into_iter()
                .map(|c| (c.name, serde_json::from_str(&c.arguments).expect("json")))
                .collect()
        })
    }

    #[test]
    fn an_array_a_single_object_and_json_lines_are_all_calls() {
        let want = vec![("Read".to_string(), json!({"file_path": "/a"}))];
        assert_eq!(
            calls(r#"[{"name": "Read", "arguments": {"file_path": "/a"}}]"#),
            Ok(want.clone())
        );
        assert_eq!(
            calls(r#"{"name": "Read", "arguments": {"file_path": "/a"}}"#),
            Ok(want)
        );
        let two = calls(
            "{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"}}\n{\"name\": \"Now\"}",
        );
        assert_eq!(two.map(|c| c.len()), Ok(2));
    }

    #[test]
    fn alternative_spellings_are_read() {
        let want = Ok(vec![("Read".to_string(), json!({"file_path": "/a"}))]);
        assert_eq!(
            calls(r#"[{"tool": "Read", "input": {"file_path": "/a"}}]"#),
            want
        );
        assert_eq!(
            calls(
                r#"[{"type": "function", "function": {"name": "Read", "arguments": "{\"file_path\": \"/a\"}"}}]"#
            ),
            want
        );
        assert_eq!(
            calls(r#"[{"id": "call_x", "name": "Read", "arguments": {"file_path": "/a"}}]"#),
            want
        );
    }

    #[test]
    fn a_fenced_body_is_unwrapped() {
        let body = "\n```json\n[{\"name\": \"Now\", \"arguments\": {}}]\n```\n";
        assert_eq!(calls(body), Ok(vec![("Now".to_string(), json!({}))]));
    }

    #[test]
    fn missing_arguments_are_an_empty_object_that_the_schema_judges() {
        assert_eq!(
            calls(r#"[{"name": "Now"}]"#),
            Ok(vec![("Now".to_string(), json!({}))])
        );
        let e = calls(r#"[{"name": "Read"}]"#).expect_err("required");
        assert!(e.contains("`Read`") && e.contains("file_path"), "{e}");
    }

    #[test]
    fn ambiguous_or_unexpected_keys_are_refused() {
        let e = calls(r#"[{"name": "Read", "arguments": {}, "input": {}}]"#).expect_err("both");
        assert!(e.contains("both `arguments` and `input`"), "{e}");
        let e = calls(r#"[{"name": "Read", "file_path": "/a"}]"#).expect_err("flat");
        assert!(e.contains("`file_path`") && e.contains("arguments"), "{e}");
    }

    #[test]
    fn an_unknown_tool_is_named_with_the_offered_ones() {
        let e = calls(r#"[{"name": "Delete", "arguments": {}}]"#).expect_err("unknown");
        assert_eq!(
            e,
            "`Delete` is not one of the offered tools (Write, Read, Now)"
        );
    }

    #[test]
    fn a_named_choice_refuses_other_tools() {
        let set = set(ToolChoice::Named("Write".into()), true);
        let e = read_calls(&set, r#"[{"name": "Now"}]"#, true).expect_err("named");
        assert_eq!(e, "the tool to call is `Write`, not `Now`");
    }

    #[test]
    fn without_parallel_calls_only_the_first_call_is_kept() {
        let set = set(ToolChoice::Auto, false);
        let got = read_calls(
            &set,
            r#"[{"name": "Now"}, {"name": "Read", "arguments": {"file_path": "/a"}}]"#,
            true,
        )
        .expect("calls");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "Now");
    }

    #[test]
    fn text_after_the_json_is_refused_only_before_a_closing_marker() {
        let body = "[{\"name\": \"Now\"}]\nThat should do it.";
        assert!(read_calls(&set(ToolChoice::Auto, true), body, true).is_err());
        assert_eq!(
            read_calls(&set(ToolChoice::Auto, true), body, false).map(|c| c.len()),
            Ok(1)
        );
    }

    #[test]
    fn empty_and_non_object_blocks_are_reasons() {
        assert_eq!(calls("  "), Err("the block holds no JSON".into()));
        assert_eq!(calls("[]"), Err("the block holds no calls".into()));
        assert_eq!(calls("[1]"), Err("call 1 is not a JSON object".into()));
        let e = calls(r#"[{"name": "Read", "arguments": "[1]"}]"#).expect_err("array");
        assert_eq!(e, "the arguments of `Read` are not a JSON object");
    }
}
