//! The admin API under `/admin/api`: the account pool at run time.
//!
//! Protected by `ADMIN_KEY` (sent as `Authorization: Bearer <ADMIN_KEY>`, compared in constant
//! time like the client keys, and distinct from them: a client key never opens it). Without
//! `ADMIN_KEY` every admin route answers 404 with a message saying how to turn it on. Wrong keys
//! back off per client address ([`lockout`]).
//!
//! The admin page (`/admin`, see [`super::admin_ui`]) calls the same routes with its session
//! cookie instead of the key; a state-changing call made with a cookie must also carry
//! `X-Admin-Request: 1`, which a cross-site form cannot send (CSRF), on top of SameSite=Strict.
//!
//! # Layout
//! - [`accounts`]: list, add, remove, disable, enable, re-check accounts;
//! - [`lockout`]: the back-off for wrong admin keys, per client address;
//! - [`session`]: the page's signed session tokens, their cookie, and the check that lets a
//!   session call these routes.

pub mod accounts;
pub mod lockout;
pub mod session;

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
/// default). A presented key decides alone (counted by the [`lockout`]); without one, the page's
/// session cookie.
pub(crate) async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.admin_keys().is_open() {
        return ApiError::AdminOff.into_response();
    }
    let attempt = super::auth::presented_key(req.headers()).map(|key| {
        let addr = lockout::ClientAddr::of(req.extensions());
        state
            .admin_lockout()
            .attempt(addr, std::time::Instant::now(), || {
                state.admin_keys().matches(key)
            })
    });
    match attempt {
        Some(lockout::Attempt::Accepted) => return next.run(req).await,
        Some(lockout::Attempt::Refused) => return ApiError::AdminUnauthorized.into_response(),
        Some(lockout::Attempt::LockedOut(wait)) => {
            return ApiError::AdminLockedOut(wait).into_response();
        }
        None => {}
    }
    match session::session_allows(&req) {
        Some(Ok(())) => next.run(req).await,
        Some(Err(refusal)) => refusal,
        None => ApiError::AdminUnauthorized.into_response(),
    }
}
