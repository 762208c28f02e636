//! Recorded-by-hand chunk sequences in the shapes OpenAI, DeepSeek/Kimi (`reasoning_content`)
//! and OpenRouter (`reasoning`, `reasoning_details`) send, fed to the reader one event at a time.

use serde_json::json;

use super::*;

fn chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    .to_string()
}

fn usage_chunk(prompt: u64, completion: u64) -> String {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
    .to_string()
}

/// Every event of a sequence, the body's end included.
fn run(datas: &[String]) -> Result<Vec<TurnEvent>, UpstreamError> {
    let mut r = ChunkReader::new();
    let mut out = Vec::new();
    for d in datas {
        out.extend(r.data(d)?);
    }
    out.extend(r.end()?);
    Ok(out)
}

fn args_of(events: &[TurnEvent], index: usize) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolCallArgs { index: i, delta } if *i == index => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn text_with_reasoning_finish_usage_and_done() {
    let events = run(&[
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"reasoning_content": "Let me "}), None),
        chunk(json!({"reasoning_content": "think."}), None),
        chunk(json!({"content": "Hel"}), None),
        chunk(json!({"content": "lo"}), None),
        chunk(json!({}), Some("stop")),
        usage_chunk(5, 7),
        "[DONE]".into(),
    ])
    .expect("events");
    assert_eq!(
        events,
        [
            TurnEvent::Reasoning("Let me ".into()),
            TurnEvent::Reasoning("think.".into()),
            TurnEvent::Content("Hel".into()),
            TurnEvent::Content("lo".into()),
            TurnEvent::Stopped(FinishReason::Stop),
            TurnEvent::Usage(Usage {
                prompt_tokens: 5,
                completion_tokens: 7
            }),
            TurnEvent::Finished { cancelled: false },
        ]
    );
}

#[test]
fn tool_calls_start_once_named_and_keep_their_arguments_byte_exact() {
    let args0 = r#"{"file_path": "/tmp/naïve \"q\".txt"}"#;
    let mut datas = vec![chunk(json!({"role": "assistant", "content": null}), None)];
    datas.push(chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                               "function": {"name": "Read", "arguments": ""}}]}),
        None,
    ));
    for piece in ["{\"file_", "path\": \"/tmp/na", "ïve \\\"q\\\".txt\"}"] {
        datas.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}),
            None,
        ));
    }
    datas.push(chunk(
        json!({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                               "function": {"name": "Write", "arguments": "{}"}}]}),
        None,
    ));
    datas.push(chunk(json!({}), Some("tool_calls")));
    datas.push("[DONE]".into());
    let events = run(&datas).expect("events");
    assert_eq!(
        events[0],
        TurnEvent::ToolCallStart {
            index: 0,
            id: "call_a".into(),
            name: "Read".into()
        }
    );
    assert_eq!(args_of(&events, 0), args0);
    assert_eq!(args_of(&events, 1), "{}");
    let tail = &events[events.len() - 4..];
    assert_eq!(
        tail,
        [
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::ToolCallEnd { index: 1 },
            TurnEvent::Stopped(FinishReason::ToolCalls),
            TurnEvent::Finished { cancelled: false },
        ]
    );
}

#[test]
fn arguments_before_the_id_are_held_and_interleaved_calls_stay_apart() {
    let events = run(&[
        chunk(
            json!({"tool_calls": [{"index": 3, "function": {"name": "Bash", "arguments": "{\"c"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 5, "id": "call_y", "function": {"name": "Ls"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 3, "id": "call_x", "function": {"arguments": "md\":1"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 5, "function": {"arguments": "{}"}},
                                  {"index": 3, "function": {"arguments": "}"}}]}),
            Some("tool_calls"),
        ),
    ])
    .expect("events");
    let starts: Vec<(usize, &str, &str)> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolCallStart { index, id, name } => {
                Some((*index, id.as_str(), name.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, "call_y", "Ls"), (1, "call_x", "Bash")]);
    assert_eq!(args_of(&events, 1), "{\"cmd\":1}");
    assert_eq!(args_of(&events, 0), "{}");
    assert_eq!(
        events.last(),
        Some(&TurnEvent::Finished { cancelled: false })
    );
}

#[test]
fn a_call_without_an_id_gets_one_and_a_nameless_call_is_dropped() {
    let events = run(&[
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"name": "Read", "arguments": "{}"}},
                                  {"index": 1, "function": {"arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ])
    .expect("events");
    match &events[0] {
        TurnEvent::ToolCallStart { index: 0, id, name } => {
            assert!(id.starts_with("call_") && id.len() > 10, "{id}");
            assert_eq!(name, "Read");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, TurnEvent::ToolCallStart { .. }))
            .count(),
        1
    );
}

#[test]
fn openrouter_reasoning_is_read_once() {
    let events = run(&[
        chunk(
            json!({"reasoning": "Hmm.", "reasoning_details": [{"type": "reasoning.text", "text": "Hmm."}]}),
            None,
        ),
        chunk(
            json!({"reasoning_details": [{"type": "reasoning.summary", "summary": "In short."},
                                         {"type": "reasoning.encrypted", "data": "xyz"}]}),
            None,
        ),
        chunk(json!({"content": [{"type": "text", "text": "Done."}]}), Some("length")),
        "[DONE]".into(),
    ])
    .expect("events");
    assert_eq!(
        events,
        [
            TurnEvent::Reasoning("Hmm.".into()),
            TurnEvent::Reasoning("In short.".into()),
            TurnEvent::Content("Done.".into()),
            TurnEvent::Stopped(FinishReason::Length),
            TurnEvent::Finished { cancelled: false },
        ]
    );
}

#[test]
fn usage_in_the_finish_chunk_and_end_of_body_after_a_finish() {
    let mut last: Value = serde_json::from_str(&chunk(json!({}), Some("stop"))).expect("json");
    last["usage"] = json!({"input_tokens": 2, "output_tokens": 3});
    let events = run(&[chunk(json!({"content": "x"}), None), last.to_string()]).expect("ok");
    assert_eq!(
        &events[1..],
        [
            TurnEvent::Stopped(FinishReason::Stop),
            TurnEvent::Usage(Usage {
                prompt_tokens: 2,
                completion_tokens: 3
            }),
            TurnEvent::Finished { cancelled: false },
        ]
    );
}

#[test]
fn a_body_that_ends_without_a_finish_is_a_closed_stream() {
    let e = run(&[chunk(json!({"content": "par"}), None)]).expect_err("broken");
    assert_eq!(e.kind(), "stream_closed");
    assert!(e.to_string().contains("finish_reason"), "{e}");
    // `[DONE]` alone ends the answer, even without a finish_reason.
    let events = run(&[chunk(json!({"content": "x"}), None), "[DONE]".into()]).expect("ok");
    assert_eq!(
        events.last(),
        Some(&TurnEvent::Finished { cancelled: false })
    );
}

#[test]
fn errors_and_garbage_in_the_stream() {
    let e = run(&[
        json!({"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}).to_string(),
    ])
    .expect_err("error chunk");
    assert_eq!(e.kind(), "rate_limited");
    let e = run(&["not json".into()]).expect_err("garbage");
    assert_eq!(e.kind(), "protocol");
    // Unknown fields and chunk shapes are skipped.
    let events = run(&[
        json!({"object": "ping"}).to_string(),
        chunk(json!({"content": "a", "audio": {"x": 1}}), None),
        chunk(json!({}), Some("weird_reason")),
        "[DONE]".into(),
    ])
    .expect("ok");
    assert_eq!(
        events,
        [
            TurnEvent::Content("a".into()),
            TurnEvent::Stopped(FinishReason::Stop),
            TurnEvent::Finished { cancelled: false },
        ]
    );
}

#[test]
fn nothing_is_read_after_done() {
    let mut r = ChunkReader::new();
    assert!(!r.is_finished());
    let _ = r.data("[DONE]").expect("done");
    assert!(r.is_finished());
    assert!(
        r.data(&chunk(json!({"content": "late"}), None))
            .expect("ok")
            .is_empty()
    );
    assert!(r.end().expect("ok").is_empty());
}

#[test]
fn a_whole_completion_gives_the_same_events() {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": null, "reasoning_content": "Plan.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "Read", "arguments": "{\"p\":  1}"}},
                {"id": "call_2", "type": "function", "function": {"name": "Grep", "arguments": {"q": "x"}}}
            ]}}],
        "usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    });
    let events = completion_events(&body).expect("events");
    assert_eq!(
        events,
        [
            TurnEvent::Reasoning("Plan.".into()),
            TurnEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "Read".into()
            },
            TurnEvent::ToolCallArgs {
                index: 0,
                delta: "{\"p\":  1}".into()
            },
            TurnEvent::ToolCallStart {
                index: 1,
                id: "call_2".into(),
                name: "Grep".into()
            },
            TurnEvent::ToolCallArgs {
                index: 1,
                delta: "{\"q\":\"x\"}".into()
            },
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::ToolCallEnd { index: 1 },
            TurnEvent::Stopped(FinishReason::ToolCalls),
            TurnEvent::Usage(Usage {
                prompt_tokens: 4,
                completion_tokens: 6
            }),
            TurnEvent::Finished { cancelled: false },
        ]
    );
    let text = json!({"choices": [{"message": {"content": "Hi."}, "finish_reason": "stop"}]});
    assert_eq!(
        completion_events(&text).expect("events"),
        [
            TurnEvent::Content("Hi.".into()),
            TurnEvent::Stopped(FinishReason::Stop),
            TurnEvent::Finished { cancelled: false },
        ]
    );
    assert_eq!(
        completion_events(&json!({"object": "x"}))
            .expect_err("no choices")
            .kind(),
        "protocol"
    );
}
