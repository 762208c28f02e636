//! The reader against small WebSocket servers that drop and replay (Gen-1) or send a
//! `history` snapshot (Gen-2).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;

use super::super::frame::TurnTracker;
use super::super::{TurnEvent, UpstreamConfig, UpstreamError};
use super::{TurnReader, open_for_test as open};
use crate::upstream::test_frames as frames;

fn cfg() -> UpstreamConfig {
    let mut cfg = UpstreamConfig::with_urls("http://127.0.0.1:9", "http://127.0.0.1:9");
    cfg.ping_interval = Duration::from_secs(60);
    cfg.idle_timeout = Duration::from_secs(60);
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

/// A WebSocket server that runs `scripts[i]` (frames to send, then whether to wait for the
/// client's close instead of dropping the socket) on its i-th connection.
async fn multi_server(scripts: Vec<(Vec<String>, bool)>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        for (frames, wait_close) in scripts {
            let (tcp, _) = listener.accept().await.expect("accept");
            count.fetch_add(1, Ordering::SeqCst);
            let mut ws = tokio_tungstenite::accept_async(tcp)
                .await
                .expect("handshake");
            for f in frames {
                ws.send(Message::text(f)).await.expect("frame");
            }
            if wait_close {
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_close() {
                        break;
                    }
                }
            }
            // Otherwise dropped without a close frame, like a network failure.
        }
    });
    (format!("ws://{addr}/stream"), accepted)
}

async fn collect(turn: &mut TurnReader) -> (String, Vec<TurnEvent>, Option<UpstreamError>) {
    let (mut text, mut other) = (String::new(), Vec::new());
    while let Some(ev) = turn.next().await {
        match ev {
            Ok(TurnEvent::Content(t)) => text.push_str(&t),
            Ok(ev) => other.push(ev),
            Err(e) => return (text, other, Some(e)),
        }
    }
    (text, other, None)
}

#[tokio::test]
async fn a_replaying_server_resumes_a_dropped_turn_without_loss_or_repeats() {
    let turn: Vec<String> = [frames::state(true)]
        .into_iter()
        .chain(["one", " two", " three", " four"].map(|w| frames::chat("m", w)))
        .chain([frames::state(false)])
        .collect();
    let (url, accepted) = multi_server(vec![
        (turn[..3].to_vec(), false),
        // The replay drops again before anything new: a fruitless reconnect.
        (turn[..2].to_vec(), false),
        (turn.clone(), true),
    ])
    .await;
    let mut turn = open(&cfg(), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    let (text, other, err) = collect(&mut turn).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text, "one two three four");
    assert_eq!(other, vec![TurnEvent::Finished { cancelled: false }]);
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn resuming_gives_up_when_no_new_socket_can_be_opened() {
    let (url, accepted) = multi_server(vec![(
        vec![frames::state(true), frames::chat("m", "part")],
        false,
    )])
    .await;
    let mut turn = open(&cfg(), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    let (text, _, err) = collect(&mut turn).await;
    assert_eq!(text, "part");
    let err = err.expect("an error ends the turn");
    assert!(matches!(err, UpstreamError::StreamClosed(_)), "{err:?}");
    assert!(err.to_string().contains("resuming failed"), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_gen2_turn_resumes_from_the_snapshot_and_fails_clearly_without_one() {
    let history = |text: &str| {
        serde_json::json!({"type": "history", "messages": [
            {"role": "user", "content": "q"}, {"role": "assistant", "content": text}]})
        .to_string()
    };
    let (url, accepted) = multi_server(vec![
        (
            vec![
                frames::state(false),
                frames::state(true),
                frames::chat("m", "part"),
            ],
            false,
        ),
        // The snapshot holds "part one", live frames go on from there; then a drop again.
        (
            vec![
                frames::state(true),
                history("part one"),
                frames::chat("m", " two"),
            ],
            false,
        ),
        // This snapshot lacks the answer: the turn cannot go on without losing text.
        (
            vec![
                frames::state(true),
                history("other"),
                frames::chat("m", " more"),
            ],
            true,
        ),
    ])
    .await;
    let mut turn = open(&cfg(), &url, TurnTracker::new("q", false))
        .await
        .expect("connects");
    turn.arm();
    let (text, _, err) = collect(&mut turn).await;
    assert_eq!(text, "part one two");
    let err = err.expect("an error ends the turn");
    assert!(
        err.to_string()
            .contains("cannot resume it without losing text"),
        "{err}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
}
