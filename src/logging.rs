//! What reaches a log line: the field formatter of the pretty format, which escapes control
//! characters, and [`unprintable`], the characters it escapes (also the ones refused in names
//! clients choose, such as account labels).
//!
//! Clients choose many strings that end up in logs (model names in errors, labels, paths, the
//! request's own words in error messages). Written raw, a CR or LF in one forges log lines and
//! an ESC sequence repaints the terminal of whoever reads the log. The pretty format escapes
//! them in every field, the message included, so no call site has to remember to; the JSON
//! format is already safe (JSON strings escape control characters).

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::field::MakeExt as _;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{self, Writer};

/// Whether `c` must not reach a log line (or a client-chosen name) as is: C0 and C1 controls
/// and DEL, the Unicode line and paragraph separators, and the bidirectional overrides that
/// make text display in another order than it is stored.
pub fn unprintable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// The field formatter of the pretty format: `name=value` pairs separated by spaces (the
/// message bare), with [`unprintable`] characters escaped as `\n`, `\r`, `\t` or `\u{..}`.
pub fn fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    format::debug_fn(
        |w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
            let mut out = Escaping(w);
            if field.name() == "message" {
                write!(out, "{value:?}")
            } else {
                write!(out, "{field}={value:?}")
            }
        },
    )
    .delimited(" ")
}

/// A writer that escapes [`unprintable`] characters on their way through.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(at) = rest.find(unprintable) {
            self.0.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                other => write!(self.0, "\\u{{{:x}}}", u32::from(other))?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(s: &str) -> String {
        let mut out = String::new();
        Escaping(&mut out).write_str(s).expect("write");
        out
    }

    #[test]
    fn controls_separators_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escaped("a\r\nb\tc\u{1b}[31md\u{0}e\u{7f}f\u{85}g"),
            "a\\r\\nb\\tc\\u{1b}[31md\\u{0}e\\u{7f}f\\u{85}g"
        );
        assert_eq!(escaped("x\u{2028}y\u{202e}z"), "x\\u{2028}y\\u{202e}z");
        assert_eq!(
            escaped("plain, é, 中文 and emoji 🙂"),
            "plain, é, 中文 and emoji 🙂"
        );
    }

    #[test]
    fn every_field_of_an_event_is_escaped() {
        use tracing_subscriber::fmt::MakeWriter;

        #[derive(Clone, Default)]
        struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buf").extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        impl<'a> MakeWriter<'a> for Buf {
            type Writer = Buf;
            fn make_writer(&'a self) -> Buf {
                self.clone()
            }
        }

        let buf = Buf::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(buf.clone())
            .with_ansi(false)
            .fmt_fields(fields())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let label = "a\nFORGED";
            tracing::info_span!("request", path = %"/p\r").in_scope(|| {
                tracing::warn!(label = %label, debug = ?label, "said {}", "x\u{1b}y");
            });
        });
        let out = String::from_utf8(buf.0.lock().expect("buf").clone()).expect("utf8");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("label=a\\nFORGED"), "{out}");
        assert!(out.contains("said x\\u{1b}y"), "{out}");
        assert!(out.contains("path=/p\\r"), "{out}");
        assert!(!out.contains('\u{1b}') && !out.contains('\r'), "{out}");
    }
}
