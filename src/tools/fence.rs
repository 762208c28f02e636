//! Markdown code fences, followed one character at a time.
//!
//! A model that explains the call format shows an example block, usually inside a fence; that
//! example must not become a call. Fences are tracked the way Markdown renders them: a line
//! that starts (after any indentation, so fences inside list items count) with three or more
//! backticks or tildes opens one, and a line holding only a run of the same character, at least
//! as long, closes it. Inline code spans are not tracked: a stray backtick would hide a real
//! block for the rest of the line, which costs more than it saves.

/// Where the text fed so far stands with respect to fences.
#[derive(Debug, Default)]
pub(crate) struct Fences {
    /// The fence we are inside: its character and the length of its opening run.
    open: Option<(char, usize)>,
    line: Line,
}

/// Progress through the current line.
#[derive(Debug, Default, Clone, Copy)]
enum Line {
    /// Only blanks so far.
    #[default]
    Start,
    /// A run of fence characters at the start of the line.
    Run { ch: char, len: usize },
    /// Past the start. `closing`: the line began with a run that closes the open fence and
    /// nothing but blanks followed it yet.
    Rest { closing: bool },
}

impl Fences {
    /// Whether a marker at the next character would be inside a fence. A run of three fence
    /// characters that the next character ends opens a fence, so it counts already.
    pub(crate) fn inside(&self) -> bool {
        match (self.open, self.line) {
            (Some(_), _) => true,
            (None, Line::Run { len, .. }) => len >= 3,
            (None, _) => false,
        }
    }

    pub(crate) fn feed(&mut self, c: char) {
        self.line = match self.line {
            Line::Start => match c {
                ' ' | '\t' | '\r' | '\n' => Line::Start,
                '`' | '~' => Line::Run { ch: c, len: 1 },
                _ => Line::Rest { closing: false },
            },
            Line::Run { ch, len } if c == ch => Line::Run { ch, len: len + 1 },
            Line::Run { ch, len } => {
                let closing = self.end_run(ch, len);
                self.rest(closing, c)
            }
            Line::Rest { closing } => self.rest(closing, c),
        };
    }

    /// A run at the start of a line ended: opens a fence, or may close the open one (returns
    /// whether it may).
    fn end_run(&mut self, ch: char, len: usize) -> bool {
        match self.open {
            None => {
                if len >= 3 {
                    self.open = Some((ch, len));
                }
                false
            }
            Some((open_ch, open_len)) => ch == open_ch && len >= open_len,
        }
    }

    fn rest(&mut self, closing: bool, c: char) -> Line {
        match c {
            '\n' => {
                if closing {
                    self.open = None;
                }
                Line::Start
            }
            ' ' | '\t' | '\r' => Line::Rest { closing },
            _ => Line::Rest { closing: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `inside()` before each character of `text`, as a string of `i`/`.`.
    fn trace(text: &str) -> String {
        let mut f = Fences::default();
        text.chars()
            .map(|c| {
                let mark = if f.inside() { 'i' } else { '.' };
                f.feed(c);
                mark
            })
            .collect()
    }

    fn inside_after(text: &str) -> bool {
        let mut f = Fences::default();
        text.chars().for_each(|c| f.feed(c));
        f.inside()
    }

    #[test]
    fn a_fence_covers_its_lines_until_it_closes() {
        assert!(!inside_after("text\n"));
        assert!(inside_after("text\n```json\n{}\n"));
        assert!(!inside_after("text\n```json\n{}\n```\n"));
        assert!(inside_after("~~~\nx\n"));
        assert!(!inside_after("~~~\nx\n~~~\n"));
    }

    #[test]
    fn the_rest_of_an_opening_line_is_inside() {
        assert_eq!(trace("```<"), "...i");
    }

    #[test]
    fn indented_fences_count() {
        assert!(inside_after("1. step\n   ```\n   x\n"));
        assert!(!inside_after("1. step\n   ```\n   x\n   ```\n"));
    }

    #[test]
    fn only_a_long_enough_run_of_the_same_character_closes() {
        assert!(inside_after("````\nx\n```\n"));
        assert!(inside_after("```\nx\n~~~\n"));
        assert!(!inside_after("````\nx\n`````\n"));
    }

    #[test]
    fn a_closing_run_followed_by_text_does_not_close() {
        assert!(inside_after("```\nx\n``` more\n"));
        assert!(!inside_after("```\nx\n```  \n"));
    }

    #[test]
    fn short_runs_and_mid_line_backticks_are_not_fences() {
        assert!(!inside_after("``x``\n"));
        assert!(!inside_after("see ```this``` inline\n"));
    }
}
