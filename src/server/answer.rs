//! [`Answer`]: everything one answer said, gathered from its [`TurnEvent`]s in one place for
//! every client API. The streamed shapes render events as they come; the non-streamed responses
//! and conversation memory read the whole answer from here.

use crate::conversation::{Message, ToolCall};
use crate::upstream::{FinishReason, TurnEvent, Usage};

/// One answer as it accumulates.
#[derive(Debug, Default)]
pub struct Answer {
    /// The reasoning as the upstream produced it.
    pub reasoning: String,
    /// The visible text as the upstream produced it (no think tags): what the client echoes.
    pub text: String,
    /// The tool calls, arguments complete once the answer finished.
    pub calls: Vec<ToolCall>,
    /// What the upstream said about why it stopped (the CLI door).
    pub stopped: Option<FinishReason>,
    /// The upstream's own token counts (the CLI door).
    pub usage: Option<Usage>,
    /// The upstream finished the turn (as opposed to an error or a closed stream).
    pub finished: bool,
}

impl Answer {
    pub fn push(&mut self, ev: &TurnEvent) {
        match ev {
            TurnEvent::Reasoning(t) => self.reasoning.push_str(t),
            TurnEvent::Content(t) => self.text.push_str(t),
            TurnEvent::ToolCallStart { index, id, name } => {
                if self.calls.len() <= *index {
                    self.calls.resize_with(index + 1, || ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                }
                self.calls[*index].id.clone_from(id);
                self.calls[*index].name.clone_from(name);
            }
            TurnEvent::ToolCallArgs { index, delta } => {
                if let Some(c) = self.calls.get_mut(*index) {
                    c.arguments.push_str(delta);
                }
            }
            TurnEvent::ToolCallEnd { .. } => {}
            TurnEvent::Stopped(r) => self.stopped = Some(*r),
            TurnEvent::Usage(u) => self.usage = Some(*u),
            TurnEvent::Finished { .. } => self.finished = true,
        }
    }

    /// Why the answer ended: the upstream's word, except that an answer with tool calls ended
    /// for them.
    pub fn finish_reason(&self) -> FinishReason {
        match self.stopped {
            _ if !self.calls.is_empty() => FinishReason::ToolCalls,
            Some(r) => r,
            None => FinishReason::Stop,
        }
    }

    /// The answer as the assistant message the client will echo (for conversation memory).
    pub fn message(&self) -> Message {
        Message::calls(self.text.clone(), self.calls.clone())
    }

    /// Tool-call arguments of call `i` as JSON (an object; `{}` when the text is not JSON).
    pub fn arguments_json(&self, i: usize) -> serde_json::Value {
        self.calls
            .get(i)
            .and_then(|c| serde_json::from_str(&c.arguments).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_text_reasoning_and_calls_in_order() {
        let mut a = Answer::default();
        for ev in [
            TurnEvent::Reasoning("r".into()),
            TurnEvent::Content("Hi".into()),
            TurnEvent::ToolCallStart {
                index: 0,
                id: "c1".into(),
                name: "Write".into(),
            },
            TurnEvent::ToolCallArgs {
                index: 0,
                delta: "{\"a\":".into(),
            },
            TurnEvent::ToolCallArgs {
                index: 0,
                delta: "1}".into(),
            },
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::Finished { cancelled: false },
        ] {
            a.push(&ev);
        }
        assert_eq!((a.reasoning.as_str(), a.text.as_str()), ("r", "Hi"));
        assert_eq!(a.calls[0].arguments, "{\"a\":1}");
        assert_eq!(a.arguments_json(0)["a"], 1);
        assert_eq!(a.finish_reason(), FinishReason::ToolCalls);
        assert!(a.finished);
        assert_eq!(a.message().tool_calls.len(), 1);
    }

    #[test]
    fn upstream_reason_counts_without_calls() {
        let mut a = Answer::default();
        a.push(&TurnEvent::Stopped(FinishReason::Length));
        assert_eq!(a.finish_reason(), FinishReason::Length);
    }
}
