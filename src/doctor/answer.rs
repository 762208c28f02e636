//! [`Answer`]: everything one test turn yielded, read to its end from a [`Turn`] (either door),
//! with the time of its first event. The checks judge it; nothing here decides pass or fail.

use std::time::{Duration, Instant};

use crate::upstream::{Turn, TurnEvent, UpstreamError};

/// A turn read to its end.
#[derive(Debug, Default)]
pub struct Answer {
    pub text: String,
    pub reasoning: String,
    /// Names of the native tool calls (the CLI door).
    pub tool_calls: Vec<String>,
    /// `Finished` arrived (else the stream ended early or failed).
    pub finished: bool,
    pub error: Option<UpstreamError>,
    /// From the start of the turn to its first event.
    pub first_event: Option<Duration>,
    pub took: Duration,
}

impl Answer {
    /// Reads `turn` until it finishes, fails, or ends; `started` is when the turn was asked for.
    pub async fn collect(mut turn: Turn, started: Instant) -> Answer {
        let mut a = Answer::default();
        while let Some(event) = turn.next().await {
            if a.first_event.is_none() {
                a.first_event = Some(started.elapsed());
            }
            match event {
                Ok(TurnEvent::Content(t)) => a.text.push_str(&t),
                Ok(TurnEvent::Reasoning(t)) => a.reasoning.push_str(&t),
                Ok(TurnEvent::ToolCallStart { name, .. }) => a.tool_calls.push(name),
                Ok(TurnEvent::Finished { .. }) => {
                    a.finished = true;
                    break;
                }
                Ok(_) => {}
                Err(e) => {
                    a.error = Some(e);
                    break;
                }
            }
        }
        a.took = started.elapsed();
        a
    }

    /// The text, shortened for one report line.
    pub fn excerpt(&self) -> String {
        excerpt(&self.text, 60)
    }
}

/// `text` on one line, cut to `max` characters with an ellipsis.
pub fn excerpt(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max).collect();
    format!("{cut}…")
}

/// Milliseconds, for report lines.
pub fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt("ok\n", 10), "ok");
        assert_eq!(excerpt("a  b\nc", 10), "a b c");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }
}
