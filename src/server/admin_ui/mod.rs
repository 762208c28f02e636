//! The admin web page at `/admin`, served by the binary itself (plain HTML, CSS and JS embedded
//! with `include_str!`, no build step), behind ADMIN_KEY.
//!
//! The page logs in by posting the key to `/admin/login`, which answers a session cookie
//! (HttpOnly, SameSite=Strict, Path=/admin); the page then calls the admin API with that cookie
//! (see [`session_allows`](super::admin::session::session_allows), the admin API's own check).
//! Without ADMIN_KEY the page is off and says how to turn it on.
//!
//! # Layout
//! The signed session tokens and their cookie live with the API they open
//! ([`super::admin::session`]); here:
//! - [`pages`]: the HTML pages, static assets, login and logout;
//! - [`api`]: the page's extra endpoints (overview, settings, and the playground's models/chat,
//!   which run the `/v1` handlers as the client `admin-playground`);
//!
//! The overview's 10-second time series is [`super::traffic`], fed by the request path.

pub mod api;
pub mod pages;

use axum::routing::{get, post};
use axum::{Router, middleware};

/// Re-exported for the state, which builds the sessions at start.
use super::AppState;

/// The page, its assets, login/logout, and its API endpoints (behind the admin check).
pub fn routes(state: AppState) -> Router<AppState> {
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
