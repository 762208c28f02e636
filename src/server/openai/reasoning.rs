//! Where reasoning goes (`REASONING`): turns upstream deltas into reasoning and content deltas.
//!
//! In `think-tags` mode the reasoning is wrapped in `<think>...</think>` at the start of the
//! content; the tags are opened and closed exactly once per answer, even when the upstream
//! alternates, so the client always sees a well-formed block. Reasoning never reaches
//! `content` unmarked.

use crate::config::ReasoningMode;
use crate::upstream::TurnEvent;

/// One piece of output for the client.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Piece {
    pub reasoning: Option<String>,
    pub content: Option<String>,
}

/// Sends each delta of reasoning where `REASONING` says, keeping the think tags well-formed.
pub struct ReasoningRouter {
    mode: ReasoningMode,
    think_open: bool,
    think_closed: bool,
}

impl ReasoningRouter {
    pub fn new(mode: ReasoningMode) -> Self {
        ReasoningRouter {
            mode,
            think_open: false,
            think_closed: false,
        }
    }

    /// Routes one upstream event's text to reasoning or content; `Finished` closes an open
    /// think block.
    pub fn route(&mut self, ev: &TurnEvent) -> Option<Piece> {
        let piece = match (ev, self.mode) {
            (TurnEvent::Reasoning(t), ReasoningMode::Field) => Piece {
                reasoning: Some(t.clone()),
                content: None,
            },
            (TurnEvent::Reasoning(_), ReasoningMode::Hide) => return None,
            (TurnEvent::Reasoning(t), ReasoningMode::ThinkTags) => {
                if self.think_closed {
                    // Reasoning after the answer started: keep it out of the content.
                    return None;
                }
                let mut s = String::new();
                if !self.think_open {
                    self.think_open = true;
                    s.push_str("<think>");
                }
                s.push_str(t);
                Piece {
                    reasoning: None,
                    content: Some(s),
                }
            }
            (TurnEvent::Content(t), _) => {
                let mut s = String::new();
                if self.think_open && !self.think_closed {
                    self.think_closed = true;
                    s.push_str("</think>\n\n");
                }
                s.push_str(t);
                Piece {
                    reasoning: None,
                    content: Some(s),
                }
            }
            (TurnEvent::Finished { .. }, _) if self.think_open && !self.think_closed => {
                self.think_closed = true;
                Piece {
                    reasoning: None,
                    content: Some("</think>".to_string()),
                }
            }
            // Tool calls, stop reasons and usage are not text: `ChatChunks` renders them.
            _ => return None,
        };
        Some(piece)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: ReasoningMode, evs: &[TurnEvent]) -> (String, String) {
        let mut s = ReasoningRouter::new(mode);
        let (mut r, mut c) = (String::new(), String::new());
        for e in evs {
            if let Some(p) = s.route(e) {
                r.push_str(p.reasoning.as_deref().unwrap_or(""));
                c.push_str(p.content.as_deref().unwrap_or(""));
            }
        }
        (r, c)
    }

    fn evs() -> Vec<TurnEvent> {
        vec![
            TurnEvent::Reasoning("hmm ".into()),
            TurnEvent::Reasoning("ok".into()),
            TurnEvent::Content("Hi".into()),
            TurnEvent::Content(" there".into()),
            TurnEvent::Finished { cancelled: false },
        ]
    }

    #[test]
    fn field_mode_keeps_reasoning_apart() {
        assert_eq!(
            run(ReasoningMode::Field, &evs()),
            ("hmm ok".into(), "Hi there".into())
        );
    }

    #[test]
    fn think_tags_wrap_once() {
        assert_eq!(
            run(ReasoningMode::ThinkTags, &evs()).1,
            "<think>hmm ok</think>\n\nHi there"
        );
        let only_thinking = [
            TurnEvent::Reasoning("x".into()),
            TurnEvent::Finished { cancelled: false },
        ];
        assert_eq!(
            run(ReasoningMode::ThinkTags, &only_thinking).1,
            "<think>x</think>"
        );
    }

    #[test]
    fn hide_drops_reasoning() {
        assert_eq!(
            run(ReasoningMode::Hide, &evs()),
            (String::new(), "Hi there".into())
        );
    }
}
