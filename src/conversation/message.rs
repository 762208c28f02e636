//! The role/text view of a conversation, independent of the API (OpenAI or Anthropic) it came in.

/// Who said a message. Tool and function messages are kept as what they are so that the
/// transcript we send upstream labels them honestly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" | "developer" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" | "function" => Some(Role::Tool),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::System => "System",
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::Tool => "Tool",
        }
    }
}

/// One message: its role and its text (array content already joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub role: Role,
    pub text: String,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            text: text.into(),
        }
    }
}

/// Index just after the last assistant message: everything before it is what an earlier turn
/// produced (and may be continued), everything from it on is the new turn.
pub fn split_point(messages: &[Message]) -> usize {
    messages
        .iter()
        .rposition(|m| m.role == Role::Assistant)
        .map(|i| i + 1)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_after_last_assistant() {
        let m = |r| Message::new(r, "x");
        assert_eq!(split_point(&[m(Role::User)]), 0);
        assert_eq!(
            split_point(&[
                m(Role::System),
                m(Role::User),
                m(Role::Assistant),
                m(Role::User)
            ]),
            3
        );
        assert_eq!(
            split_point(&[
                m(Role::User),
                m(Role::Assistant),
                m(Role::Tool),
                m(Role::User)
            ]),
            2
        );
    }
}
