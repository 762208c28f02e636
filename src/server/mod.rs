//! The HTTP surface.
//!
//! # Layout
//! - [`state`]: [`AppState`], built once from the config;
//! - [`openai`]: `/v1/chat/completions`, `/v1/models`;
//! - [`responses`]: `/v1/responses`, the OpenAI Responses API;
//! - [`anthropic`]: `/v1/messages`, `/v1/messages/count_tokens`;
//! - [`turn`]: what every API does before and after its own wire format (start, first event,
//!   whole answer);
//! - [`pump`]: the one streaming loop, over an API's [`pump::ApiEvents`];
//! - [`answer`]: everything one answer said, gathered from its events;
//! - [`chat_body`]: the body of a chat request, its long list read one element at a time;
//! - [`tool_defs`]: the tools a client offers, from each API's spelling;
//! - [`admin`]: `/admin/api`, the account pool at run time (behind ADMIN_KEY), and the admin
//!   page's sessions;
//! - [`admin_ui`]: the admin web page at `/admin` (login, overview, accounts, playground);
//! - [`traffic`]: the overview's 10-second series of requests, errors and time to first token;
//! - [`auth`]: client API keys (constant-time);
//! - [`cors`]: CORS on the client API for browser-side clients (`CORS_ORIGINS`, off by default);
//! - [`error`]: [`error::ApiError`], the one mapping of every error to the wire;
//! - [`extract`]: the body, query and path extractors that reject with that same error;
//! - [`request_id`]: `x-request-id` on every response and in every log line of the request;
//! - [`track`]: request metrics by route template and status;
//! - [`listener`]: the accept loop: the connection cap, header and idle timeouts, graceful stop;
//! - [`limits`]: those limits as settings, fitted to the open-file limit the process raises.
//!
//! Outside `/v1`: `/healthz` (the process answers), `/readyz` (the store takes writes, and an
//! account is configured and not known to be dead), `/metrics`, `/`.
//!
//! The middleware layers of the whole app are in [`app`]; four more sit on the routes they
//! guard, beside them: the admin key check on `/admin/api` ([`admin::routes`]) and on the
//! page's API ([`admin_ui::routes`]), the Anthropic key check ([`anthropic::routes`]), and
//! CORS on the client API ([`cors::apply`]). The accept loop's limits are not layers: they
//! live in [`listener`].

pub mod admin;
pub mod admin_ui;
pub mod answer;
pub mod anthropic;
pub mod auth;
pub mod chat_body;
pub mod cors;
pub mod error;
pub mod extract;
pub mod limits;
pub mod listener;
pub mod openai;
pub mod pump;
pub mod request_id;
pub mod responses;
pub mod state;
pub mod tool_defs;
pub mod track;
pub mod traffic;
pub mod turn;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tower_http::timeout::RequestBodyDeadlineLayer;

pub use state::AppState;

use error::ApiError;

/// The application router. Tests drive it directly; `main` serves it.
pub fn app(state: AppState) -> Router {
    install_process_globals();
    let limit = state.config().max_body_bytes;
    let body_deadline = state.config().connections.request_body_timeout;
    let v1 = Router::new()
        .route("/v1/chat/completions", post(openai::chat::completions))
        .route("/chat/completions", post(openai::chat::completions))
        .route("/v1/responses", post(responses::create))
        .route("/responses", post(responses::create))
        .route("/v1/models", get(openai::models::list))
        .route("/v1/models/{id}", get(openai::models::get))
        .route("/models", get(openai::models::list))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_key));
    let messages = anthropic::routes(state.clone());
    // CORS on the client API only (never on /admin), outside the key check: a preflight
    // carries no key. The 405 fallback is set first so that it sits under the CORS layer too
    // (set later, on the whole router, it would replace the layered one and answer preflights).
    let api = v1
        .merge(messages)
        .method_not_allowed_fallback(method_not_allowed);
    let api = cors::apply(api, &state.config().cors);
    Router::new()
        .merge(api)
        .merge(admin::routes(state.clone()))
        .merge(admin_ui::routes(state.clone()))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/", get(root))
        .route_layer(middleware::from_fn(track::layer))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        // The whole body within REQUEST_BODY_TIMEOUT_SECS of the headers: a body that trickles
        // or never ends fails the extractor, which answers 408 (`extract::RawBody`).
        .layer(RequestBodyDeadlineLayer::new(body_deadline))
        .layer(middleware::from_fn(request_id::layer))
        .layer(axum::Extension(std::sync::Arc::clone(state.sessions())))
        .with_state(state)
}

/// Start-up work for the whole process, done here because `app` is the one door every server
/// goes through (`run` and the tests alike): installs the Prometheus recorder, before the first
/// request records anything, and starts the admin overview's uptime clock. Both are once per
/// process; later calls do nothing.
fn install_process_globals() {
    crate::metrics::handle(crate::upstream::ErrorKind::LABELS);
    traffic::mark_start();
}

/// Client key check for the API routes; puts the caller's [`auth::ClientId`] in the request.
async fn require_key(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    match state.keys().check(req.headers()) {
        Ok(id) => {
            req.extensions_mut().insert(id);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

/// Also says which upstream transport this binary was built with, so an operator meeting
/// Cloudflare challenges can tell at a glance whether `impersonate` is on.
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "transport": crate::upstream::transport::Transport::NAME,
    }))
}

/// Ready when the store takes writes (one that cannot silently starts every follow-up as a new
/// chat), an account is configured and the last look at it did not find it dead (its session
/// was discovered, or nothing was tried yet). 503 with the reason otherwise, so a load balancer
/// sends no traffic to a replica that can only answer errors.
async fn readyz(State(state): State<AppState>) -> Response {
    use crate::catalog::AccountProbe;
    let accounts = state.relay().pool.len();
    let not_ready = |reason: String| {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Json(
                serde_json::json!({"status": "not_ready", "accounts": accounts, "reason": reason}),
            ),
        )
            .into_response()
    };
    if let crate::store::StoreHealth::Unwritable(why) = state.store().health().await {
        return not_ready(why);
    }
    if accounts == 0 {
        return not_ready(
            "no cto.new account is configured (set CLERK_COOKIE, CLERK_COOKIES or ACCOUNTS_FILE, or add one through the admin API)".into(),
        );
    }
    state.catalog().ensure_loaded(state.relay()).await;
    if let AccountProbe::Dead(why) = state.catalog().probe() {
        return not_ready(why);
    }
    // The pool's own view: at least one account must be able to take a request.
    let views = state.relay().pool.snapshot();
    if !views
        .iter()
        .any(|v| v.state == crate::pool::HealthState::Active)
    {
        let states: Vec<String> = views
            .iter()
            .map(|v| format!("{}: {}", v.label, v.state))
            .collect();
        return not_ready(format!(
            "no account is usable right now ({})",
            states.join(", ")
        ));
    }
    Json(serde_json::json!({"status": "ready", "accounts": accounts})).into_response()
}

async fn root(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "name": "enginelabs-2api",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": ["/v1/chat/completions", "/v1/responses", "/v1/models", "/v1/messages", "/v1/messages/count_tokens", "/healthz", "/readyz", "/metrics"],
        "upstream_protocol": state.generation_label(),
    }))
}

/// Prometheus text format; no secrets in it, so no key is needed (like most exporters).
async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    let _ = uri;
    track::count("unmatched".to_string(), 405, std::time::Instant::now());
    ApiError::MethodNotAllowed(method.to_string())
}

async fn fallback(method: Method, uri: axum::http::Uri) -> ApiError {
    let known = [
        "/v1/chat/completions",
        "/chat/completions",
        "/v1/models",
        "/models",
        "/healthz",
        "/readyz",
        "/metrics",
        "/",
    ];
    let err = if known.contains(&uri.path()) || uri.path().starts_with("/v1/models/") {
        ApiError::MethodNotAllowed(method.to_string())
    } else {
        ApiError::NotFound(uri.path().to_string())
    };
    track::count(
        "unmatched".to_string(),
        err.status().as_u16(),
        std::time::Instant::now(),
    );
    err
}
