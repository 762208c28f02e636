//! The `<<<TOOL_CALLS>>>` and `<<<END_TOOL_CALLS>>>` markers, as models actually write them.
//!
//! Models drift on whitespace and case (`<<< tool_calls >>>`), on the separator
//! (`TOOL CALLS`, `tool-calls`, `TOOLCALLS`), on the plural, and close with `<</TOOL_CALLS>>`-ish
//! XML habits. The accepted forms are bounded (at most three blanks on each side), so a
//! streaming reader knows the longest text it may have to hold back: [`OPEN_MAX`] bytes.
//!
//! Matching works on a prefix and can answer "not yet": a delta that ends in `<<<TOO` must be
//! held back until the next delta says whether it was a marker.

/// What the text at some position is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Not a marker.
    No,
    /// Could still become a marker: the text ends before it could be decided.
    Partial,
    /// A marker of this many bytes.
    Full(usize),
}

/// The longest opening marker accepted: `<<<` + 3 blanks + `tool` + separator + `calls`
/// + 3 blanks + `>>>`.
pub(crate) const OPEN_MAX: usize = 3 + 3 + 4 + 1 + 5 + 3 + 3;

/// Blanks tolerated on each side of the name.
const MAX_BLANKS: usize = 3;

/// Separators tolerated between the words.
const SEPARATORS: &[u8] = b" _-";

/// The opening marker, at the start of `text`.
pub(crate) fn open(text: &str) -> Match {
    run(text, |c| {
        c.lit(b"<<<")?;
        c.blanks()?;
        c.tool_calls()?;
        c.blanks()?;
        c.lit(b">>>")
    })
}

/// The closing marker (`<<<END_TOOL_CALLS>>>` or `<<</TOOL_CALLS>>>`), at the start of `text`.
pub(crate) fn close(text: &str) -> Match {
    run(text, |c| {
        c.lit(b"<<<")?;
        c.blanks()?;
        if c.peek()? == b'/' {
            c.pos += 1;
        } else {
            c.lit(b"end")?;
            c.optional(SEPARATORS)?;
        }
        c.tool_calls()?;
        c.blanks()?;
        c.lit(b">>>")
    })
}

/// Why matching stopped early.
enum Stop {
    No,
    Partial,
}

/// A position in the text being matched.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn run(text: &str, pattern: impl FnOnce(&mut Cursor<'_>) -> Result<(), Stop>) -> Match {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    match pattern(&mut cursor) {
        Ok(()) => Match::Full(cursor.pos),
        Err(Stop::No) => Match::No,
        Err(Stop::Partial) => Match::Partial,
    }
}

impl Cursor<'_> {
    fn peek(&self) -> Result<u8, Stop> {
        self.bytes.get(self.pos).copied().ok_or(Stop::Partial)
    }

    /// `word`, ASCII case ignored.
    fn lit(&mut self, word: &[u8]) -> Result<(), Stop> {
        for &expected in word {
            if !self.peek()?.eq_ignore_ascii_case(&expected) {
                return Err(Stop::No);
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// Up to [`MAX_BLANKS`] spaces or tabs.
    fn blanks(&mut self) -> Result<(), Stop> {
        let mut n = 0;
        while matches!(self.peek()?, b' ' | b'\t') {
            n += 1;
            if n > MAX_BLANKS {
                return Err(Stop::No);
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// One byte of `set`, if there.
    fn optional(&mut self, set: &[u8]) -> Result<(), Stop> {
        if set.contains(&self.peek()?.to_ascii_lowercase()) {
            self.pos += 1;
        }
        Ok(())
    }

    /// `tool_calls` with its drifts: `tool calls`, `TOOL-CALLS`, `toolcalls`, `tool_call`.
    fn tool_calls(&mut self) -> Result<(), Stop> {
        self.lit(b"tool")?;
        self.optional(SEPARATORS)?;
        self.lit(b"call")?;
        self.optional(b"s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_markers_match_exactly() {
        assert_eq!(open("<<<TOOL_CALLS>>>\n["), Match::Full(16));
        assert_eq!(close("<<<END_TOOL_CALLS>>> bye"), Match::Full(20));
    }

    #[test]
    fn whitespace_case_and_separator_drift_is_accepted() {
        for m in [
            "<<< tool_calls >>>",
            "<<<Tool Calls>>>",
            "<<<tool-calls>>>",
            "<<<TOOLCALLS>>>",
            "<<<TOOL_CALL>>>",
            "<<<\tTOOL_CALLS   >>>",
        ] {
            assert_eq!(open(m), Match::Full(m.len()), "{m}");
        }
        for m in [
            "<<< end_tool_calls >>>",
            "<<<END TOOL CALLS>>>",
            "<<</TOOL_CALLS>>>",
            "<<<ENDTOOLCALLS>>>",
        ] {
            assert_eq!(close(m), Match::Full(m.len()), "{m}");
        }
    }

    #[test]
    fn other_text_is_not_a_marker() {
        for t in [
            "<<<TOOLS>>>",
            "<<<    TOOL_CALLS>>>",
            "<<TOOL_CALLS>>>",
            "<b>",
            "<<<TOOL__CALLS>>>",
        ] {
            assert_eq!(open(t), Match::No, "{t}");
        }
        assert_eq!(close("<<<TOOL_CALLS>>>"), Match::No);
    }

    #[test]
    fn every_prefix_of_a_marker_is_partial() {
        let m = "<<< TOOL_CALLS >>>";
        for end in 1..m.len() {
            assert_eq!(open(&m[..end]), Match::Partial, "{}", &m[..end]);
        }
    }

    #[test]
    fn the_longest_accepted_opening_marker_is_open_max() {
        let longest = "<<<   TOOL_CALLS   >>>";
        assert_eq!(open(longest), Match::Full(OPEN_MAX));
    }
}
