//! PLACEHOLDER until the `tools` branch lands: the types of tool emulation with trivial bodies.
//! The real module (prompt block, streaming parser, schema checks) replaces this file whole.

use std::sync::Arc;

use serde_json::Value;

/// A tool the client offers.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: Value,
}

/// The client's `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    Required,
    Named(String),
}

/// The tools of one request.
#[derive(Debug, Clone)]
pub struct ToolSet {
    pub specs: Vec<ToolSpec>,
    pub choice: ToolChoice,
    pub parallel: bool,
}

impl ToolSet {
    pub fn new(specs: Vec<ToolSpec>, choice: ToolChoice, parallel: bool) -> ToolSet {
        ToolSet {
            specs,
            choice,
            parallel,
        }
    }

    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    pub fn choice(&self) -> &ToolChoice {
        &self.choice
    }

    pub fn parallel(&self) -> bool {
        self.parallel
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    pub fn digest(&self) -> String {
        self.specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// One call of a tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

pub mod prompt {
    use super::{ToolCall, ToolSet};

    pub const REMINDER: &str =
        "(Reply in text, or call tools with a <<<TOOL_CALLS>>> block as described before.)";

    pub fn tools_block(set: &ToolSet, _budget: usize) -> String {
        let mut s = String::from("[Tools]\n<<<TOOLS>>>\n");
        for t in &set.specs {
            s.push_str(
                &serde_json::json!({"name": t.name, "description": t.description, "parameters": t.parameters})
                    .to_string(),
            );
            s.push('\n');
        }
        s.push_str("<<<END_TOOLS>>>");
        s
    }

    pub fn render_calls(calls: &[ToolCall]) -> String {
        let v: Vec<serde_json::Value> = calls
            .iter()
            .map(|c| serde_json::json!({"id": c.id, "name": c.name, "arguments": serde_json::from_str::<serde_json::Value>(&c.arguments).unwrap_or(serde_json::Value::Null)}))
            .collect();
        format!(
            "<<<TOOL_CALLS>>>\n{}\n<<<END_TOOL_CALLS>>>",
            serde_json::Value::Array(v)
        )
    }

    pub fn render_result(
        call_id: &str,
        name: Option<&str>,
        is_error: bool,
        content: &str,
    ) -> String {
        let mut head = format!("[Tool result call_id={call_id}");
        if let Some(n) = name {
            head.push_str(&format!(" name={n}"));
        }
        if is_error {
            head.push_str(" error");
        }
        format!("{head}]\n{content}")
    }

    pub fn repair_prompt(reason: &str) -> String {
        format!(
            "[Tool call error]\nYour <<<TOOL_CALLS>>> block could not be used: {reason}.\nReply with only the corrected block."
        )
    }
}

pub mod parse {
    use super::{Arc, ToolCall, ToolSet};

    pub enum Parsed {
        Text(String),
        Calls(Vec<ToolCall>),
        Malformed { raw: String, reason: String },
    }

    pub struct CallParser {
        _set: Arc<ToolSet>,
    }

    impl CallParser {
        pub fn new(set: Arc<ToolSet>) -> Self {
            CallParser { _set: set }
        }
        pub fn push(&mut self, delta: &str) -> Vec<Parsed> {
            vec![Parsed::Text(delta.to_string())]
        }
        pub fn finish(&mut self) -> Vec<Parsed> {
            Vec::new()
        }
    }
}

pub use parse::{CallParser, Parsed};
