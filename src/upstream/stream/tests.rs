//! The reader against small WebSocket servers: heartbeat, idle timeout, closing, refusals.

use super::open_for_test as open;
use super::*;
use crate::upstream::TurnEvent;
use crate::upstream::test_frames as frames;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A one-connection WebSocket server running `script` on the accepted socket.
async fn server<F, Fut>(script: F) -> String
where
    F: FnOnce(WebSocketStream<TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let ws = tokio_tungstenite::accept_async(tcp)
            .await
            .expect("handshake");
        script(ws).await;
    });
    format!("ws://{addr}/stream")
}

/// Sends a whole turn (running, one chat frame per piece, idle), then waits for the client to
/// close the socket after the end of the turn.
async fn send_turn(ws: &mut WebSocketStream<TcpStream>, pieces: &[&str]) {
    let turn = std::iter::once(frames::state(true))
        .chain(pieces.iter().map(|p| frames::chat("m", p)))
        .chain([frames::state(false)]);
    for frame in turn {
        ws.send(Message::text(frame)).await.expect("frame");
    }
    while let Some(Ok(m)) = ws.next().await {
        if m.is_close() {
            break;
        }
    }
}

fn cfg(ping_ms: u64, idle_ms: u64) -> UpstreamConfig {
    let mut cfg = UpstreamConfig::with_urls("http://127.0.0.1:9", "http://127.0.0.1:9");
    cfg.ping_interval = Duration::from_millis(ping_ms);
    cfg.idle_timeout = Duration::from_millis(idle_ms);
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

#[tokio::test]
async fn pings_are_sent_and_pongs_keep_the_stream_alive() {
    let url = server(|mut ws| async move {
        // Answer 30 pings (far longer than the idle timeout), then send a whole turn.
        let mut pings = 0;
        while pings < 30 {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "ping" => {
                    pings += 1;
                    ws.send(Message::text("pong")).await.expect("pong");
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
        send_turn(&mut ws, &["done"]).await;
    })
    .await;
    let mut turn = open(&cfg(10, 150), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    let mut got = Vec::new();
    while let Some(ev) = turn.next().await {
        got.push(ev.expect("no error"));
    }
    assert_eq!(
        got,
        vec![
            TurnEvent::Content("done".into()),
            TurnEvent::Finished { cancelled: false }
        ]
    );
}

#[tokio::test]
async fn a_slow_consumer_is_not_upstream_silence() {
    let url = server(|mut ws| async move {
        send_turn(&mut ws, &["one", " two"]).await;
    })
    .await;
    let mut turn = open(&cfg(60_000, 200), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    let first = turn.next().await.expect("an event").expect("no error");
    assert_eq!(first, TurnEvent::Content("one".into()));
    // Away for longer than the idle timeout: the frames that came meanwhile are still read.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rest = Vec::new();
    while let Some(ev) = turn.next().await {
        rest.push(ev.expect("no error"));
    }
    assert_eq!(
        rest,
        vec![
            TurnEvent::Content(" two".into()),
            TurnEvent::Finished { cancelled: false }
        ]
    );
}

#[tokio::test]
async fn silence_times_out() {
    let url = server(|mut ws| async move {
        // Read (and ignore) pings without answering.
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    let mut turn = open(&cfg(60_000, 200), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    assert!(matches!(
        turn.next().await,
        Some(Err(UpstreamError::IdleTimeout(_)))
    ));
    assert!(turn.next().await.is_none());
}

#[tokio::test]
async fn dropping_the_reader_closes_a_silent_socket() {
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
    let url = server(|mut ws| async move {
        let closed = loop {
            match ws.next().await {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                Some(Ok(_)) => {}
            }
        };
        let _ = closed_tx.send(closed);
    })
    .await;
    let turn = open(&cfg(60_000, 60_000), &url, TurnTracker::new("q", false))
        .await
        .expect("connects");
    drop(turn);
    let closed = tokio::time::timeout(Duration::from_secs(10), closed_rx)
        .await
        .expect("server saw the close")
        .expect("server reported");
    assert!(closed);
}

#[tokio::test]
async fn server_close_before_the_end_is_an_error() {
    let url = server(|mut ws| async move {
        ws.send(Message::text(frames::state(true)))
            .await
            .expect("frame");
        let _ = ws.close(None).await;
    })
    .await;
    let mut turn = open(&cfg(60_000, 60_000), &url, TurnTracker::new("q", true))
        .await
        .expect("connects");
    assert!(matches!(
        turn.next().await,
        Some(Err(UpstreamError::StreamClosed(_)))
    ));
}

#[tokio::test]
async fn refused_handshake_is_a_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt as _;
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 1024];
        let _ = tokio::io::AsyncReadExt::read(&mut tcp, &mut buf).await;
        let _ = tcp
            .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-type: text/html\r\ncontent-length: 13\r\n\r\nJust a moment")
            .await;
    });
    let err = open(
        &cfg(60_000, 60_000),
        &format!("ws://{addr}/s"),
        TurnTracker::new("q", true),
    )
    .await
    .err()
    .expect("refused");
    assert!(
        matches!(err, UpstreamError::CloudflareChallenge { status: 403, .. }),
        "{err:?}"
    );
}

#[test]
fn urls_per_generation() {
    let cfg = UpstreamConfig::cto_new();
    assert_eq!(
        ws_url(&cfg, "abc-1", WsAuth::Gen1 { user_id: "user_1" }),
        "wss://api.enginelabs.ai/engine-agent/chat-histories/abc-1/buffer/stream?token=user_1"
    );
    assert_eq!(
        ws_url(
            &cfg,
            "p1",
            WsAuth::Gen2 {
                user_id: "user_1",
                org_id: Some("org_2"),
                workspace_id: Some("w3")
            }
        ),
        "wss://api.enginelabs.ai/engine-agent/chat-histories/p1/buffer/stream?token=user_1%3Aorg_2&workspaceId=w3"
    );
}
