//! The tools a client offers, read from each API's spelling into one [`ToolSet`](crate::tools::ToolSet): OpenAI Chat
//! Completions (`tools[].function`, legacy `functions`), OpenAI Responses (flat `function`
//! tools and `namespace` groups) and Anthropic Messages (`tools[]` with `input_schema`).
//!
//! Built-in tools that only the vendor's own servers can run (OpenAI `web_search`,
//! `file_search`, `code_interpreter`, …; Anthropic server tools such as `web_search_20250305`)
//! are left out of the offer, by one rule: a tool is offered only when it is a function the
//! client will run itself. Each left-out kind is logged once at debug level; it never turns the
//! request into an error, since clients such as Codex send `web_search` on every request.
//!
//! Namespaced tools (Codex groups functions in `{"type":"namespace","name":NS,"tools":[…]}`)
//! are offered as `NS__NAME` and split back by [`split_namespace`] when the call is answered.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use super::error::ApiError;
use crate::tools::{ToolChoice, ToolSpec};

/// Separator between a namespace and a function name in a flattened tool name.
pub const NAMESPACE_SEP: &str = "__";

fn bad(msg: impl Into<String>, param: &'static str) -> ApiError {
    ApiError::bad_request(msg, Some(param))
}

/// Logs, once per process and kind, a built-in tool left out of the offer.
fn left_out(kind: &str) {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let first = seen
        .lock()
        .map(|mut s| s.insert(kind.to_string()))
        .unwrap_or(false);
    if first {
        tracing::debug!(
            kind,
            "a built-in tool that only the vendor's servers run is left out of the offer"
        );
    }
}

/// A function's JSON Schema: an object schema when the client gave none.
fn schema(v: Option<&Value>) -> Value {
    match v {
        Some(s @ Value::Object(_)) => s.clone(),
        _ => serde_json::json!({"type": "object", "properties": {}}),
    }
}

fn spec(name: &str, description: Option<&Value>, parameters: Option<&Value>) -> ToolSpec {
    ToolSpec {
        name: name.to_string(),
        description: description
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        parameters: schema(parameters),
    }
}

fn name_of<'a>(t: &'a Value, at: &str, param: &'static str) -> Result<&'a str, ApiError> {
    match t.get("name").and_then(Value::as_str) {
        Some(n) if !n.trim().is_empty() => Ok(n),
        _ => Err(bad(
            format!("`{at}.name` must be a non-empty string."),
            param,
        )),
    }
}

/// OpenAI Chat Completions `tools` (and the legacy `functions`).
pub fn openai(tools: Option<&Value>, functions: Option<&Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let mut out = Vec::new();
    match tools {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, t) in items.iter().enumerate() {
                match t.get("type").and_then(Value::as_str) {
                    Some("function") => {
                        let f = t.get("function").ok_or_else(|| {
                            bad(format!("`tools[{i}].function` is required."), "tools")
                        })?;
                        let name = name_of(f, &format!("tools[{i}].function"), "tools")?;
                        out.push(spec(name, f.get("description"), f.get("parameters")));
                    }
                    Some(kind) => left_out(kind),
                    None => return Err(bad(format!("`tools[{i}].type` is required."), "tools")),
                }
            }
        }
        Some(_) => return Err(bad("`tools` must be an array.", "tools")),
    }
    if let Some(Value::Array(items)) = functions {
        for (i, f) in items.iter().enumerate() {
            let name = name_of(f, &format!("functions[{i}]"), "functions")?;
            out.push(spec(name, f.get("description"), f.get("parameters")));
        }
    }
    Ok(out)
}

/// OpenAI Responses `tools`: flat `function` tools and `namespace` groups.
pub fn responses(tools: Option<&Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let mut out = Vec::new();
    let items = match tools {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("`tools` must be an array.", "tools")),
    };
    for (i, t) in items.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = name_of(t, &format!("tools[{i}]"), "tools")?;
                out.push(spec(name, t.get("description"), t.get("parameters")));
            }
            Some("namespace") => {
                let ns = name_of(t, &format!("tools[{i}]"), "tools")?;
                for (j, f) in t
                    .get("tools")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    if f.get("type").and_then(Value::as_str) != Some("function") {
                        left_out("namespace member that is not a function");
                        continue;
                    }
                    let name = name_of(f, &format!("tools[{i}].tools[{j}]"), "tools")?;
                    out.push(spec(
                        &format!("{ns}{NAMESPACE_SEP}{name}"),
                        f.get("description"),
                        f.get("parameters"),
                    ));
                }
            }
            Some(kind) => left_out(kind),
            None => return Err(bad(format!("`tools[{i}].type` is required."), "tools")),
        }
    }
    Ok(out)
}

/// Anthropic `tools`: client tools have an `input_schema`; server tools have a dated `type`.
pub fn anthropic(tools: Option<&Value>) -> Result<Vec<ToolSpec>, ApiError> {
    let mut out = Vec::new();
    let items = match tools {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("`tools` must be an array.", "tools")),
    };
    for (i, t) in items.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {
                let name = name_of(t, &format!("tools[{i}]"), "tools")?;
                out.push(spec(name, t.get("description"), t.get("input_schema")));
            }
            Some(kind) => left_out(kind),
        }
    }
    Ok(out)
}

/// OpenAI `tool_choice` (Chat Completions and Responses spellings) or the legacy
/// `function_call`.
pub fn openai_choice(v: Option<&Value>) -> Result<ToolChoice, ApiError> {
    Ok(match v {
        None | Some(Value::Null) => ToolChoice::Auto,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" | "any" => ToolChoice::Required,
            other => {
                return Err(bad(
                    format!(
                        "`tool_choice` is `{other}`; expected auto, none, required or a named function."
                    ),
                    "tool_choice",
                ));
            }
        },
        Some(Value::Object(o)) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .or_else(|| o.get("name"))
                .and_then(Value::as_str);
            match (o.get("type").and_then(Value::as_str), name) {
                (_, Some(n)) => ToolChoice::Named(n.to_string()),
                (Some("auto"), None) => ToolChoice::Auto,
                (Some("none"), None) => ToolChoice::None,
                (Some("required" | "any" | "allowed_tools"), None) => ToolChoice::Required,
                _ => {
                    return Err(bad(
                        "`tool_choice` must be auto, none, required or {\"type\":\"function\",\"function\":{\"name\":…}}.",
                        "tool_choice",
                    ));
                }
            }
        }
        Some(_) => {
            return Err(bad(
                "`tool_choice` must be a string or an object.",
                "tool_choice",
            ));
        }
    })
}

/// Anthropic `tool_choice`: `{type: auto|any|tool|none, name?, disable_parallel_tool_use?}`.
/// Returns the choice and whether parallel calls are allowed.
pub fn anthropic_choice(v: Option<&Value>) -> Result<(ToolChoice, bool), ApiError> {
    let Some(o) = v.filter(|v| !v.is_null()) else {
        return Ok((ToolChoice::Auto, true));
    };
    let parallel = !o
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let choice = match (
        o.get("type").and_then(Value::as_str),
        o.get("name").and_then(Value::as_str),
    ) {
        (Some("auto"), _) => ToolChoice::Auto,
        (Some("any"), _) => ToolChoice::Required,
        (Some("none"), _) => ToolChoice::None,
        (Some("tool"), Some(n)) => ToolChoice::Named(n.to_string()),
        _ => {
            return Err(bad(
                "`tool_choice` must be {\"type\": \"auto\" | \"any\" | \"none\"} or {\"type\": \"tool\", \"name\": …}.",
                "tool_choice",
            ));
        }
    };
    Ok((choice, parallel))
}

/// The offer of one request: `None` when no tool is offered or `tool_choice` is `none` (the
/// transcript still shows earlier calls); a named choice must name an offered tool.
pub fn offer(
    specs: Vec<ToolSpec>,
    choice: ToolChoice,
    parallel: bool,
) -> Result<Option<std::sync::Arc<crate::tools::ToolSet>>, ApiError> {
    if specs.is_empty() || choice == ToolChoice::None {
        return Ok(None);
    }
    check_named(&choice, &specs)?;
    Ok(Some(std::sync::Arc::new(crate::tools::ToolSet::new(
        specs, choice, parallel,
    ))))
}

/// Checks a named choice against the offered tools.
pub fn check_named(choice: &ToolChoice, specs: &[ToolSpec]) -> Result<(), ApiError> {
    if let ToolChoice::Named(n) = choice
        && !specs.iter().any(|s| &s.name == n)
    {
        return Err(bad(
            format!(
                "`tool_choice` names the tool `{}`, which is not in `tools`.",
                clip(n)
            ),
            "tool_choice",
        ));
    }
    Ok(())
}

/// A client-supplied name cut for an error message.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `NS__NAME` -> (`Some(NS)`, `NAME`) for names the offer flattened; other names unchanged.
pub fn split_namespace<'a>(
    name: &'a str,
    namespaces: &HashSet<String>,
) -> (Option<&'a str>, &'a str) {
    if let Some((ns, inner)) = name.split_once(NAMESPACE_SEP)
        && namespaces.contains(ns)
    {
        return (Some(ns), inner);
    }
    (None, name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_are_left_out_and_namespaces_flattened() {
        let t = json!([
            {"type":"function","name":"exec_command","parameters":{"type":"object"}},
            {"type":"web_search","external_web_access":true},
            {"type":"namespace","name":"agents","tools":[{"type":"function","name":"spawn","description":"d"}]}
        ]);
        let specs = responses(Some(&t)).expect("valid");
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["exec_command", "agents__spawn"]);
        let ns: HashSet<String> = ["agents".to_string()].into();
        assert_eq!(
            split_namespace("agents__spawn", &ns),
            (Some("agents"), "spawn")
        );
        assert_eq!(split_namespace("my__tool", &ns), (None, "my__tool"));
    }

    #[test]
    fn openai_and_anthropic_spellings() {
        let o = openai(
            Some(&json!([{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}])),
            Some(&json!([{"name":"g"}])),
        )
        .expect("valid");
        assert_eq!(o.len(), 2);
        assert_eq!(o[1].parameters["type"], "object");
        let a = anthropic(Some(&json!([
            {"name":"Write","input_schema":{"type":"object"}},
            {"type":"web_search_20250305","name":"web_search"}
        ])))
        .expect("valid");
        assert_eq!(a.len(), 1);
        assert!(openai(Some(&json!([{"type":"function"}])), None).is_err());
    }

    #[test]
    fn choices() {
        assert_eq!(
            openai_choice(Some(&json!("required"))).expect("ok"),
            ToolChoice::Required
        );
        assert_eq!(
            openai_choice(Some(&json!({"type":"function","function":{"name":"f"}}))).expect("ok"),
            ToolChoice::Named("f".into())
        );
        assert_eq!(
            openai_choice(Some(&json!({"type":"function","name":"f"}))).expect("ok"),
            ToolChoice::Named("f".into())
        );
        assert!(openai_choice(Some(&json!("sometimes"))).is_err());
        assert_eq!(
            anthropic_choice(Some(
                &json!({"type":"any","disable_parallel_tool_use":true})
            ))
            .expect("ok"),
            (ToolChoice::Required, false)
        );
        assert!(anthropic_choice(Some(&json!({"type":"tool"}))).is_err());
        let specs = openai(
            Some(&json!([{"type":"function","function":{"name":"f"}}])),
            None,
        )
        .expect("ok");
        assert!(check_named(&ToolChoice::Named("g".into()), &specs).is_err());
        assert!(check_named(&ToolChoice::Named("f".into()), &specs).is_ok());
    }
}
