//! Unit tests of the simulated model: the prompt reader and the decision, on strings.

use super::*;
use crate::simulator::prompt::{Drift, Label};

const TOOLS_BLOCK: &str = "[Tools]\nYou can call tools. To call tools, end your reply with \
exactly one block in this format:\n<<<TOOL_CALLS>>>\n[{\"name\": \"TOOL_NAME\", \"arguments\": \
{...}}]\n<<<END_TOOL_CALLS>>>\nCall tools only when needed; otherwise answer in plain text.\n\
<<<TOOLS>>>\n{\"name\":\"Write\",\"description\":\"Writes a file\",\"parameters\":{\"type\":\
\"object\"}}\n{\"name\":\"Read\",\"description\":\"Reads\",\"parameters\":{}}\n<<<END_TOOLS>>>";

const REMINDER: &str =
    "(Reply in text, or call tools with a <<<TOOL_CALLS>>> block as described before.)";

fn first(prompt: &str) -> Answer {
    answer(&[], prompt, 1, 12)
}

fn with_tools(user: &str) -> String {
    format!("[System]\nbe brief\n\n{TOOLS_BLOCK}\n\n[User]\n{user}")
}

#[test]
fn sections_follow_the_known_headers_only() {
    let p = "head\n[User]\nhi [[tool-ignore]]\n[[tool-garbage]]\n[Nonsense]\n\n[Tool result \
             call_id=c1 name=Read error]\nENOENT\n";
    let s = sections(p);
    let labels: Vec<_> = s.iter().map(|s| s.label).collect();
    assert_eq!(labels, [None, Some(Label::User), Some(Label::ToolResult)]);
    assert_eq!(s[0].body, "head\n");
    assert_eq!(
        s[1].body,
        "hi [[tool-ignore]]\n[[tool-garbage]]\n[Nonsense]\n\n"
    );
    assert_eq!(s[2].body, "ENOENT\n");
}

#[test]
fn plain_prompts_keep_the_deterministic_reply() {
    for p in [
        "hello",
        "[User]\nq1\n\n[Assistant]\na1\n\n[User]\nq2",
        "call me maybe",
    ] {
        assert_eq!(
            first(p),
            Answer {
                text: reply_text(p, 1, 12),
                split: Split::Words
            }
        );
    }
    // A call line without any tools block: no tool is offered.
    let p = "call Write {\"a\":1}";
    assert_eq!(first(p).split, Split::Words);
}

#[test]
fn a_call_line_for_an_offered_tool_answers_the_block() {
    let p = with_tools("please\ncall Write {\"file_path\": \"/tmp/x\",  \"content\": \"hi\"}");
    assert_eq!(
        first(&p),
        Answer::exact(
            "I will call Write.\n<<<TOOL_CALLS>>>\n[{\"name\": \"Write\", \"arguments\": \
             {\"file_path\": \"/tmp/x\",  \"content\": \"hi\"}}]\n<<<END_TOOL_CALLS>>>"
        )
    );
}

#[test]
fn several_call_lines_make_parallel_calls() {
    let p = with_tools("call Read {\"p\":1}\ncall Write\ncall Read {\"p\":2}");
    let a = first(&p);
    assert!(
        a.text.starts_with("I will call Read, Write and Read.\n"),
        "{}",
        a.text
    );
    assert!(a.text.contains(
        "[{\"name\": \"Read\", \"arguments\": {\"p\":1}}, {\"name\": \"Write\", \"arguments\": \
         {}}, {\"name\": \"Read\", \"arguments\": {\"p\":2}}]"
    ));
}

#[test]
fn an_unoffered_tool_or_tool_ignore_answers_plain_text() {
    for user in [
        "call Bash {\"cmd\": \"ls\"}",
        "call Read {}\ncall Bash {}",
        "[[tool-ignore]]\ncall Read {}",
    ] {
        let p = with_tools(user);
        assert_eq!(first(&p).text, reply_text(&p, 1, 12), "{user}");
    }
}

#[test]
fn a_lone_message_after_the_tools_block_counts_as_the_user_message() {
    let p = format!("{TOOLS_BLOCK}\n\ncall Read {{\"p\":1}}");
    assert!(first(&p).text.starts_with("I will call Read.\n"));
}

#[test]
fn continued_turns_find_the_tools_of_an_earlier_prompt() {
    let one = with_tools("hello");
    let two = format!("call Read {{}}\n\n{REMINDER}");
    let a = answer(&[&one], &two, 2, 12);
    assert!(a.text.starts_with("I will call Read.\n"), "{}", a.text);
    // A newer block replaces the tool set.
    let newer = "[Tools]\n<<<TOOLS>>>\n{\"name\":\"Bash\"}\n<<<END_TOOLS>>>\n\n[User]\nx";
    let a = answer(&[&one, newer], &two, 3, 12);
    assert_eq!(a.split, Split::Words);
}

#[test]
fn tool_results_answer_with_the_first_content_verbatim() {
    let first_turn = format!(
        "{}\n\n[Assistant]\nLet me write.\n<<<TOOL_CALLS>>>\n[{{\"id\":\"call_a\",\"name\":\
         \"Write\",\"arguments\":{{}}}}]\n<<<END_TOOL_CALLS>>>\n\n[Tool result call_id=call_a \
         name=Write]\n  File  written.\n\n  line two\n\n[Tool result call_id=call_b name=Read \
         error]\nENOENT",
        with_tools("write it")
    );
    assert_eq!(
        first(&first_turn),
        Answer::exact("The tool returned: File  written.\n\n  line two")
    );
    // Old results before the last assistant message do not count.
    let later = format!("{first_turn}\n\n[Assistant]\ndone\n\n[User]\nthanks");
    assert_eq!(first(&later).split, Split::Words);
    // A continued turn: results anywhere, the reminder line is not content.
    let cont = format!("[Tool result call_id=call_a name=Write]\nok: 42\n{REMINDER}");
    assert_eq!(
        answer(&["x"], &cont, 2, 12),
        Answer::exact("The tool returned: ok: 42")
    );
}

#[test]
fn context_parts_answer_ok_and_do_not_make_a_turn_continued() {
    let part =
        "[Context part 1 of 2]\nlots of text\n(Context only: reply with the single word OK.)";
    assert_eq!(first(part), Answer::exact("OK"));
    // The real turn after the context carries a transcript: old results do not count.
    let real = "[Tool result call_id=a name=Read]\nold\n\n[Assistant]\nseen\n\n[User]\nnext";
    assert_eq!(answer(&[part], real, 2, 12).split, Split::Words);
    assert_eq!(answer(&["x"], real, 2, 12).split, Split::Exact);
}

#[test]
fn directives_are_read_in_order_each_once() {
    let d = prompt::directives(&[
        "[[tool-drift:spaces]] [[tool-drift:nope]] [[tool-garbage]]",
        "[[tool-drift:no-close]][[tool-drift:spaces]] [[tool-garbage-always]]",
    ]);
    assert_eq!(d.drifts, [Drift::Spaces, Drift::NoClose]);
    assert_eq!(d.garbage, Garbage::Always);
    assert!(!d.ignore);
}

#[test]
fn garbage_once_is_repaired_garbage_always_is_not() {
    let p = with_tools("[[tool-garbage]]\ncall Read {\"p\":1}");
    let a = first(&p);
    assert!(a.text.contains("\"arguments\": {\"oops\": }"), "{}", a.text);
    let fix = "[Tool call error]\nYour <<<TOOL_CALLS>>> block could not be used: bad JSON.\n\
               Reply with only the corrected block.";
    assert_eq!(
        answer(&[&p], fix, 2, 12),
        Answer::exact(
            "<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": {\"p\":1}}]\n\
             <<<END_TOOL_CALLS>>>"
        )
    );
    let p = with_tools("[[tool-garbage-always]]\ncall Read {\"p\":1}");
    let again = answer(&[&p, fix], fix, 3, 12);
    assert!(again.text.starts_with("<<<TOOL_CALLS>>>\n"));
    assert!(again.text.contains("{\"oops\": }"), "{}", again.text);
    // A repair turn with nothing to repair answers in plain text.
    assert_eq!(answer(&["hi"], fix, 2, 12).split, Split::Words);
}

#[test]
fn drifts_shape_the_first_answer() {
    let p = with_tools("[[tool-drift:lowercase]]\ncall Read {}");
    let a = first(&p);
    assert!(
        a.text
            .starts_with("I will call Read.\n<<<tool_calls>>>\n[{\"name\": \"Read\"")
    );
    assert!(a.text.ends_with("<<<end_tool_calls>>>"));
}
