//! The text sent upstream for a turn.
//!
//! cto.new takes one prompt string per turn. A new history gets the whole transcript (system
//! prompt first, every message labelled with its role) so the upstream sees the same context the
//! client has; a continued history gets only the messages after the last assistant reply, because
//! the upstream already remembers the rest.

use super::message::{Message, Role};

/// Prompt for a brand-new upstream history.
pub fn full_transcript(messages: &[Message]) -> String {
    // A lone user message needs no labels: send it as the user typed it.
    if let [only] = messages
        && only.role == Role::User
    {
        return only.text.clone();
    }
    let mut ordered: Vec<&Message> = messages.iter().filter(|m| m.role == Role::System).collect();
    ordered.extend(messages.iter().filter(|m| m.role != Role::System));
    render(&ordered)
}

/// Prompt for a continued history: only the new messages.
pub fn new_turn(new_messages: &[Message]) -> String {
    match new_messages {
        [only] if only.role == Role::User => only.text.clone(),
        _ => render(&new_messages.iter().collect::<Vec<_>>()),
    }
}

fn render(messages: &[&Message]) -> String {
    let mut out = String::new();
    for m in messages {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push('[');
        out.push_str(m.role.label());
        out.push_str("]\n");
        out.push_str(m.text.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_user_message_is_verbatim() {
        assert_eq!(
            full_transcript(&[Message::new(Role::User, "hello\n")]),
            "hello\n"
        );
    }

    #[test]
    fn transcript_puts_system_first_and_labels_roles() {
        let p = full_transcript(&[
            Message::new(Role::User, "q1"),
            Message::new(Role::Assistant, "a1"),
            Message::new(Role::System, "be brief"),
            Message::new(Role::User, "q2"),
        ]);
        assert_eq!(
            p,
            "[System]\nbe brief\n\n[User]\nq1\n\n[Assistant]\na1\n\n[User]\nq2"
        );
    }

    #[test]
    fn new_turn_sends_only_the_new_part() {
        assert_eq!(new_turn(&[Message::new(Role::User, "q3")]), "q3");
        assert_eq!(
            new_turn(&[
                Message::new(Role::Tool, "42"),
                Message::new(Role::User, "and?")
            ]),
            "[Tool]\n42\n\n[User]\nand?"
        );
    }
}
