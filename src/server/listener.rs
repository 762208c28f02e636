//! The accept loop: every client connection is served here, under the [`ConnectionLimits`].
//!
//! `axum::serve` has no knobs for timeouts or a connection cap, and it answers a full file table
//! by sleeping a second between failed `accept`s, which is how a thousand idle sockets took
//! `/healthz` down. This loop instead:
//! - serves HTTP/1.1 only, through hyper's connection builder with a timer, so the header-read
//!   timeout runs from accept and again from the end of each response (a kept-alive connection
//!   left idle that long is closed: hyper 1.12 re-arms the timer when a connection goes idle);
//!   no timer runs while a request is handled or its response written, so long streams live on.
//!   (No HTTP/2 cleartext: no client of this API needs it, and its idle connections would
//!   escape the timer. TLS and HTTP/2 belong to the reverse proxy in front);
//! - takes a slot of the connection cap for each accepted socket; without a free slot it still
//!   accepts (the backlog keeps moving), answers a short 503 and closes;
//! - on shutdown stops accepting, lets each connection finish its request, and returns when
//!   every connection has closed (the caller bounds that wait with `SHUTDOWN_GRACE_SECS`).
//!
//! The request-body deadline is a layer of the router (see [`super::app`]), since only a
//! handler that reads the body can answer 408 for it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::error::ApiError;
use super::limits::{ConnectionLimits, MAX_HEADER_BYTES, open_file_limit};
use crate::metrics::{CONNECTIONS_REFUSED, HEADER_TIMEOUTS, OPEN_CONNECTIONS};

/// Refused connections being answered at once; beyond that a refused socket is closed without
/// an answer, so that refusing costs no more than a bounded number of files.
const REFUSALS_AT_ONCE: usize = 64;
/// How long a refused connection may take to send its request head, receive its 503 and close.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// How long a refusal waits for the request head before it answers anyway, and then for the
/// client to close. Short, so that silent clients cannot keep the [`REFUSALS_AT_ONCE`] busy.
const REFUSAL_WAIT: Duration = Duration::from_millis(500);
/// Pause after an `accept` error that is not about one connection (a full file table).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Repeated warnings (refusals, accept errors) are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Connections the kernel may hold complete but not yet accepted (capped by `somaxconn`). The
/// usual 1024 overflows under a burst of clients: the excess is then held back by SYN-ACK
/// retransmits for seconds instead of being accepted (and served or refused) at once.
const BACKLOG: u32 = 4096;

/// Binds `addr` with a backlog of 4096 (and `SO_REUSEADDR`, as `TcpListener::bind` does on Unix).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves `router` on `listener` until `shutdown` resolves, then until every connection is closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let limits = fit(limits);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(MAX_HEADER_BYTES);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut refusals = Refusals::new(limits.max_connections);
    let mut accept_errors = Throttle::default();
    // `stop` tells the connections to finish; `done` is held by each of them until it closes.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(&e, &mut accept_errors).await;
                    continue;
                }
            },
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let conn = Connection {
                    http: Arc::clone(&http),
                    router: router.clone(),
                    stop: stop_rx.clone(),
                    _slot: slot,
                    _done: done_rx.clone(),
                };
                tokio::spawn(conn.serve(stream));
            }
            Err(_) => refusals.refuse(stream),
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

/// The limits lowered to what the open-file limit in force allows, logged once.
fn fit(limits: ConnectionLimits) -> ConnectionLimits {
    let open_files = open_file_limit();
    let fitted = open_files.map_or(limits, |n| limits.fitted_to(n));
    if fitted.max_connections < limits.max_connections {
        tracing::warn!(
            max_connections = limits.max_connections,
            open_file_limit = open_files,
            lowered_to = fitted.max_connections,
            "MAX_CONNECTIONS does not fit in the open-file limit; raise the limit (systemd LimitNOFILE, compose ulimits, ulimit -n)"
        );
    }
    tracing::info!(
        max_connections = fitted.max_connections,
        header_read_timeout_secs = fitted.header_read_timeout.as_secs(),
        request_body_timeout_secs = fitted.request_body_timeout.as_secs(),
        open_file_limit = open_files,
        "connection limits"
    );
    fitted
}

/// One accepted connection and what it holds until it closes.
struct Connection {
    http: Arc<http1::Builder>,
    router: Router,
    stop: watch::Receiver<bool>,
    /// Its slot of `MAX_CONNECTIONS`, given back on drop.
    _slot: OwnedSemaphorePermit,
    /// Held while open; `serve` waits for every one of them at shutdown.
    _done: watch::Receiver<()>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let _open = OpenGauge::new();
        // Stream events are small writes; Nagle's algorithm would hold each one back.
        let _ = stream.set_nodelay(true);
        // The peer address in every request (`ConnectInfo`), as `into_make_service_with_connect_info`
        // would: the admin key back-off counts per client address.
        let peer = stream.peer_addr().ok();
        let router = tower::ServiceExt::map_request(
            self.router.clone(),
            move |mut req: http::Request<hyper::body::Incoming>| {
                if let Some(addr) = peer {
                    req.extensions_mut()
                        .insert(axum::extract::ConnectInfo(addr));
                }
                req
            },
        );
        let service = TowerToHyperService::new(router);
        let conn = self.http.serve_connection(TokioIo::new(stream), service);
        tokio::pin!(conn);
        let mut stopping = false;
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        ended_with(&e);
                    }
                    return;
                }
                // Also when `serve` itself is dropped (the sender goes): finish, then close.
                _ = self.stop.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// A connection that ended in an error: the client's doing (it went away, or was too slow).
fn ended_with(e: &hyper::Error) {
    if e.is_timeout() {
        metrics::counter!(HEADER_TIMEOUTS).increment(1);
        tracing::debug!("connection closed: no complete request headers in time");
    } else {
        tracing::debug!(error = %e, "connection closed with an error");
    }
}

/// `el2a_open_connections` up while it lives.
struct OpenGauge;

impl OpenGauge {
    fn new() -> Self {
        metrics::gauge!(OPEN_CONNECTIONS).increment(1.0);
        OpenGauge
    }
}

impl Drop for OpenGauge {
    fn drop(&mut self) {
        metrics::gauge!(OPEN_CONNECTIONS).decrement(1.0);
    }
}

/// Connections accepted while every slot is taken: each gets a 503 in our error shape and is
/// closed, with no more than [`REFUSALS_AT_ONCE`] being answered at a time.
struct Refusals {
    answering: Arc<Semaphore>,
    answer: Arc<[u8]>,
    cap: usize,
    warned: Throttle,
}

impl Refusals {
    fn new(cap: usize) -> Self {
        Refusals {
            answering: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            answer: ApiError::TooManyConnections(cap).raw_http().into(),
            cap,
            warned: Throttle::default(),
        }
    }

    fn refuse(&mut self, stream: TcpStream) {
        metrics::counter!(CONNECTIONS_REFUSED).increment(1);
        if let Some(also) = self.warned.ready() {
            tracing::warn!(
                max_connections = self.cap,
                refused_since_last_warning = also,
                "all MAX_CONNECTIONS slots are taken: refusing new connections with 503"
            );
        }
        // Past the bound, dropping the socket closes it at once (the client sees a reset).
        let Ok(answering) = Arc::clone(&self.answering).try_acquire_owned() else {
            return;
        };
        let answer = Arc::clone(&self.answer);
        tokio::spawn(async move {
            let _answering = answering;
            let _ = tokio::time::timeout(REFUSAL_TIME, answer_and_close(stream, &answer)).await;
        });
    }
}

/// Waits a moment for the request's head, writes `answer`, closes our side, then reads until the
/// client closes its own. An answer sent before the request looks unsolicited to HTTP clients
/// (hyper drops it as an unexpected message); closing a socket with unread input resets it, and
/// the client could lose the answer with it.
async fn answer_and_close(mut stream: TcpStream, answer: &[u8]) {
    let mut buf = [0u8; 4096];
    let head = async {
        let mut seen = 0;
        while seen < buf.len() && !buf[..seen].windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf[seen..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen += n,
            }
        }
        true
    };
    if let Ok(false) = tokio::time::timeout(REFUSAL_WAIT, head).await {
        return;
    }
    if stream.write_all(answer).await.is_err() || stream.shutdown().await.is_err() {
        return;
    }
    let drain = async { while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {} };
    let _ = tokio::time::timeout(REFUSAL_WAIT, drain).await;
}

/// An `accept` that failed. Errors about that one connection are skipped; others (a full file
/// table) get a short pause so the loop does not spin, and a warning now and then.
async fn accept_failed(e: &std::io::Error, warned: &mut Throttle) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    if let Some(also) = warned.ready() {
        tracing::warn!(error = %e, failed_since_last_warning = also, "accept error");
    }
    tokio::time::sleep(ACCEPT_BACKOFF).await;
}

/// Lets a repeated warning through at most once per [`WARN_EVERY`], counting the ones held back.
#[derive(Default)]
struct Throttle {
    last: Option<Instant>,
    held_back: u64,
}

impl Throttle {
    /// `Some(held back since the last one)` when a warning may be logged now.
    fn ready(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|at| now.duration_since(at) < WARN_EVERY)
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held_back))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_throttle_lets_one_warning_through_and_counts_the_rest() {
        let mut t = Throttle::default();
        assert_eq!(t.ready(), Some(0));
        assert_eq!(t.ready(), None);
        assert_eq!(t.ready(), None);
        t.last = Instant::now().checked_sub(WARN_EVERY);
        assert_eq!(t.ready(), Some(2));
    }

    #[test]
    fn a_refusal_is_a_complete_http_answer_in_our_error_shape() {
        let raw = ApiError::TooManyConnections(7).raw_http();
        let text = String::from_utf8(raw).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close"), "{head}");
        assert!(head.contains("\r\nretry-after: 1"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).expect("json");
        assert_eq!(v["error"]["code"], "too_many_connections");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("MAX_CONNECTIONS"))
        );
    }
}
