//! Fingerprints of conversation prefixes.
//!
//! A fingerprint is a SHA-256 over the scope (client key and model) and each message's role and
//! normalised text. Normalisation makes the match survive how clients echo the assistant text
//! back: runs of whitespace collapse to one space, ends are trimmed, and `<think>...</think>`
//! blocks (which we add ourselves in `think-tags` mode) are dropped from assistant messages.
//! Each field is length-prefixed so that no two different conversations hash the same input.

use sha2::{Digest, Sha256};

use super::message::{Message, Role};

/// What a fingerprint is scoped to: two clients (keys), two models, two client sessions or two
/// tool sets never share a history.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// A non-secret id of the client key (a hash prefix), or `open` without keys.
    pub client: String,
    pub model: String,
    /// The client's own session id when it sends one (Claude Code's
    /// `X-Claude-Code-Session-Id`), so side requests of another session never continue it.
    pub session: Option<String>,
    /// The digest of the offered tools: the upstream history holds the tools block it was
    /// started with, so another tool set must start another history.
    pub tools: Option<String>,
}

/// A hex SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub String);

impl Fingerprint {
    /// Fingerprint of `messages` under `scope`.
    pub fn of(scope: &Scope, messages: &[Message]) -> Fingerprint {
        Fingerprint::start(scope, messages).then(&[])
    }

    /// The fingerprint of `messages` under `scope` with more messages to come: what a turn
    /// keeps to fingerprint its conversation once the answer is known, instead of the messages.
    pub fn start(scope: &Scope, messages: &[Message]) -> Partial {
        let mut h = Sha256::new();
        feed(&mut h, b"el2a-conv-v1");
        feed(&mut h, scope.client.as_bytes());
        feed(&mut h, scope.model.to_ascii_lowercase().as_bytes());
        // Optional parts are fed only when present, so that conversations without them keep
        // the fingerprints stored before these parts existed.
        for (tag, part) in [("session", &scope.session), ("tools", &scope.tools)] {
            if let Some(p) = part {
                feed(&mut h, tag.as_bytes());
                feed(&mut h, p.as_bytes());
            }
        }
        let mut partial = Partial(h);
        partial.feed_messages(messages);
        partial
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fingerprint whose scope and first messages are hashed (see [`Fingerprint::start`]).
#[derive(Clone)]
pub struct Partial(Sha256);

impl Partial {
    /// The fingerprint of the messages so far followed by `more`.
    pub fn then(&self, more: &[Message]) -> Fingerprint {
        let mut p = self.clone();
        p.feed_messages(more);
        Fingerprint(hex(&p.0.finalize()))
    }

    fn feed_messages(&mut self, messages: &[Message]) {
        let h = &mut self.0;
        for m in messages {
            feed(h, m.role.label().as_bytes());
            // The text of an assistant turn with tool calls is left out: some clients echo it
            // back empty (opencode sends `content: ""`), and the calls' ids, names and
            // arguments already tell the turn apart.
            let text = if m.role == Role::Assistant && !m.tool_calls.is_empty() {
                String::new()
            } else if m.role == Role::Assistant {
                strip_think(&m.text)
            } else {
                m.text.clone()
            };
            feed(h, normalize(&text).as_bytes());
            for c in &m.tool_calls {
                feed(h, b"call");
                feed(h, c.id.as_bytes());
                feed(h, c.name.as_bytes());
                feed(h, canonical_json(&c.arguments).as_bytes());
            }
            if let Some(r) = &m.result_of {
                feed(
                    h,
                    if r.is_error {
                        &b"error"[..]
                    } else {
                        &b"result"[..]
                    },
                );
                feed(h, r.call_id.as_bytes());
            }
        }
    }
}

fn feed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// JSON text in one canonical form (keys sorted by serde_json's map, no spaces), so that a
/// client echoing arguments with other spacing or key order still matches; text that is not
/// JSON is only whitespace-normalised.
fn canonical_json(text: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => v.to_string(),
        Err(_) => normalize(text),
    }
}

/// Collapses whitespace runs to one space and trims.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Removes `<think>...</think>` blocks (an unclosed one runs to the end).
pub fn strip_think(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<think>") {
        out.push_str(&rest[..start]);
        match rest[start..].find("</think>") {
            Some(end) => rest = &rest[start + end + "</think>".len()..],
            None => {
                rest = "";
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(client: &str, model: &str) -> Scope {
        Scope {
            client: client.into(),
            model: model.into(),
            ..Scope::default()
        }
    }

    #[test]
    fn a_partial_fingerprint_continued_equals_the_whole() {
        let s = Scope {
            client: "c".into(),
            model: "m".into(),
            ..Scope::default()
        };
        let all = [
            Message::new(Role::User, "hi"),
            Message::new(Role::Assistant, "hello  there"),
            Message::new(Role::User, "more"),
        ];
        let partial = Fingerprint::start(&s, &all[..2]);
        assert_eq!(partial.then(&all[2..]), Fingerprint::of(&s, &all));
        assert_eq!(partial.then(&[]), Fingerprint::of(&s, &all[..2]));
    }

    #[test]
    fn tool_calls_results_session_and_tools_matter_but_argument_spacing_does_not() {
        use crate::conversation::ToolCall;
        let call = |args: &str| ToolCall {
            id: "call_1".into(),
            name: "Write".into(),
            arguments: args.into(),
        };
        let with = |args: &str| {
            [
                Message::new(Role::User, "go"),
                Message::calls("", vec![call(args)]),
            ]
        };
        let s = scope("k", "m");
        let base = Fingerprint::of(&s, &with(r#"{"a":1,"b":2}"#));
        assert_eq!(base, Fingerprint::of(&s, &with(r#"{ "b": 2, "a": 1 }"#)));
        assert_ne!(base, Fingerprint::of(&s, &with(r#"{"a":2}"#)));
        assert_ne!(
            base,
            Fingerprint::of(
                &s,
                &[
                    Message::new(Role::User, "go"),
                    Message::new(Role::Assistant, "")
                ]
            )
        );
        let mut other_session = s.clone();
        other_session.session = Some("sess".into());
        assert_ne!(
            base,
            Fingerprint::of(&other_session, &with(r#"{"a":1,"b":2}"#))
        );
        let mut other_tools = s.clone();
        other_tools.tools = Some("digest".into());
        assert_ne!(
            base,
            Fingerprint::of(&other_tools, &with(r#"{"a":1,"b":2}"#))
        );
        // The text beside the calls is not part of it (clients echo it differently).
        let mut texted = with(r#"{"a":1,"b":2}"#);
        texted[1].text = "I will call Write.".into();
        assert_eq!(base, Fingerprint::of(&s, &texted));
        let ok = [Message::result("call_1", "x", false)];
        let failed = [Message::result("call_1", "x", true)];
        assert_ne!(Fingerprint::of(&s, &ok), Fingerprint::of(&s, &failed));
    }

    #[test]
    fn whitespace_and_think_tags_do_not_matter() {
        let a = [
            Message::new(Role::User, "hi"),
            Message::new(Role::Assistant, "Hello  there.\n"),
        ];
        let b = [
            Message::new(Role::User, " hi "),
            Message::new(Role::Assistant, "<think>hmm</think>\n\nHello there."),
        ];
        assert_eq!(
            Fingerprint::of(&scope("k", "m"), &a),
            Fingerprint::of(&scope("k", "m"), &b)
        );
    }

    #[test]
    fn scope_role_and_text_matter() {
        let a = [Message::new(Role::User, "hi")];
        let base = Fingerprint::of(&scope("k", "m"), &a);
        assert_ne!(base, Fingerprint::of(&scope("k2", "m"), &a));
        assert_ne!(base, Fingerprint::of(&scope("k", "m2"), &a));
        assert_ne!(
            base,
            Fingerprint::of(&scope("k", "m"), &[Message::new(Role::System, "hi")])
        );
        assert_ne!(
            base,
            Fingerprint::of(&scope("k", "m"), &[Message::new(Role::User, "hi!")])
        );
        // Length prefixes: moving text between messages changes the hash.
        let x = [
            Message::new(Role::User, "a b"),
            Message::new(Role::User, "c"),
        ];
        let y = [
            Message::new(Role::User, "a"),
            Message::new(Role::User, "b c"),
        ];
        assert_ne!(
            Fingerprint::of(&scope("k", "m"), &x),
            Fingerprint::of(&scope("k", "m"), &y)
        );
    }

    #[test]
    fn strip_think_blocks() {
        assert_eq!(strip_think("<think>a</think>b<think>c</think>d"), "bd");
        assert_eq!(strip_think("x<think>open"), "x");
        assert_eq!(strip_think("plain"), "plain");
    }
}
