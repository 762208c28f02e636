//! A client that abandons a stream closes the upstream WebSocket.

mod common;

use common::*;
use enginelabs_2api::simulator::{Faults, SimConfig};
use serde_json::json;

#[tokio::test]
async fn client_disconnect_closes_the_upstream_socket() {
    let h = start(
        SimConfig {
            reply_words: 200,
            ..SimConfig::default()
        },
        |_| {},
    )
    .await;
    h.sim.set_faults(Faults {
        slow_frame_ms: 30,
        ..Faults::default()
    });
    let body = json!({"model": "GPT5", "stream": true, "messages": [user("long answer please")]});
    let resp = h
        .post("/v1/chat/completions")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let mut resp = resp;
    let mut got = 0;
    while got < 3 {
        let chunk = resp.chunk().await.expect("bytes").expect("a chunk");
        got += chunk.iter().filter(|b| **b == b'\n').count() / 2;
    }
    assert_eq!(
        h.sim.stats().ws_open_now,
        1,
        "the upstream socket is open while streaming"
    );
    drop(resp);
    assert!(
        eventually(5, || {
            let s = h.sim.stats();
            s.ws_open_now == 0 && s.ws_closed_early == 1
        })
        .await,
        "the upstream socket was closed after the client left: {:?}",
        h.sim.stats()
    );
}

#[tokio::test]
async fn finished_turns_close_their_socket_too() {
    let h = start(SimConfig::default(), |_| {}).await;
    for _ in 0..3 {
        assert_eq!(
            h.chat(json!({"model": "GPT5", "messages": [user("x")]}))
                .await
                .0,
            200
        );
    }
    assert!(
        eventually(5, || h.sim.stats().ws_open_now == 0).await,
        "{:?}",
        h.sim.stats()
    );
    assert_eq!(h.sim.stats().ws_closed_early, 0);
}
