//! The simulated model's tool emulation (docs/tool-emulation.md, "The simulator's model"),
//! driven over the simulator's real HTTP trigger and WebSocket: each test sends prompts shaped
//! like the proxy's and checks the text the frames add up to, byte for byte.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::sim::*;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A first-turn prompt's `[Tools]` section offering `Write` and `Read`.
const TOOLS: &str = "[Tools]
You can call tools. To call tools, end your reply with exactly one block in this format:
<<<TOOL_CALLS>>>
[{\"name\": \"TOOL_NAME\", \"arguments\": {...}}]
<<<END_TOOL_CALLS>>>
Call tools only when needed; otherwise answer in plain text.
<<<TOOLS>>>
{\"name\":\"Write\",\"description\":\"Writes a file\",\"parameters\":{\"type\":\"object\"}}
{\"name\":\"Read\",\"description\":\"Reads a file\",\"parameters\":{\"type\":\"object\"}}
<<<END_TOOLS>>>";

const REMINDER: &str =
    "(Reply in text, or call tools with a <<<TOOL_CALLS>>> block as described before.)";

const ARGS: &str = r#"{"file_path": "/tmp/x",   "content": "héllo\n  world"}"#;

/// The first turn of a chat: system prompt, tools, then the user's message.
fn first_turn(user: &str) -> String {
    format!("[System]\nYou are terse.\n\n{TOOLS}\n\n[User]\n{user}")
}

/// The block the model writes for one correct `Write` call with [`ARGS`].
fn write_block() -> String {
    format!(
        "<<<TOOL_CALLS>>>\n[{{\"name\": \"Write\", \"arguments\": {ARGS}}}]\n<<<END_TOOL_CALLS>>>"
    )
}

async fn sim() -> Simulator {
    Simulator::start(cfg()).await.unwrap()
}

/// Chat updates of a turn.
fn chats(frames: &[Value]) -> usize {
    frames
        .iter()
        .filter_map(inner)
        .filter(|m| m["type"] == "chat")
        .count()
}

#[tokio::test]
async fn a_call_line_is_answered_with_the_block_over_several_frames() {
    let sim = sim().await;
    let mut chat = Gen2Chat::open(&sim).await;
    let frames = chat
        .turn(&sim, &first_turn(&format!("Save it.\ncall Write {ARGS}")))
        .await;
    assert_eq!(
        text_of(&frames, "chat"),
        format!("I will call Write.\n{}", write_block())
    );
    assert!(chats(&frames) > 5, "streamed in pieces: {}", chats(&frames));

    // Several lines make one block of parallel calls.
    let text = chat
        .say(
            &sim,
            &first_turn("call Read {\"file_path\": \"/a\"}\ncall Write {}"),
        )
        .await;
    assert_eq!(
        text,
        "I will call Read and Write.\n<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": \
         {\"file_path\": \"/a\"}}, {\"name\": \"Write\", \"arguments\": {}}]\n<<<END_TOOL_CALLS>>>"
    );
}

#[tokio::test]
async fn continued_turns_use_the_tools_of_the_first_and_quote_results() {
    let sim = sim().await;
    let mut chat = Gen2Chat::open(&sim).await;
    let first = first_turn("Hello there");
    assert_eq!(chat.say(&sim, &first).await, reply_text(&first, 1, 12));
    // The continued turn does not repeat the tools block.
    let text = chat
        .say(&sim, &format!("call Write {ARGS}\n\n{REMINDER}"))
        .await;
    assert_eq!(text, format!("I will call Write.\n{}", write_block()));
    // The tool results come back labelled; the first one's content is quoted verbatim.
    let results = format!(
        "[Tool result call_id=call_1 name=Write]\n\n  Wrote 11 bytes.\n  (twice:  ok)\n\n\
         [Tool result call_id=call_2 name=Read error]\nENOENT\n\n{REMINDER}"
    );
    assert_eq!(
        chat.say(&sim, &results).await,
        "The tool returned: Wrote 11 bytes.\n  (twice:  ok)"
    );
}

#[tokio::test]
async fn a_transcript_with_results_after_the_last_assistant_quotes_them() {
    let sim = sim().await;
    let mut chat = Gen2Chat::open(&sim).await;
    let transcript = format!(
        "{}\n\n[Assistant]\nI will call Write.\n{}\n\n[Tool result call_id=call_9 name=Write]\n\
         File written.\n",
        first_turn(&format!("call Write {ARGS}")),
        write_block()
    );
    assert_eq!(
        chat.say(&sim, &transcript).await,
        "The tool returned: File written."
    );
    // Once the assistant has answered them, old results no longer count.
    let later = format!("{transcript}\n[Assistant]\nDone.\n\n[User]\nThanks");
    let mut fresh = Gen2Chat::open(&sim).await;
    assert_eq!(fresh.say(&sim, &later).await, reply_text(&later, 1, 12));
}

#[tokio::test]
async fn garbage_is_repaired_once_and_garbage_always_is_not() {
    let sim = sim().await;
    let repair = "[Tool call error]\nYour <<<TOOL_CALLS>>> block could not be used: invalid \
                  JSON at line 1.\nReply with only the corrected block.";
    let garbled = "<<<TOOL_CALLS>>>\n[{\"name\": \"Write\", \"arguments\": {\"oops\": }}]\n\
                   <<<END_TOOL_CALLS>>>";

    let mut chat = Gen2Chat::open(&sim).await;
    let text = chat
        .say(
            &sim,
            &first_turn(&format!("[[tool-garbage]]\ncall Write {ARGS}")),
        )
        .await;
    assert_eq!(text, format!("I will call Write.\n{garbled}"));
    assert_eq!(chat.say(&sim, repair).await, write_block());

    let mut chat = Gen2Chat::open(&sim).await;
    let text = chat
        .say(
            &sim,
            &first_turn(&format!("call Write {ARGS}\n[[tool-garbage-always]]")),
        )
        .await;
    assert_eq!(text, format!("I will call Write.\n{garbled}"));
    assert_eq!(chat.say(&sim, repair).await, garbled);
    assert_eq!(chat.say(&sim, repair).await, garbled);
}

#[tokio::test]
async fn every_drift_kind_is_written_as_documented() {
    let sim = sim().await;
    let args = r#"{"file_path": "/a"}"#;
    let cases = [
        (
            "spaces",
            "<<< TOOL_CALLS >>>\n[{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"}}]\n\
             <<< END_TOOL_CALLS >>>",
        ),
        (
            "lowercase",
            "<<<tool_calls>>>\n[{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"}}]\n\
             <<<end_tool_calls>>>",
        ),
        (
            "no-close",
            "<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"}}]",
        ),
        (
            "trailing-comma",
            "<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": {\"file_path\": \"/a\"},},]\n\
             <<<END_TOOL_CALLS>>>",
        ),
        (
            "single-quotes",
            "<<<TOOL_CALLS>>>\n[{'name': 'Read', 'arguments': {'file_path': '/a'}}]\n\
             <<<END_TOOL_CALLS>>>",
        ),
        (
            "string-args",
            "<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": \"{\\\"file_path\\\": \
             \\\"/a\\\"}\"}]\n<<<END_TOOL_CALLS>>>",
        ),
        (
            "alt-keys",
            "<<<TOOL_CALLS>>>\n[{\"tool\": \"Read\", \"input\": {\"file_path\": \"/a\"}}]\n\
             <<<END_TOOL_CALLS>>>",
        ),
        (
            "fenced-prose",
            "The format looks like this:\n```\n<<<TOOL_CALLS>>>\n[{\"name\": \"ExampleTool\", \
             \"arguments\": {}}]\n<<<END_TOOL_CALLS>>>\n```\n<<<TOOL_CALLS>>>\n[{\"name\": \
             \"Read\", \"arguments\": {\"file_path\": \"/a\"}}]\n<<<END_TOOL_CALLS>>>",
        ),
    ];
    let mut chat = Gen2Chat::open(&sim).await;
    for (kind, block) in cases {
        let prompt = first_turn(&format!("[[tool-drift:{kind}]]\ncall Read {args}"));
        let text = chat.say(&sim, &prompt).await;
        assert_eq!(text, format!("I will call Read.\n{block}"), "drift {kind}");
    }
    // alt-keys spells the second call the other way.
    let prompt = first_turn("[[tool-drift:alt-keys]]\ncall Read {}\ncall Write {}");
    assert!(
        chat.say(&sim, &prompt)
            .await
            .contains("{\"function\": {\"name\": \"Write\", \"arguments\": {}}}]")
    );
}

#[tokio::test]
async fn ignored_or_unoffered_tools_get_the_plain_reply() {
    let sim = sim().await;
    let mut chat = Gen2Chat::open(&sim).await;
    let prompts = [
        first_turn("[[tool-ignore]]\ncall Read {}"),
        first_turn("call Bash {\"command\": \"ls\"}"),
    ];
    for (i, prompt) in prompts.iter().enumerate() {
        let n = i as u32 + 1;
        assert_eq!(chat.say(&sim, prompt).await, reply_text(prompt, n, 12));
    }
    // A chat that never offered tools.
    let mut bare = Gen2Chat::open(&sim).await;
    let prompt = "call Read {}";
    assert_eq!(bare.say(&sim, prompt).await, reply_text(prompt, 1, 12));
}

#[tokio::test]
async fn context_parts_answer_ok_and_the_real_turn_follows() {
    let sim = sim().await;
    let mut chat = Gen2Chat::open(&sim).await;
    let part = format!(
        "[Context part 1 of 1]\n{}\n(Context only: reply with the single word OK.)",
        first_turn("earlier stuff")
    );
    assert_eq!(chat.say(&sim, &part).await, "OK");
    // The tools came in the context part; the real turn's transcript still counts as a first
    // turn, so its old tool result (before the last assistant message) does not count.
    let real =
        "[Tool result call_id=c0 name=Read]\nold\n\n[Assistant]\nnoted\n\n[User]\ncall Read {}";
    assert_eq!(
        chat.say(&sim, real).await,
        "I will call Read.\n<<<TOOL_CALLS>>>\n[{\"name\": \"Read\", \"arguments\": {}}]\n\
         <<<END_TOOL_CALLS>>>"
    );
}

#[tokio::test]
async fn cumulative_mode_and_gen1_keep_the_block_exact() {
    let sim = sim().await;
    sim.set_faults(Faults {
        cumulative: true,
        thinking: true,
        ..Faults::default()
    });
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let history = uuid::Uuid::new_v4().to_string();
    let prompt = first_turn(&format!("call Write {ARGS}"));
    let r = gen1_trigger(&sim, &jwt, &history, &prompt).await;
    assert_eq!(r.status(), StatusCode::OK);
    let mut ws = connect(&ws_url(&sim, &history, &format!("token={}", acc.user_id))).await;
    let frames = read_turn(&mut ws).await;
    let snapshots: Vec<String> = frames
        .iter()
        .filter_map(inner)
        .filter(|m| m["type"] == "chat")
        .map(|m| m["chat"]["content"].as_str().unwrap().to_owned())
        .collect();
    let expected = format!("I will call Write.\n{}", write_block());
    assert!(snapshots.len() > 5);
    assert!(snapshots.windows(2).all(|w| w[1].starts_with(&w[0])));
    assert_eq!(snapshots.last().unwrap(), &expected);
}

#[tokio::test]
async fn prompts_over_the_limit_are_refused_with_413() {
    let sim = Simulator::start(SimConfig {
        max_prompt_bytes: 100,
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let jwt = mint(&sim, &acc).await;
    let (project, _) = gen2_project(&sim, &jwt).await;
    // 50 two-byte characters: exactly at the limit once decoded.
    let at_limit = "é".repeat(50);
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, &at_limit).await,
        StatusCode::ACCEPTED
    );
    let over = format!("{at_limit}x");
    let body = json!({"prompt": base64_of(&over), "chatHistoryId": project, "encoded": true});
    let r = api(
        &sim,
        reqwest::Method::POST,
        "/engine-agent/chat",
        &jwt,
        Some(body),
    )
    .await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"message": "Message too large"})
    );
    // Gen-1 counts the same bytes.
    let history = uuid::Uuid::new_v4().to_string();
    let r = gen1_trigger(&sim, &jwt, &history, &over).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let stats = sim.stats();
    assert_eq!(stats.prompts_too_large, 2);
    assert_eq!(stats.triggers.len(), 1);

    // The default limit is 20 000 bytes.
    let sim = Simulator::start(cfg()).await.unwrap();
    let jwt = mint(&sim, &sim.account()).await;
    let (project, _) = gen2_project(&sim, &jwt).await;
    let big = "x".repeat(20_000);
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, &big).await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        gen2_trigger(&sim, &jwt, &project, &format!("{big}y")).await,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
