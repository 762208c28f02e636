//! The upstream formats, pinned to `docs/tool-emulation.md`, and the budget compaction.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use super::*;
use crate::tools::{CallParser, Parsed, ToolSpec, fixture};

fn small(choice: ToolChoice, parallel: bool) -> ToolSet {
    ToolSet::new(
        vec![ToolSpec {
            name: "Write".into(),
            description: "Writes a file".into(),
            parameters: json!({"type": "object", "properties": {"file_path": {"type": "string"}},
                "required": ["file_path"]}),
        }],
        choice,
        parallel,
    )
}

#[test]
fn the_tools_block_follows_the_contract() {
    let block = tools_block(&small(ToolChoice::Auto, true), 20_000);
    assert_eq!(
        block,
        "[Tools]\n\
         You can call tools. To call tools, end your reply with exactly one block in this format:\n\
         <<<TOOL_CALLS>>>\n\
         [{\"name\": \"TOOL_NAME\", \"arguments\": {...}}]\n\
         <<<END_TOOL_CALLS>>>\n\
         Call tools only when needed; otherwise answer in plain text. Several calls in one block \
         run in parallel. `arguments` is a JSON object that follows the tool's `parameters` \
         schema. Write nothing after the block: the results come back in the next message as \
         [Tool result] sections. A block inside a code fence is not a call. The tools:\n\
         <<<TOOLS>>>\n\
         {\"name\":\"Write\",\"description\":\"Writes a file\",\"parameters\":{\"properties\":\
         {\"file_path\":{\"type\":\"string\"}},\"required\":[\"file_path\"],\"type\":\"object\"}}\n\
         <<<END_TOOLS>>>"
    );
}

#[test]
fn the_rules_state_the_choice_and_the_parallel_rule_in_the_contract_words() {
    let required = tools_block(&small(ToolChoice::Required, false), 20_000);
    assert!(required.contains("You must call at least one tool in this reply."));
    assert!(required.contains("Call at most one tool per reply."));
    let named = tools_block(&small(ToolChoice::Named("Write".into()), true), 20_000);
    assert!(named.contains("You must call the tool `Write` in this reply."));
}

#[test]
fn no_block_is_sent_for_tool_choice_none_or_no_tools() {
    assert_eq!(tools_block(&small(ToolChoice::None, true), 20_000), "");
    assert_eq!(
        tools_block(&ToolSet::new(vec![], ToolChoice::Auto, true), 20_000),
        ""
    );
}

#[test]
fn past_calls_are_the_block_with_their_ids() {
    let calls = [
        ToolCall {
            id: "call_abc".into(),
            name: "Write".into(),
            arguments: r#"{"file_path": "/tmp/x", "content": "hi"}"#.into(),
        },
        ToolCall {
            id: "call_def".into(),
            name: "Read".into(),
            arguments: "not json".into(),
        },
    ];
    assert_eq!(
        render_calls(&calls),
        "<<<TOOL_CALLS>>>\n\
         [{\"id\":\"call_abc\",\"name\":\"Write\",\"arguments\":{\"content\":\"hi\",\"file_path\":\"/tmp/x\"}},\
         {\"id\":\"call_def\",\"name\":\"Read\",\"arguments\":\"not json\"}]\n\
         <<<END_TOOL_CALLS>>>"
    );
    assert_eq!(render_calls(&[]), "");
}

#[test]
fn a_rendered_block_parses_back_to_the_same_calls() {
    let set = Arc::new(small(ToolChoice::Auto, true));
    let call = ToolCall {
        id: "call_old".into(),
        name: "Write".into(),
        arguments: r#"{"file_path":"/tmp/x"}"#.into(),
    };
    let mut p = CallParser::new(set);
    let got = p.push(&format!(
        "Writing.\n{}",
        render_calls(std::slice::from_ref(&call))
    ));
    let Some(Parsed::Calls(calls)) = got.last() else {
        panic!("{got:?}")
    };
    assert_eq!(
        (calls[0].name.as_str(), calls[0].arguments.as_str()),
        ("Write", r#"{"file_path":"/tmp/x"}"#)
    );
    assert_ne!(calls[0].id, "call_old", "parsed calls get fresh ids");
}

#[test]
fn results_are_labelled_sections() {
    assert_eq!(
        render_result("call_abc", Some("Write"), false, "File written.\n"),
        "[Tool result call_id=call_abc name=Write]\nFile written."
    );
    assert_eq!(
        render_result("call_def", Some("Read"), true, "ENOENT: no such file"),
        "[Tool result call_id=call_def name=Read error]\nENOENT: no such file"
    );
    assert_eq!(
        render_result("toolu 1]", None, false, ""),
        "[Tool result call_id=toolu_1_]"
    );
}

#[test]
fn the_reminder_and_the_repair_turn_are_the_contract_lines() {
    assert_eq!(
        REMINDER,
        "(Reply in text, or call tools with a <<<TOOL_CALLS>>> block as described before.)"
    );
    assert_eq!(
        repair_prompt("`Delete` is not one of the offered tools (Write)."),
        "[Tool call error]\n\
         Your <<<TOOL_CALLS>>> block could not be used: `Delete` is not one of the offered tools (Write).\n\
         Reply with only the corrected block."
    );
}

#[test]
fn a_claude_code_sized_tool_set_is_compacted_to_the_budget() {
    let specs = fixture::claude_code();
    let names: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    let set = ToolSet::new(specs, ToolChoice::Auto, true);
    let full = tools_block(&set, usize::MAX);
    println!(
        "tools block for {} tools: {} B as given",
        names.len(),
        full.len()
    );
    for budget in [16_000, 12_000, 8_000, 7_000] {
        let start = Instant::now();
        let block = tools_block(&set, budget);
        let took = start.elapsed();
        println!("  budget {budget} B: {} B ({took:.1?})", block.len());
        assert!(block.len() <= budget, "{} > {budget}", block.len());
        let lines: Vec<&str> = block
            .split("<<<TOOLS>>>\n")
            .nth(1)
            .and_then(|rest| rest.strip_suffix("\n<<<END_TOOLS>>>"))
            .expect("tools list")
            .lines()
            .collect();
        assert_eq!(lines.len(), names.len(), "no tool is dropped");
        for (line, name) in lines.iter().zip(&names) {
            let tool: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
            assert_eq!(tool["name"], name.as_str());
            assert!(tool["parameters"]["type"] == "object", "{line}");
        }
    }
    let tiny = tools_block(&set, 1_000);
    println!("  budget 1000 B (cannot fit): {} B best effort", tiny.len());
    assert!(tiny.len() < tools_block(&set, 7_000).len());
}

#[test]
fn compaction_keeps_every_constraint_of_the_schemas() {
    let set = ToolSet::new(fixture::claude_code(), ToolChoice::Auto, true);
    let block = tools_block(&set, 8_000);
    let list = block.split("<<<TOOLS>>>\n").nth(1).expect("tools list");
    for (line, spec) in list.lines().zip(set.specs()) {
        let tool: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        assert_eq!(
            tool["parameters"]["required"], spec.parameters["required"],
            "{}",
            spec.name
        );
        let props = spec.parameters["properties"]
            .as_object()
            .expect("properties");
        for (key, given) in props {
            let kept = &tool["parameters"]["properties"][key];
            for constraint in ["type", "enum", "minLength", "items"] {
                if constraint != "items" {
                    assert_eq!(kept[constraint], given[constraint], "{}.{key}", spec.name);
                }
            }
        }
    }
}
