//! The three request parsers fuzzed over real sockets: bodies built from each API's vocabulary
//! with any field swapped for junk (and bodies that are no JSON at all) are posted to
//! `/v1/chat/completions`, `/v1/messages` and `/v1/responses` in front of the simulator. No body
//! may crash the proxy or get a 5xx; every rejection is a 400 in its API's error shape.
//!
//! Deterministic and bounded (`FUZZ_CASES` bodies per API, 150 by default), so it runs in CI as
//! a plain test; raise `FUZZ_CASES` to search longer. A failing body is printed whole.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use common::*;
use enginelabs_2api::simulator::SimConfig;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};

const WORDS: &[&str] = &[
    "user",
    "assistant",
    "system",
    "developer",
    "tool",
    "function",
    "wizard",
    "text",
    "input_text",
    "output_text",
    "image_url",
    "image",
    "input_image",
    "tool_use",
    "tool_result",
    "function_call",
    "function_call_output",
    "message",
    "reasoning",
    "thinking",
    "Write",
    "GPT5",
    "auto",
    "none",
    "required",
    "any",
    "call_1",
    "data:image/png;base64,AA==",
    "data:x",
    "",
    "base64",
    "image/png",
];

const KEYS: &[&str] = &[
    "role",
    "content",
    "type",
    "text",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "id",
    "tool_call_id",
    "image_url",
    "url",
    "source",
    "input",
    "tool_use_id",
    "is_error",
    "call_id",
    "output",
    "thinking",
    "signature",
    "parameters",
    "input_schema",
    "data",
    "media_type",
];

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(WORDS).prop_map(str::to_string),
        1 => "[a-zA-Z0-9 é😀_:/.-]{0,12}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-3i64..100_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        word().prop_map(Value::from),
    ]
}

/// Any JSON, with keys mostly from the APIs' vocabulary.
fn junk() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 20, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::vec(
                (prop::sample::select(KEYS).prop_map(str::to_string), inner),
                0..4
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// A value that is usually of the expected shape, sometimes junk.
fn or_junk(v: impl Strategy<Value = Value> + 'static) -> BoxedStrategy<Value> {
    prop_oneof![12 => v, 1 => junk()].boxed()
}

fn part() -> impl Strategy<Value = Value> {
    let kind = prop_oneof![
        6 => Just("text".to_string()),
        1 => Just("input_text".to_string()),
        1 => word(),
    ];
    (
        kind,
        or_junk(word().prop_map(Value::from)),
        any::<bool>(),
        junk(),
    )
        .prop_map(|(kind, text, odd, more)| {
            let mut p = Map::new();
            p.insert("type".into(), Value::from(kind));
            p.insert("text".into(), text);
            if odd {
                p.insert(
                    "image_url".into(),
                    json!({"url": "data:image/png;base64,AA=="}),
                );
                p.insert("input".into(), more);
            }
            Value::Object(p)
        })
}

fn message() -> impl Strategy<Value = Value> {
    let role = prop_oneof![
        6 => Just(Value::from("user")),
        2 => Just(Value::from("assistant")),
        1 => Just(Value::from("system")),
        1 => word().prop_map(Value::from),
        1 => junk(),
    ];
    let content = prop_oneof![
        8 => "[a-zA-Z é😀]{1,20}".prop_map(Value::from),
        3 => prop::collection::vec(part(), 0..3).prop_map(Value::from),
        1 => junk(),
    ];
    (role, content, junk(), prop::bool::weighted(0.15)).prop_map(
        |(role, content, extra, with_extra)| {
            let mut m = json!({"role": role, "content": content});
            if with_extra && let Value::Object(e) = extra {
                m.as_object_mut().unwrap().extend(e);
            }
            m
        },
    )
}

fn tools() -> impl Strategy<Value = Value> {
    or_junk(
        prop::collection::vec(
            (word(), junk()).prop_map(|(name, params)| {
                json!({"type": "function", "name": name, "parameters": params,
                    "input_schema": {"type": "object"},
                    "function": {"name": name, "parameters": {"type": "object"}}})
            }),
            0..3,
        )
        .prop_map(Value::from),
    )
}

/// A body for one API: `list` is its list field (`messages` or `input`).
fn body(list: &'static str) -> impl Strategy<Value = Value> {
    (
        or_junk(Just(Value::from("GPT5"))),
        or_junk(prop::collection::vec(message(), 0..6).prop_map(Value::from)),
        prop::option::of(or_junk(any::<bool>().prop_map(Value::from))),
        prop::option::weighted(0.3, tools()),
        prop::option::weighted(0.2, or_junk(word().prop_map(Value::from))),
        or_junk((1i64..4096).prop_map(Value::from)),
        prop::option::weighted(0.2, junk()),
    )
        .prop_map(
            move |(model, messages, stream, tools, choice, max, system)| {
                let mut b = json!({"model": model, list: messages, "max_tokens": max});
                let o = b.as_object_mut().unwrap();
                for (k, v) in [
                    ("stream", stream),
                    ("tools", tools),
                    ("tool_choice", choice),
                    ("system", system),
                ] {
                    if let Some(v) = v {
                        o.insert(k.into(), v);
                    }
                }
                b
            },
        )
}

/// What is posted: JSON mostly, sometimes bytes that are not a JSON object.
fn payload(list: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        12 => body(list).prop_map(|b| b.to_string()),
        1 => junk().prop_map(|j| j.to_string()),
        1 => "[ -~]{0,40}",
    ]
}

fn cases() -> usize {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150)
}

/// Checks one answer: no 5xx, and a 400 in the API's error shape.
fn check(path: &str, body: &str, status: u16, text: &str) {
    assert!(
        matches!(status, 200 | 400 | 404 | 413),
        "{path}: status {status} for body:\n{body}\nanswer: {text}"
    );
    if status != 400 {
        return;
    }
    let v: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("{path}: a 400 that is not JSON ({e}): {text}\nbody: {body}"));
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{path}: no message: {v}\nbody: {body}");
    assert_eq!(
        v["error"]["type"], "invalid_request_error",
        "{path}: {v}\nbody: {body}"
    );
    if path == "/v1/messages" {
        assert_eq!(v["type"], "error", "Anthropic shape: {v}\nbody: {body}");
    } else {
        assert!(
            v["error"].get("param").is_some(),
            "OpenAI shape: {v}\nbody: {body}"
        );
        assert!(
            v["error"].get("code").is_some(),
            "OpenAI shape: {v}\nbody: {body}"
        );
    }
}

async fn fuzz(path: &'static str, list: &'static str) {
    let h = start(SimConfig::default(), |_| {}).await;
    let mut runner = TestRunner::deterministic();
    let strategy = payload(list);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..cases() {
        let body = strategy.new_tree(&mut runner).unwrap().current();
        let resp = h
            .http
            .post(format!("{}{path}", h.base))
            .bearer_auth(KEY)
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: no answer ({e}) to body:\n{body}"));
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        check(path, &body, status, &text);
        *statuses.entry(status).or_default() += 1;
    }
    // The generator must reach both sides of the parser, or the test proves little.
    assert!(
        statuses.get(&200).copied().unwrap_or(0) > 0,
        "{path}: {statuses:?}"
    );
    assert!(
        statuses.get(&400).copied().unwrap_or(0) > 0,
        "{path}: {statuses:?}"
    );
    eprintln!("{path}: {statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_completions_bodies_never_crash_and_rejections_are_openai_400s() {
    fuzz("/v1/chat/completions", "messages").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_messages_bodies_never_crash_and_rejections_are_anthropic_400s() {
    fuzz("/v1/messages", "messages").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_bodies_never_crash_and_rejections_are_openai_400s() {
    fuzz("/v1/responses", "input").await;
}
