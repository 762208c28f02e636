//! [`CallParser`]: the model's answer, fed delta by delta, split into text for the client and
//! the calls of its `<<<TOOL_CALLS>>>` block.
//!
//! Text reaches the client as soon as it cannot be the start of an opening marker, so at most
//! `marker::OPEN_MAX` (22) bytes are ever held back. A marker inside a Markdown code fence is
//! prose (a model explaining the format), not a call; so is one right after a backtick (the
//! start of inline code: "I will answer with a `<<<TOOL_CALLS>>>` block"), which no real block
//! ever is. Once the block opens, nothing more is
//! text: the block is read when its closing marker arrives (or at the end of the turn, when the
//! model forgot it), and whatever follows is dropped. A closing marker inside a JSON string
//! does not close the block, so a call that writes this very format into a file still works.
//!
//! Pure: no I/O, no clock. Each parser serves one answer.

use std::sync::Arc;

use super::fence::Fences;
use super::marker::{self, Match};
use super::{ToolCall, ToolSet, block};

/// What the answer holds, in order. After `Calls` or `Malformed` nothing more is returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Text for the client.
    Text(String),
    /// The block's calls (several are parallel calls), with fresh ids.
    Calls(Vec<ToolCall>),
    /// A block that cannot be used: an unknown tool, arguments that break the tool's schema,
    /// JSON that cannot be read. `raw` is the block as the model wrote it, markers included;
    /// `reason` is short, names the tool and what is wrong, and fits the repair turn.
    Malformed { raw: String, reason: String },
}

/// Where the parser is in the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before any block.
    Text,
    /// Inside the block, waiting for its closing marker.
    Block,
    /// The block was read (or the turn ended): nothing more is returned.
    Done,
}

/// Where the block scan stands with respect to JSON strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    Out,
    /// Inside a `"` (or `'`, a tolerated drift) string; `escaped`: after a backslash.
    In {
        quote: char,
        escaped: bool,
    },
}

/// Splits one answer into text and calls. See the module doc.
#[derive(Debug)]
pub struct CallParser {
    set: Arc<ToolSet>,
    state: State,
    /// Text not yet returned: only ever a possible start of the opening marker.
    held: String,
    /// Fences in the text returned so far (the held text is not fed yet).
    fences: Fences,
    /// The last character returned was a backtick.
    after_backtick: bool,
    /// The block so far, from its opening marker on, as the model wrote it.
    raw: String,
    /// Where the body starts in `raw` (just after the opening marker).
    body_start: usize,
    /// How far `raw` was scanned for the closing marker; a possible closing marker cut by the
    /// end of a delta starts here.
    scanned: usize,
    quote: Quote,
}

impl CallParser {
    /// A parser for one answer. When the set allows no calls (empty, or `tool_choice: none`),
    /// everything is text: no block was asked for, so none is looked for.
    pub fn new(set: Arc<ToolSet>) -> Self {
        CallParser {
            set,
            state: State::Text,
            held: String::new(),
            fences: Fences::default(),
            after_backtick: false,
            raw: String::new(),
            body_start: 0,
            scanned: 0,
            quote: Quote::Out,
        }
    }

    /// Feeds the next piece of the answer.
    pub fn push(&mut self, delta: &str) -> Vec<Parsed> {
        let mut out = Vec::new();
        match self.state {
            State::Text if !self.set.calls_allowed() => text(&mut out, delta.to_string()),
            State::Text => {
                self.held.push_str(delta);
                self.scan_text(&mut out);
            }
            State::Block => {
                self.raw.push_str(delta);
                self.scan_block(&mut out);
            }
            State::Done => {}
        }
        out
    }

    /// The answer ended: held text is text after all, and a block without its closing marker
    /// is read as it stands.
    pub fn finish(&mut self) -> Vec<Parsed> {
        let mut out = Vec::new();
        match self.state {
            State::Text => text(&mut out, std::mem::take(&mut self.held)),
            State::Block => {
                // A closing marker cut short by the end of the turn is not part of the body.
                let body = &self.raw[self.body_start..self.scanned];
                let parsed = self.read(body, false, self.raw.clone());
                out.push(parsed);
            }
            State::Done => {}
        }
        self.state = State::Done;
        out
    }

    /// Returns the text that can no longer be a marker; stops at a marker (then scans the
    /// block) or at a possible one cut by the end of the delta (then holds it back).
    fn scan_text(&mut self, out: &mut Vec<Parsed>) {
        let mut found = None;
        for (i, c) in self.held.char_indices() {
            if c == '<' && !self.fences.inside() && !self.after_backtick {
                match marker::open(&self.held[i..]) {
                    Match::No => {}
                    m => {
                        found = Some((i, m));
                        break;
                    }
                }
            }
            self.fences.feed(c);
            self.after_backtick = c == '`';
        }
        match found {
            None => text(out, std::mem::take(&mut self.held)),
            Some((i, Match::Full(len))) => {
                self.raw = self.held.split_off(i);
                text(out, std::mem::take(&mut self.held));
                self.body_start = len;
                self.scanned = len;
                self.state = State::Block;
                self.scan_block(out);
            }
            Some((i, _partial)) => {
                let rest = self.held.split_off(i);
                text(out, std::mem::replace(&mut self.held, rest));
                debug_assert!(
                    self.held.len() < marker::OPEN_MAX,
                    "a partial marker is shorter"
                );
            }
        }
    }

    /// Scans the new part of the block for the closing marker, outside JSON strings.
    fn scan_block(&mut self, out: &mut Vec<Parsed>) {
        let start = self.scanned;
        for (offset, c) in self.raw[start..].char_indices() {
            let at = start + offset;
            self.quote = match self.quote {
                Quote::Out => match c {
                    '"' | '\'' => Quote::In {
                        quote: c,
                        escaped: false,
                    },
                    '<' => match marker::close(&self.raw[at..]) {
                        Match::No => Quote::Out,
                        Match::Partial => {
                            self.scanned = at;
                            return;
                        }
                        Match::Full(len) => {
                            let end = at + len;
                            let parsed = self.read(
                                &self.raw[self.body_start..at],
                                true,
                                self.raw[..end].to_string(),
                            );
                            out.push(parsed);
                            self.state = State::Done;
                            return;
                        }
                    },
                    _ => Quote::Out,
                },
                Quote::In { quote, escaped } => match c {
                    _ if escaped => Quote::In {
                        quote,
                        escaped: false,
                    },
                    '\\' => Quote::In {
                        quote,
                        escaped: true,
                    },
                    _ if c == quote => Quote::Out,
                    _ => Quote::In {
                        quote,
                        escaped: false,
                    },
                },
            };
        }
        self.scanned = self.raw.len();
    }

    fn read(&self, body: &str, closed: bool, raw: String) -> Parsed {
        match block::read_calls(&self.set, body, closed) {
            Ok(calls) => Parsed::Calls(calls),
            Err(reason) => Parsed::Malformed { raw, reason },
        }
    }
}

/// Adds `s` as text, unless empty.
fn text(out: &mut Vec<Parsed>, s: String) {
    if !s.is_empty() {
        out.push(Parsed::Text(s));
    }
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "parse_props.rs"]
mod props;
