//! Captures: what `doctor --capture FILE` writes and `simulate --replay FILE` serves. A capture
//! is every call the clients made to cto.new, in order: method, path, status, headers and
//! bodies, and each WebSocket with its frames, their timing, and which call each frame
//! followed. A capture a user attaches to a bug report replays as the upstream, so it becomes a
//! regression test.
//!
//! # Layout
//! - [`format`](mod@format): the file's shape (versioned JSON, readable and editable by hand);
//! - [`recorder`]: [`Recorder`], which the transport feeds while the doctor runs;
//! - [`redact`]: what leaves the machine: no cookie, token, key or prompt text.
//!
//! Pure data and text: names no other module but the tap's frame type, so both the upstream
//! client (which records) and the simulator (which replays) can use it.

pub mod format;
pub mod recorder;
pub mod redact;

pub use format::{Capture, Event, Exchange, FrameLog, SocketLog};
pub use recorder::Recorder;
