//! [`BodyReader`]: one answer's body, read as the [`Turn`]'s events are asked for: SSE chunks
//! through [`SseDecoder`] and [`ChunkReader`] as they arrive, or a whole JSON answer at its end.
//! No task or channel sits in between: a chunk wakes the consumer once.
//!
//! Which of the two it is comes from `Content-Type`, or, when that says neither, from the first
//! byte that is not white space (`{` is JSON). The turn ends when the answer does, when the body
//! breaks off or stays silent for the idle timeout. Dropping the reader (the consumer dropped the
//! turn) drops the body, which closes the connection, so the upstream stops generating for
//! nobody.
//!
//! [`Turn`]: crate::upstream::Turn

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::FutureExt as _;
use serde_json::Value;

use super::chat::CALL_CHAT;
use super::events::{ChunkReader, completion_events};
use super::sse::SseDecoder;
use crate::upstream::answer::truncate;
use crate::upstream::transport::Download;
use crate::upstream::{TurnEvent, UpstreamError};

type Item = Result<TurnEvent, UpstreamError>;

/// The largest whole JSON answer read (a streamed answer has no such limit).
const MAX_JSON: usize = 32 << 20;

/// How long the rest of a finished body is read, so the connection can be reused.
const DRAIN: Duration = Duration::from_millis(500);

/// An answer being read. Dropping it closes the connection (unless the answer was complete).
pub struct BodyReader {
    /// The answer's body; `None` once it ended, broke off, or the answer was complete.
    body: Option<Download>,
    reading: Reading,
    /// How long the body may stay silent while the consumer waits.
    idle: Duration,
    /// Events decoded but not handed out yet: one chunk may carry several, and the end (or an
    /// error) waits behind them.
    pending: VecDeque<Item>,
}

impl BodyReader {
    pub(super) fn new(body: Download, idle: Duration) -> Self {
        BodyReader {
            reading: Reading {
                shape: declared_shape(&body),
                whole: Vec::new(),
                sse: SseDecoder::new(),
                chunks: ChunkReader::new(),
            },
            body: Some(body),
            idle,
            pending: VecDeque::new(),
        }
    }

    /// The next event; `None` after `Finished` or an error was handed out. Cancel-safe.
    pub async fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            let body = self.body.as_mut()?;
            let next = tokio::time::timeout(self.idle, body.chunk()).await;
            let ended = !matches!(next, Ok(Ok(Some(_))));
            let events = match next {
                Err(_) => Err(UpstreamError::IdleTimeout(self.idle)),
                Ok(Err(detail)) => Err(UpstreamError::StreamClosed(detail)),
                Ok(Ok(None)) => self.reading.end(),
                Ok(Ok(Some(chunk))) => self.reading.take(&chunk),
            };
            match events {
                Ok(events) => self.pending.extend(events.into_iter().map(Ok)),
                Err(e) => {
                    self.pending.push_back(Err(e));
                    self.body = None;
                }
            }
            if ended {
                self.body = None;
            } else if self.reading.finished() {
                self.drain();
            }
        }
    }

    /// The answer is complete: reads what is left of the body (usually nothing) so the
    /// connection goes back to the pool. What has arrived is read at once; when more is still on
    /// its way, a small task waits for it (at most [`DRAIN`]) so the events are not held up.
    fn drain(&mut self) {
        let Some(mut body) = self.body.take() else {
            return;
        };
        loop {
            match body.chunk().now_or_never() {
                Some(Ok(Some(_))) => {}
                Some(_) => return,
                None => break,
            }
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = tokio::time::timeout(DRAIN, async {
                    while let Ok(Some(_)) = body.chunk().await {}
                })
                .await;
            });
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Not known yet: the bytes so far are white space.
    Unknown,
    Stream,
    Json,
}

fn declared_shape(body: &Download) -> Shape {
    let declared = body
        .headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if declared.contains("event-stream") {
        Shape::Stream
    } else if declared.contains("json") {
        Shape::Json
    } else {
        Shape::Unknown
    }
}

/// What is being read.
struct Reading {
    shape: Shape,
    /// The JSON answer so far (also the white space before the shape is known).
    whole: Vec<u8>,
    sse: SseDecoder,
    chunks: ChunkReader,
}

impl Reading {
    /// Takes the next piece of the body; returns the events it completed.
    fn take(&mut self, chunk: &Bytes) -> Result<Vec<TurnEvent>, UpstreamError> {
        if self.shape == Shape::Unknown {
            self.whole.extend_from_slice(chunk);
            let Some(first) = self.whole.iter().find(|b| !b.is_ascii_whitespace()) else {
                return Ok(Vec::new());
            };
            self.shape = if *first == b'{' {
                Shape::Json
            } else {
                Shape::Stream
            };
            if self.shape == Shape::Json {
                return self.check_size().map(|()| Vec::new());
            }
            let seen = std::mem::take(&mut self.whole);
            return self.stream(&seen);
        }
        match self.shape {
            Shape::Stream => self.stream(chunk),
            _ => {
                self.whole.extend_from_slice(chunk);
                self.check_size().map(|()| Vec::new())
            }
        }
    }

    fn stream(&mut self, bytes: &[u8]) -> Result<Vec<TurnEvent>, UpstreamError> {
        let datas = self
            .sse
            .push(bytes)
            .map_err(|detail| UpstreamError::Protocol {
                call: CALL_CHAT,
                detail,
            })?;
        let mut out = Vec::new();
        for data in datas {
            out.extend(self.chunks.data(&data)?);
        }
        Ok(out)
    }

    fn check_size(&self) -> Result<(), UpstreamError> {
        if self.whole.len() > MAX_JSON {
            return Err(UpstreamError::Protocol {
                call: CALL_CHAT,
                detail: format!("the JSON answer exceeds {MAX_JSON} bytes"),
            });
        }
        Ok(())
    }

    /// The body ended.
    fn end(&mut self) -> Result<Vec<TurnEvent>, UpstreamError> {
        match self.shape {
            Shape::Stream => {
                let mut out = Vec::new();
                if let Some(data) = self.sse.finish() {
                    out.extend(self.chunks.data(&data)?);
                }
                out.extend(self.chunks.end()?);
                Ok(out)
            }
            Shape::Json | Shape::Unknown => {
                let text = String::from_utf8_lossy(&self.whole);
                if text.trim().is_empty() {
                    return Err(UpstreamError::StreamClosed(
                        "the CLI door answered with an empty body".to_string(),
                    ));
                }
                let v: Value =
                    serde_json::from_str(&text).map_err(|_| UpstreamError::Protocol {
                        call: CALL_CHAT,
                        detail: format!("the answer is not JSON: {}", truncate(&text)),
                    })?;
                completion_events(&v)
            }
        }
    }

    fn finished(&self) -> bool {
        self.chunks.is_finished()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(shape: Shape) -> Reading {
        Reading {
            shape,
            whole: Vec::new(),
            sse: SseDecoder::new(),
            chunks: ChunkReader::new(),
        }
    }

    #[test]
    fn an_undeclared_body_is_sniffed() {
        let mut r = reading(Shape::Unknown);
        assert!(r.take(&Bytes::from_static(b"\r\n")).expect("ok").is_empty());
        assert_eq!(r.shape, Shape::Unknown);
        let events = r
            .take(&Bytes::from_static(
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
            ))
            .expect("ok");
        assert_eq!(r.shape, Shape::Stream);
        assert_eq!(events, [TurnEvent::Content("hi".into())]);

        let mut r = reading(Shape::Unknown);
        let body = br#" {"choices":[{"message":{"content":"whole"},"finish_reason":"stop"}]}"#;
        assert!(r.take(&Bytes::from_static(body)).expect("ok").is_empty());
        assert_eq!(r.shape, Shape::Json);
        let events = r.end().expect("events");
        assert_eq!(events[0], TurnEvent::Content("whole".into()));
        assert_eq!(
            events.last(),
            Some(&TurnEvent::Finished { cancelled: false })
        );
    }

    #[test]
    fn empty_and_broken_bodies_are_errors() {
        assert_eq!(
            reading(Shape::Json).end().expect_err("empty").kind(),
            "stream_closed"
        );
        let mut r = reading(Shape::Json);
        let _ = r.take(&Bytes::from_static(b"{oops"));
        assert_eq!(r.end().expect_err("broken").kind(), "protocol");
        assert_eq!(
            reading(Shape::Stream).end().expect_err("no finish").kind(),
            "stream_closed"
        );
    }
}
