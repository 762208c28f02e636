//! CORS on the client API (`CORS_ORIGINS`), so that browser-side clients (web chat apps in
//! client mode) can call `/v1` from their own page. Off by default, and never on `/admin`: the
//! admin page is same-origin, and no other site's script may reach the admin API.
//!
//! tower-http's `CorsLayer` answers preflights (before the key check, which a preflight cannot
//! pass: browsers send it without the `Authorization` header) and adds the headers to every
//! answer of the API routes, errors included, so a page can read why it was refused. Methods
//! `GET` and `POST`; no credentials (clients authenticate with a header, never with cookies);
//! `x-request-id` and `Retry-After` readable by the page.
//!
//! The preflight allows the request headers the OpenAI and Anthropic SDKs send
//! ([`sdk_header`]: the fixed names, and any `x-stainless-*`, whose set grows with each SDK
//! release): the requested list is filtered before tower-http mirrors it, so a page asking for
//! any other header is refused by its browser.

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::header::{ACCESS_CONTROL_REQUEST_HEADERS, RETRY_AFTER};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

pub use crate::config::CorsOrigins;

/// Request headers a preflight may ask for: what the OpenAI and Anthropic SDKs send.
const SDK_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "accept",
    "x-api-key",
    "x-request-id",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-organization",
    "openai-project",
    "openai-beta",
];

/// Whether a preflight may ask for this request header.
pub fn sdk_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    SDK_HEADERS.contains(&name.as_str()) || name.starts_with("x-stainless-")
}

/// `router` with CORS for `origins` (unchanged when off).
pub fn apply<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    origins: &CorsOrigins,
) -> Router<S> {
    let allow = match origins {
        CorsOrigins::Off => return router,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    let cors = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(AllowHeaders::mirror_request())
        .expose_headers([HeaderName::from_static("x-request-id"), RETRY_AFTER])
        .max_age(Duration::from_secs(3600));
    // The filter runs first (the last layer is the outermost).
    router
        .layer(cors)
        .layer(middleware::from_fn(only_sdk_headers))
}

/// Leaves in a preflight's `Access-Control-Request-Headers` only the [`sdk_header`]s, so that
/// the mirrored answer allows nothing else.
async fn only_sdk_headers(mut req: Request, next: Next) -> Response {
    if req.method() == Method::OPTIONS
        && let Some(asked) = req.headers().get(ACCESS_CONTROL_REQUEST_HEADERS)
    {
        let kept: Vec<&str> = asked
            .to_str()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|h| sdk_header(h))
            .collect();
        match HeaderValue::from_str(&kept.join(",")) {
            Ok(v) if !kept.is_empty() => {
                req.headers_mut().insert(ACCESS_CONTROL_REQUEST_HEADERS, v);
            }
            _ => {
                req.headers_mut().remove(ACCESS_CONTROL_REQUEST_HEADERS);
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_headers_and_nothing_else() {
        for ok in [
            "Authorization",
            "content-type",
            "x-api-key",
            "anthropic-version",
            "anthropic-beta",
            "x-stainless-os",
            "X-Stainless-Retry-Count",
        ] {
            assert!(sdk_header(ok), "{ok}");
        }
        for no in ["cookie", "x-evil", "x-stainless", "proxy-authorization"] {
            assert!(!sdk_header(no), "{no}");
        }
    }
}
