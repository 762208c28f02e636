//! JWT lifetime: no client ever sees a 401 because a token aged, mints stay far below the
//! request count, and a burst after expiry causes exactly one mint.

mod common;

use std::time::Duration;

use common::*;
use enginelabs_2api::simulator::SimConfig;
use serde_json::json;

#[tokio::test]
async fn requests_spanning_several_token_lifetimes_never_fail() {
    let h = start(
        SimConfig {
            token_ttl: Duration::from_secs(3),
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    let mut requests = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        let (status, v) = h
            .chat(json!({"model": "GPT5", "messages": [user("tick")]}))
            .await;
        assert_eq!(status, 200, "{v}");
        requests += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = h.sim.stats();
    assert_eq!(
        s.rejected_jwts, 0,
        "the upstream never saw an expired token"
    );
    assert!(requests >= 20, "enough requests to matter: {requests}");
    // 10 s of 3 s tokens refreshed with >= 1 s left: about 5 mints; never one per request.
    assert!(
        s.mints >= 3,
        "tokens were refreshed as they aged: {}",
        s.mints
    );
    assert!(
        s.mints * 3 < requests,
        "mints {} vs requests {requests}",
        s.mints
    );
}

#[tokio::test]
async fn a_burst_after_expiry_mints_once() {
    let h = std::sync::Arc::new(
        start(
            SimConfig {
                token_ttl: Duration::from_secs(6),
                ..SimConfig::default()
            },
            |_| {},
        )
        .await,
    );
    let (status, _) = h
        .chat(json!({"model": "GPT5", "messages": [user("warm up")]}))
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(6100)).await;
    let before = h.sim.stats().mints;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.chat(json!({"model": "GPT5", "messages": [user(&format!("burst {i}"))]}))
                .await
                .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 200);
    }
    let s = h.sim.stats();
    assert_eq!(
        s.mints - before,
        1,
        "single-flight: one mint for the whole burst"
    );
    assert_eq!(s.rejected_jwts, 0);
}

#[tokio::test]
async fn a_replaced_session_is_rediscovered() {
    let h = start(
        SimConfig {
            token_ttl: Duration::from_secs(2),
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    assert_eq!(
        h.chat(json!({"model": "GPT5", "messages": [user("one")]}))
            .await
            .0,
        200
    );
    let calls = h.sim.stats().client_calls;
    h.sim.replace_session(&h.sim.account().user_id);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [user("two")]}))
        .await;
    assert_eq!(
        status, 200,
        "a 404 on the old session triggers discovery, not a failure: {v}"
    );
    assert_eq!(
        h.sim.stats().client_calls,
        calls + 1,
        "discovery ran once more"
    );
}
