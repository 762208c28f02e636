//! Property tests of [`CallParser`] (bounded, part of `cargo test`): on any answer, fed in any
//! pieces, it never panics, returns the same thing however the answer is cut, never returns
//! anything after a block, and loses no text of an answer without a block.

use std::sync::Arc;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::json;

use super::*;
use crate::tools::{ToolChoice, ToolSpec};

fn set() -> Arc<ToolSet> {
    Arc::new(ToolSet::new(
        vec![ToolSpec {
            name: "Write".into(),
            description: "Writes a file".into(),
            parameters: json!({"type": "object", "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"]}),
        }],
        ToolChoice::Auto,
        true,
    ))
}

/// Pieces an answer is made of: markers and their drifts, fences, JSON punctuation, tool names,
/// multi-byte characters and free text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<<<TOOL_CALLS>>>".to_string()),
        Just("<<<END_TOOL_CALLS>>>".to_string()),
        Just("<<< tool-calls >>>".to_string()),
        Just("<<</TOOL_CALLS>>>".to_string()),
        Just("<<<".to_string()),
        Just(">>>".to_string()),
        Just("```".to_string()),
        Just("`".to_string()),
        Just("\n".to_string()),
        Just(r#"[{"name":"Write","arguments":{"file_path":"/x"}}]"#.to_string()),
        Just(r#"{"name":"Write","arguments":"#.to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("'".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("é€😀".to_string()),
        "[a-zA-Z <>_/\\[\\]{}\":,.-]{0,12}",
        any::<String>().prop_map(|s| s.chars().take(8).collect()),
    ]
}

fn answer() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..24).prop_map(|p| p.concat())
}

/// `text` cut at the given fractions (on character boundaries).
fn cut(text: &str, cuts: &[usize]) -> Vec<String> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let mut at: Vec<usize> = cuts
        .iter()
        .filter_map(|c| bounds.get(c % bounds.len().max(1)).copied())
        .collect();
    at.push(0);
    at.push(text.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2)
        .map(|w| text[w[0]..w[1]].to_string())
        .collect()
}

/// Everything the parser returns for `pieces`, with call ids blanked and texts merged.
fn run(pieces: &[String]) -> Vec<Parsed> {
    let mut p = CallParser::new(set());
    let mut got = Vec::new();
    let mut done = false;
    for piece in pieces {
        let out = p.push(piece);
        assert!(!done || out.is_empty(), "output after a block: {out:?}");
        done |= out
            .iter()
            .any(|o| matches!(o, Parsed::Calls(_) | Parsed::Malformed { .. }));
        got.extend(out);
    }
    got.extend(p.finish());
    assert!(p.finish().is_empty(), "finish twice returns nothing");
    let mut merged: Vec<Parsed> = Vec::new();
    for item in got {
        match (merged.last_mut(), item) {
            (Some(Parsed::Text(prev)), Parsed::Text(t)) => prev.push_str(&t),
            (_, Parsed::Calls(calls)) => merged.push(Parsed::Calls(
                calls
                    .into_iter()
                    .map(|mut c| {
                        c.id = "ID".into();
                        c
                    })
                    .collect(),
            )),
            (_, other) => merged.push(other),
        }
    }
    merged
}

proptest! {
    #![proptest_config(Config { cases: 512, failure_persistence: None, ..Config::default() })]

    #[test]
    fn any_answer_cut_anywhere_parses_the_same_without_panicking(
        text in answer(),
        cuts_a in prop::collection::vec(any::<usize>(), 0..12),
        cuts_b in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = run(std::slice::from_ref(&text));
        prop_assert_eq!(&run(&cut(&text, &cuts_a)), &whole);
        prop_assert_eq!(&run(&cut(&text, &cuts_b)), &whole);
        let calls = whole.iter().filter(|p| matches!(p, Parsed::Calls(_) | Parsed::Malformed { .. })).count();
        prop_assert!(calls <= 1, "at most one block: {:?}", whole);
    }

    #[test]
    fn an_answer_without_a_marker_is_all_text(
        text in "[^<]{0,200}",
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let got = run(&cut(&text, &cuts));
        let joined: String = got.iter().map(|p| match p {
            Parsed::Text(t) => t.as_str(),
            _ => "",
        }).collect();
        prop_assert_eq!(joined, text);
    }
}
