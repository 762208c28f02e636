//! Bad input gets OpenAI's error object with the right status; the shape is pinned here.

mod common;

use common::*;
use enginelabs_2api::config::Secret;
use enginelabs_2api::simulator::SimConfig;
use serde_json::{Value, json};

async fn expect_error(resp: reqwest::Response, status: u16, code: Option<&str>) -> Value {
    assert_eq!(resp.status().as_u16(), status);
    let v: Value = resp.json().await.expect("error body is JSON");
    let e = &v["error"];
    let keys: Vec<&String> = e.as_object().expect("error object").keys().collect();
    assert_eq!(
        keys,
        ["code", "message", "param", "type"],
        "pinned shape: {v}"
    );
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(e["type"].is_string());
    if let Some(code) = code {
        assert_eq!(e["code"], code, "{v}");
    }
    v
}

#[tokio::test]
async fn missing_or_wrong_key_is_401() {
    let h = start(SimConfig::default(), |_| {}).await;
    let url = format!("{}/v1/chat/completions", h.base);
    let body = json!({"model": "GPT5", "messages": [user("hi")]});
    let none = h.http.post(&url).json(&body).send().await.expect("send");
    expect_error(none, 401, Some("invalid_api_key")).await;
    let wrong = h
        .http
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&body)
        .send()
        .await
        .expect("send");
    expect_error(wrong, 401, Some("invalid_api_key")).await;
    let models = h
        .http
        .get(format!("{}/v1/models", h.base))
        .send()
        .await
        .expect("send");
    expect_error(models, 401, Some("invalid_api_key")).await;
    assert_eq!(h.sim.stats().triggers.len(), 0);
}

#[tokio::test]
async fn malformed_bodies_are_400() {
    let h = start(SimConfig::default(), |_| {}).await;
    let bad_json = h
        .post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body("{not json")
        .send();
    expect_error(bad_json.await.expect("send"), 400, None).await;
    let cases = [
        (json!({"model": "GPT5"}), "messages"),
        (json!({"model": "GPT5", "messages": []}), "messages"),
        (
            json!({"model": "GPT5", "messages": {"role": "user"}}),
            "messages",
        ),
        (
            json!({"model": "GPT5", "messages": [{"role": "user", "content": 42}]}),
            "messages",
        ),
        (
            json!({"model": "GPT5", "messages": [{"content": "no role"}]}),
            "messages",
        ),
        (json!({"model": ["GPT5"], "messages": [user("x")]}), "model"),
        (
            json!({"model": "GPT5", "stream": "true", "messages": [user("x")]}),
            "stream",
        ),
        (
            json!({"model": "GPT5", "stream_options": 1, "messages": [user("x")]}),
            "stream_options",
        ),
    ];
    for (body, param) in cases {
        let resp = h
            .post("/v1/chat/completions")
            .json(&body)
            .send()
            .await
            .expect("send");
        let v = expect_error(resp, 400, None).await;
        assert_eq!(v["error"]["param"], param, "{body}");
        assert_eq!(v["error"]["type"], "invalid_request_error");
    }
    let not_object = h
        .post("/v1/chat/completions")
        .json(&json!([1, 2]))
        .send()
        .await
        .expect("send");
    expect_error(not_object, 400, None).await;
    assert_eq!(
        h.sim.stats().triggers.len(),
        0,
        "nothing bad reaches the upstream"
    );
}

#[tokio::test]
async fn unknown_model_is_404_model_not_found() {
    let h = start(SimConfig::default(), |_| {}).await;
    let resp = h
        .post("/v1/chat/completions")
        .json(&json!({"model": "gpt-9", "messages": [user("x")]}))
        .send();
    let v = expect_error(resp.await.expect("send"), 404, Some("model_not_found")).await;
    assert_eq!(v["error"]["param"], "model");
}

/// The error names an unknown model, but only its start: a huge name is not echoed whole.
#[tokio::test]
async fn a_huge_unknown_model_name_is_not_echoed_whole() {
    let h = start(SimConfig::default(), |_| {}).await;
    let name = format!("no-such-model-{}", "x".repeat(60_000));
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let resp = h
            .post(path)
            .json(&json!({"model": name, "max_tokens": 5, "messages": [user("x")]}))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status().as_u16(), 404, "{path}");
        let text = resp.text().await.expect("body");
        assert!(text.len() < 1000, "{path}: {} bytes", text.len());
        assert!(text.contains("no-such-model-xxx"), "{path}: {text}");
    }
}

/// A configured cookie with a control character in it stops the start with a message naming
/// the account and the problem (it used to start and fail every request with a 502), and
/// without the cookie's value.
#[tokio::test]
async fn a_configured_cookie_with_control_characters_does_not_start() {
    use enginelabs_2api::config::Config;
    use enginelabs_2api::server::AppState;
    use enginelabs_2api::store::{Store, memory::MemoryStore};
    let sim = enginelabs_2api::simulator::Simulator::start(SimConfig::default())
        .await
        .expect("sim");
    let mut a = args_for(&sim);
    a.clerk_cookie = Some(Secret::new("__client=secret-part\r\nX-Injected: 1"));
    let config = Config::from_args(&a).expect("settings parse");
    let store: std::sync::Arc<dyn Store> =
        std::sync::Arc::new(MemoryStore::new(Default::default()));
    let err = match AppState::with_store(config, store).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("started with a broken cookie"),
    };
    assert!(err.contains("control character"), "{err}");
    assert!(!err.contains("secret-part"), "{err}");
}

#[tokio::test]
async fn oversized_body_is_413() {
    let h = start(SimConfig::default(), |_| {}).await;
    let big = "x".repeat(100_000);
    let resp = h
        .post("/v1/chat/completions")
        .json(&json!({"model": "GPT5", "messages": [user(&big)]}))
        .send();
    expect_error(resp.await.expect("send"), 413, Some("request_too_large")).await;
}

#[tokio::test]
async fn unknown_route_and_method_use_the_same_shape() {
    let h = start(SimConfig::default(), |_| {}).await;
    expect_error(
        h.get("/v1/nothing").send().await.expect("send"),
        404,
        Some("unknown_url"),
    )
    .await;
    expect_error(
        h.get("/v1/chat/completions").send().await.expect("send"),
        405,
        None,
    )
    .await;
    // A path parameter that is not UTF-8 once decoded: axum's own answer would be plain text.
    expect_error(
        h.get("/v1/models/%FF%FE").send().await.expect("send"),
        400,
        None,
    )
    .await;
}

#[tokio::test]
async fn every_response_has_a_request_id() {
    let h = start(SimConfig::default(), |_| {}).await;
    let r = h
        .get("/v1/models")
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(
        r.headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("abc-123")
    );
    let r = h.get("/v1/nothing").send().await.expect("send");
    assert!(r.headers().get("x-request-id").is_some());
}
