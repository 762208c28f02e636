//! [`Recorder`]: collects the calls as the transport makes them (raw, secrets included: the
//! capture is redacted once, when it is written, by [`super::redact`]). Cheap to clone; every
//! clone feeds the same capture. Nothing waits on it: each call takes a short lock.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use http::HeaderMap;

use super::format::{Capture, Event, Exchange, FrameLog, SocketLog, VERSION, body_value, path_of};

#[derive(Debug, Default)]
struct State {
    start: Option<Instant>,
    events: Vec<Event>,
    /// When each HTTP request was sent, with its `seq`.
    sent: Vec<(Instant, usize)>,
}

impl State {
    fn at_ms(&mut self, now: Instant) -> u64 {
        let start = *self.start.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(start).as_millis()).unwrap_or(u64::MAX)
    }
}

/// See the module doc.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<State>>);

fn headers(map: &HeaderMap) -> std::collections::BTreeMap<String, String> {
    map.iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request is being sent; returns its `seq` for [`Recorder::answered`].
    pub fn sent(&self, method: &str, url: &str, head: &HeaderMap, body: Option<&[u8]>) -> usize {
        let now = Instant::now();
        let mut s = self.state();
        let seq = s.events.len();
        let at_ms = s.at_ms(now);
        s.sent.push((now, seq));
        s.events.push(Event::Http(Exchange {
            seq,
            at_ms,
            method: method.to_string(),
            path: path_of(url),
            status: 0,
            request_headers: headers(head),
            request_body: body.map_or(serde_json::Value::Null, body_value),
            response_headers: Default::default(),
            response_body: serde_json::Value::Null,
        }));
        seq
    }

    /// The answer's head (and whole body when read at once).
    pub fn answered(&self, seq: usize, status: u16, head: &HeaderMap, body: &[u8]) {
        if let Some(Event::Http(x)) = self.state().events.get_mut(seq) {
            x.status = status;
            x.response_headers = headers(head);
            x.response_body = body_value(body);
        }
    }

    /// More of a streamed body (kept as text, joined).
    pub fn more_body(&self, seq: usize, chunk: &[u8]) {
        if let Some(Event::Http(x)) = self.state().events.get_mut(seq) {
            let mut text = super::format::body_text(&x.response_body);
            text.push_str(&String::from_utf8_lossy(chunk));
            x.response_body = serde_json::Value::String(text);
        }
    }

    /// A WebSocket is being opened.
    pub fn socket(&self, url: &str) {
        let now = Instant::now();
        let mut s = self.state();
        let seq = s.events.len();
        let at_ms = s.at_ms(now);
        s.events.push(Event::Socket(SocketLog {
            seq,
            at_ms,
            path: path_of(url),
            frames: Vec::new(),
        }));
    }

    /// The frames of the latest socket, as they arrived.
    pub fn frames<'a>(&self, frames: impl IntoIterator<Item = (Instant, &'a str)>) {
        let mut s = self.state();
        let logs: Vec<FrameLog> = frames
            .into_iter()
            .map(|(at, text)| FrameLog {
                after: s
                    .sent
                    .iter()
                    .filter(|(sent, _)| *sent <= at)
                    .map(|(_, seq)| *seq)
                    .max(),
                at_ms: s.at_ms(at),
                text: text.to_string(),
            })
            .collect();
        if let Some(Event::Socket(sock)) = s
            .events
            .iter_mut()
            .rev()
            .find(|e| matches!(e, Event::Socket(_)))
        {
            sock.frames.extend(logs);
        }
    }

    /// Everything so far, unredacted, in the order the calls started (an exchange whose answer
    /// never came keeps status 0).
    pub fn capture(&self) -> Capture {
        Capture {
            version: VERSION,
            events: self.state().events.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_know_the_last_request_sent_before_them() {
        let r = Recorder::new();
        let a = r.sent(
            "POST",
            "http://h/projects/create-hosted",
            &HeaderMap::new(),
            None,
        );
        r.answered(a, 200, &HeaderMap::new(), br#"{"projectId":"p"}"#);
        r.socket("ws://h/engine-agent/chat-histories/p/buffer/stream?token=u");
        let early = Instant::now();
        let b = r.sent(
            "POST",
            "http://h/engine-agent/chat",
            &HeaderMap::new(),
            Some(b"{}"),
        );
        r.answered(b, 200, &HeaderMap::new(), b"");
        let late = Instant::now();
        r.frames([(early, "idle"), (late, "turn")]);
        let c = r.capture();
        let Event::Socket(s) = &c.events[1] else {
            panic!("{c:?}")
        };
        assert_eq!(s.path, "/engine-agent/chat-histories/p/buffer/stream");
        assert_eq!(s.frames[0].after, Some(0));
        assert_eq!(s.frames[1].after, Some(2));
    }
}
