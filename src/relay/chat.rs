//! [`Chat`]: one client request in the internal model, the thing every client API parses into
//! and every upstream door serves.

use std::collections::HashMap;
use std::sync::Arc;

use crate::conversation::Message;
use crate::tools::ToolSet;
use crate::upstream::images::ImageSource;

/// One client request in the internal model: what every client API parses into and every
/// upstream door serves.
#[derive(Debug, Clone, Default)]
pub struct Chat {
    /// System messages (in the order the client gave them), then the conversation.
    pub messages: Vec<Message>,
    /// The tools offered, if any (`tool_choice: none` offers none).
    pub tools: Option<Arc<ToolSet>>,
    /// Images of the new turn's user messages, in order.
    pub images: Vec<ImageSource>,
    /// The client's own OpenAI Chat Completions body (its bytes), when it spoke that API and
    /// the CLI door may serve the model: that door forwards it with every field intact.
    pub passthrough: Option<bytes::Bytes>,
}

impl Chat {
    /// Fills in the tool name of each result from the assistant call it answers (OpenAI's
    /// `role: tool` messages carry only the call id).
    pub fn link_results(&mut self) {
        let mut names: HashMap<String, String> = Default::default();
        for m in &mut self.messages {
            for c in &m.tool_calls {
                names.insert(c.id.clone(), c.name.clone());
            }
            if let Some(r) = m.result_of.as_mut()
                && r.name.is_none()
            {
                r.name = names.get(&r.call_id).cloned();
            }
        }
    }

    /// The tools, when some are offered.
    pub fn offered_tools(&self) -> Option<&Arc<ToolSet>> {
        self.tools.as_ref().filter(|t| !t.is_empty())
    }
}

impl Chat {
    /// The prompt tokens of the request as the tokenizer counts them: messages and tools.
    pub fn estimated_tokens(&self) -> u64 {
        crate::tokens::count_messages(&self.messages)
            + self.tools.as_deref().map_or(0, crate::tokens::count_tools)
    }
}
