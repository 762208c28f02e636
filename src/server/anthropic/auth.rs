//! The client key check for the Anthropic routes. Same keys and same check as the OpenAI
//! routes ([`ApiKeys::check`](crate::server::auth::ApiKeys::check) takes `x-api-key`, which is
//! what Anthropic SDKs send, or `Authorization: Bearer`); only the rejection's shape differs.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;

use super::error::to_anthropic;
use crate::server::AppState;

/// Puts the caller's [`ClientId`](crate::server::auth::ClientId) in the request, or answers 401.
pub async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.keys().check(req.headers()) {
        Ok(id) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Err(e) => to_anthropic(e),
    }
}
