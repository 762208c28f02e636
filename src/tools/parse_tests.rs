//! Behaviours of [`CallParser`]: streaming, fences, bad blocks (the drifts of the contract seen
//! in real answers: `parse_drift_tests.rs`).

use std::time::Instant;

use serde_json::json;

use super::*;
use crate::tools::{ToolChoice, ToolSpec, fixture};

/// The drifts of the contract seen in real answers, one corpus.
#[path = "parse_drift_tests.rs"]
mod drift;
use drift::corpus;

fn tools(choice: ToolChoice, parallel: bool) -> Arc<ToolSet> {
    let spec = |name: &str, parameters| ToolSpec {
        name: name.into(),
        description: format!("{name} a thing"),
        parameters,
    };
    Arc::new(ToolSet::new(
        vec![
            spec(
                "Write",
                json!({"type": "object", "properties": {"file_path": {"type": "string"},
                    "content": {"type": "string"}}, "required": ["file_path", "content"],
                    "additionalProperties": false}),
            ),
            spec(
                "Read",
                json!({"type": "object", "properties": {"file_path": {"type": "string"},
                    "limit": {"type": "integer"}}, "required": ["file_path"]}),
            ),
        ],
        choice,
        parallel,
    ))
}

/// What a parser returned, with ids checked and replaced by `ID` and adjacent texts merged, so
/// that runs fed differently compare equal.
fn normalized(items: Vec<Parsed>) -> Vec<Parsed> {
    let mut out: Vec<Parsed> = Vec::new();
    for item in items {
        match (out.last_mut(), item) {
            (Some(Parsed::Text(prev)), Parsed::Text(t)) => prev.push_str(&t),
            (_, Parsed::Calls(calls)) => out.push(Parsed::Calls(
                calls
                    .into_iter()
                    .map(|mut c| {
                        assert!(c.id.starts_with("call_") && c.id.len() == 29, "{}", c.id);
                        c.id = "ID".into();
                        c
                    })
                    .collect(),
            )),
            (_, other) => out.push(other),
        }
    }
    out
}

/// The answer fed in the given pieces, then finished.
fn feed(set: &Arc<ToolSet>, pieces: &[&str]) -> Vec<Parsed> {
    let mut p = CallParser::new(set.clone());
    let mut got = Vec::new();
    for piece in pieces {
        got.extend(p.push(piece));
    }
    got.extend(p.finish());
    normalized(got)
}

fn parse(answer: &str) -> Vec<Parsed> {
    feed(&tools(ToolChoice::Auto, true), &[answer])
}

fn write_call(file_path: &str, content: &str) -> ToolCall {
    ToolCall {
        id: "ID".into(),
        name: "Write".into(),
        arguments: json!({"file_path": file_path, "content": content}).to_string(),
    }
}

fn text(s: &str) -> Parsed {
    Parsed::Text(s.into())
}

const CALL: &str = r#"[{"name": "Write", "arguments": {"file_path": "/tmp/x", "content": "hi"}}]"#;

/// `I will call Write.` and a block holding `body`, with the contract's markers.
fn answer(body: &str) -> String {
    format!("I will call Write.\n<<<TOOL_CALLS>>>\n{body}\n<<<END_TOOL_CALLS>>>")
}

#[test]
fn an_answer_without_a_block_is_plain_text() {
    let prose = "Plain answer with <b>tags</b>, << shifts >> and <<<TOOLS>>>.\n```\ncode\n```";
    assert_eq!(parse(prose), vec![text(prose)]);
}

#[test]
fn text_before_the_block_comes_out_at_once() {
    let mut p = CallParser::new(tools(ToolChoice::Auto, true));
    assert_eq!(
        p.push("I will call Write.\n<<<TOO"),
        vec![text("I will call Write.\n")]
    );
    assert_eq!(p.push("L_CALLS>>>\n["), vec![]);
    let rest = &CALL[1..];
    let got = normalized(p.push(&format!("{rest}\n<<<END_TOOL_CALLS>>>")));
    assert_eq!(got, vec![Parsed::Calls(vec![write_call("/tmp/x", "hi")])]);
}

#[test]
fn held_back_text_never_exceeds_the_marker_length() {
    let answers = [
        answer(CALL),
        "a < b << c <<< d <<<   TOOL_CALLS   >> e <<<TOOL_CALLS>".to_string(),
        "<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<".to_string(),
    ];
    for a in &answers {
        let mut p = CallParser::new(tools(ToolChoice::Auto, true));
        for (i, c) in a.char_indices() {
            p.push(&c.to_string());
            if p.state == State::Text {
                assert!(
                    p.held.len() <= marker::OPEN_MAX,
                    "{a:?} at {i}: {:?}",
                    p.held
                );
                assert!(a[..=i].ends_with(&p.held));
            }
        }
    }
}

#[test]
fn a_split_at_any_point_gives_the_same_result_as_one_push() {
    let set = tools(ToolChoice::Auto, true);
    let mut answers: Vec<String> = corpus().into_iter().map(|(_, a)| a).collect();
    answers.push("Plain text, é ü 漢字 🎉, a < b and <<<TOOL".to_string());
    answers.push(format!(
        "{}\n\nand after the block",
        answer(r#"[{"name": "Nope"}]"#)
    ));
    for a in &answers {
        let whole = feed(&set, &[a]);
        for cut in (1..a.len()).filter(|&i| a.is_char_boundary(i)) {
            assert_eq!(
                feed(&set, &[&a[..cut], &a[cut..]]),
                whole,
                "{a:?} cut at {cut}"
            );
        }
        let chars: Vec<String> = a.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(feed(&set, &pieces), whole, "{a:?} char by char");
    }
}

#[test]
fn several_calls_in_one_block_are_parallel_calls() {
    let body = r#"[{"name": "Write", "arguments": {"file_path": "/a", "content": "1"}},
        {"name": "Write", "arguments": {"file_path": "/b", "content": "2"}}]"#;
    let got = parse(&answer(body));
    assert_eq!(
        got[1],
        Parsed::Calls(vec![write_call("/a", "1"), write_call("/b", "2")])
    );
    let Parsed::Calls(calls) = &parse(&answer(body))[1] else {
        panic!()
    };
    let mut p = CallParser::new(tools(ToolChoice::Auto, true));
    let Some(Parsed::Calls(fresh)) = p.push(&answer(body)).pop() else {
        panic!()
    };
    assert_eq!(calls.len(), 2);
    assert_ne!(fresh[0].id, fresh[1].id, "each call gets its own id");
}

#[test]
fn a_call_to_a_tool_not_offered_is_malformed_with_the_whole_block() {
    let block =
        "<<<TOOL_CALLS>>>\n[{\"name\": \"Delete\", \"arguments\": {}}]\n<<<END_TOOL_CALLS>>>";
    let got = parse(&format!("Deleting.\n{block}\nDone!"));
    assert_eq!(
        got,
        vec![
            text("Deleting.\n"),
            Parsed::Malformed {
                raw: block.into(),
                reason: "`Delete` is not one of the offered tools (Write, Read)".into()
            }
        ]
    );
}

#[test]
fn arguments_that_break_the_schema_are_malformed_naming_tool_and_error() {
    let got = parse(&answer(
        r#"[{"name": "Read", "arguments": {"file_path": 7}}]"#,
    ));
    let Parsed::Malformed { reason, .. } = &got[1] else {
        panic!("{got:?}")
    };
    assert!(
        reason.starts_with("the arguments of `Read` break its schema: "),
        "{reason}"
    );
    assert!(
        reason.contains("/file_path") && reason.contains("string"),
        "{reason}"
    );
}

#[test]
fn unreadable_json_is_malformed() {
    let got = parse(&answer(
        r#"[{"name": "Write", "arguments": {"file_path": "/x" "content"}}]"#,
    ));
    let Parsed::Malformed { reason, raw } = &got[1] else {
        panic!("{got:?}")
    };
    assert!(
        reason.starts_with("the block is not valid JSON"),
        "{reason}"
    );
    assert!(raw.starts_with("<<<TOOL_CALLS>>>") && raw.ends_with("<<<END_TOOL_CALLS>>>"));
}

#[test]
fn anything_after_the_block_is_dropped_and_nothing_follows_the_calls() {
    let mut p = CallParser::new(tools(ToolChoice::Auto, true));
    let got = p.push(&format!("{}\nI hope this helps.", answer(CALL)));
    assert!(matches!(got.last(), Some(Parsed::Calls(_))), "{got:?}");
    assert_eq!(
        p.push("more text <<<TOOL_CALLS>>> [] <<<END_TOOL_CALLS>>>"),
        vec![]
    );
    assert_eq!(p.finish(), vec![]);
}

#[test]
fn a_closing_marker_inside_a_json_string_does_not_close_the_block() {
    let content = "docs: end with <<<END_TOOL_CALLS>>> and it's fine";
    let body = json!([{"name": "Write", "arguments": {"file_path": "/d.md", "content": content}}]);
    let got = parse(&answer(&body.to_string()));
    assert_eq!(got[1], Parsed::Calls(vec![write_call("/d.md", content)]));
}

#[test]
fn a_closing_marker_cut_by_the_end_of_the_turn_is_not_part_of_the_body() {
    let got = parse(&format!("<<<TOOL_CALLS>>>\n{CALL}\n<<<END_TOOL_CA"));
    assert_eq!(got, vec![Parsed::Calls(vec![write_call("/tmp/x", "hi")])]);
}

#[test]
fn markers_inside_code_fences_are_prose() {
    for fence in ["```", "~~~", "````"] {
        let prose = format!(
            "The format is:\n{fence}text\n{}\n{fence}\nThat is all.",
            answer(CALL)
        );
        assert_eq!(parse(&prose), vec![text(&prose)], "{fence}");
    }
}

#[test]
fn a_marker_in_inline_code_is_prose() {
    let a = format!(
        "I answer with a `<<<TOOL_CALLS>>>` block, like this:\n{}",
        answer(CALL)
    );
    let got = parse(&a);
    assert!(
        matches!(&got[0], Parsed::Text(t) if t.starts_with("I answer with a `<<<TOOL_CALLS>>>` block"))
    );
    assert_eq!(got[1], Parsed::Calls(vec![write_call("/tmp/x", "hi")]));
}

#[test]
fn a_marker_after_a_closed_fence_counts() {
    let a = format!(
        "Example:\n```\n{}\n```\nNow for real:\n{}",
        answer(CALL),
        answer(CALL)
    );
    let got = parse(&a);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        matches!(&got[0], Parsed::Text(t) if t.ends_with("Now for real:\nI will call Write.\n"))
    );
    assert_eq!(got[1], Parsed::Calls(vec![write_call("/tmp/x", "hi")]));
}

#[test]
fn with_tool_choice_none_every_marker_is_text() {
    let a = answer(CALL);
    assert_eq!(feed(&tools(ToolChoice::None, true), &[&a]), vec![text(&a)]);
}

/// A 2 KB answer (prose, then a block with one Write call), parsed whole and in 40-byte
/// deltas. Run with `cargo test --release --lib tools::parse -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, not a check: run it by hand"]
fn parse_cost_of_a_2kb_answer() {
    let set = Arc::new(ToolSet::new(fixture::claude_code(), ToolChoice::Auto, true));
    let prose = "I looked at the module and the tests. The parser keeps a small buffer, so we can \
                 stream text to the client while the model writes. Next I will write the file. "
        .repeat(9);
    let content = "fn main() {\n    println!(\"hello\");\n}\n".repeat(12);
    let call =
        json!([{"name": "Write", "arguments": {"file_path": "/src/main.rs", "content": content}}]);
    let a = format!("{prose}\n<<<TOOL_CALLS>>>\n{call}\n<<<END_TOOL_CALLS>>>");
    let deltas: Vec<&str> = a
        .as_bytes()
        .chunks(40)
        .map(|c| std::str::from_utf8(c).expect("ascii"))
        .collect();
    for (label, pieces) in [("one push", vec![a.as_str()]), ("40-byte deltas", deltas)] {
        let rounds = 2_000;
        let start = Instant::now();
        for _ in 0..rounds {
            let mut p = CallParser::new(set.clone());
            let mut got = Vec::new();
            for piece in &pieces {
                got.extend(p.push(piece));
            }
            got.extend(p.finish());
            assert!(matches!(got.last(), Some(Parsed::Calls(calls)) if calls.len() == 1));
        }
        let per = start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);
        println!("parse cost, {} B answer, {label}: {per:.1} µs", a.len());
    }
}
