//! Connection limits over real sockets, through the binary's own accept loop: clients that send
//! their headers one byte a second, send nothing, sit idle after a response, or send a body that
//! never ends are let go within a bounded time (408 for the slow body); `/healthz` answers with
//! 2000 of them open; connections beyond `MAX_CONNECTIONS` get a 503 in our error shape; and a
//! stream that lasts longer than every timeout is not cut.
//!
//! Bounds are generous ("let go within N seconds") for a loaded two-core CI; nothing asserts speed.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Harness, KEY, start_served, stream_text, user};
use enginelabs_2api::config::ConfigArgs;
use enginelabs_2api::server::limits::raise_open_file_limit;
use enginelabs_2api::simulator::{SimConfig, reply_text};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The proxy with these connection settings in front of a default simulator.
async fn proxy(header_secs: u64, body_secs: u64, max_connections: usize) -> Harness {
    proxy_with(
        SimConfig::default(),
        header_secs,
        body_secs,
        max_connections,
    )
    .await
}

async fn proxy_with(sim: SimConfig, header_secs: u64, body_secs: u64, max: usize) -> Harness {
    start_served(sim, |a: &mut ConfigArgs| {
        a.header_read_timeout_secs = Duration::from_secs(header_secs);
        a.request_body_timeout_secs = Duration::from_secs(body_secs);
        a.max_connections = max;
    })
    .await
}

fn addr(h: &Harness) -> SocketAddr {
    h.base
        .trim_start_matches("http://")
        .parse()
        .expect("host:port")
}

/// A misbehaving client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pest {
    /// Connects and sends nothing.
    Silent,
    /// Sends a request's headers one byte per tick, and they never end.
    SlowHeaders,
    /// Sends a chat request's headers at once, then a chunked body one chunk per tick, forever.
    EndlessChunked,
    /// Sends an Anthropic request announcing 1000 bytes of body, then one byte per tick.
    SlowBody,
    /// Sends one complete request, reads its answer, then keeps the connection idle.
    IdleKeepAlive,
}

const SLOW_HEADERS: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ";

impl Pest {
    /// Bytes sent right after connecting.
    fn opening(self) -> Vec<u8> {
        match self {
            Pest::Silent | Pest::SlowHeaders => Vec::new(),
            Pest::EndlessChunked => format!(
                "POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            .into_bytes(),
            Pest::SlowBody => format!(
                "POST /v1/messages HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: {KEY}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n"
            )
            .into_bytes(),
            Pest::IdleKeepAlive => b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".to_vec(),
        }
    }

    /// Bytes sent at tick `n` (counting from 0).
    fn drip(self, n: usize) -> Vec<u8> {
        match self {
            Pest::Silent | Pest::IdleKeepAlive => Vec::new(),
            Pest::SlowHeaders => vec![SLOW_HEADERS.get(n).copied().unwrap_or(b'a')],
            Pest::EndlessChunked if n == 0 => b"1\r\n{\r\n".to_vec(),
            Pest::EndlessChunked => b"1\r\n \r\n".to_vec(),
            Pest::SlowBody => vec![if n == 0 { b'{' } else { b' ' }],
        }
    }
}

/// What a pest saw before the proxy let it go.
struct LetGo {
    /// From connecting to the close.
    after: Duration,
    /// Everything the proxy sent.
    received: String,
}

/// Connects `pest`, tells `connected` when it has, and keeps it misbehaving (one drip a second)
/// until the proxy closes the connection. Panics when the connection is still open after `bound`.
async fn until_let_go(
    addr: SocketAddr,
    pest: Pest,
    bound: Duration,
    connected: Arc<AtomicUsize>,
) -> LetGo {
    let start = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    connected.fetch_add(1, Ordering::SeqCst);
    stream
        .write_all(&pest.opening())
        .await
        .expect("write the opening");
    let mut received = Vec::new();
    let run = async {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut buf = [0u8; 4096];
        let mut n = 0;
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(k) => received.extend_from_slice(&buf[..k]),
                },
                _ = tick.tick() => {
                    let bytes = pest.drip(n);
                    n += 1;
                    if !bytes.is_empty() && stream.write_all(&bytes).await.is_err() {
                        // Closed by the proxy: collect what it said before that.
                        while let Ok(Ok(k)) = tokio::time::timeout(
                            Duration::from_secs(1),
                            stream.read(&mut buf),
                        )
                        .await
                        {
                            if k == 0 {
                                break;
                            }
                            received.extend_from_slice(&buf[..k]);
                        }
                        return;
                    }
                }
            }
        }
    };
    if tokio::time::timeout(bound, run).await.is_err() {
        panic!(
            "{pest:?}: the connection is still open after {bound:?}; received {:?}",
            String::from_utf8_lossy(&received)
        );
    }
    LetGo {
        after: start.elapsed(),
        received: String::from_utf8_lossy(&received).into_owned(),
    }
}

async fn let_go(h: &Harness, pest: Pest, bound_secs: u64) -> LetGo {
    until_let_go(
        addr(h),
        pest,
        Duration::from_secs(bound_secs),
        Arc::new(AtomicUsize::new(0)),
    )
    .await
}

/// The status and JSON body of the HTTP answer at the start of `raw`.
fn answer(raw: &str) -> (u16, Value) {
    let status = raw
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // A chunked body: the JSON sits between the size line and the terminating chunk.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

async fn healthz(h: &Harness) -> reqwest::Result<reqwest::Response> {
    // A fresh client: no pooled connection may stand in for a new one.
    reqwest::Client::new()
        .get(format!("{}/healthz", h.base))
        .timeout(Duration::from_secs(15))
        .send()
        .await
}

/// The value of a metric without labels in the `/metrics` text.
async fn metric(h: &Harness, name: &str) -> f64 {
    let text = h
        .get("/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test]
async fn a_client_sending_its_headers_one_byte_a_second_is_let_go() {
    let h = proxy(2, 30, 100).await;
    let went = let_go(&h, Pest::SlowHeaders, 30).await;
    assert!(went.received.is_empty(), "{:?}", went.received);
    // The drip does not extend the timer: it runs from the accept to the last header byte.
    assert!(went.after < Duration::from_secs(30));
    assert!(healthz(&h).await.is_ok_and(|r| r.status() == 200));
}

#[tokio::test]
async fn a_silent_client_is_let_go() {
    let h = proxy(2, 30, 100).await;
    let went = let_go(&h, Pest::Silent, 30).await;
    assert!(went.received.is_empty(), "{:?}", went.received);
    assert!(metric(&h, "el2a_header_timeouts_total").await >= 1.0);
}

#[tokio::test]
async fn a_kept_alive_connection_left_idle_is_closed() {
    let h = proxy(2, 30, 100).await;
    let went = let_go(&h, Pest::IdleKeepAlive, 30).await;
    let (status, body) = answer(&went.received);
    assert_eq!(status, 200, "{}", went.received);
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn a_chunked_body_that_never_ends_gets_408_and_is_let_go() {
    let h = proxy(30, 2, 100).await;
    let went = let_go(&h, Pest::EndlessChunked, 30).await;
    let (status, body) = answer(&went.received);
    assert_eq!(status, 408, "{}", went.received);
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("REQUEST_BODY_TIMEOUT_SECS"), "{message}");
}

#[tokio::test]
async fn a_slow_anthropic_body_gets_408_in_anthropics_shape() {
    let h = proxy(30, 2, 100).await;
    let went = let_go(&h, Pest::SlowBody, 30).await;
    let (status, body) = answer(&went.received);
    assert_eq!(status, 408, "{}", went.received);
    assert_eq!(body["type"], "error", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("REQUEST_BODY_TIMEOUT_SECS")),
        "{body}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_503_in_our_shape_and_the_cap_frees_up() {
    let h = proxy(60, 30, 4).await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr(&h)).await.expect("connect"));
    }
    // The four are accepted in order, before the connection below.
    for _ in 0..3 {
        let resp = healthz(&h).await.expect("an answer, not a reset");
        assert_eq!(resp.status(), 503);
        assert_eq!(
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let body: Value = resp.json().await.expect("json");
        assert_eq!(body["error"]["code"], "too_many_connections", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("MAX_CONNECTIONS"))
        );
    }
    drop(held);
    let mut ok = false;
    for _ in 0..100 {
        if healthz(&h).await.is_ok_and(|r| r.status() == 200) {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ok, "the slots came back once the connections closed");
    assert!(metric(&h, "el2a_connections_refused_total").await >= 3.0);
}

#[tokio::test]
async fn a_stream_longer_than_every_timeout_is_not_cut() {
    // 12 words at 400 ms a frame: about 5 s, against 1 s header and body timeouts.
    let sim = SimConfig {
        reply_words: 12,
        frame_delay: Duration::from_millis(400),
        ..SimConfig::default()
    };
    let h = proxy_with(sim, 1, 1, 100).await;
    let body = json!({"model": "GPT5", "messages": [user("take your time")]});
    let started = Instant::now();
    let (status, data) = h.chat_stream(body.clone()).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() > Duration::from_secs(3),
        "the stream outlasted the timeouts"
    );
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    assert_eq!(stream_text(&data).0, reply_text("take your time", 1, 12));
    // A non-streamed answer that takes as long is not cut either.
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [user("slowly")]}))
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        reply_text("slowly", 1, 12)
    );
}

/// Per pest kind: 2000 sockets in all.
const SILENT: usize = 700;
const SLOW_HEADERS_N: usize = 700;
const ENDLESS: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_with_2000_slow_clients_open_and_all_are_let_go() {
    let total = SILENT + SLOW_HEADERS_N + ENDLESS;
    // Both ends of every socket live in this process.
    let limit = raise_open_file_limit().expect("read the open-file limit");
    assert!(
        limit.now >= 5_000,
        "this test needs 5000 open files (2 x 2000 sockets and the rest); the hard limit allows {}",
        limit.now
    );
    let h = proxy(10, 10, 3_000).await;
    let connected = Arc::new(AtomicUsize::new(0));
    let mut pests = Vec::with_capacity(total);
    let kinds = std::iter::repeat_n(Pest::Silent, SILENT)
        .chain(std::iter::repeat_n(Pest::SlowHeaders, SLOW_HEADERS_N))
        .chain(std::iter::repeat_n(Pest::EndlessChunked, ENDLESS));
    for pest in kinds {
        let connected = Arc::clone(&connected);
        let at = addr(&h);
        pests.push((
            pest,
            tokio::spawn(until_let_go(at, pest, Duration::from_secs(90), connected)),
        ));
    }
    assert!(
        common::eventually(60, || connected.load(Ordering::SeqCst) == total).await,
        "only {} of {total} connected",
        connected.load(Ordering::SeqCst)
    );
    // The proxy holds them all (the gauge is process-wide: other tests add a few).
    let mut peak = 0.0;
    for _ in 0..100 {
        peak = metric(&h, "el2a_open_connections").await;
        if peak >= total as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(peak >= total as f64, "open connections: {peak}");
    for _ in 0..3 {
        let resp = healthz(&h).await.expect("/healthz answers");
        assert_eq!(resp.status(), 200);
    }
    let mut got_408 = 0;
    for (pest, task) in pests {
        let went = task.await.expect("let go in time");
        if pest == Pest::EndlessChunked {
            assert_eq!(answer(&went.received).0, 408, "{}", went.received);
            got_408 += 1;
        }
    }
    assert_eq!(got_408, ENDLESS);
    let resp = healthz(&h).await.expect("/healthz answers after");
    assert_eq!(resp.status(), 200);
}
