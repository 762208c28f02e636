//! What every EngineLabs route shares: the `{"message": …}` error body of the NestJS backend,
//! the 404 of a route that does not exist, the bearer-JWT check and the JSON-object body check.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::state::SimState;
use super::util::{lock, now_secs};

pub(crate) fn message(status: StatusCode, msg: &str) -> Response {
    (status, axum::Json(json!({"message": msg}))).into_response()
}

/// What a route that does not exist (Gen-2 switched off) answers.
pub(crate) fn not_found_route() -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            json!({"message": "Cannot find route", "error": "Not Found", "statusCode": 404}),
        ),
    )
        .into_response()
}

/// The user of a valid `Authorization: Bearer <jwt>`, or the 401 to answer (counted).
/// The rejection is boxed: a `Response` is large and the happy path should stay small.
pub(crate) fn authorize(st: &SimState, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let token = super::util::bearer(headers);
    let user = token
        .and_then(|t| st.jwt.verify(t, now_secs()).ok())
        .map(|v| v.sub)
        .filter(|sub| lock(&st.inner).accounts.contains_key(sub));
    user.ok_or_else(|| {
        lock(&st.stats).rejected_jwts += 1;
        Box::new(message(StatusCode::UNAUTHORIZED, "Unauthorized"))
    })
}

pub(crate) fn parse_body(body: &Bytes) -> Result<Value, Box<Response>> {
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Box::new(message(
                StatusCode::BAD_REQUEST,
                "Body must be a JSON object",
            ))
        })
}
