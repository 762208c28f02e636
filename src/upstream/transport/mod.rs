//! The wire under the upstream client: the HTTP clients (one for cto.new, one for the image URLs
//! clients send, which may only reach public addresses) and the WebSocket connector, chosen when
//! the binary is built.
//!
//! - default (`plain`): reqwest + tokio-tungstenite over rustls, the lightest stack;
//! - feature `impersonate` (`chrome`): wreq over BoringSSL with a current Chrome TLS, HTTP/2
//!   and header fingerprint, for when Cloudflare starts challenging plain clients.
//!
//! The rest of `upstream` builds [`Request`]s and reads [`Reply`]s, [`Download`]s and
//! [`WsEvent`]s, so it never knows which stack it talks through, and both stacks run the same
//! tests. Challenge detection is shared (`answer::challenge`), so a Cloudflare page is
//! reported by name whichever stack met it. Which addresses the image downloader may reach is
//! decided in one place, `address.rs` (URL literals, redirects, the downloader's DNS). With a
//! [`crate::capture::Recorder`] set (only `doctor --capture` sets one), both stacks record every
//! call through the same three helpers (`record_sent`, `record_answered`, `record_stream`).

mod address;
#[cfg(feature = "impersonate")]
mod chrome;
#[cfg(not(feature = "impersonate"))]
mod plain;
mod proxy;

use address::{ImageRedirect, check_image_url, image_redirect, public_addrs};
pub use address::{is_public, private_literal};
#[cfg(feature = "impersonate")]
pub use chrome::{Socket, Transport};
#[cfg(not(feature = "impersonate"))]
pub use plain::{Socket, Transport};
pub use proxy::UpstreamProxy;

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};

use super::UpstreamError;
use super::answer::{challenge, truncate};

/// One HTTP request, built without knowing the stack that will send it.
#[derive(Debug)]
pub struct Request {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Overrides the client's whole-request timeout.
    pub timeout: Option<Duration>,
    /// The first header whose value could not be sent (reported at send time, value left out:
    /// it may be a cookie).
    invalid_header: Option<HeaderName>,
    /// Sent by a program (the `cto` CLI), not by the cto.new page: the impersonating stack
    /// keeps the request's own `User-Agent` and adds no `sec-fetch-*` headers.
    program: bool,
}

impl Request {
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: None,
            timeout: None,
            invalid_header: None,
            program: false,
        }
    }

    pub fn get(url: impl Into<String>) -> Self {
        Self::new(Method::GET, url)
    }

    pub fn header(mut self, name: HeaderName, value: impl AsRef<str>) -> Self {
        match HeaderValue::from_str(value.as_ref()) {
            Ok(v) => {
                self.headers.insert(name, v);
            }
            Err(_) => {
                self.invalid_header.get_or_insert(name);
            }
        }
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header(http::header::AUTHORIZATION, format!("Bearer {token}"))
    }

    pub fn body(mut self, content_type: &str, body: impl Into<Bytes>) -> Self {
        self.body = Some(body.into());
        self.header(CONTENT_TYPE, content_type)
    }

    pub fn json(self, value: &serde_json::Value) -> Self {
        self.body("application/json", value.to_string())
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Marks the request as made by a program rather than the cto.new page (see `program`).
    pub fn as_program(mut self) -> Self {
        self.program = true;
        self
    }

    /// Checks an image download before any I/O: its headers, and its host unless private
    /// addresses are allowed.
    fn check_download(&self, allow_private: bool) -> Result<(), String> {
        self.check("download").map_err(|e| e.to_string())?;
        check_image_url(allow_private, &self.url)
    }

    /// Fails a request that carries a header value HTTP cannot carry, before any I/O.
    fn check(&self, call: &'static str) -> Result<(), UpstreamError> {
        match &self.invalid_header {
            Some(name) => Err(UpstreamError::Network {
                call,
                detail: format!("the {name} header holds characters HTTP cannot carry"),
            }),
            None => Ok(()),
        }
    }
}

/// A fully read HTTP answer. The body may hold secrets (JWTs): never log it whole.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    /// An answer with this status and body and no headers (for tests of the code that reads
    /// answers).
    #[cfg(test)]
    pub(crate) fn of(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: HeaderMap::new(),
            body: body.to_string(),
        }
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Turns a Cloudflare challenge, and a proxy asking for credentials, into their own errors;
    /// any other answer is the caller's.
    fn checked(
        call: &'static str,
        host: &str,
        status: u16,
        headers: HeaderMap,
        body: String,
    ) -> Result<Self, UpstreamError> {
        if status == 407 {
            // Only a proxy answers 407; blaming the cookie or cto.new would mislead.
            return Err(UpstreamError::Network {
                call,
                detail: "the upstream proxy wants other credentials (HTTP 407): check the user and password in UPSTREAM_PROXY".into(),
            });
        }
        match challenge(host, status, &headers, &body) {
            Some(err) => Err(err),
            None => Ok(Reply {
                status,
                headers,
                body,
            }),
        }
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// What [`Transport::open`] got once the answer's head arrived.
pub enum Opened {
    /// A success: the body is still to be read, chunk by chunk (errors name the proxy).
    Streaming(Download),
    /// Any other status: its body read whole (up to [`REFUSAL_BODY_LIMIT`]), Cloudflare and
    /// proxy refusals already turned into their errors.
    Refused(Reply),
}

/// How much of a refusal's body [`Transport::open`] reads: error messages are short, and a
/// refusal that streams forever must not hold the caller.
pub const REFUSAL_BODY_LIMIT: usize = 64 * 1024;

/// Reads at most [`REFUSAL_BODY_LIMIT`] bytes of a refusal, then the checks every answer gets.
async fn refusal(
    call: &'static str,
    host: &str,
    mut body: Download,
) -> Result<Opened, UpstreamError> {
    let mut bytes = Vec::new();
    while bytes.len() < REFUSAL_BODY_LIMIT {
        match body.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(detail) => return Err(UpstreamError::Network { call, detail }),
        }
    }
    bytes.truncate(REFUSAL_BODY_LIMIT);
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Reply::checked(call, host, body.status, body.headers, text).map(Opened::Refused)
}

/// Sorts an answer whose head arrived: a success streams on (unless Cloudflare flagged it in
/// its headers); anything else is read as a refusal.
async fn opened(call: &'static str, host: &str, body: Download) -> Result<Opened, UpstreamError> {
    if !(200..300).contains(&body.status) {
        return refusal(call, host, body).await;
    }
    match challenge(host, body.status, &body.headers, "") {
        Some(err) => Err(err),
        None => Ok(Opened::Streaming(body)),
    }
}

/// Records a request about to be sent; its `seq` when a recorder is set.
fn record_sent(recorder: Option<&crate::capture::Recorder>, req: &Request) -> Option<usize> {
    recorder.map(|r| {
        r.sent(
            req.method.as_str(),
            &req.url,
            &req.headers,
            req.body.as_deref(),
        )
    })
}

/// Records the answer of a request read whole.
fn record_answered(
    recorder: Option<&crate::capture::Recorder>,
    seq: Option<usize>,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) {
    if let (Some(r), Some(seq)) = (recorder, seq) {
        r.answered(seq, status, headers, body);
    }
}

/// Records the head of a streamed answer and each chunk of its body as it is read.
fn record_stream(
    recorder: Option<&crate::capture::Recorder>,
    seq: Option<usize>,
    body: Download,
) -> Download {
    let (Some(r), Some(seq)) = (recorder.cloned(), seq) else {
        return body;
    };
    r.answered(seq, body.status, &body.headers, b"");
    let chunks = body.chunks.inspect(move |c| {
        if let Ok(bytes) = c {
            r.more_body(seq, bytes);
        }
    });
    Download {
        status: body.status,
        headers: body.headers,
        chunks: Box::pin(chunks),
    }
}

/// An answer whose body is read chunk by chunk, so a size limit can stop it early.
pub struct Download {
    pub status: u16,
    pub headers: HeaderMap,
    chunks: ChunkStream,
}

impl Download {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        self.chunks.next().await.transpose()
    }

    /// The `Content-Length` the server announced.
    pub fn content_length(&self) -> Option<u64> {
        self.headers
            .get(http::header::CONTENT_LENGTH)?
            .to_str()
            .ok()?
            .parse()
            .ok()
    }
}

/// What a WebSocket delivered, reduced to what the turn reader needs.
#[derive(Debug)]
pub enum WsEvent {
    /// A text frame (binary frames are read as lossy UTF-8: the protocol only sends text).
    Text(String),
    /// The server's close frame, described for the error message.
    Closed(String),
    /// Pings, pongs and raw frames: the stack answers pings itself.
    Other,
}

/// The reason given for a server's close frame, if it sent one.
fn closed_by_server(frame: Option<(u16, &str)>) -> WsEvent {
    WsEvent::Closed(match frame {
        Some((code, reason)) => format!("closed by the server: {code} {reason}"),
        None => "closed by the server".to_string(),
    })
}

/// The error of a refused WebSocket handshake: a Cloudflare challenge by name, else the status.
fn refused(url: &str, status: u16, headers: &HeaderMap, body: &str) -> UpstreamError {
    let host = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    challenge(&host, status, headers, body).unwrap_or(UpstreamError::Status {
        call: WS_CALL,
        status,
        body: truncate(body),
    })
}

/// `kind` followed by the chain of causes of `err` (without `err`'s own text, which often holds
/// the URL).
fn with_sources(kind: &str, err: &dyn std::error::Error) -> String {
    let mut detail = kind.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        detail.push_str(": ");
        detail.push_str(&s.to_string());
        source = s.source();
    }
    detail
}

/// An error with the whole chain of its causes (for image downloads: the URL is the client's
/// own, and the cause is where "private address" or "certificate" is said).
fn full_chain(err: &dyn std::error::Error) -> String {
    with_sources(&err.to_string(), err)
}

/// Names the proxy in a transport failure, so "connection refused" is not read as cto.new
/// being down when it is the proxy (credentials are never part of its `Display`).
fn through(proxy: Option<&UpstreamProxy>, detail: String) -> String {
    match proxy {
        Some(p) => format!("{detail} (through UPSTREAM_PROXY {p})"),
        None => detail,
    }
}

/// The call name of the stream handshake in errors and logs.
pub const WS_CALL: &str = "websocket";

/// Read and write buffers of one socket. Frames are small and we send only pings: the default
/// 128 KiB per socket would dominate the memory of a thousand concurrent streams.
const WS_READ_BUFFER: usize = 8 * 1024;
const WS_MAX_MESSAGE: usize = 16 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_header_values_fail_before_sending_and_do_not_leak() {
        let req = Request::get("http://x/").header(http::header::COOKIE, "a=b\nsecret");
        let err = req.check("clerk").expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("cookie"), "{text}");
        assert!(!text.contains("secret"), "{text}");
        assert!(Request::get("http://x/").bearer("t").check("c").is_ok());
    }

    #[test]
    fn json_bodies_carry_their_type() {
        let req = Request::new(Method::POST, "http://x/").json(&serde_json::json!({"a": 1}));
        assert_eq!(req.headers[CONTENT_TYPE], "application/json");
        assert_eq!(req.body.as_deref(), Some(&b"{\"a\":1}"[..]));
    }

    #[test]
    fn refused_handshakes_name_cloudflare() {
        let mut h = HeaderMap::new();
        h.insert("cf-mitigated", HeaderValue::from_static("challenge"));
        assert!(matches!(
            refused("wss://api.example/s", 403, &h, ""),
            UpstreamError::CloudflareChallenge { status: 403, ref host } if host == "api.example"
        ));
        assert!(matches!(
            refused("wss://api.example/s", 404, &HeaderMap::new(), "nope"),
            UpstreamError::Status { status: 404, .. }
        ));
    }
}
