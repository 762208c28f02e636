//! Argument checks against a tool's JSON Schema, with the `boon` crate.
//!
//! `boon` was picked over `jsonschema` by build cost on our 2-core builders. Alone with
//! `serde_json`, a clean debug build took 11-13 s against 23 s for `jsonschema` without default
//! features (release: 23 s against 61 s); in this crate, where `regex`, `url` and `idna` are
//! already built, `boon` adds 7 crates (3 CPU-seconds) and `jsonschema` 33 (20 CPU-seconds).
//! Both cover drafts 4 to 2020-12; neither pulls an HTTP client with these settings.
//!
//! Schemas come from clients, so nothing is fetched: `$ref`s outside the schema (file or URL)
//! make the schema fail to compile, and such a tool is called without validation. The same holds
//! for any schema `boon` refuses; a client's sloppy schema must not make its tool unusable.

use boon::{Compiler, SchemaIndex, Schemas, UrlLoader, ValidationError};
use serde_json::Value;

/// Where the schema is registered; relative `$ref`s resolve against it and are then refused.
const LOCATION: &str = "https://tool.invalid/parameters.json";

/// How many leaf errors a reason names; more would not help the model fix its call.
const MAX_ERRORS: usize = 3;

/// How long a reason may grow (bytes) before it is cut.
const MAX_REASON: usize = 300;

/// One tool's compiled schema.
pub(crate) struct Validator {
    schemas: Schemas,
    root: SchemaIndex,
}

impl Validator {
    /// `None` when there is no schema (`null`) or it does not compile.
    pub(crate) fn compile(schema: &Value) -> Option<Validator> {
        if schema.is_null() {
            return None;
        }
        let mut compiler = Compiler::new();
        compiler.use_loader(Box::new(NothingRemote));
        compiler.add_resource(LOCATION, schema.clone()).ok()?;
        let mut schemas = Schemas::new();
        let root = compiler.compile(LOCATION, &mut schemas).ok()?;
        Some(Validator { schemas, root })
    }

    /// `Err` holds a short, human-readable account of what is wrong, e.g.
    /// `missing properties 'content'; at /limit: want number, but got string`.
    pub(crate) fn check(&self, arguments: &Value) -> Result<(), String> {
        let Err(error) = self.schemas.validate(arguments, self.root) else {
            return Ok(());
        };
        let mut leaves = Vec::new();
        collect_leaves(&error, &mut leaves);
        let mut parts: Vec<String> = leaves
            .iter()
            .take(MAX_ERRORS)
            .map(|e| {
                let at = e.instance_location.to_string();
                if at.is_empty() {
                    e.kind.to_string()
                } else {
                    format!("at {at}: {}", e.kind)
                }
            })
            .collect();
        if leaves.len() > MAX_ERRORS {
            parts.push(format!("{} more", leaves.len() - MAX_ERRORS));
        }
        Err(cut(parts.join("; "), MAX_REASON))
    }
}

/// The errors without causes: the ones that say what is actually wrong.
fn collect_leaves<'e, 's, 'v>(
    e: &'e ValidationError<'s, 'v>,
    out: &mut Vec<&'e ValidationError<'s, 'v>>,
) {
    if e.causes.is_empty() {
        out.push(e);
    }
    for cause in &e.causes {
        collect_leaves(cause, out);
    }
}

/// `text` cut to at most `max` bytes (at a char boundary), with `…` when cut.
fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

/// Refuses every load: a tool schema must be self-contained.
struct NothingRemote;

impl UrlLoader for NothingRemote {
    fn load(&self, url: &str) -> Result<Value, Box<dyn std::error::Error>> {
        Err(format!("{url} is outside the tool schema and is not loaded").into())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn write_schema() -> Value {
        json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "file_path": {"type": "string"},
                "content": {"type": "string"},
                "limit": {"type": "number"}
            },
            "required": ["file_path", "content"],
            "additionalProperties": false
        })
    }

    #[test]
    fn valid_arguments_pass() {
        let v = Validator::compile(&write_schema()).expect("compiles");
        assert_eq!(
            v.check(&json!({"file_path": "/x", "content": "hi"})),
            Ok(())
        );
    }

    #[test]
    fn a_violation_names_what_is_wrong_and_where() {
        let v = Validator::compile(&write_schema()).expect("compiles");
        let reason = v
            .check(&json!({"file_path": "/x", "limit": "ten"}))
            .expect_err("invalid");
        assert!(reason.contains("content"), "{reason}");
        assert!(reason.contains("/limit"), "{reason}");
        assert!(!reason.contains("tool.invalid"), "{reason}");
    }

    #[test]
    fn remote_and_file_refs_are_never_loaded() {
        assert!(Validator::compile(&json!({"$ref": "file:///etc/passwd"})).is_none());
        assert!(Validator::compile(&json!({"$ref": "other.json"})).is_none());
        assert!(Validator::compile(&json!({"$ref": "https://example.com/s.json"})).is_none());
    }

    #[test]
    fn local_refs_resolve() {
        let v = Validator::compile(&json!({
            "type": "object",
            "properties": {"todo": {"$ref": "#/definitions/todo"}},
            "definitions": {"todo": {"type": "string"}}
        }))
        .expect("compiles");
        assert!(v.check(&json!({"todo": 1})).is_err());
        assert!(v.check(&json!({"todo": "a"})).is_ok());
    }

    #[test]
    fn null_and_broken_schemas_give_no_validator() {
        assert!(Validator::compile(&Value::Null).is_none());
        assert!(Validator::compile(&json!({"type": 7})).is_none());
        assert!(Validator::compile(&json!({"pattern": "(unclosed"})).is_none());
    }
}
