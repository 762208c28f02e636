//! The HTML pages (the app, the login form, the "admin is off" page), the embedded CSS and JS,
//! and the login/logout form posts.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_TYPE, LOCATION, RETRY_AFTER, SET_COOKIE, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::server::AppState;
use crate::server::admin::lockout::{Attempt, ClientAddr};
use crate::server::admin::session::{self, Sessions};
use crate::server::extract::RawBody;

const APP_HTML: &str = include_str!("../../../assets/admin/index.html");
const LOGIN_HTML: &str = include_str!("../../../assets/admin/login.html");
const CSS: &str = include_str!("../../../assets/admin/admin.css");
const JS: &str = include_str!("../../../assets/admin/admin.js");

/// Scripts and styles only from the page's own origin; never framed (clickjacking).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// The page a browser gets without ADMIN_KEY.
const OFF_HTML: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>enginelabs-2api admin: off</title><link rel="stylesheet" href="/admin/admin.css"></head>
<body class="centered"><main class="card narrow" id="admin-off">
<h1>Admin page is off</h1>
<p>Set <code>ADMIN_KEY</code> (environment variable or <code>--admin-key</code>) and restart
the server to turn on the admin page and the admin API. The key is the password of this page.</p>
</main></body></html>
"#;

fn html(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    resp
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let err = match error {
        Some(e) => format!(r#"<p class="error" id="login-error" role="alert">{e}</p>"#),
        None => String::new(),
    };
    html(status, LOGIN_HTML.replace("<!--ERROR-->", &err))
}

fn off() -> Response {
    html(StatusCode::NOT_FOUND, OFF_HTML.to_string())
}

/// `GET /admin`: the app with a live session, else the login form.
pub async fn index(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
) -> Response {
    if state.admin_keys().is_open() {
        return off();
    }
    if sessions.valid(&headers) {
        html(StatusCode::OK, APP_HTML.to_string())
    } else {
        login_page(StatusCode::OK, None)
    }
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, kind),
            (CACHE_CONTROL, "no-cache"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

pub async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

/// `POST /admin/login` (form field `key`): a session cookie and back to `/admin`, or the form
/// again with an error. Wrong keys count toward the address's back-off (shared with the admin
/// API's key check, see [`crate::server::admin::lockout`]); each also waits a moment.
pub async fn login(
    State(state): State<AppState>,
    Extension(sessions): Extension<Arc<Sessions>>,
    addr: ClientAddr,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Response {
    if state.admin_keys().is_open() {
        return off();
    }
    let key = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    // An empty form is no guess: refused without being counted.
    let attempt = if key.is_empty() {
        Attempt::Refused
    } else {
        state
            .admin_lockout()
            .attempt(addr, std::time::Instant::now(), || {
                state.admin_keys().matches(&key)
            })
    };
    match attempt {
        Attempt::Accepted => {}
        Attempt::Refused => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            tracing::warn!("admin page login refused: wrong key");
            return login_page(StatusCode::UNAUTHORIZED, Some("Wrong admin key."));
        }
        Attempt::LockedOut(wait) => {
            tracing::warn!(
                retry_after_secs = wait.as_secs(),
                "admin page login refused: too many wrong keys from this address"
            );
            let message = format!(
                "Too many wrong keys from your address. Try again in {} seconds.",
                wait.as_secs().max(1)
            );
            let mut page = login_page(StatusCode::TOO_MANY_REQUESTS, Some(&message));
            page.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
            return page;
        }
    }
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let cookie = session::set_cookie(&sessions.open(), secure);
    tracing::info!("admin page login");
    redirect_with_cookie(cookie)
}

/// `POST /admin/logout`: ends the session and clears the cookie.
pub async fn logout(Extension(sessions): Extension<Arc<Sessions>>, headers: HeaderMap) -> Response {
    sessions.close(&headers);
    redirect_with_cookie(session::clear_cookie())
}

fn redirect_with_cookie(cookie: String) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    h.insert(LOCATION, HeaderValue::from_static("/admin"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        h.insert(SET_COOKIE, v);
    }
    resp
}
