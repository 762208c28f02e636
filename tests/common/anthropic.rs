//! The Anthropic surface's test kit: Messages requests as Anthropic SDKs send them, and their
//! streamed events read back by name.

use serde_json::{Value, json};

use super::{Harness, KEY, user};

/// A Messages request the way Anthropic SDKs send it (`x-api-key`, `anthropic-version`).
pub fn messages_req(h: &Harness, path: &str) -> reqwest::RequestBuilder {
    h.http
        .post(format!("{}{path}", h.base))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
}

/// A non-streamed Messages request; returns (status, body).
pub async fn create(h: &Harness, body: Value) -> (u16, Value) {
    let resp = messages_req(h, "/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("json body"))
}

/// A streamed answer read to its end: (status, [(event name, data)]) without `ping`s.
pub async fn create_stream(h: &Harness, mut body: Value) -> (u16, Vec<(String, Value)>) {
    body["stream"] = json!(true);
    let resp = messages_req(h, "/v1/messages")
        .json(&body)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (status, events(&text))
}

/// The named events of an Anthropic SSE body (`ping`s left out), each checked to carry its
/// name as its data's `type`.
pub fn events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let name = block
            .lines()
            .find_map(|l| l.strip_prefix("event:"))
            .map(|n| n.trim().to_string());
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim_start)
            .collect();
        if let Some(name) = name
            && name != "ping"
        {
            let v: Value = serde_json::from_str(&data.join("\n")).expect("event data is JSON");
            assert_eq!(v["type"], name.as_str(), "data type matches the event name");
            out.push((name, v));
        }
    }
    out
}

/// The names of the events, in order.
pub fn names(evs: &[(String, Value)]) -> Vec<&str> {
    evs.iter().map(|(n, _)| n.as_str()).collect()
}

/// Concatenated deltas of one kind (`text_delta` / `thinking_delta`) at one block index.
pub fn deltas(evs: &[(String, Value)], index: u64, kind: &str, field: &str) -> String {
    evs.iter()
        .filter(|(n, v)| n == "content_block_delta" && v["index"] == index)
        .map(|(_, v)| {
            assert_eq!(v["delta"]["type"], kind, "{v}");
            v["delta"][field].as_str().expect("delta text").to_string()
        })
        .collect()
}

/// A one-message Messages request body for GPT5.
pub fn body(text: &str) -> Value {
    json!({"model": "GPT5", "max_tokens": 256, "messages": [user(text)]})
}
