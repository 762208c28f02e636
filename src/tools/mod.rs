//! Tool calls for a model that has no tool API.
//!
//! cto.new's web agent reads and writes text only. When a client offers tools (coding agents:
//! Claude Code, Codex CLI, opencode) the proxy describes them in the prompt and reads the calls
//! back out of the answer. `docs/tool-emulation.md` is the contract for both directions (the
//! simulator's model follows it too); this module implements it and nothing more. It names no
//! server, relay or upstream type, so it can be wired in anywhere and tested with text alone.
//!
//! - this file: the types ([`ToolSpec`], [`ToolChoice`], [`ToolSet`], [`ToolCall`]);
//! - [`prompt`]: what goes upstream (the `[Tools]` block, past calls and results, the reminder
//!   and the repair turn); `compact` shrinks the tool definitions to a byte budget;
//! - [`parse`]: [`CallParser`], fed the answer delta by delta; it finds the block with `marker`
//!   and `fence`, reads it with `block` (JSON through `lenient_json`, arguments checked by
//!   `schema`);
//! - `fixture` (tests only): a tool set shaped like Claude Code's, for size and parsing tests.

mod block;
mod compact;
mod fence;
mod lenient_json;
mod marker;
pub mod parse;
pub mod prompt;
mod schema;

#[cfg(test)]
mod fixture;

use std::collections::HashMap;
use std::sync::OnceLock;

use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde_json::Value;
use sha2::{Digest, Sha256};

pub use parse::{CallParser, Parsed};
pub use prompt::{REMINDER, render_calls, render_result, repair_prompt, tools_block};

use schema::Validator;

/// One tool a client offers, as both client APIs describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// The JSON Schema of the arguments (`Value::Null` when the client gave none).
    pub parameters: Value,
}

/// The client's `tool_choice`, in the words both APIs share.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    /// No tool may be called: no tools block is sent and the parser passes text through.
    None,
    /// At least one call.
    Required,
    /// Exactly this tool.
    Named(String),
}

/// The tools of one request, with their argument validators compiled once.
///
/// Fields are read through accessors because the validators are indexed by the specs: a set
/// whose specs changed after [`ToolSet::new`] would check calls against the wrong schemas.
/// A validator is compiled when its tool is first called, not up front: compiling Claude Code's
/// 20 schemas costs ~0.5 ms (release build) on every request, and a turn calls one or two.
pub struct ToolSet {
    specs: Vec<ToolSpec>,
    choice: ToolChoice,
    parallel: bool,
    /// Tool name to its index in `specs` (the first spec wins when a client repeats a name).
    by_name: HashMap<String, usize>,
    /// One per spec, compiled on first use; `None` when the schema does not compile (that
    /// tool is not validated).
    validators: Vec<OnceLock<Option<Validator>>>,
}

impl ToolSet {
    /// A schema that does not compile is not an error: the tool is simply called without
    /// validation, as a client with a sloppy schema would expect.
    pub fn new(specs: Vec<ToolSpec>, choice: ToolChoice, parallel: bool) -> ToolSet {
        let mut by_name = HashMap::with_capacity(specs.len());
        for (i, spec) in specs.iter().enumerate() {
            by_name.entry(spec.name.clone()).or_insert(i);
        }
        let validators = specs.iter().map(|_| OnceLock::new()).collect();
        ToolSet {
            specs,
            choice,
            parallel,
            by_name,
            validators,
        }
    }

    pub fn specs(&self) -> &[ToolSpec] {
        &self.specs
    }

    pub fn choice(&self) -> &ToolChoice {
        &self.choice
    }

    /// Whether one reply may hold several calls (`parallel_tool_calls`).
    pub fn parallel(&self) -> bool {
        self.parallel
    }

    pub fn is_empty(&self) -> bool {
        self.specs.is_empty()
    }

    /// Whether calls are looked for at all: some tool is offered and calling is allowed.
    pub fn calls_allowed(&self) -> bool {
        !self.is_empty() && self.choice != ToolChoice::None
    }

    pub fn get(&self, name: &str) -> Option<&ToolSpec> {
        self.by_name.get(name).map(|&i| &self.specs[i])
    }

    /// Whether `name` has a schema that compiles (and so is checked).
    pub fn is_validated(&self, name: &str) -> bool {
        self.validator(name).is_some()
    }

    fn validator(&self, name: &str) -> Option<&Validator> {
        let &i = self.by_name.get(name)?;
        self.validators[i]
            .get_or_init(|| Validator::compile(&self.specs[i].parameters))
            .as_ref()
    }

    /// A short, stable hash of the tool names and schemas (16 hex digits), for conversation
    /// fingerprints: the upstream chat must see the tools block again when it changes.
    /// Independent of the order of the tools and of the keys inside the schemas; descriptions,
    /// the choice and `parallel` are left out (they do not change what may be called).
    pub fn digest(&self) -> String {
        let mut tools: Vec<(&str, String)> = self
            .specs
            .iter()
            .map(|s| (s.name.as_str(), canonical(&s.parameters)))
            .collect();
        tools.sort();
        let mut h = Sha256::new();
        h.update(b"el2a-tools-v1");
        for (name, schema) in &tools {
            for field in [name.as_bytes(), schema.as_bytes()] {
                h.update((field.len() as u64).to_le_bytes());
                h.update(field);
            }
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl std::fmt::Debug for ToolSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.specs.iter().map(|s| s.name.as_str()).collect();
        f.debug_struct("ToolSet")
            .field("tools", &names)
            .field("choice", &self.choice)
            .field("parallel", &self.parallel)
            .finish()
    }
}

/// One call the model made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// `call_` and 24 random letters and digits, fresh for every parsed call.
    pub id: String,
    pub name: String,
    /// Compact JSON object text (what both client APIs carry in their `arguments`/`input`).
    pub arguments: String,
}

/// A fresh call id: `call_` + 24 random alphanumerics.
pub fn new_call_id() -> String {
    let suffix: String = rand::rng()
        .sample_iter(Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("call_{suffix}")
}

/// JSON text with object keys sorted at every level, whatever map the build uses.
fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::from(k.as_str()).to_string());
                    out.push(':');
                    write(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(name: &str, parameters: Value) -> ToolSpec {
        ToolSpec {
            name: name.into(),
            description: format!("{name} things"),
            parameters,
        }
    }

    #[test]
    fn call_ids_are_fresh_and_shaped_like_openai_ids() {
        let (a, b) = (new_call_id(), new_call_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 5 + 24);
        assert!(a.starts_with("call_"));
        assert!(a[5..].chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn digest_ignores_tool_order_key_order_and_descriptions() {
        let a = ToolSet::new(
            vec![
                spec("Read", json!({"type": "object", "required": ["p"]})),
                spec("Write", json!({})),
            ],
            ToolChoice::Auto,
            true,
        );
        let mut write = spec("Write", json!({}));
        write.description = "changed".into();
        let b = ToolSet::new(
            vec![
                write,
                spec("Read", json!({"required": ["p"], "type": "object"})),
            ],
            ToolChoice::Required,
            false,
        );
        assert_eq!(a.digest(), b.digest());
        assert_eq!(a.digest().len(), 16);
    }

    #[test]
    fn digest_changes_with_a_schema_or_a_name() {
        let base = ToolSet::new(vec![spec("Read", json!({}))], ToolChoice::Auto, true);
        let schema = ToolSet::new(
            vec![spec("Read", json!({"type": "object"}))],
            ToolChoice::Auto,
            true,
        );
        let name = ToolSet::new(vec![spec("Reed", json!({}))], ToolChoice::Auto, true);
        assert_ne!(base.digest(), schema.digest());
        assert_ne!(base.digest(), name.digest());
    }

    #[test]
    fn a_schema_that_does_not_compile_means_no_validation() {
        let set = ToolSet::new(
            vec![
                spec("Good", json!({"type": "object"})),
                spec("Bad", json!({"type": "no-such-type"})),
                spec("Remote", json!({"$ref": "https://example.com/s.json"})),
            ],
            ToolChoice::Auto,
            true,
        );
        assert!(set.is_validated("Good"));
        assert!(!set.is_validated("Bad"));
        assert!(!set.is_validated("Remote"));
    }

    /// Run with `cargo test --release --lib tools::tests -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check: run it by hand"]
    fn build_cost_of_a_claude_code_tool_set() {
        let specs = fixture::claude_code();
        let rounds = 200;
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let set = ToolSet::new(specs.clone(), ToolChoice::Auto, true);
            for spec in &specs {
                assert!(set.is_validated(&spec.name));
            }
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!(
            "ToolSet::new + all {} schemas compiled: {per:.0} µs",
            specs.len()
        );
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            let set = ToolSet::new(specs.clone(), ToolChoice::Auto, true);
            assert!(set.is_validated("Write"));
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("ToolSet::new + one schema compiled: {per:.0} µs");
        let set = ToolSet::new(specs, ToolChoice::Auto, true);
        let start = std::time::Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(set.digest());
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("ToolSet::digest: {per:.0} µs");
    }

    #[test]
    fn sets_and_parsers_can_cross_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<ToolSet>();
        send_sync::<CallParser>();
    }

    #[test]
    fn a_repeated_name_keeps_the_first_spec() {
        let mut second = spec("Read", json!({}));
        second.description = "second".into();
        let set = ToolSet::new(
            vec![spec("Read", json!({})), second],
            ToolChoice::Auto,
            true,
        );
        assert_eq!(
            set.get("Read").map(|s| s.description.as_str()),
            Some("Read things")
        );
    }
}
