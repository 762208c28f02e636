//! Tool calls on the web door, end to end: a client offers tools, the proxy writes them into
//! the prompt, the simulator's model answers with a `<<<TOOL_CALLS>>>` block (docs/
//! tool-emulation.md), and the proxy hands the client native tool calls in its own API's shape;
//! the tool results then continue the same upstream chat. Also the repair turn, degradation to
//! text, the drifts the parser tolerates, and context turns for prompts over the budget.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::*;
use enginelabs_2api::relay::LongPrompts;
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

const ARGS: &str = r#"{"file_path":"/tmp/hello.txt","content":"hi"}"#;

fn write_tool() -> Value {
    json!({"type": "function", "function": {"name": "Write", "description": "Writes a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"},
            "content": {"type": "string"}}, "required": ["file_path", "content"]}}})
}

fn read_tool() -> Value {
    json!({"type": "function", "function": {"name": "Read", "description": "Reads a file",
        "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}})
}

fn ask(text: &str) -> Value {
    json!({"model": "GPT5", "messages": [user(text)], "tools": [write_tool(), read_tool()]})
}

/// Tool calls of a streamed answer, assembled from the `tool_calls` deltas: (id, name, args).
fn streamed_calls(data: &[String]) -> (Vec<(String, String, String)>, Option<String>) {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut finish = None;
    for d in data.iter().filter(|d| *d != "[DONE]") {
        let v: Value = serde_json::from_str(d).unwrap();
        let Some(choice) = v["choices"].get(0) else {
            continue;
        };
        if let Some(r) = choice["finish_reason"].as_str() {
            finish = Some(r.to_string());
        }
        for tc in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(id) = tc["id"].as_str() {
                calls[i].0 = id.to_string();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                calls[i].1 = n.to_string();
            }
            calls[i]
                .2
                .push_str(tc["function"]["arguments"].as_str().unwrap_or(""));
        }
    }
    (calls, finish)
}

/// The raw SSE body of a streamed `/v1/messages` request.
async fn messages_sse(h: &Harness, body: &Value) -> String {
    let resp = h.post("/v1/messages").json(body).send().await.unwrap();
    resp.text().await.unwrap()
}

/// The value of an unlabelled metric on `/metrics`.
async fn metric(h: &Harness, name: &str) -> f64 {
    let text = h
        .get("/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// The concatenated `text_delta`s of an Anthropic SSE body.
fn anthropic_text(sse: &str) -> String {
    sse_data(sse)
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["delta"]["type"] == "text_delta")
        .map(|v| v["delta"]["text"].as_str().unwrap().to_string())
        .collect()
}

fn json_eq(a: &str, b: &str) -> bool {
    serde_json::from_str::<Value>(a).unwrap() == serde_json::from_str::<Value>(b).unwrap()
}

#[tokio::test]
async fn openai_tool_call_then_result_continues_the_same_upstream_chat() {
    let h = start(SimConfig::default(), |_| {}).await;
    let first = ask(&format!("Please save it.\ncall Write {ARGS}"));
    let (status, body) = h.chat(first.clone()).await;
    assert_eq!(status, 200, "{body}");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls", "{body}");
    assert_eq!(choice["message"]["content"], "I will call Write.\n");
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "Write");
    assert!(json_eq(
        call["function"]["arguments"].as_str().unwrap(),
        ARGS
    ));
    let id = call["id"].as_str().unwrap();
    assert!(id.starts_with("call_"), "{id}");
    let first_prompt = h.sim.stats().triggers[0].prompt.clone();
    assert!(first_prompt.contains("<<<TOOLS>>>"), "{first_prompt}");

    // The client runs the tool and sends the result: same upstream chat, only the result sent.
    let mut follow = first.clone();
    follow["messages"] = json!([user(&format!("Please save it.\ncall Write {ARGS}")),
        choice["message"].clone(),
        {"role": "tool", "tool_call_id": id, "content": "File created successfully"}]);
    let (status, body) = h.chat(follow).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "The tool returned: File created successfully"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    let triggers = h.sim.stats().triggers;
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[1].chat_history_id, triggers[0].chat_history_id);
    assert!(
        triggers[1].prompt.starts_with(&format!(
            "[Tool result call_id={id} name=Write]\nFile created successfully"
        )),
        "{}",
        triggers[1].prompt
    );
    assert!(!triggers[1].prompt.contains("<<<TOOLS>>>"));
}

#[tokio::test]
async fn streamed_tool_calls_arrive_as_deltas_and_parallel_calls_stay_apart() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, data) = h
        .chat_stream(ask(&format!(
            "Do both.\ncall Read {{\"file_path\":\"/a\"}}\ncall Write {ARGS}"
        )))
        .await;
    assert_eq!(status, 200);
    let (calls, finish) = streamed_calls(&data);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(calls.len(), 2, "{data:?}");
    assert_eq!(calls[0].1, "Read");
    assert!(json_eq(&calls[0].2, r#"{"file_path":"/a"}"#));
    assert_eq!(calls[1].1, "Write");
    assert!(json_eq(&calls[1].2, ARGS));
    assert_ne!(calls[0].0, calls[1].0);
    let (content, _) = stream_text(&data);
    assert_eq!(content, "I will call Read and Write.\n");
}

#[tokio::test]
async fn tool_choice_none_offers_no_tools_and_the_answer_is_text() {
    let h = start(SimConfig::default(), |_| {}).await;
    let mut body = ask(&format!("call Write {ARGS}"));
    body["tool_choice"] = json!("none");
    let (status, body) = h.chat(body).await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["choices"][0]["message"].get("tool_calls").is_none());
    assert!(!h.sim.stats().triggers[0].prompt.contains("<<<TOOLS>>>"));
}

#[tokio::test]
async fn a_malformed_block_gets_one_repair_turn_in_the_same_chat() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, body) = h
        .chat(ask(&format!("[[tool-garbage]]\ncall Write {ARGS}")))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    let args = body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert!(json_eq(args, ARGS));
    let triggers = h.sim.stats().triggers;
    assert_eq!(triggers.len(), 2, "one repair turn");
    assert_eq!(triggers[1].chat_history_id, triggers[0].chat_history_id);
    assert!(triggers[1].prompt.starts_with("[Tool call error]"));
    // Metrics are process-wide: other tests of this binary may add to it, never take away.
    assert!(metric(&h, "el2a_tool_call_repairs_total").await >= 1.0);
}

#[tokio::test]
async fn a_block_that_stays_malformed_degrades_to_text() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, data) = h
        .chat_stream(ask(&format!("[[tool-garbage-always]]\ncall Write {ARGS}")))
        .await;
    assert_eq!(status, 200);
    let (calls, finish) = streamed_calls(&data);
    assert!(calls.is_empty());
    assert_eq!(finish.as_deref(), Some("stop"));
    let (content, _) = stream_text(&data);
    assert!(
        content.starts_with("I will call Write.\n<<<TOOL_CALLS>>>"),
        "{content}"
    );
    assert_eq!(h.sim.stats().triggers.len(), 2, "exactly one repair turn");
}

#[tokio::test]
async fn a_model_that_ignores_the_tools_gives_a_plain_answer() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, body) = h
        .chat(ask(&format!("[[tool-ignore]]\ncall Write {ARGS}")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .starts_with("Turn 1")
    );
}

#[tokio::test]
async fn every_drift_of_the_simulator_parses() {
    let h = start(SimConfig::default(), |_| {}).await;
    let kinds = [
        "spaces",
        "lowercase",
        "no-close",
        "trailing-comma",
        "single-quotes",
        "string-args",
        "alt-keys",
        "fenced-prose",
    ];
    let mut parsed = 0;
    for kind in kinds {
        let (status, body) = h
            .chat(ask(&format!("[[tool-drift:{kind}]]\ncall Write {ARGS}")))
            .await;
        assert_eq!(status, 200, "{kind}: {body}");
        let calls = &body["choices"][0]["message"]["tool_calls"];
        if calls[0]["function"]["name"] == "Write"
            && json_eq(
                calls[0]["function"]["arguments"].as_str().unwrap_or("null"),
                ARGS,
            )
        {
            parsed += 1;
        } else {
            eprintln!("drift {kind} did not parse: {body}");
        }
    }
    println!("simulator drift cases parsed: {parsed}/{}", kinds.len());
    assert_eq!(parsed, kinds.len());
    assert_eq!(
        h.sim.stats().triggers.len(),
        kinds.len(),
        "no repair turn was needed"
    );
}

#[tokio::test]
async fn anthropic_tool_use_round_trip_stream_and_not() {
    let h = start(SimConfig::default(), |_| {}).await;
    let tools = json!([{"name": "Write", "description": "Writes a file",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}]);
    let ask = format!("call Write {ARGS}");
    let body = json!({"model": "GPT5", "max_tokens": 100, "tools": tools,
        "tool_choice": {"type": "any"}, "messages": [user(&ask)]});
    let resp = h.post("/v1/messages").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let msg: Value = resp.json().await.unwrap();
    assert_eq!(msg["stop_reason"], "tool_use", "{msg}");
    let blocks = msg["content"].as_array().unwrap();
    let tool = blocks.iter().find(|b| b["type"] == "tool_use").unwrap();
    assert_eq!(tool["name"], "Write");
    assert_eq!(tool["input"], serde_json::from_str::<Value>(ARGS).unwrap());

    // The result goes back as a tool_result block and continues the same chat, streamed.
    let mut follow = body.clone();
    follow["stream"] = json!(true);
    follow["messages"] = json!([user(&ask), {"role": "assistant", "content": msg["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool["id"],
            "content": [{"type": "text", "text": "written"}]}]}]);
    let text = messages_sse(&h, &follow).await;
    assert_eq!(
        anthropic_text(&text),
        "The tool returned: written",
        "{text}"
    );
    assert!(text.contains("\"stop_reason\":\"end_turn\""), "{text}");
    let triggers = h.sim.stats().triggers;
    assert_eq!(triggers[1].chat_history_id, triggers[0].chat_history_id);

    // Streamed tool use: a tool_use block with input_json_delta pieces.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["messages"] = json!([user(&format!("again\ncall Write {ARGS}"))]);
    let text = messages_sse(&h, &streamed).await;
    assert!(text.contains("\"type\":\"tool_use\""), "{text}");
    assert!(text.contains("input_json_delta"), "{text}");
    assert!(text.contains("\"stop_reason\":\"tool_use\""), "{text}");
}

#[tokio::test]
async fn a_first_turn_over_the_budget_goes_as_context_turns() {
    let h = start(SimConfig::default(), |a| a.prompt_budget_bytes = 6000).await;
    let system: String = (0..600).map(|i| format!("Rule {i}: be exact.\n")).collect();
    let body = json!({"model": "GPT5", "tools": [write_tool()], "messages": [
        {"role": "system", "content": system}, user(&format!("call Write {ARGS}"))]});
    let (status, body) = h.chat(body).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls", "{body}");
    let triggers = h.sim.stats().triggers;
    assert!(triggers.len() >= 3, "{}", triggers.len());
    let (context, real) = triggers.split_at(triggers.len() - 1);
    for (i, t) in context.iter().enumerate() {
        assert!(
            t.prompt
                .starts_with(&format!("[Context part {} of {}]", i + 1, context.len()))
        );
        assert!(t.prompt.len() <= 6000);
        assert_eq!(t.chat_history_id, real[0].chat_history_id);
    }
    assert!(real[0].prompt.contains("<<<TOOLS>>>") && real[0].prompt.len() <= 6000);
    assert!(metric(&h, "el2a_context_turns_total").await >= context.len() as f64);
}

#[tokio::test]
async fn long_prompts_reject_explains_the_limit() {
    let h = start(SimConfig::default(), |a| {
        a.prompt_budget_bytes = 4000;
        a.long_prompts = LongPrompts::Reject;
    })
    .await;
    let (status, body) = h
        .chat(json!({"model": "GPT5", "messages": [user(&"x ".repeat(5000))]}))
        .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "prompt_too_long");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("LONG_PROMPTS")
    );
    assert!(h.sim.stats().triggers.is_empty());
}
