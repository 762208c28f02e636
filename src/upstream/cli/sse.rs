//! Server-sent-event framing (the WHATWG `text/event-stream` grammar, as much of it as a
//! completion stream uses): bytes in, in whatever pieces the network cut them, and the `data`
//! of each complete event out. Pure.
//!
//! `data:` lines of one event are joined with `\n`; a blank line ends the event; comments
//! (`: keep-alive`), `event:`, `id:` and `retry:` are skipped. Lines end with `\n` or `\r\n`
//! (a lone `\r` ending, allowed by the grammar, is not used by any known server and would be
//! read as part of the line). Liberal extra: a line that is a bare JSON object, as some
//! gateways send (NDJSON), counts as a whole event.

use crate::upstream::answer::log_unknown_once;

/// A line longer than this is not a completion chunk: the stream is broken or hostile.
pub const MAX_LINE: usize = 16 << 20;

/// Splits a byte stream into events.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The bytes of the line being received (UTF-8 is decoded per whole line, so a character
    /// cut between two network reads is never broken).
    line: Vec<u8>,
    /// The `data` of the event being received, once it has some.
    data: Option<String>,
}

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes; returns the data of every event they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let mut line = std::mem::take(&mut self.line);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if let Some(data) = self.line_done(&String::from_utf8_lossy(&line)) {
                events.push(data);
            }
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(format!("a line of the stream exceeds {MAX_LINE} bytes"));
        }
        Ok(events)
    }

    /// The body ended: an event still open (no blank line after it) is delivered as well.
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.line);
        let text = String::from_utf8_lossy(&line);
        let text = text.strip_suffix('\r').unwrap_or(&text);
        let from_line = if text.is_empty() {
            None
        } else {
            self.line_done(text)
        };
        from_line.or_else(|| self.data.take())
    }

    /// One whole line; returns an event's data when the line ended it.
    fn line_done(&mut self, line: &str) -> Option<String> {
        if line.is_empty() {
            return self.data.take();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => {
                match &mut self.data {
                    Some(d) => {
                        d.push('\n');
                        d.push_str(value);
                    }
                    None => self.data = Some(value.to_string()),
                }
                None
            }
            "event" | "id" | "retry" => None,
            _ if line.trim_start().starts_with('{') && self.data.is_none() => {
                log_unknown_once("cli sse bare json line", || {
                    "a stream line holds bare JSON (no `data:`)".to_string()
                });
                Some(line.trim().to_string())
            }
            other => {
                log_unknown_once(&format!("cli sse field {other}"), || {
                    format!("an SSE field `{other}`")
                });
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(d: &mut SseDecoder, pieces: &[&[u8]]) -> Vec<String> {
        let mut out = Vec::new();
        for p in pieces {
            out.extend(d.push(p).expect("push"));
        }
        out.extend(d.finish());
        out
    }

    #[test]
    fn events_are_cut_anywhere_and_reassembled() {
        let stream =
            "data: {\"a\":\"é\"}\n\n: keep-alive\n\nevent: message\nid: 7\ndata: [DONE]\n\n";
        let whole = all(&mut SseDecoder::new(), &[stream.as_bytes()]);
        assert_eq!(whole, ["{\"a\":\"é\"}", "[DONE]"]);
        // Every cut, including inside the two bytes of `é`.
        let bytes = stream.as_bytes();
        for cut in 1..bytes.len() {
            let got = all(&mut SseDecoder::new(), &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn crlf_multi_line_data_and_no_space_after_the_colon() {
        let got = all(
            &mut SseDecoder::new(),
            &[b"data:one\r\ndata:  two\r\n\r\ndata\r\n\r\n"],
        );
        assert_eq!(got, ["one\n two", ""]);
    }

    #[test]
    fn an_event_left_open_at_the_end_is_delivered() {
        assert_eq!(
            all(&mut SseDecoder::new(), &[b"data: {\"x\":1}\n"]),
            ["{\"x\":1}"]
        );
        assert_eq!(all(&mut SseDecoder::new(), &[b"data: [DONE]"]), ["[DONE]"]);
        assert!(all(&mut SseDecoder::new(), &[b": ping\n"]).is_empty());
    }

    #[test]
    fn bare_json_lines_count_as_events() {
        let got = all(&mut SseDecoder::new(), &[b"{\"a\":1}\n{\"b\":2}\n"]);
        assert_eq!(got, ["{\"a\":1}", "{\"b\":2}"]);
    }

    #[test]
    fn an_endless_line_is_an_error() {
        let mut d = SseDecoder::new();
        let big = vec![b'x'; MAX_LINE + 1];
        assert!(d.push(&big).is_err());
    }
}
