use super::*;
use crate::conversation::ToolCall;
use crate::tools::{ToolChoice, ToolSpec};

const BIG: usize = 1 << 20;

fn plan_text(p: &Plan) -> String {
    let mut s = p.context.join("\n");
    s.push('\n');
    s.push_str(&p.prompt);
    s
}

fn tools() -> ToolSet {
    ToolSet::new(
        vec![ToolSpec {
            name: "Write".into(),
            description: "Writes a file".into(),
            parameters: serde_json::json!({"type":"object","properties":{"file_path":{"type":"string"}}}),
        }],
        ToolChoice::Auto,
        true,
    )
}

#[test]
fn single_user_message_is_verbatim() {
    let p = for_new_history(&[Message::new(Role::User, "hello\n")], None, BIG);
    assert_eq!(p, Plan::single("hello\n".into()));
}

#[test]
fn transcript_puts_system_first_and_labels_roles() {
    let p = for_new_history(
        &[
            Message::new(Role::User, "q1"),
            Message::new(Role::Assistant, "a1"),
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "q2"),
        ],
        None,
        BIG,
    );
    assert_eq!(
        p.prompt,
        "[System]\nbe brief\n\n[User]\nq1\n\n[Assistant]\na1\n\n[User]\nq2"
    );
    assert!(p.context.is_empty());
}

#[test]
fn new_turn_sends_only_the_new_part() {
    assert_eq!(
        for_continued(&[Message::new(Role::User, "q3")], None, BIG).prompt,
        "q3"
    );
    assert_eq!(
        for_continued(
            &[
                Message::new(Role::Tool, "42"),
                Message::new(Role::User, "and?")
            ],
            None,
            BIG
        )
        .prompt,
        "[Tool]\n42\n\n[User]\nand?"
    );
}

#[test]
fn tools_block_follows_the_system_prompt_and_calls_render_as_blocks() {
    let t = tools();
    let call = ToolCall {
        id: "call_1".into(),
        name: "Write".into(),
        arguments: r#"{"file_path":"/x"}"#.into(),
    };
    let mut result = Message::result("call_1", "done", false);
    result.result_of.as_mut().expect("result").name = Some("Write".into());
    let p = for_new_history(
        &[
            Message::new(Role::System, "sys"),
            Message::new(Role::User, "write it"),
            Message::calls("ok", vec![call]),
            result,
        ],
        Some(&t),
        BIG,
    );
    let s = &p.prompt;
    let (sys, tools_at, user) = (
        s.find("[System]").expect("system"),
        s.find("<<<TOOLS>>>").expect("tools"),
        s.find("[User]").expect("user"),
    );
    assert!(sys < tools_at && tools_at < user, "{s}");
    assert!(s.contains("[Assistant]\nok\n<<<TOOL_CALLS>>>"), "{s}");
    assert!(
        s.contains("[Tool result call_id=call_1 name=Write]\ndone"),
        "{s}"
    );
}

#[test]
fn continued_turn_with_tools_ends_with_the_reminder() {
    let t = tools();
    let p = for_continued(&[Message::result("c", "out", true)], Some(&t), BIG);
    assert!(p.prompt.starts_with("[Tool result call_id=c error]\nout"));
    assert!(p.prompt.ends_with(tool_prompt::REMINDER));
}

#[test]
fn over_budget_becomes_context_parts_that_keep_every_byte_once() {
    let long: String = (0..400)
        .map(|i| format!("line {i} of the system prompt\n"))
        .collect();
    let msgs = [
        Message::new(Role::System, long.clone()),
        Message::new(Role::User, "first question"),
        Message::new(Role::Assistant, "first answer"),
        Message::new(Role::User, "call Write {}"),
    ];
    let budget = 2000;
    let p = for_new_history(&msgs, Some(&tools()), budget);
    assert!(!p.context.is_empty());
    for part in p.context.iter().chain([&p.prompt]) {
        assert!(part.len() <= budget, "{} > {budget}", part.len());
    }
    assert!(p.context[0].starts_with(&format!("[Context part 1 of {}]", p.context.len())));
    assert!(
        p.prompt.contains("<<<TOOLS>>>"),
        "tools go with the real turn"
    );
    assert!(p.prompt.ends_with("[User]\ncall Write {}"));
    let all = plan_text(&p);
    for i in 0..400 {
        assert_eq!(
            all.matches(&format!("line {i} of the system prompt\n"))
                .count(),
            1,
            "line {i}"
        );
    }
}

#[test]
fn a_single_section_over_budget_is_split_with_its_end_in_the_real_turn() {
    let long = "xyzzy ".repeat(2000);
    let p = for_continued(&[Message::new(Role::User, long.clone())], None, 3000);
    assert!(!p.context.is_empty());
    assert!(p.prompt.starts_with("(continued)\n"));
    assert!(p.prompt.len() <= 3000 && p.prompt.trim_end().ends_with("xyzzy"));
    let words: usize = p
        .context
        .iter()
        .chain([&p.prompt])
        .map(|s| s.matches("xyzzy").count())
        .sum();
    assert_eq!(words, 2000);
}

#[test]
fn split_text_respects_char_boundaries() {
    let s = "é".repeat(1000);
    for piece in split_text(&s, 101) {
        assert!(piece.len() <= 101);
    }
    assert_eq!(split_text(&s, 101).concat(), s);
}
