//! JSON as models write it: strict first, then a small repair pre-pass.
//!
//! The contract tolerates trailing commas and single-quoted strings. A crate could do this
//! (`json5` costs ~2 s of clean build), but JSON5 also accepts comments, unquoted keys, hex
//! numbers and `Infinity`, far more than the contract promises, and its errors would point at a
//! different grammar. The pre-pass below rewrites only what is listed, and only where the
//! reading is certain:
//! - a comma right before `]` or `}` that follows a value is dropped (`[,]` stays an error);
//! - a single-quoted string becomes a double-quoted one (`\'` inside it is an apostrophe, a
//!   `"` inside it gets escaped);
//! - `\'` inside a double-quoted string becomes `'`;
//! - raw newlines, carriage returns and tabs inside strings become their escapes.
//!
//! An apostrophe inside a single-quoted string (`'it's'`) cannot be read with certainty, and it
//! is not guessed: it ends the string, what follows is not JSON, and the parse fails. The
//! rewritten text then goes through the strict parser, so nothing else is ever accepted.

use serde_json::Value;

/// The JSON values found in a text, one after another (a block may hold one array, one object,
/// or objects one per line).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Values {
    pub(crate) values: Vec<Value>,
    /// Why the text after the last value is not JSON; `None` when only blanks follow it.
    pub(crate) junk: Option<String>,
}

/// Reads `text` strictly; when that leaves junk, tries the repaired text and keeps it only if
/// it reads cleanly to the end.
pub(crate) fn values(text: &str) -> Values {
    let strict = read(text);
    if strict.junk.is_none() {
        return strict;
    }
    match repair(text) {
        Some(fixed) if fixed != text => {
            let lenient = read(&fixed);
            if lenient.junk.is_none() {
                return lenient;
            }
            strict
        }
        _ => strict,
    }
}

/// Exactly one JSON value filling `text`, with the same tolerance. The error is the strict
/// parser's (line and column refer to what the model wrote).
pub(crate) fn value(text: &str) -> Result<Value, String> {
    let mut found = values(text);
    match (found.values.len(), found.junk) {
        (1, None) => Ok(found.values.remove(0)),
        (0, None) => Err("no JSON value".into()),
        (_, None) => Err("several JSON values where one was expected".into()),
        (_, Some(junk)) => Err(junk),
    }
}

fn read(text: &str) -> Values {
    let mut out = Values::default();
    for item in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        match item {
            Ok(v) => out.values.push(v),
            Err(e) => {
                out.junk = Some(e.to_string());
                break;
            }
        }
    }
    out
}

/// Where the pre-pass stands.
#[derive(Clone, Copy, PartialEq)]
enum Quote {
    Out,
    Double,
    Single,
}

/// The rewritten text, or `None` when a string is left open (nothing certain to offer).
fn repair(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 16);
    let mut quote = Quote::Out;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Quote::Out, '"') => {
                quote = Quote::Double;
                out.push('"');
            }
            (Quote::Out, '\'') => {
                quote = Quote::Single;
                out.push('"');
            }
            (Quote::Out, ',') if is_trailing_comma(&out, &text[i + 1..]) => {}
            (Quote::Out, _) => out.push(c),
            (_, '\\') => {
                let (_, next) = chars.next()?;
                if next != '\'' {
                    out.push('\\');
                }
                out.push(next);
            }
            (Quote::Double, '"') | (Quote::Single, '\'') => {
                quote = Quote::Out;
                out.push('"');
            }
            (Quote::Single, '"') => out.push_str("\\\""),
            (_, '\n') => out.push_str("\\n"),
            (_, '\r') => out.push_str("\\r"),
            (_, '\t') => out.push_str("\\t"),
            (_, _) => out.push(c),
        }
    }
    (quote == Quote::Out).then_some(out)
}

/// A comma is trailing when only blanks separate it from `]`/`}` and a value precedes it.
fn is_trailing_comma(before: &str, after: &str) -> bool {
    let closes = after.trim_start().starts_with([']', '}']);
    let follows_value = before
        .trim_end()
        .chars()
        .next_back()
        .is_some_and(|c| !matches!(c, '[' | '{' | ',' | ':'));
    closes && follows_value
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn strict_json_is_read_as_is() {
        assert_eq!(value(r#"{"a": [1, "x"]}"#), Ok(json!({"a": [1, "x"]})));
    }

    #[test]
    fn trailing_commas_are_dropped() {
        assert_eq!(
            value(r#"[{"a": 1,}, {"b": [2, 3 , ] },  ]"#),
            Ok(json!([{"a": 1}, {"b": [2, 3]}]))
        );
    }

    #[test]
    fn a_comma_with_no_value_before_it_stays_an_error() {
        assert!(value("[,]").is_err());
        assert!(value(r#"{"a": 1,,}"#).is_err());
        assert!(value(r#"{"a":,}"#).is_err());
    }

    #[test]
    fn commas_inside_strings_are_kept() {
        assert_eq!(
            value(r#"{"a": "x,]", 'b': 'y,}',}"#),
            Ok(json!({"a": "x,]", "b": "y,}"}))
        );
    }

    #[test]
    fn single_quoted_strings_become_strings() {
        assert_eq!(
            value(r#"{'name': 'Write', 'arguments': {'content': 'say "hi"', 'n': 'it\'s'}}"#),
            Ok(json!({"name": "Write", "arguments": {"content": "say \"hi\"", "n": "it's"}}))
        );
    }

    #[test]
    fn an_apostrophe_inside_a_single_quoted_string_is_not_guessed() {
        assert!(value(r#"{'content': 'it's fine'}"#).is_err());
        assert!(value(r#"{'a': 'don't', 'b': 'won't'}"#).is_err());
        assert!(value(r#"['rock 'n' roll']"#).is_err());
    }

    #[test]
    fn apostrophes_inside_double_quoted_strings_are_content() {
        assert_eq!(
            value(r#"{"a": "it's", "b": 1,}"#),
            Ok(json!({"a": "it's", "b": 1}))
        );
        assert_eq!(value(r#"{"a": "it\'s"}"#), Ok(json!({"a": "it's"})));
    }

    #[test]
    fn raw_newlines_inside_strings_are_escaped() {
        assert_eq!(
            value("{\"a\": \"line 1\nline 2\"}"),
            Ok(json!({"a": "line 1\nline 2"}))
        );
    }

    #[test]
    fn objects_one_per_line_are_several_values() {
        let found = values("{\"a\": 1}\n{\"b\": 2}\n");
        assert_eq!(found.values, vec![json!({"a": 1}), json!({"b": 2})]);
        assert_eq!(found.junk, None);
    }

    #[test]
    fn junk_after_the_values_is_reported_with_the_values() {
        let found = values("[1]\nHope this helps!");
        assert_eq!(found.values, vec![json!([1])]);
        assert!(found.junk.is_some());
    }

    #[test]
    fn errors_are_the_strict_parsers() {
        let e = value(r#"{"a": tru}"#).expect_err("invalid");
        assert!(e.contains("line 1"), "{e}");
    }
}
