//! The internal model of a conversation, independent of the API it came in (OpenAI Chat
//! Completions, OpenAI Responses, Anthropic Messages) and of the upstream door it goes out by.
//!
//! A message is a role and its text, plus what tool use needs: an assistant message may carry
//! tool calls (id, name, JSON arguments), a `Tool` message is the result of one call (its id,
//! the tool's name when known, and whether the call failed). Images of the new turn travel
//! beside the messages (see [`crate::relay::Chat`]), reasoning is never part of a message (it is not echoed
//! upstream).

pub use crate::tools::ToolCall;

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
    /// Assistant messages: the tools it called, in order.
    pub tool_calls: Vec<ToolCall>,
    /// `Tool` messages: which call this is the result of.
    pub result_of: Option<ResultOf>,
}

/// What a tool result answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultOf {
    pub call_id: String,
    /// The tool's name: given by Anthropic and Responses clients through the call it answers,
    /// looked up from the assistant's call by [`crate::relay::Chat::link_results`] for OpenAI clients.
    pub name: Option<String>,
    /// The call failed (Anthropic `is_error`).
    pub is_error: bool,
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Message {
            role,
            text: text.into(),
            tool_calls: Vec::new(),
            result_of: None,
        }
    }

    /// An assistant message with tool calls.
    pub fn calls(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls,
            ..Message::new(Role::Assistant, text)
        }
    }

    /// The result of the call `call_id`.
    pub fn result(call_id: impl Into<String>, content: impl Into<String>, is_error: bool) -> Self {
        Message {
            result_of: Some(ResultOf {
                call_id: call_id.into(),
                name: None,
                is_error,
            }),
            ..Message::new(Role::Tool, content)
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
