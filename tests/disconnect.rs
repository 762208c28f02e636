//! A client that abandons a stream closes the upstream WebSocket (the OpenAI and the Anthropic
//! surface alike); a finished turn closes its socket too.

mod common;

use common::anthropic::{body, messages_req};
use common::*;
use enginelabs_2api::simulator::{Faults, SimConfig};
use serde_json::json;

/// A proxy in front of a simulator that answers slowly and at length.
async fn slow_long_answers() -> Harness {
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
    h
}

/// Sends `request` (a streamed answer), reads `events` SSE events and hangs up: the upstream
/// socket is open while the answer streams and closed early once the client is gone.
async fn hang_up_after(h: &Harness, request: reqwest::RequestBuilder, events: usize) {
    let mut resp = request.send().await.expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    let mut got = 0;
    while got < events {
        let chunk = resp.chunk().await.expect("bytes").expect("a chunk");
        got += chunk.windows(2).filter(|w| w == b"\n\n").count();
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
async fn client_disconnect_closes_the_upstream_socket() {
    let h = slow_long_answers().await;
    let body = json!({"model": "GPT5", "stream": true, "messages": [user("long answer please")]});
    let request = h.post("/v1/chat/completions").json(&body);
    hang_up_after(&h, request, 3).await;
}

/// The same through the Anthropic surface.
#[tokio::test]
async fn messages_client_disconnect_closes_the_upstream_socket() {
    let h = slow_long_answers().await;
    let mut b = body("long answer please");
    b["stream"] = json!(true);
    let request = messages_req(&h, "/v1/messages").json(&b);
    hang_up_after(&h, request, 4).await;
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
