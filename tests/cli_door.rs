//! The CLI door's client (`upstream::cli`) against the simulator's CLI door, over real sockets:
//! streamed and whole answers, tool calls, headers, the body as sent, refusals, and a dropped
//! turn closing its connection. Tokens and their rotation: tests/cli_door_tokens.rs.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::cli::{
    Recorder, account, client, collect, content, hello, raw_refresh, saved_credentials,
};
use common::relay::{all_closed, relay};
use common::sim::cfg;
use enginelabs_2api::pool::retry::{Verdict, classify};
use enginelabs_2api::simulator::{Faults, Simulator, reply_text};
use enginelabs_2api::upstream::cli::{
    CliAccount, CliClient, DEFAULT_CLI_USER_AGENT, chat, session_id,
};
use enginelabs_2api::upstream::{FinishReason, TurnEvent, UpstreamError, Usage};
use serde_json::{Value, json};

#[tokio::test]
async fn tool_calls_stream_as_events_with_byte_exact_arguments() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    let args = r#"{"file_path": "/tmp/naïve \"q\".txt",  "n": [1, 2]}"#;
    let body = json!({
        "model": "gpt-5.4",
        "messages": [{"role": "user", "content": format!("Look.\ncall Read {args}\ncall Write")}],
        "tools": [
            {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "Write", "parameters": {"type": "object"}}}
        ],
    });
    let (events, err) = collect(cli.start_turn(&acc, "ses_t", body).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    let starts: Vec<(usize, &str)> = events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::ToolCallStart { index, id, name } => {
                assert!(id.starts_with("call_"), "{id}");
                Some((*index, name.as_str()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, "Read"), (1, "Write")]);
    let args_of = |index: usize| -> (usize, String) {
        let pieces: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                TurnEvent::ToolCallArgs { index: i, delta } if *i == index => Some(delta.as_str()),
                _ => None,
            })
            .collect();
        (pieces.len(), pieces.concat())
    };
    let (pieces, read) = args_of(0);
    assert_eq!(read, args);
    assert!(pieces > 2, "streamed in pieces: {pieces}");
    assert_eq!(args_of(1).1, "{}");
    let n = events.len();
    assert_eq!(
        events[n - 5..n - 2],
        [
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::ToolCallEnd { index: 1 },
            TurnEvent::Stopped(FinishReason::ToolCalls),
        ]
    );
    assert!(
        matches!(events[n - 2], TurnEvent::Usage(Usage { prompt_tokens, .. }) if prompt_tokens > 0)
    );
    assert_eq!(events[n - 1], TurnEvent::Finished { cancelled: false });
    assert_eq!(content(&events), "");
}

#[tokio::test]
async fn a_whole_json_answer_gives_the_same_events() {
    let sim = Simulator::start(cfg()).await.unwrap();
    sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    let mut body = hello("hello");
    body["stream"] = json!(false);
    let (events, err) = collect(cli.start_turn(&acc, "ses_j", body.clone()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert!(matches!(&events[0], TurnEvent::Reasoning(r) if !r.is_empty()));
    assert_eq!(events[1], TurnEvent::Content(reply_text("hello", 1, 12)));
    assert_eq!(events[2], TurnEvent::Stopped(FinishReason::Stop));
    assert!(matches!(events[3], TurnEvent::Usage(_)));
    assert_eq!(events[4], TurnEvent::Finished { cancelled: false });
    assert_eq!(sim.stats().cli_completions[0].body, body, "sent as asked");
}

#[tokio::test]
async fn headers_and_unknown_body_fields_reach_the_door_intact() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (user, acc) = account(&sim, Arc::new(Recorder::default()));
    let ses = session_id("conversation 42");
    let body = json!({
        "model": "kimi-k2.5",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": [{"type": "text", "text": "question"}]}],
        "providerOptions": {"opencode": {"x": [1, 2.5, null, "é"]}},
        "temperature": 0.3,
        "max_tokens": 77,
        "stream_options": {"other": true},
    });
    let (events, err) = collect(cli.start_turn(&acc, &ses, body.clone()).await.unwrap()).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(content(&events), reply_text("question", 1, 12));
    let stats = sim.stats();
    let rec = &stats.cli_completions[0];
    assert_eq!(rec.user_id, user);
    assert_eq!(rec.session_id.as_deref(), Some(ses.as_str()));
    assert_eq!(rec.session_affinity.as_deref(), Some(ses.as_str()));
    assert_eq!(rec.user_agent.as_deref(), Some(DEFAULT_CLI_USER_AGENT));
    assert_eq!(rec.body, chat::prepare(body.clone()));
    let mut expected = body;
    expected["stream"] = json!(true);
    expected["stream_options"] = json!({"other": true, "include_usage": true});
    assert_eq!(rec.body, expected);
    assert!(events.iter().any(|e| matches!(e, TurnEvent::Usage(_))));
}

#[tokio::test]
async fn refusals_map_to_what_the_pool_understands() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    sim.set_faults(Faults {
        trigger_status: Some(429),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let err = cli
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), "rate_limited", "{err}");
    assert_eq!(classify(&err), Verdict::Cool(Some(Duration::from_secs(1))));
    assert!(
        err.to_string().contains("Simulated upstream failure"),
        "{err}"
    );

    sim.set_faults(Faults {
        trigger_status: Some(503),
        ..Faults::default()
    });
    let err = cli
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(classify(&err), Verdict::Transient, "{err}");
    sim.set_faults(Faults::default());

    let mut body = hello("hi");
    body["model"] = json!("gpt_5_4");
    let err = cli.start_turn(&acc, "ses_x", body).await.err().unwrap();
    assert!(
        matches!(&err, UpstreamError::UnknownModel(m) if m == "gpt_5_4"),
        "{err:?}"
    );

    // Nobody listening: a network error, transient.
    let gone = client("http://127.0.0.1:9");
    let err = gone
        .start_turn(&acc, "ses_x", hello("hi"))
        .await
        .err()
        .unwrap();
    assert_eq!(classify(&err), Verdict::Transient, "{err}");
}

#[tokio::test]
async fn a_stream_that_breaks_off_ends_with_a_closed_stream_error() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let cli = client(&sim.url());
    let (_, acc) = account(&sim, Arc::new(Recorder::default()));
    sim.set_faults(Faults {
        ws_drop_after: Some(2),
        ..Faults::default()
    });
    let (events, err) = collect(cli.start_turn(&acc, "ses_x", hello("hi")).await.unwrap()).await;
    assert!(!content(&events).is_empty());
    let err = err.unwrap();
    assert_eq!(err.kind(), "stream_closed", "{err}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, TurnEvent::Finished { .. }))
    );
}

/// A client behind a counting relay, and an account whose access token came from the
/// simulator directly, so the only connection through the relay is the completion's.
async fn behind_relay(sim: &Simulator) -> (CliClient, CliAccount, Arc<AtomicUsize>) {
    let (url, open) = relay(sim.addr()).await;
    let login = sim.add_cli_account();
    let v: Value = raw_refresh(sim, &login.refresh_token)
        .await
        .json()
        .await
        .unwrap();
    let creds = saved_credentials(&v["access_token"], &v["refresh_token"]);
    let acc = CliAccount::new("test", &creds, Arc::new(Recorder::default()));
    (client(&url), acc, open)
}

#[tokio::test]
async fn dropping_a_turn_mid_stream_closes_its_connection() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (cli, acc, open) = behind_relay(&sim).await;
    // A second between chunks: the close must come from the drop, not from the next chunk.
    sim.set_faults(Faults {
        slow_frame_ms: 1000,
        ..Faults::default()
    });
    let mut turn = cli.start_turn(&acc, "ses_d", hello("hi")).await.unwrap();
    let first = turn.next().await.unwrap().unwrap();
    assert!(matches!(first, TurnEvent::Content(_)), "{first:?}");
    assert_eq!(open.load(Ordering::SeqCst), 1);
    drop(turn);
    all_closed(&open, Duration::from_millis(400)).await;
    assert_eq!(acc.tokens().refresh_count(), 0);
}

#[tokio::test]
async fn dropping_a_turn_that_hears_nothing_closes_its_connection() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let (cli, acc, open) = behind_relay(&sim).await;
    sim.set_faults(Faults {
        silent: true,
        ..Faults::default()
    });
    let mut turn = cli.start_turn(&acc, "ses_s", hello("hi")).await.unwrap();
    let nothing = tokio::time::timeout(Duration::from_millis(200), turn.next()).await;
    assert!(
        nothing.is_err(),
        "a silent answer has no events: {nothing:?}"
    );
    assert_eq!(open.load(Ordering::SeqCst), 1);
    drop(turn);
    all_closed(&open, Duration::from_millis(400)).await;
}
