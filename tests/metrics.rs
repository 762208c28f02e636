//! Every declared metric family moves when its event happens: the test drives the simulator
//! through each event (a turn, a queue, a reconnect, an upstream failure, a full disk,
//! context turns, tool calls with a repair and a degradation) and reads `/metrics` around it.
//! A family added to `metrics::ALL` without a case here fails the last assertion.
//!
//! One test in this binary on purpose: the counters are process-wide, so another test running
//! beside it would move them too (and the JWT count is compared with the simulator's exactly).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::proc::TempDir;
use common::*;
use enginelabs_2api::metrics as m;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use enginelabs_2api::store::{EmbeddedStore, Store, WriteFaults};
use enginelabs_2api::upstream::ProtocolChoice;
use serde_json::{Value, json};

const ARGS: &str = r#"{"file_path":"/tmp/m.txt","content":"x"}"#;

fn ask(text: &str) -> Value {
    json!({"model": "GPT5", "messages": [user(text)]})
}

fn with_tools(text: &str) -> Value {
    json!({"model": "GPT5", "messages": [user(text)], "tools": [{"type": "function",
        "function": {"name": "Write", "parameters": {"type": "object"}}}]})
}

/// Polls the metrics until `family` (total) satisfies `pred`.
async fn until(h: &Harness, family: &str, pred: impl Fn(f64) -> bool) -> bool {
    for _ in 0..250 {
        if h.scrape().await.total(family).is_some_and(&pred) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_declared_metric_family_moves_when_its_event_happens() {
    let sim = Simulator::start(SimConfig {
        reply_words: 12,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut a = args_for(&sim);
    a.upstream_protocol = ProtocolChoice::Gen1;
    a.account_concurrency = Some(Some(1));
    a.prompt_budget_bytes = 6000;
    let dir = TempDir::new("metrics");
    let faults = Arc::new(WriteFaults::default());
    let store = EmbeddedStore::open_with_faults(
        &dir.0.join("store.redb"),
        Default::default(),
        Arc::clone(&faults),
    )
    .unwrap();
    let h = Arc::new(start_with(sim, a, Arc::new(store) as Arc<dyn Store>).await);
    let mut moved: BTreeSet<&str> = BTreeSet::new();
    let total = |s: &common::metrics::Scrape, f: &str| s.total(f).unwrap_or(0.0);

    // A plain turn: requests, durations, time to first token, setup, turns, mints, accounts.
    let before = h.scrape().await;
    let (status, v) = h.chat(ask("count me")).await;
    assert_eq!(status, 200, "{v}");
    let after = h.scrape().await;
    for f in [
        m::REQUESTS,
        m::REQUEST_SECONDS,
        m::TTFB_SECONDS,
        m::UPSTREAM_SETUP_SECONDS,
        m::TURNS,
    ] {
        assert!(total(&after, f) > total(&before, f), "{f} moved");
        moved.insert(f);
    }
    let mints = total(&after, m::JWT_MINTS);
    assert!(mints >= 1.0, "a JWT was minted for the turn");
    assert_eq!(
        mints,
        h.sim.stats().mints as f64,
        "one count per Clerk mint"
    );
    moved.insert(m::JWT_MINTS);
    assert_eq!(after.series(r#"el2a_accounts{state="active"}"#), Some(1.0));
    moved.insert(m::ACCOUNTS);
    assert_eq!(after.total(m::BUILD_INFO), Some(1.0));
    moved.insert(m::BUILD_INFO);

    // A slow stream holds the only slot (in flight), a second request waits for it (queued).
    h.sim.set_faults(Faults {
        slow_frame_ms: 60,
        ..Faults::default()
    });
    let (h1, h2) = (Arc::clone(&h), Arc::clone(&h));
    let first = tokio::spawn(async move { h1.chat_stream(ask("slow one")).await });
    assert!(
        until(&h, m::ACTIVE_STREAMS, |v| v >= 1.0).await,
        "in flight"
    );
    moved.insert(m::ACTIVE_STREAMS);
    let second = tokio::spawn(async move { h2.chat(ask("waiting one")).await });
    assert!(until(&h, m::QUEUE_DEPTH, |v| v >= 1.0).await, "queued");
    moved.insert(m::QUEUE_DEPTH);
    h.sim.set_faults(Faults::default());
    assert_eq!(first.await.unwrap().0, 200);
    assert_eq!(second.await.unwrap().0, 200);
    assert!(until(&h, m::ACTIVE_STREAMS, |v| v == 0.0).await);
    assert!(until(&h, m::QUEUE_DEPTH, |v| v == 0.0).await);

    // One refused trigger (retried): an upstream error.
    let before = h.scrape().await;
    h.sim.set_faults(Faults {
        trigger_status: Some(500),
        trigger_status_count: 1,
        ..Faults::default()
    });
    let (status, v) = h.chat(ask("refused once")).await;
    assert_eq!(status, 200, "{v}");
    assert!(total(&h.scrape().await, m::UPSTREAM_ERRORS) > total(&before, m::UPSTREAM_ERRORS));
    moved.insert(m::UPSTREAM_ERRORS);

    // A socket dropped mid-turn (Gen-1 resumes it): a reconnect.
    let before = h.scrape().await;
    h.sim.set_faults(Faults {
        ws_drop_after: Some(3),
        ..Faults::default()
    });
    let (status, _) = h.chat_stream(ask("dropped")).await;
    assert_eq!(status, 200);
    h.sim.set_faults(Faults::default());
    assert!(total(&h.scrape().await, m::WS_RECONNECTS) > total(&before, m::WS_RECONNECTS));
    moved.insert(m::WS_RECONNECTS);

    // The disk is full: the answer is given, the failure counted, the store reported closed;
    // then it has room again and the store is reopened.
    let before = h.scrape().await;
    assert_eq!(before.total(m::STORE_WRITABLE), Some(1.0));
    faults.set_disk_full(true);
    let (status, v) = h.chat(ask("not remembered")).await;
    assert_eq!(status, 200, "{v}");
    let after = h.scrape().await;
    assert!(total(&after, m::STORE_ERRORS) > total(&before, m::STORE_ERRORS));
    assert_eq!(after.total(m::STORE_WRITABLE), Some(0.0));
    faults.set_disk_full(false);
    let ready = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "the first reopen is immediate");
    assert_eq!(h.scrape().await.total(m::STORE_WRITABLE), Some(1.0));
    moved.insert(m::STORE_ERRORS);
    moved.insert(m::STORE_WRITABLE);

    // A transcript over PROMPT_BUDGET_BYTES: context turns.
    let before = h.scrape().await;
    let system: String = (0..600).map(|i| format!("Rule {i}: be exact.\n")).collect();
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [
            {"role": "system", "content": system}, user("and now?")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(total(&h.scrape().await, m::CONTEXT_TURNS) > total(&before, m::CONTEXT_TURNS));
    moved.insert(m::CONTEXT_TURNS);

    // Tool calls: parsed at once, repaired after a repair turn, degraded to text.
    for (prompt, outcome) in [
        (format!("call Write {ARGS}"), "parsed"),
        (format!("[[tool-garbage]]\ncall Write {ARGS}"), "repaired"),
        (
            format!("[[tool-garbage-always]]\ncall Write {ARGS}"),
            "degraded",
        ),
    ] {
        let series = format!(r#"el2a_tool_call_answers_total{{outcome="{outcome}"}}"#);
        let before = h.scrape().await;
        let (status, v) = h.chat(with_tools(&prompt)).await;
        assert_eq!(status, 200, "{v}");
        let after = h.scrape().await;
        let of = |s: &common::metrics::Scrape| s.series(&series).unwrap_or(0.0);
        assert!(of(&after) > of(&before), "{series} moved");
        if outcome != "parsed" {
            assert!(total(&after, m::TOOL_CALL_REPAIRS) > total(&before, m::TOOL_CALL_REPAIRS));
        }
    }
    moved.insert(m::TOOL_CALL_ANSWERS);
    moved.insert(m::TOOL_CALL_REPAIRS);

    // Connections: the accept loop's gauge, a silent client dropped by the header timeout, a
    // connection over the cap refused. Metrics are process-wide, so the served proxy's series
    // show on this harness's scrape too.
    let served = start_served(SimConfig::default(), |a| {
        a.header_read_timeout_secs = Duration::from_secs(1);
        a.max_connections = 1;
    })
    .await;
    let addr = served.base.trim_start_matches("http://").to_string();
    let before = h.scrape().await;
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    assert!(
        until(&h, m::OPEN_CONNECTIONS, |v| v >= 1.0).await,
        "open connections"
    );
    moved.insert(m::OPEN_CONNECTIONS);
    let mut over = tokio::net::TcpStream::connect(&addr).await.unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let _ = over
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), over.read_to_end(&mut buf)).await;
    }
    assert!(
        total(&h.scrape().await, m::CONNECTIONS_REFUSED) > total(&before, m::CONNECTIONS_REFUSED),
        "a connection over MAX_CONNECTIONS was refused"
    );
    moved.insert(m::CONNECTIONS_REFUSED);
    let timed_out = |v: f64| v > total(&before, m::HEADER_TIMEOUTS);
    assert!(
        until(&h, m::HEADER_TIMEOUTS, timed_out).await,
        "the silent client timed out"
    );
    moved.insert(m::HEADER_TIMEOUTS);
    drop(silent);

    let declared: BTreeSet<&str> = m::ALL.iter().copied().collect();
    assert_eq!(moved, declared, "every declared family has a case here");
    // The JWT count still matches the simulator's after everything above.
    assert_eq!(
        total(&h.scrape().await, m::JWT_MINTS),
        h.sim.stats().mints as f64
    );
}
