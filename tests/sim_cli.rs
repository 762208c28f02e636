//! The simulator's CLI door (protocol notes §10) over HTTP: OAuth refresh with rotation,
//! access-token expiry, `/models`, `/chat/completions` streamed and not, native tool calls,
//! the request records and the faults.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::time::{Duration, Instant};

use common::cli::raw_refresh;
use common::sim::{cfg, gen2_project, mint};
use common::sse_data;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator, reply_text, thinking_text};
use reqwest::StatusCode;
use serde_json::{Value, json};

const UA: &str = "opencode/1.15.0 ai-sdk/provider-utils/4.0.23 runtime/bun/1.3.13";

fn http() -> reqwest::Client {
    reqwest::Client::new()
}

/// A fresh access token for a new CLI account; returns (user id, access token).
async fn login(sim: &Simulator) -> (String, String) {
    let acc = sim.add_cli_account();
    let r = raw_refresh(sim, &acc.refresh_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    (acc.user_id, v["access_token"].as_str().unwrap().to_owned())
}

async fn complete(sim: &Simulator, token: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/chat/completions", sim.url()))
        .bearer_auth(token)
        .header("x-session-id", "ses_abc123")
        .header("x-session-affinity", "ses_abc123")
        .header("user-agent", UA)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A streamed completion's chunks (parsed), after checking it ends with `[DONE]`.
async fn stream(sim: &Simulator, token: &str, mut body: Value) -> Vec<Value> {
    body["stream"] = json!(true);
    let r = complete(sim, token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let data = sse_data(&r.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// The concatenated string `field` of every chunk's delta.
fn delta_text(chunks: &[Value], field: &str) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"][field].as_str())
        .collect()
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "Read", "description": "Reads a file",
         "parameters": {"type": "object", "properties": {"file_path": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "Write", "parameters": {"type": "object"}}}
    ])
}

fn openai_error_code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_spent_one_is_refused() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.add_cli_account();
    assert!(acc.refresh_token.starts_with("cto_rt_"));
    let r = raw_refresh(&sim, &acc.refresh_token).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["expires_in"], 900);
    assert_eq!(v["token_type"], "Bearer");
    let next = v["refresh_token"].as_str().unwrap();
    assert_ne!(next, acc.refresh_token);
    assert_eq!(
        sim.cli_account(&acc.user_id).unwrap().refresh_token,
        next,
        "the handle shows the rotated token"
    );

    let r = raw_refresh(&sim, &acc.refresh_token).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(raw_refresh(&sim, next).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().cli_refreshes[&acc.user_id], 2);

    let r = http()
        .post(format!("{}/oauth/token", sim.url()))
        .json(&json!({"grant_type": "password", "refresh_token": next}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );

    // Logging the first (web) account in through the control plane.
    let first = sim.account().user_id;
    let r = http()
        .post(format!("{}/__sim/accounts/{first}/cli-login", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["user_id"], first.as_str());
    let rt = v["refresh_token"].as_str().unwrap();
    assert_eq!(raw_refresh(&sim, rt).await.status(), StatusCode::OK);
    assert!(sim.cli_login("user_nobody").is_none());
}

#[tokio::test]
async fn access_tokens_expire_and_other_tokens_are_refused() {
    let sim = Simulator::start(SimConfig {
        cli_token_ttl: Duration::from_secs(1),
        ..cfg()
    })
    .await
    .unwrap();
    let (_, token) = login(&sim).await;
    let models = |t: String| {
        let url = format!("{}/models", sim.url());
        async move { http().get(url).bearer_auth(t).send().await.unwrap() }
    };
    assert_eq!(models(token.clone()).await.status(), StatusCode::OK);
    let web_jwt = mint(&sim, &sim.account()).await;
    for bad in ["cto_at_unknown".to_owned(), web_jwt] {
        let r = models(bad).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            openai_error_code(&r.json::<Value>().await.unwrap()),
            "invalid_token"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = models(token.clone()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = json!({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        complete(&sim, &token, &body).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(sim.stats().cli_rejected_tokens, 4);
}

#[tokio::test]
async fn models_share_some_ids_with_the_web_catalogue() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (_, token) = login(&sim).await;
    let v: Value = http()
        .get(format!("{}/models", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"gpt-5.4") && ids.contains(&"kimi-k2.5"),
        "{ids:?}"
    );
    assert!(!ids.contains(&"gpt_5_4") && !ids.contains(&"GPT5_4"));
    let r = complete(
        &sim,
        &token,
        &json!({"model": "gpt_5_4", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        openai_error_code(&r.json::<Value>().await.unwrap()),
        "model_not_found"
    );
}

#[tokio::test]
async fn a_text_reply_streams_with_usage_and_the_request_is_recorded() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (user, token) = login(&sim).await;
    let body = json!({
        "model": "kimi-k2.5",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "first question"},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [{"type": "text", "text": "second question"}]},
        ],
        "tools": tools(),
        "providerOptions": {"opencode": {"x": [1, 2]}},
        "stream_options": {"include_usage": true},
    });
    let chunks = stream(&sim, &token, body.clone()).await;
    assert_eq!(
        delta_text(&chunks, "content"),
        reply_text("second question", 2, 12)
    );
    assert!(chunks.len() > 4);
    assert!(chunks.iter().all(|c| c["model"] == "kimi-k2.5"));
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["usage"]["prompt_tokens"], 8);
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() >= 12);

    let stats = sim.stats();
    let rec = &stats.cli_completions[0];
    assert_eq!(rec.user_id, user);
    assert_eq!(rec.session_id.as_deref(), Some("ses_abc123"));
    assert_eq!(rec.session_affinity.as_deref(), Some("ses_abc123"));
    assert_eq!(rec.user_agent.as_deref(), Some(UA));
    let mut sent = body;
    sent["stream"] = json!(true);
    assert_eq!(rec.body, sent, "unknown fields arrive intact");
    assert_eq!(stats.clients["cli"].user_agent.as_deref(), Some(UA));

    // Not streamed: one chat.completion.
    let r = complete(
        &sim,
        &token,
        &json!({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        reply_text("hello", 1, 12).as_str()
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 1);
}

#[tokio::test]
async fn a_call_line_becomes_native_tool_calls() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (_, token) = login(&sim).await;
    let args = r#"{"file_path": "/tmp/naïve.txt"}"#;
    let body = json!({
        "model": "gpt-5.4",
        "messages": [{"role": "user", "content": format!("Look.\ncall Read {args}\ncall Write")}],
        "tools": tools(),
    });
    let chunks = stream(&sim, &token, body.clone()).await;
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].get(0))
        .collect();
    let heads: Vec<&&Value> = calls.iter().filter(|c| c["id"].is_string()).collect();
    assert_eq!(heads.len(), 2);
    assert_eq!(heads[0]["function"]["name"], "Read");
    assert_eq!(heads[1]["function"]["name"], "Write");
    assert_eq!(heads[1]["index"], 1);
    assert!(heads[0]["id"].as_str().unwrap().starts_with("call_"));
    let args_of = |index: u64| -> (usize, String) {
        let pieces: Vec<&str> = calls
            .iter()
            .filter(|c| c["index"] == index)
            .filter_map(|c| c["function"]["arguments"].as_str())
            .filter(|a| !a.is_empty())
            .collect();
        (pieces.len(), pieces.concat())
    };
    let (n, read_args) = args_of(0);
    assert!(n > 2, "arguments in several pieces: {n}");
    assert_eq!(read_args, args);
    assert_eq!(args_of(1).1, "{}");
    assert_eq!(delta_text(&chunks, "content"), "");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );

    let v: Value = complete(&sim, &token, &body).await.json().await.unwrap();
    let msg = &v["choices"][0]["message"];
    assert!(msg["content"].is_null());
    assert_eq!(msg["tool_calls"][0]["function"]["arguments"], args);
    assert_eq!(msg["tool_calls"][0]["type"], "function");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    // A tool that is not offered: plain text.
    let body = json!({"model": "gpt-5.4", "tools": tools(),
                      "messages": [{"role": "user", "content": "call Bash {}"}]});
    let chunks = stream(&sim, &token, body).await;
    assert_eq!(
        delta_text(&chunks, "content"),
        reply_text("call Bash {}", 1, 12)
    );
}

#[tokio::test]
async fn tool_messages_are_quoted_and_thinking_adds_reasoning() {
    let sim = Simulator::start(cfg()).await.unwrap();
    sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let (_, token) = login(&sim).await;
    let body = json!({
        "model": "claude-sonnet-4.5",
        "tools": tools(),
        "messages": [
            {"role": "user", "content": "call Read {}"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "  line one\n\n  line two  \n"},
        ],
    });
    let chunks = stream(&sim, &token, body.clone()).await;
    assert_eq!(
        delta_text(&chunks, "content"),
        "The tool returned: line one\n\n  line two"
    );
    assert_eq!(delta_text(&chunks, "reasoning_content"), thinking_text(1));
    let v: Value = complete(&sim, &token, &body).await.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["reasoning_content"],
        thinking_text(1).as_str()
    );
}

#[tokio::test]
async fn status_faults_answer_openai_errors_and_refresh_can_be_refused_per_account() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (user, token) = login(&sim).await;
    let body = json!({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]});
    sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let r = complete(&sim, &token, &body).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );
    assert_eq!(complete(&sim, &token, &body).await.status(), StatusCode::OK);
    sim.set_faults(Faults {
        trigger_status: Some(503),
        ..Faults::default()
    });
    let r = complete(&sim, &token, &body).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "server_error"
    );
    assert_eq!(sim.stats().cli_completions.len(), 3);

    let other = sim.add_cli_account();
    sim.set_faults(Faults {
        cli_refresh_refused: vec![user.clone()],
        ..Faults::default()
    });
    let rt = sim.cli_account(&user).unwrap().refresh_token;
    let r = raw_refresh(&sim, &rt).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_grant");
    assert_eq!(
        raw_refresh(&sim, &other.refresh_token).await.status(),
        StatusCode::OK
    );
    // A refused refresh does not spend the token.
    sim.set_faults(Faults::default());
    assert_eq!(raw_refresh(&sim, &rt).await.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!(stats.cli_refused_refreshes, 1);
    assert_eq!(stats.cli_refreshes[&user], 2);
}

#[tokio::test]
async fn silent_slow_and_dropped_streams() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (_, token) = login(&sim).await;
    let body = json!({"model": "gpt-5.4", "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]});

    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let mut r = complete(&sim, &token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    let more = tokio::time::timeout(Duration::from_millis(300), r.chunk()).await;
    assert!(more.is_err(), "a silent stream sends nothing: {more:?}");

    sim.set_faults(Faults {
        ws_drop_after: Some(3),
        ..Faults::default()
    });
    let r = complete(&sim, &token, &body).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.is_err(), "the body breaks off");

    sim.set_faults(Faults {
        slow_frame_ms: 40,
        ..Faults::default()
    });
    let started = Instant::now();
    let r = complete(&sim, &token, &body).await;
    let data = sse_data(&r.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let pauses = u32::try_from(data.len()).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(40) * pauses);
}

#[tokio::test]
async fn the_web_door_still_works_next_to_the_cli_door() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let jwt = mint(&sim, &sim.account()).await;
    gen2_project(&sim, &jwt).await;
    let r = http()
        .get(format!("{}/chat/adapters", sim.url()))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A web JWT is not a CLI access token, nor the reverse.
    let (_, token) = login(&sim).await;
    let r = http()
        .get(format!("{}/billing", sim.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
