//! The admin API under `/admin/api`: the account pool at run time.
//!
//! Protected by `ADMIN_KEY` (sent as `Authorization: Bearer <ADMIN_KEY>`, compared in constant
//! time like the client keys, and distinct from them: a client key never opens it). Without
//! `ADMIN_KEY` every admin route answers 404 with a message saying how to turn it on.
//!
//! The admin page (`/admin`, see [`super::admin_ui`]) calls the same routes with its session
//! cookie instead of the key; a state-changing call made with a cookie must also carry
//! `X-Admin-Request: 1`, which a cross-site form cannot send (CSRF), on top of SameSite=Strict.
//!
//! # Layout
//! - [`accounts`]: list, add, remove, disable, enable, re-check accounts.

pub mod accounts;

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use super::error::ApiError;

/// The admin routes, each behind `require_admin`.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/admin/api/accounts",
            get(accounts::list).post(accounts::add),
        )
        .route(
            "/admin/api/accounts/{id}",
            get(accounts::one).delete(accounts::remove),
        )
        .route("/admin/api/accounts/{id}/disable", post(accounts::disable))
        .route("/admin/api/accounts/{id}/enable", post(accounts::enable))
        .route("/admin/api/accounts/{id}/check", post(accounts::check))
        .route_layer(middleware::from_fn_with_state(state, require_admin))
}

/// Admin key or page session check. An unset ADMIN_KEY turns the whole API off (never open by
/// default).
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.admin_keys().is_open() {
        return ApiError::AdminOff.into_response();
    }
    if state.admin_keys().check(req.headers()).is_ok() {
        return next.run(req).await;
    }
    match super::admin_ui::session_allows(&req) {
        Some(Ok(())) => next.run(req).await,
        Some(Err(refusal)) => refusal,
        None => ApiError::AdminUnauthorized.into_response(),
    }
}
