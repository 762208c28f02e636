//! Request metrics by route template and status (a route layer, so the matched route is known;
//! unknown routes are counted by the fallback as `unmatched`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::metrics::{REQUEST_SECONDS, REQUESTS};

pub async fn layer(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    count(route, resp.status().as_u16(), started);
    resp
}

/// Records one answered request.
pub fn count(route: String, status: u16, started: Instant) {
    super::traffic::request(&route, status);
    metrics::counter!(REQUESTS, "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!(REQUEST_SECONDS, "route" => route).record(started.elapsed().as_secs_f64());
}
