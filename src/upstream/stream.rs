//! The streaming WebSocket (protocol notes §5.1): connect with browser headers, then a task that
//! feeds every text frame to a [`TurnTracker`] and forwards its events, sends the `ping`
//! heartbeat, enforces the idle timeout, and closes the socket when the turn ends or when the
//! consumer goes away. A socket that drops mid-turn is replaced when the turn can be resumed
//! without losing text (Gen-1 replays, Gen-2's `history` snapshot; see [`super::resume`]), else
//! the turn ends with an error.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;

use super::frame::TurnTracker;
use super::resume::reconnect;
use super::transport::{Socket, Transport, WS_CALL, WsEvent};
use super::{TurnEvent, UpstreamConfig, UpstreamError};

pub(super) type Ws = Socket;
pub(super) type Events = mpsc::Receiver<Result<TurnEvent, UpstreamError>>;

/// How the socket authenticates itself in its query string.
#[derive(Debug, Clone, Copy)]
pub enum WsAuth<'a> {
    /// `?token=<user_id>`.
    Gen1 { user_id: &'a str },
    /// `?token=<user_id>:<org_id>&workspaceId=<ws>`.
    Gen2 {
        user_id: &'a str,
        org_id: Option<&'a str>,
        workspace_id: Option<&'a str>,
    },
}

/// The stream URL of a chat history. The `token` is the Clerk user id, not a secret.
pub fn ws_url(cfg: &UpstreamConfig, chat_history_id: &str, auth: WsAuth<'_>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    match auth {
        WsAuth::Gen1 { user_id } => {
            q.append_pair("token", user_id);
        }
        WsAuth::Gen2 {
            user_id,
            org_id,
            workspace_id,
        } => {
            match org_id {
                Some(org) => q.append_pair("token", &format!("{user_id}:{org}")),
                None => q.append_pair("token", user_id),
            };
            if let Some(ws) = workspace_id {
                q.append_pair("workspaceId", ws);
            }
        }
    }
    format!(
        "{}/engine-agent/chat-histories/{}/buffer/stream?{}",
        cfg.ws_base_url,
        url::form_urlencoded::byte_serialize(chat_history_id.as_bytes()).collect::<String>(),
        q.finish()
    )
}

/// A connected stream whose reader task is running.
pub struct TurnStream {
    events: Events,
    armed: Arc<AtomicBool>,
}

impl TurnStream {
    /// Frames from now on may belong to our turn. Call right before sending the trigger.
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// The events of the turn. Dropping the receiver closes the socket.
    pub fn into_events(self) -> Events {
        self.events
    }
}

/// Connects (handshake bounded by `request_timeout`) and starts the reader task.
pub async fn open(
    transport: &Transport,
    cfg: &UpstreamConfig,
    url: &str,
    tracker: TurnTracker,
) -> Result<TurnStream, UpstreamError> {
    let ws = connect(transport, cfg, url).await?;
    let armed = Arc::new(AtomicBool::new(tracker.is_armed()));
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(read_turn(
        ws,
        transport.clone(),
        url.to_string(),
        tracker,
        Arc::clone(&armed),
        tx,
        cfg.clone(),
    ));
    Ok(TurnStream { events: rx, armed })
}

/// [`open`] through a transport made for `cfg`, for the tests of this module and `resume`.
#[cfg(test)]
pub(super) async fn open_for_test(
    cfg: &UpstreamConfig,
    url: &str,
    tracker: TurnTracker,
) -> Result<TurnStream, UpstreamError> {
    open(&Transport::new(cfg)?, cfg, url, tracker).await
}

pub(super) async fn connect(
    transport: &Transport,
    cfg: &UpstreamConfig,
    url: &str,
) -> Result<Ws, UpstreamError> {
    let mut headers = ::http::HeaderMap::new();
    for (name, value) in [
        (::http::header::ORIGIN, cfg.origin.as_str()),
        (::http::header::USER_AGENT, cfg.user_agent.as_str()),
    ] {
        if let Ok(v) = value.parse() {
            headers.insert(name, v);
        }
    }
    match tokio::time::timeout(cfg.request_timeout, transport.websocket(url, headers)).await {
        Err(_) => Err(UpstreamError::Network {
            call: WS_CALL,
            detail: format!("handshake timed out after {:?}", cfg.request_timeout),
        }),
        Ok(result) => result,
    }
}

/// How one socket's reading ended.
enum Ended {
    /// The turn finished, or the consumer went away: nothing more to do.
    Done,
    /// The socket ended or failed before the turn did (a candidate for a reconnect).
    Dropped(String),
    /// A failure a new socket would not fix.
    Failed(UpstreamError),
}

/// The reader task: runs until the turn finishes, fails, or the consumer drops its receiver.
/// When the socket drops mid-turn and the turn can be resumed, it reconnects with backoff; the
/// tracker skips the text already delivered (Gen-1) or picks up from the snapshot (Gen-2).
async fn read_turn(
    mut ws: Ws,
    transport: Transport,
    url: String,
    mut tracker: TurnTracker,
    armed: Arc<AtomicBool>,
    tx: mpsc::Sender<Result<TurnEvent, UpstreamError>>,
    cfg: UpstreamConfig,
) {
    // Reconnects in a row without new text, and in total.
    let (mut fruitless, mut total) = (0usize, 0u32);
    let failure = loop {
        let (ended, progressed) = read_socket(&mut ws, &mut tracker, &armed, &tx, &cfg).await;
        let why = match ended {
            Ended::Done => break None,
            Ended::Failed(e) => break Some(e),
            Ended::Dropped(why) => why,
        };
        let _ = tokio::time::timeout(cfg.request_timeout, ws.close()).await;
        if !tracker.can_resume() {
            // Gen-2 before any text: a new socket only gets live frames and a snapshot with
            // nothing to find our text by, so what the server sent meanwhile could be lost.
            // Before our trigger nothing of the turn can be lost yet, but the caller is about to
            // trigger on a dead socket: it fails the same way.
            let triggered = tracker.is_armed() || armed.load(Ordering::SeqCst);
            break Some(UpstreamError::StreamClosed(if triggered {
                format!("{why}; the stream dropped and Gen-2 cannot resume it without losing text")
            } else {
                why
            }));
        }
        if progressed {
            fruitless = 0;
        }
        match reconnect(&transport, &cfg, &url, &tx, &mut fruitless, &mut total).await {
            Ok(Some(next)) => {
                tracing::info!(reconnects = total, "resuming the turn on a new socket");
                ws = next;
                tracker.reconnected();
            }
            // The consumer went away while we were waiting.
            Ok(None) => return,
            Err(last) => {
                break Some(UpstreamError::StreamClosed(format!(
                    "{why}; resuming failed after {total} reconnect attempt(s): {last}"
                )));
            }
        }
    };
    if let Some(err) = failure {
        tracing::debug!(error = %err, "upstream stream failed");
        // The receiver may be gone already; nothing else to tell then.
        let _ = tx.send(Err(err)).await;
    }
    let _ = tokio::time::timeout(cfg.request_timeout, ws.close()).await;
}

/// Reads one socket until the turn ends, the consumer leaves, or the socket fails. Also says
/// whether this socket delivered any new event.
async fn read_socket(
    ws: &mut Ws,
    tracker: &mut TurnTracker,
    armed: &AtomicBool,
    tx: &mpsc::Sender<Result<TurnEvent, UpstreamError>>,
    cfg: &UpstreamConfig,
) -> (Ended, bool) {
    let start = tokio::time::Instant::now();
    let mut ping = tokio::time::interval_at(start + cfg.ping_interval, cfg.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let idle = tokio::time::sleep(cfg.idle_timeout);
    tokio::pin!(idle);
    let mut progressed = false;
    let ended = loop {
        tokio::select! {
            () = tx.closed() => {
                tracing::debug!("turn consumer went away; closing the stream");
                break Ended::Done;
            }
            _ = ping.tick() => {
                if let Err(e) = ws.send_text("ping").await {
                    break Ended::Dropped(format!("sending ping failed: {e}"));
                }
            }
            () = &mut idle => {
                break Ended::Failed(UpstreamError::IdleTimeout(cfg.idle_timeout));
            }
            msg = ws.recv() => {
                idle.as_mut().reset(tokio::time::Instant::now() + cfg.idle_timeout);
                let text = match msg {
                    None => break Ended::Dropped("the socket ended".to_string()),
                    Some(Err(e)) => break Ended::Dropped(e),
                    Some(Ok(WsEvent::Closed(why))) => break Ended::Dropped(why),
                    Some(Ok(WsEvent::Text(t))) => t,
                    Some(Ok(WsEvent::Other)) => continue,
                };
                if !tracker.is_armed() && armed.load(Ordering::SeqCst) {
                    tracker.arm();
                }
                for event in tracker.feed(&text) {
                    progressed = true;
                    if tx.send(Ok(event)).await.is_err() {
                        return (Ended::Done, progressed);
                    }
                }
                if tracker.is_finished() {
                    break Ended::Done;
                }
                if let Some(why) = tracker.resume_failed() {
                    break Ended::Failed(UpstreamError::StreamClosed(why.to_string()));
                }
                // Waiting for a slow consumer is not upstream silence.
                idle.as_mut().reset(tokio::time::Instant::now() + cfg.idle_timeout);
            }
        }
    };
    (ended, progressed)
}

#[cfg(test)]
mod tests {
    use super::open_for_test as open;
    use super::*;
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
            for frame in [
                r#"{"type":"state","state":{"inProgress":true}}"#,
                r#"{"type":"update","buffer":"{\"id\":\"m\",\"type\":\"chat\",\"chat\":{\"content\":\"done\"}}\n"}"#,
                r#"{"type":"state","state":{"inProgress":false}}"#,
            ] {
                ws.send(Message::text(frame)).await.expect("frame");
            }
            // The client closes after the end of the turn.
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
            }
        })
        .await;
        let stream = open(&cfg(10, 150), &url, TurnTracker::new("q", true))
            .await
            .expect("connects");
        let mut events = stream.into_events();
        let mut got = Vec::new();
        while let Some(ev) = events.recv().await {
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
    async fn silence_times_out() {
        let url = server(|mut ws| async move {
            // Read (and ignore) pings without answering.
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
        let stream = open(&cfg(60_000, 200), &url, TurnTracker::new("q", true))
            .await
            .expect("connects");
        let mut events = stream.into_events();
        assert!(matches!(
            events.recv().await,
            Some(Err(UpstreamError::IdleTimeout(_)))
        ));
        assert!(events.recv().await.is_none());
    }

    #[tokio::test]
    async fn dropping_the_receiver_closes_a_silent_socket() {
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
        let stream = open(&cfg(60_000, 60_000), &url, TurnTracker::new("q", false))
            .await
            .expect("connects");
        drop(stream);
        let closed = tokio::time::timeout(Duration::from_secs(10), closed_rx)
            .await
            .expect("server saw the close")
            .expect("server reported");
        assert!(closed);
    }

    #[tokio::test]
    async fn server_close_before_the_end_is_an_error() {
        let url = server(|mut ws| async move {
            ws.send(Message::text(
                r#"{"type":"state","state":{"inProgress":true}}"#,
            ))
            .await
            .expect("frame");
            let _ = ws.close(None).await;
        })
        .await;
        let stream = open(&cfg(60_000, 60_000), &url, TurnTracker::new("q", true))
            .await
            .expect("connects");
        let mut events = stream.into_events();
        assert!(matches!(
            events.recv().await,
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
}
