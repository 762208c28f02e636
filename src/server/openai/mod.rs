//! The OpenAI surface: chat completions (streamed and not) and the model list.
//!
//! # Layout
//! - [`request`]: parse and validate the request body;
//! - [`chat`]: the handler, which runs the turn through the relay;
//! - [`sse`]: the streamed answer as `chat.completion.chunk` events ending with `[DONE]`;
//! - [`reasoning`]: where reasoning goes (`REASONING`);
//! - [`usage`]: token estimates;
//! - [`models`]: the model list, `/v1/models`.

pub mod chat;
pub mod models;
pub mod reasoning;
pub mod request;
pub mod sse;
pub mod usage;
