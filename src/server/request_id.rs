//! `x-request-id`: taken from the client when it sent a sane one, generated otherwise, returned
//! on every response, and attached to a tracing span so every log line of the request has it.
//!
//! The request's access line (`answered`, with its status, the time to its headers and the
//! time to its end) is written when the response body ends or is dropped, not when the headers
//! leave: a streamed answer's headers go out with its first token, and formatting and writing a
//! log line there would sit on every request's time to first token.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::{Instrument, Span};

pub async fn layer(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    let status = resp.status().as_u16();
    let headers_ms = started.elapsed().as_millis() as u64;
    resp.map(|inner| {
        Body::new(Logged {
            inner,
            span,
            status,
            started,
            headers_ms,
        })
    })
}

/// A response body that writes the request's access line when it is dropped (after its last
/// frame, or when the client left).
struct Logged {
    inner: Body,
    span: Span,
    status: u16,
    started: Instant,
    headers_ms: u64,
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.span.in_scope(|| {
            tracing::info!(
                status = self.status,
                headers_ms = self.headers_ms,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "answered"
            );
        });
    }
}
