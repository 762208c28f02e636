//! The OpenAI Responses API end to end through the simulator: text answers streamed and not,
//! function calls (emulated on the web door), `previous_response_id`, and errors in OpenAI's
//! shape.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::*;
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

const ARGS: &str = r#"{"cmd":"touch /tmp/x"}"#;

fn tools() -> Value {
    json!([{"type": "function", "name": "exec_command", "description": "Runs a command",
        "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}},
        {"type": "web_search"},
        {"type": "namespace", "name": "agents", "description": "sub-agents",
         "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}]}])
}

async fn respond(h: &Harness, body: Value) -> (u16, Value) {
    let resp = h.post("/v1/responses").json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// (event type, data) of a streamed response.
async fn respond_stream(h: &Harness, mut body: Value) -> Vec<(String, Value)> {
    body["stream"] = json!(true);
    let resp = h.post("/v1/responses").json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event:"))
            .map(str::trim);
        let data = block
            .lines()
            .find_map(|l| l.strip_prefix("data:"))
            .map(str::trim);
        if let (Some(n), Some(d)) = (name, data) {
            let v: Value = serde_json::from_str(d).unwrap();
            assert_eq!(v["type"], n, "data.type matches the event name");
            out.push((n.to_string(), v));
        }
    }
    out
}

#[tokio::test]
async fn text_answer_not_streamed() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, r) = respond(
        &h,
        json!({"model": "GPT5", "instructions": "Be brief.", "input": "Say hello"}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert!(r["id"].as_str().unwrap().starts_with("resp_"));
    let msg = &r["output"][0];
    assert_eq!(msg["type"], "message");
    let text = msg["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Say hello"), "{text}");
    assert!(r["usage"]["output_tokens"].as_u64().unwrap() > 0);
    assert!(
        h.sim.stats().triggers[0]
            .prompt
            .starts_with("[System]\nBe brief.")
    );
}

#[tokio::test]
async fn streamed_function_call_has_the_full_event_sequence() {
    let h = start(SimConfig::default(), |_| {}).await;
    let evs = respond_stream(
        &h,
        json!({"model": "GPT5", "tools": tools(), "input": [{"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": format!("Run it.\ncall exec_command {ARGS}")}]}]}),
    )
    .await;
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names[..2],
        ["response.created", "response.in_progress"],
        "{names:?}"
    );
    assert_eq!(names.last(), Some(&"response.completed"), "{names:?}");
    for n in [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ] {
        assert!(names.contains(&n), "{n} missing: {names:?}");
    }
    let seqs: Vec<u64> = evs
        .iter()
        .map(|(_, v)| v["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let done = &evs.last().unwrap().1["response"];
    let call = done["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(call["name"], "exec_command");
    assert_eq!(
        serde_json::from_str::<Value>(call["arguments"].as_str().unwrap()).unwrap(),
        serde_json::from_str::<Value>(ARGS).unwrap()
    );
    assert!(call["call_id"].as_str().unwrap().starts_with("call_"));
    // Built-in tools are not offered; namespaced ones are, flattened.
    let prompt = &h.sim.stats().triggers[0].prompt;
    assert!(prompt.contains("\"name\":\"agents__spawn\""), "{prompt}");
    assert!(!prompt.contains("web_search"), "{prompt}");
}

#[tokio::test]
async fn namespaced_calls_come_back_with_their_namespace() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, r) = respond(
        &h,
        json!({"model": "GPT5", "tools": tools(), "input": "call agents__spawn {}"}),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let call = r["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap();
    assert_eq!(
        (call["name"].as_str(), call["namespace"].as_str()),
        (Some("spawn"), Some("agents"))
    );
}

#[tokio::test]
async fn function_call_output_continues_the_chat_and_previous_response_id_works() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, first) = respond(
        &h,
        json!({"model": "GPT5", "tools": tools(), "input": format!("call exec_command {ARGS}")}),
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    // Stateless follow-up (what Codex does with store:false): the whole conversation again.
    let mut input = vec![json!({"role": "user", "content": format!("call exec_command {ARGS}")})];
    input.extend(first["output"].as_array().unwrap().iter().cloned());
    input.push(json!({"type": "function_call_output", "call_id": call["call_id"], "output": "ok, created"}));
    let (status, second) = respond(
        &h,
        json!({"model": "GPT5", "tools": tools(), "input": input, "store": false}),
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(
        second["output"][0]["content"][0]["text"],
        "The tool returned: ok, created"
    );
    let t = h.sim.stats().triggers;
    assert_eq!(
        t[1].chat_history_id, t[0].chat_history_id,
        "same upstream chat"
    );

    // previous_response_id: only the new input is sent by the client.
    let (status, third) = respond(&h, json!({"model": "GPT5", "tools": tools(),
        "previous_response_id": first["id"],
        "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "again"}]})).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        third["output"][0]["content"][0]["text"],
        "The tool returned: again"
    );

    let (status, err) = respond(
        &h,
        json!({"model": "GPT5", "previous_response_id": "resp_nope", "input": "x"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["param"], "previous_response_id");
}

#[tokio::test]
async fn bad_input_is_a_400_in_openai_shape() {
    let h = start(SimConfig::default(), |_| {}).await;
    let (status, err) = respond(&h, json!({"model": "GPT5", "input": 5})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert_eq!(err["error"]["param"], "input");
    let (status, _) = respond(&h, json!({"model": "nope", "input": "x"})).await;
    assert_eq!(status, 404);
}
