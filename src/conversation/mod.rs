//! Conversation continuity: which upstream history continues which client conversation.
//!
//! # Layout
//! - [`message`]: the role/text view of a conversation that everything else works on;
//! - [`fingerprint`]: stable hashes of a conversation prefix, scoped by client key and model;
//! - [`prompt`]: the text sent upstream (the whole transcript, or only the new turn).
//!
//! The scheme (the seed's was broken: it hashed `messages[:-1]` before the reply existed):
//! when a turn completes we store `fingerprint(messages + assistant reply) -> history`. A request
//! whose messages up to its last assistant message hash to a stored fingerprint continues that
//! history and sends only what came after; the mapping is *taken* (removed) at that moment, so a
//! regenerate or an edit of an earlier message can never reuse a history that has moved on.

pub mod fingerprint;
pub mod message;
pub mod prompt;

pub use fingerprint::{Fingerprint, Scope};
pub use message::{Message, ResultOf, Role, ToolCall};
