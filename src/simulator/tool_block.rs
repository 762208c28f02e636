//! The `<<<TOOL_CALLS>>>` block the simulated model writes (docs/tool-emulation.md), correct,
//! malformed on purpose (`[[tool-garbage]]`) or with one of the drifts the proxy's parser
//! promises to tolerate (`[[tool-drift:KIND]]`).
//!
//! Arguments are copied as the user wrote them, byte for byte, so a test can compare what the
//! client finally receives with what it asked for.

use super::prompt::{Call, Drift};

const OPEN: &str = "<<<TOOL_CALLS>>>";
const CLOSE: &str = "<<<END_TOOL_CALLS>>>";

/// The block for `calls`, from its opening marker to its closing one (or to the end of the JSON
/// with [`Drift::NoClose`]), preceded by the fenced example of [`Drift::FencedProse`].
pub(crate) fn block(calls: &[Call<'_>], drifts: &[Drift], garbage: bool) -> String {
    let has = |d: Drift| drifts.contains(&d);
    let mut out = String::new();
    if has(Drift::FencedProse) {
        out.push_str("The format looks like this:\n```\n");
        out.push_str(OPEN);
        out.push_str("\n[{\"name\": \"ExampleTool\", \"arguments\": {}}]\n");
        out.push_str(CLOSE);
        out.push_str("\n```\n");
    }
    out.push_str(&marker(OPEN, drifts));
    out.push('\n');
    out.push_str(&if garbage {
        garbled(calls)
    } else {
        array(calls, drifts)
    });
    if !has(Drift::NoClose) {
        out.push('\n');
        out.push_str(&marker(CLOSE, drifts));
    }
    out
}

/// A marker with the [`Drift::Spaces`] and [`Drift::Lowercase`] drifts applied.
fn marker(name: &str, drifts: &[Drift]) -> String {
    let mut inner = &name[3..name.len() - 3];
    let lower;
    if drifts.contains(&Drift::Lowercase) {
        lower = inner.to_lowercase();
        inner = &lower;
    }
    if drifts.contains(&Drift::Spaces) {
        format!("<<< {inner} >>>")
    } else {
        format!("<<<{inner}>>>")
    }
}

/// A JSON string literal.
fn quoted(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

/// The JSON array of the calls, with the key, argument and comma drifts.
fn array(calls: &[Call<'_>], drifts: &[Drift]) -> String {
    let has = |d: Drift| drifts.contains(&d);
    let comma = if has(Drift::TrailingComma) { "," } else { "" };
    let objects: Vec<String> = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let name = quoted(call.name);
            let args = if has(Drift::StringArgs) {
                quoted(call.args)
            } else {
                call.args.to_owned()
            };
            match (has(Drift::AltKeys), i % 2) {
                (true, 0) => format!("{{\"tool\": {name}, \"input\": {args}{comma}}}"),
                (true, _) => format!(
                    "{{\"function\": {{\"name\": {name}, \"arguments\": {args}{comma}}}{comma}}}"
                ),
                (false, _) => format!("{{\"name\": {name}, \"arguments\": {args}{comma}}}"),
            }
        })
        .collect();
    let json = format!("[{}{comma}]", objects.join(", "));
    if has(Drift::SingleQuotes) {
        single_quoted(&json)
    } else {
        json
    }
}

/// Broken JSON no tolerant parser can mend: every call's arguments lack their value.
fn garbled(calls: &[Call<'_>]) -> String {
    let objects: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{{\"name\": {}, \"arguments\": {{\"oops\": }}}}",
                quoted(c.name)
            )
        })
        .collect();
    format!("[{}]", objects.join(", "))
}

/// `json` with each double-quoted string that holds neither a quote nor an escape rewritten
/// in single quotes; the others stay as they are, so the result is never ambiguous.
fn single_quoted(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut rest = json;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = string_end(after);
        let body = &after[..end];
        if body.contains(['\\', '\'']) {
            out.push('"');
            out.push_str(body);
            out.push('"');
        } else {
            out.push('\'');
            out.push_str(body);
            out.push('\'');
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// The index of the closing quote of a JSON string whose opening quote was just consumed (the
/// length of `s` when it is unterminated).
fn string_end(s: &str) -> usize {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return i,
            _ => {}
        }
    }
    s.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE: Call<'static> = Call {
        name: "Write",
        args: r#"{"file_path":"/tmp/x","content":"it's"}"#,
    };
    const READ: Call<'static> = Call {
        name: "Read",
        args: r#"{"file_path":"/tmp/y"}"#,
    };

    #[test]
    fn a_correct_block_copies_the_arguments_verbatim() {
        assert_eq!(
            block(&[WRITE, READ], &[], false),
            "<<<TOOL_CALLS>>>\n[{\"name\": \"Write\", \"arguments\": \
             {\"file_path\":\"/tmp/x\",\"content\":\"it's\"}}, \
             {\"name\": \"Read\", \"arguments\": {\"file_path\":\"/tmp/y\"}}]\n<<<END_TOOL_CALLS>>>"
        );
    }

    #[test]
    fn marker_drifts_combine() {
        let b = block(&[READ], &[Drift::Spaces, Drift::Lowercase], false);
        assert!(b.starts_with("<<< tool_calls >>>\n"), "{b}");
        assert!(b.ends_with("\n<<< end_tool_calls >>>"), "{b}");
        let b = block(&[READ], &[Drift::NoClose], false);
        assert!(b.ends_with("}}]"), "{b}");
    }

    #[test]
    fn json_drifts() {
        let b = block(&[READ], &[Drift::TrailingComma], false);
        assert!(b.contains(r#"[{"name": "Read", "arguments": {"file_path":"/tmp/y"},},]"#));
        let b = block(&[READ], &[Drift::StringArgs], false);
        assert!(
            b.contains(r#""arguments": "{\"file_path\":\"/tmp/y\"}"}"#),
            "{b}"
        );
        let b = block(&[WRITE, READ], &[Drift::AltKeys], false);
        assert!(b.contains(r#"{"tool": "Write", "input": {"#), "{b}");
        assert!(
            b.contains(r#"{"function": {"name": "Read", "arguments": {"file_path":"/tmp/y"}}}"#),
            "{b}"
        );
    }

    #[test]
    fn single_quotes_only_where_unambiguous() {
        let b = block(&[WRITE], &[Drift::SingleQuotes], false);
        assert!(
            b.contains(
                r#"[{'name': 'Write', 'arguments': {'file_path':'/tmp/x','content':"it's"}}]"#
            ),
            "{b}"
        );
        assert_eq!(single_quoted(r#"["a\"b", "c"]"#), r#"["a\"b", 'c']"#);
    }

    #[test]
    fn garbage_does_not_parse_and_fenced_prose_comes_first() {
        let b = block(&[READ], &[], true);
        let json = b.lines().nth(1).unwrap_or_default();
        assert!(serde_json::from_str::<serde_json::Value>(json).is_err());
        let b = block(&[READ], &[Drift::FencedProse], false);
        assert!(b.starts_with("The format looks like this:\n```\n<<<TOOL_CALLS>>>\n"));
        let real = b.split("```\n").nth(2).unwrap_or_default();
        assert!(
            real.starts_with("<<<TOOL_CALLS>>>\n[{\"name\": \"Read\""),
            "{real}"
        );
    }
}
