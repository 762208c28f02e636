//! [`CallParser`] against the drifts of the contract seen in real answers: one corpus, each
//! drift in it, and the text around a drifted block kept.

use super::*;

/// One answer per drift of the contract, then habits seen beyond it. Each holds the call
/// `Write {"file_path": "/tmp/x", "content": "hi"}`, except where the content is given.
pub(super) fn corpus() -> Vec<(&'static str, String)> {
    let open = "<<<TOOL_CALLS>>>";
    let close = "<<<END_TOOL_CALLS>>>";
    vec![
        ("exact", answer(CALL)),
        (
            "spaces",
            format!("I will call Write.\n<<< TOOL_CALLS >>>\n{CALL}\n<<<  END_TOOL_CALLS >>>"),
        ),
        (
            "lowercase",
            format!("I will call Write.\n<<<tool_calls>>>\n{CALL}\n<<<end_tool_calls>>>"),
        ),
        ("no-close", format!("I will call Write.\n{open}\n{CALL}\n")),
        (
            "trailing-comma",
            answer(
                r#"[{"name": "Write", "arguments": {"file_path": "/tmp/x", "content": "hi",},},]"#,
            ),
        ),
        (
            "single-quotes",
            answer(r#"[{'name': 'Write', 'arguments': {'file_path': '/tmp/x', 'content': 'hi'}}]"#),
        ),
        (
            "string-args",
            answer(
                r#"[{"name": "Write", "arguments": "{\"file_path\": \"/tmp/x\", \"content\": \"hi\"}"}]"#,
            ),
        ),
        (
            "alt-keys",
            answer(r#"[{"tool": "Write", "input": {"file_path": "/tmp/x", "content": "hi"}}]"#),
        ),
        (
            "alt-keys-function",
            answer(
                r#"[{"type": "function", "function": {"name": "Write", "arguments": {"file_path": "/tmp/x", "content": "hi"}}}]"#,
            ),
        ),
        (
            "fenced-prose",
            format!(
                "The block looks like this:\n```\n{open}\n[{{\"name\": \"TOOL_NAME\", \"arguments\": {{}}}}]\n{close}\n```\n{}",
                answer(CALL)
            ),
        ),
        (
            "single-object",
            answer(r#"{"name": "Write", "arguments": {"file_path": "/tmp/x", "content": "hi"}}"#),
        ),
        ("fenced-body", answer(&format!("```json\n{CALL}\n```"))),
        ("same-line", format!("Calling.{open}{CALL}{close}")),
        (
            "singular-and-xml-close",
            format!("<<<TOOL_CALL>>>\n{CALL}\n<<</TOOL_CALLS>>>"),
        ),
        (
            "crlf",
            format!("I will call Write.\r\n{open}\r\n{CALL}\r\n{close}\r\n"),
        ),
        (
            "inline-code-mention",
            format!("I reply with a `{open}` block:\n{}", answer(CALL)),
        ),
        (
            "prose-after-no-close",
            format!("{open}\n{CALL}\nLet me know when it is written."),
        ),
        (
            "raw-newline-in-string",
            answer(
                "[{\"name\": \"Write\", \"arguments\": {\"file_path\": \"/tmp/x\", \"content\": \"h\ni\"}}]",
            ),
        ),
    ]
}

#[test]
fn drift_corpus() {
    let corpus = corpus();
    let mut failed = Vec::new();
    for (kind, a) in &corpus {
        let content = if *kind == "raw-newline-in-string" {
            "h\ni"
        } else {
            "hi"
        };
        let want = vec![Parsed::Calls(vec![write_call("/tmp/x", content)])];
        let got: Vec<Parsed> = parse(a)
            .into_iter()
            .filter(|p| !matches!(p, Parsed::Text(_)))
            .collect();
        if got != want {
            failed.push(format!("{kind}: {got:?}"));
        }
    }
    println!(
        "drift corpus: {}/{} parsed",
        corpus.len() - failed.len(),
        corpus.len()
    );
    assert!(failed.is_empty(), "{failed:#?}");
}

#[test]
fn contract_drifts_are_each_in_the_corpus() {
    let kinds: Vec<&str> = corpus().into_iter().map(|(k, _)| k).collect();
    for kind in [
        "spaces",
        "lowercase",
        "no-close",
        "trailing-comma",
        "single-quotes",
        "string-args",
        "alt-keys",
        "fenced-prose",
    ] {
        assert!(kinds.contains(&kind), "{kind}");
    }
}

#[test]
fn text_around_a_drifted_block_is_kept() {
    let (_, fenced) = corpus()
        .into_iter()
        .find(|(k, _)| *k == "fenced-prose")
        .expect("in corpus");
    let got = parse(&fenced);
    let Parsed::Text(t) = &got[0] else {
        panic!("{got:?}")
    };
    assert!(
        t.contains("```\n<<<TOOL_CALLS>>>") && t.ends_with("I will call Write.\n"),
        "{t}"
    );
}
