//! Tool calls on the web door: the answer's text goes through the [`CallParser`], which lets
//! plain text through at once and turns a `<<<TOOL_CALLS>>>` block into tool-call events
//! (format: `docs/tool-emulation.md`).
//!
//! A block that cannot be used (bad JSON, an unknown tool, arguments against the schema) gets
//! one repair turn in the same upstream chat, on the account the answer already holds: the
//! model is told what was wrong and asked for the corrected block only. If the repair fails too,
//! the original block reaches the client as plain text, with a warning in the log and a metric,
//! so a model that ignores the format degrades to a text answer, never to an error or a hang.
//! Whatever the model writes after a block is dropped (the turn is still read to its end, so
//! the upstream chat is idle before the client's next turn).

use std::collections::VecDeque;
use std::sync::Arc;

use super::Completion;
use crate::tools::{CallParser, Parsed, ToolCall, ToolSet};
use crate::upstream::{Account, EngineClient, Turn, TurnEvent, TurnRequest, UpstreamError};

/// Where the answer stands.
enum Phase {
    /// Text flows to the client; a block may start at any time.
    Streaming,
    /// A block was found (usable or not); the rest of the upstream turn is read and dropped.
    Draining(Outcome),
    /// The repair turn runs; its text is not shown, only a usable block counts.
    Repairing { raw: String },
    /// `Finished` was delivered.
    Done,
}

enum Outcome {
    Calls(Vec<ToolCall>),
    Malformed { raw: String, reason: String },
}

/// The emulation state of one answer.
pub struct Emulation {
    set: Arc<ToolSet>,
    parser: CallParser,
    phase: Phase,
    out: VecDeque<TurnEvent>,
    /// A repair turn was run (there is at most one).
    repaired: bool,
}

impl Emulation {
    pub fn new(set: Arc<ToolSet>) -> Self {
        Emulation {
            parser: CallParser::new(Arc::clone(&set)),
            set,
            phase: Phase::Streaming,
            out: VecDeque::new(),
            repaired: false,
        }
    }

    /// The next event for the client, reading the upstream turn (and running a repair turn)
    /// as needed.
    pub async fn next(
        &mut self,
        turn: &mut Turn,
        engine: &EngineClient,
        completion: &Completion,
        account: &Arc<Account>,
    ) -> Option<Result<TurnEvent, UpstreamError>> {
        loop {
            if let Some(ev) = self.out.pop_front() {
                return Some(Ok(ev));
            }
            if matches!(self.phase, Phase::Done) {
                return None;
            }
            let ev = match turn.next().await? {
                Ok(ev) => ev,
                Err(e) => return Some(Err(e)),
            };
            match ev {
                TurnEvent::Content(text) => {
                    let parsed = match self.phase {
                        Phase::Streaming | Phase::Repairing { .. } => self.parser.push(&text),
                        _ => Vec::new(),
                    };
                    self.take(parsed);
                }
                TurnEvent::Reasoning(_) if matches!(self.phase, Phase::Repairing { .. }) => {}
                TurnEvent::Finished { cancelled } => {
                    if matches!(self.phase, Phase::Streaming | Phase::Repairing { .. }) {
                        let parsed = self.parser.finish();
                        self.take(parsed);
                    }
                    self.settle(cancelled, turn, engine, completion, account)
                        .await;
                }
                other => self.out.push_back(other),
            }
        }
    }

    /// Queues the text of `parsed` (unless repairing) and records a block's outcome.
    fn take(&mut self, parsed: Vec<Parsed>) {
        for p in parsed {
            match p {
                Parsed::Text(t) => {
                    if matches!(self.phase, Phase::Streaming) && !t.is_empty() {
                        self.out.push_back(TurnEvent::Content(t));
                    }
                }
                Parsed::Calls(calls) => self.found(Outcome::Calls(calls)),
                Parsed::Malformed { raw, reason } => self.found(Outcome::Malformed { raw, reason }),
            }
        }
    }

    fn found(&mut self, outcome: Outcome) {
        match std::mem::replace(&mut self.phase, Phase::Streaming) {
            Phase::Repairing { raw } => {
                self.phase = match outcome {
                    Outcome::Calls(calls) => Phase::Draining(Outcome::Calls(calls)),
                    // Still unusable: the original block goes to the client as text.
                    Outcome::Malformed { reason, .. } => Phase::Draining(Outcome::Malformed {
                        raw,
                        reason: format!("still unusable after the repair turn: {reason}"),
                    }),
                };
            }
            Phase::Streaming => self.phase = Phase::Draining(outcome),
            other => self.phase = other,
        }
    }

    /// The upstream turn finished: emit the calls, start the repair turn, or degrade to text.
    async fn settle(
        &mut self,
        cancelled: bool,
        turn: &mut Turn,
        engine: &EngineClient,
        completion: &Completion,
        account: &Arc<Account>,
    ) {
        let phase = std::mem::replace(&mut self.phase, Phase::Done);
        let finished = TurnEvent::Finished { cancelled };
        match phase {
            Phase::Draining(Outcome::Calls(calls)) => {
                self.emit_calls(calls);
                let outcome = if self.repaired { "repaired" } else { "parsed" };
                metrics::counter!(crate::metrics::TOOL_CALL_ANSWERS, "outcome" => outcome)
                    .increment(1);
            }
            Phase::Draining(Outcome::Malformed { raw, reason }) if !cancelled => {
                if self.repaired {
                    self.degrade(raw, &reason);
                } else {
                    tracing::info!(%reason, "the model's tool-call block is unusable; asking it once to repair it");
                    metrics::counter!(crate::metrics::TOOL_CALL_REPAIRS).increment(1);
                    let req = TurnRequest {
                        model: completion.model().to_string(),
                        prompt: crate::tools::prompt::repair_prompt(&reason),
                        continue_history: Some(completion.history().clone()),
                        images: Vec::new(),
                    };
                    match engine.start_turn(account, req).await {
                        Ok(repair) => {
                            completion.add_extra_turn();
                            *turn = repair;
                            self.parser = CallParser::new(Arc::clone(&self.set));
                            self.phase = Phase::Repairing { raw };
                            self.repaired = true;
                            return;
                        }
                        Err(e) => {
                            self.degrade(raw, &format!("{reason}; the repair turn failed: {e}"));
                        }
                    }
                }
            }
            Phase::Draining(Outcome::Malformed { raw, reason }) => self.degrade(raw, &reason),
            Phase::Repairing { raw } => {
                self.degrade(raw, "the repair turn held no tool-call block");
            }
            Phase::Streaming | Phase::Done => {}
        }
        self.out.push_back(finished);
    }

    fn emit_calls(&mut self, calls: Vec<ToolCall>) {
        for (index, c) in calls.into_iter().enumerate() {
            self.out.push_back(TurnEvent::ToolCallStart {
                index,
                id: c.id,
                name: c.name,
            });
            self.out.push_back(TurnEvent::ToolCallArgs {
                index,
                delta: c.arguments,
            });
            self.out.push_back(TurnEvent::ToolCallEnd { index });
        }
    }

    /// The block reaches the client as the text the model wrote.
    fn degrade(&mut self, raw: String, reason: &str) {
        tracing::warn!(%reason, "the model's tool-call block stays unusable; it is passed on as text");
        metrics::counter!(crate::metrics::TOOL_CALL_ANSWERS, "outcome" => "degraded").increment(1);
        if !raw.is_empty() {
            self.out.push_back(TurnEvent::Content(raw));
        }
    }
}
