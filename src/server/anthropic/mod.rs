//! The Anthropic surface: `POST /v1/messages` (streamed and not) and
//! `POST /v1/messages/count_tokens`, run through the same relay, conversation memory, accounts
//! and error statuses as the OpenAI surface; only the wire format differs.
//!
//! # Layout
//! - [`request`]: parse and validate a Messages body into the shared role/text messages;
//! - [`blocks`]: upstream events into content blocks (`thinking`, then `text`);
//! - [`messages`]: the handler, which runs the turn and answers one `message` object;
//! - [`events`]: the streamed answer as Anthropic's named SSE events;
//! - [`meta`]: what both share (the message's id, model, token counts);
//! - [`count`]: the token count endpoint;
//! - [`error`]: every [`ApiError`](crate::server::error::ApiError) in Anthropic's error shape;
//! - [`auth`]: the key check for these routes, rejecting in that shape.
//!
//! [`routes`] is what [`app`](crate::server::app) mounts.

pub mod auth;
pub mod blocks;
pub mod count;
pub mod error;
pub mod events;
pub mod messages;
pub mod meta;
pub mod request;

use axum::Router;
use axum::middleware;
use axum::routing::post;

use crate::server::AppState;

/// The Anthropic routes behind their own key check (outside the OpenAI one, so that a missing
/// key is rejected in Anthropic's shape).
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(count::count_tokens))
        .route_layer(middleware::from_fn_with_state(state, auth::require_key))
}
