//! Upstream events as Anthropic content blocks: an optional `thinking` block, then a `text`
//! block, then one `tool_use` block per tool call, each opened, filled by deltas (text, or
//! pieces of the call's JSON input) and closed, with increasing indexes.
//!
//! Reasoning is shown unless `REASONING=hide` (`think-tags` is about OpenAI's `content`, which
//! has no separate place for it; Anthropic's format does). Reasoning that arrives after the
//! answer started is dropped, so the answer stays one block and the thinking stays before it.
//! An answer without tool calls always has a text block, even an empty one, as clients expect.

use crate::config::ReasoningMode;
use crate::upstream::TurnEvent;

/// Which kind of block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Thinking,
    Text,
    ToolUse,
}

/// One step of the block sequence, in the order the client must see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Start {
        index: usize,
        kind: Kind,
    },
    Delta {
        index: usize,
        kind: Kind,
        text: String,
    },
    /// A `tool_use` block opens (its deltas are `input_json_delta`s).
    StartTool {
        index: usize,
        id: String,
        name: String,
    },
    Stop {
        index: usize,
    },
}

/// Follows one answer's blocks; also keeps what was emitted, for the non-streamed answer,
/// usage and conversation memory.
pub struct Blocks {
    show_thinking: bool,
    open: Option<(usize, Kind)>,
    next_index: usize,
    text_started: bool,
    /// `tool_use` blocks opened so far.
    tools: usize,
    /// The reasoning the client received.
    pub thinking: String,
    /// The visible answer: what the client will echo, and what is remembered.
    pub text: String,
}

impl Blocks {
    pub fn new(mode: ReasoningMode) -> Self {
        Blocks {
            show_thinking: mode != ReasoningMode::Hide,
            open: None,
            next_index: 0,
            text_started: false,
            tools: 0,
            thinking: String::new(),
            text: String::new(),
        }
    }

    /// The steps for one upstream event; `Finished` closes the message (see [`Blocks::finish`]).
    pub fn push(&mut self, ev: &TurnEvent) -> Vec<Step> {
        let mut steps = Vec::new();
        match ev {
            TurnEvent::Reasoning(t)
                if self.show_thinking && !self.text_started && self.tools == 0 =>
            {
                if t.is_empty() {
                    return steps;
                }
                let index = self.enter(Kind::Thinking, &mut steps);
                self.thinking.push_str(t);
                steps.push(Step::Delta {
                    index,
                    kind: Kind::Thinking,
                    text: t.clone(),
                });
            }
            TurnEvent::Reasoning(_) => {}
            TurnEvent::Content(t) => {
                if t.is_empty() {
                    return steps;
                }
                let index = self.enter(Kind::Text, &mut steps);
                self.text.push_str(t);
                steps.push(Step::Delta {
                    index,
                    kind: Kind::Text,
                    text: t.clone(),
                });
            }
            TurnEvent::ToolCallStart { id, name, .. } => {
                if let Some((index, _)) = self.open.take() {
                    steps.push(Step::Stop { index });
                }
                let index = self.next_index;
                self.next_index += 1;
                self.open = Some((index, Kind::ToolUse));
                self.tools += 1;
                steps.push(Step::StartTool {
                    index,
                    id: id.clone(),
                    name: name.clone(),
                });
            }
            TurnEvent::ToolCallArgs { delta, .. } => {
                if let Some((index, Kind::ToolUse)) = self.open
                    && !delta.is_empty()
                {
                    steps.push(Step::Delta {
                        index,
                        kind: Kind::ToolUse,
                        text: delta.clone(),
                    });
                }
            }
            TurnEvent::ToolCallEnd { .. } => {
                if let Some((index, Kind::ToolUse)) = self.open {
                    self.open = None;
                    steps.push(Step::Stop { index });
                }
            }
            TurnEvent::Stopped(_) | TurnEvent::Usage(_) => {}
            TurnEvent::Finished { .. } => steps = self.finish(),
        }
        steps
    }

    /// Closes the open block and makes sure a text block exists when there is no tool call.
    pub fn finish(&mut self) -> Vec<Step> {
        let mut steps = Vec::new();
        if !self.text_started && self.tools == 0 {
            self.enter(Kind::Text, &mut steps);
        }
        if let Some((index, _)) = self.open.take() {
            steps.push(Step::Stop { index });
        }
        steps
    }

    /// Makes `kind` the open block (closing another one first) and returns its index.
    fn enter(&mut self, kind: Kind, steps: &mut Vec<Step>) -> usize {
        if let Some((index, open)) = self.open {
            if open == kind {
                return index;
            }
            steps.push(Step::Stop { index });
        }
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        if kind == Kind::Text {
            self.text_started = true;
        }
        steps.push(Step::Start { index, kind });
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Step::*;

    fn run(mode: ReasoningMode, evs: &[TurnEvent]) -> (Vec<Step>, Blocks) {
        let mut b = Blocks::new(mode);
        let steps = evs.iter().flat_map(|e| b.push(e)).collect();
        (steps, b)
    }

    fn d(index: usize, kind: Kind, t: &str) -> Step {
        Delta {
            index,
            kind,
            text: t.into(),
        }
    }

    #[test]
    fn thinking_then_text_with_late_reasoning_dropped() {
        let evs = [
            TurnEvent::Reasoning("hmm".into()),
            TurnEvent::Reasoning(" ok".into()),
            TurnEvent::Content("Hi".into()),
            TurnEvent::Reasoning("late".into()),
            TurnEvent::Content(" there".into()),
            TurnEvent::Finished { cancelled: false },
        ];
        let (steps, b) = run(ReasoningMode::ThinkTags, &evs);
        assert_eq!(
            steps,
            [
                Start {
                    index: 0,
                    kind: Kind::Thinking
                },
                d(0, Kind::Thinking, "hmm"),
                d(0, Kind::Thinking, " ok"),
                Stop { index: 0 },
                Start {
                    index: 1,
                    kind: Kind::Text
                },
                d(1, Kind::Text, "Hi"),
                d(1, Kind::Text, " there"),
                Stop { index: 1 },
            ]
        );
        assert_eq!(
            (b.thinking.as_str(), b.text.as_str()),
            ("hmm ok", "Hi there")
        );
    }

    #[test]
    fn hide_drops_thinking_and_empty_answers_get_a_text_block() {
        let evs = [
            TurnEvent::Reasoning("hmm".into()),
            TurnEvent::Finished { cancelled: false },
        ];
        let (steps, b) = run(ReasoningMode::Hide, &evs);
        assert_eq!(
            steps,
            [
                Start {
                    index: 0,
                    kind: Kind::Text
                },
                Stop { index: 0 }
            ]
        );
        assert!(b.thinking.is_empty() && b.text.is_empty());
    }

    #[test]
    fn tool_calls_are_blocks_of_their_own_and_need_no_text_block() {
        let evs = [
            TurnEvent::ToolCallStart {
                index: 0,
                id: "c1".into(),
                name: "Write".into(),
            },
            TurnEvent::ToolCallArgs {
                index: 0,
                delta: "{}".into(),
            },
            TurnEvent::ToolCallEnd { index: 0 },
            TurnEvent::Finished { cancelled: false },
        ];
        let (steps, _) = run(ReasoningMode::Field, &evs);
        assert_eq!(
            steps,
            [
                StartTool {
                    index: 0,
                    id: "c1".into(),
                    name: "Write".into()
                },
                d(0, Kind::ToolUse, "{}"),
                Stop { index: 0 }
            ]
        );
    }
}
