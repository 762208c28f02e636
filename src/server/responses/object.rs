//! The `response` object and its output items, shared by the streamed events and the
//! non-streamed answer.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::config::ReasoningMode;
use crate::server::answer::Answer;
use crate::server::openai::usage;
use crate::server::tool_defs::split_namespace;
use crate::store::now_ms;

/// What every part of one response shares.
pub struct ResponseMeta {
    pub id: String,
    pub created_at: u64,
    pub model: String,
    pub input_tokens: u64,
    pub namespaces: HashSet<String>,
    pub instructions: Option<String>,
    /// Keep the response for `previous_response_id`.
    pub store: bool,
    /// The input items of the request (with the earlier response's), kept with the answer.
    pub input_items: Vec<Box<serde_json::value::RawValue>>,
    pub mode: ReasoningMode,
}

/// A fresh id with a prefix (`resp_`, `msg_`, `fc_`, `rs_`).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

impl ResponseMeta {
    /// The `response` object in a given state.
    pub fn object(&self, status: &str, output: &[Value], answer: Option<&Answer>) -> Value {
        let usage = answer.map(|a| {
            let (input, output) = usage::counts(self.input_tokens, a);
            let reasoning = if a.usage.is_some() {
                0
            } else {
                crate::tokens::count(&a.reasoning)
            };
            json!({"input_tokens": input, "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
                "total_tokens": input + output})
        });
        json!({
            "id": self.id, "object": "response", "created_at": self.created_at / 1000,
            "status": status, "error": null, "incomplete_details": null,
            "instructions": self.instructions, "model": self.model, "output": output,
            "parallel_tool_calls": true, "tool_choice": "auto", "tools": [],
            "store": self.store, "usage": usage, "metadata": {},
        })
    }

    /// A `function_call` item; a flattened `NS__NAME` is given back as `name` + `namespace`.
    pub fn function_call(
        &self,
        id: &str,
        call_id: &str,
        name: &str,
        arguments: &str,
        status: &str,
    ) -> Value {
        let (ns, name) = split_namespace(name, &self.namespaces);
        let mut item = json!({"id": id, "type": "function_call", "status": status,
            "call_id": call_id, "name": name, "arguments": arguments});
        if let Some(ns) = ns {
            item["namespace"] = Value::String(ns.to_string());
        }
        item
    }

    /// All output items of a whole answer: reasoning, message, function calls.
    pub fn output(&self, answer: &Answer) -> Vec<Value> {
        let mut out = Vec::new();
        if self.mode != ReasoningMode::Hide && !answer.reasoning.is_empty() {
            out.push(reasoning_item(&new_id("rs_"), &answer.reasoning));
        }
        if !answer.text.is_empty() || answer.calls.is_empty() {
            out.push(message_item(&new_id("msg_"), &answer.text, "completed"));
        }
        for c in &answer.calls {
            out.push(self.function_call(&new_id("fc_"), &c.id, &c.name, &c.arguments, "completed"));
        }
        out
    }

    /// The conversation to keep for `previous_response_id`: the input items and the output.
    pub fn transcript(&self, output: &[Value]) -> String {
        let texts: Vec<String> = output.iter().map(Value::to_string).collect();
        let all: Vec<&str> = self
            .input_items
            .iter()
            .map(|i| i.get())
            .chain(texts.iter().map(String::as_str))
            .collect();
        format!("[{}]", all.join(","))
    }

    pub fn created_now(mut self) -> Self {
        self.created_at = now_ms();
        self
    }
}

pub fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

pub fn reasoning_item(id: &str, text: &str) -> Value {
    json!({"id": id, "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}]})
}
