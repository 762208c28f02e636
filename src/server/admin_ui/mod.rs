//! The admin web page at `/admin`, served by the binary itself (plain HTML, CSS and JS embedded
//! with `include_str!`, no build step), behind ADMIN_KEY.
//!
//! The page logs in by posting the key to `/admin/login`, which answers a session cookie
//! (HttpOnly, SameSite=Strict, Path=/admin); the page then calls the admin API with that cookie
//! (see [`session_allows`], used by the admin API's own check). Without ADMIN_KEY the page is
//! off and says how to turn it on.
//!
//! # Layout
//! - [`session`]: the signed session tokens (MAC key from ADMIN_KEY and the store's secret) and
//!   the cookie;
//! - [`pages`]: the HTML pages, static assets, login and logout;
//! - [`api`]: the page's extra endpoints (overview, settings, and the playground's models/chat,
//!   which run the `/v1` handlers as the client `admin-playground`);
//! - [`stats`]: the overview's 10-second time series.

pub mod api;
pub mod pages;
pub mod session;
pub mod stats;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};

pub use session::Sessions;

use super::AppState;

/// Header a cookie-authenticated state-changing call must carry (`1`): cross-site forms can't.
pub const CSRF_HEADER: &str = "x-admin-request";

/// The page, its assets, login/logout, and its API endpoints (behind the admin check).
pub fn routes(state: AppState) -> Router<AppState> {
    stats::mark_start();
    let api = Router::new()
        .route("/admin/api/session", get(api::session))
        .route("/admin/api/overview", get(api::overview))
        .route("/admin/api/settings", get(api::settings))
        .route("/admin/api/models", get(api::models))
        .route("/admin/api/chat", post(api::chat))
        .route_layer(middleware::from_fn_with_state(
            state,
            super::admin::require_admin,
        ));
    Router::new()
        .route("/admin", get(pages::index))
        .route("/admin/", get(pages::index))
        .route("/admin/admin.css", get(pages::css))
        .route("/admin/admin.js", get(pages::js))
        .route("/admin/login", post(pages::login))
        .route("/admin/logout", post(pages::logout))
        .merge(api)
}

/// Whether the request's session cookie lets it through: `None` without a live session,
/// `Some(Err(403))` for a state-changing call without [`CSRF_HEADER`], else `Some(Ok(()))`.
pub fn session_allows(req: &Request) -> Option<Result<(), Response>> {
    let sessions = req.extensions().get::<Arc<Sessions>>()?;
    if !sessions.valid(req.headers()) {
        return None;
    }
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let marked = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1");
    if safe || marked {
        Some(Ok(()))
    } else {
        Some(Err(csrf_refusal()))
    }
}

fn csrf_refusal() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(serde_json::json!({"error": {
            "message": "a state-changing admin call made with the page's session cookie must carry the header `X-Admin-Request: 1`",
            "type": "invalid_request_error",
            "param": null,
            "code": "admin_csrf",
        }})),
    )
        .into_response()
}
