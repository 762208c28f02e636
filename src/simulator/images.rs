//! The simulated image upload (protocol notes §4.8): `POST /images/presign` hands out one
//! presigned PUT URL on this simulator and one final ("CDN") URL per image; `PUT` stores the
//! bytes, checking the length and media type that were presigned; `GET /cdn/{file}` serves them.
//! The trigger accepts only `imageUrls` of completed uploads.
//!
//! The real reply shape is unpublished; this one (`{"images":[{"uploadUrl","publicUrl",...}]}`)
//! is one of the shapes the client's liberal parser takes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::respond::{authorize, message, not_found_route, parse_body};
use super::state::{SimState, Upload};
use super::util::{lock, random_alnum};

const MEDIA_TYPES: &[(&str, &str)] = &[
    ("image/png", "png"),
    ("image/jpeg", "jpg"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
];

/// Largest image the simulated bucket takes.
const MAX_BYTES: u64 = 20 * 1024 * 1024;

/// `POST /images/presign` (Gen-2).
pub(crate) async fn presign(
    State(st): State<Arc<SimState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !st.cfg.gen2 {
        return not_found_route();
    }
    if let Err(r) = authorize(&st, &headers) {
        return *r;
    }
    let body = match parse_body(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(list) = body.get("images").and_then(Value::as_array) else {
        return message(StatusCode::BAD_REQUEST, "images must be an array");
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut slots = Vec::with_capacity(list.len());
    let mut uploads = Vec::with_capacity(list.len());
    for item in list {
        let media_type = item.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let Some((_, ext)) = MEDIA_TYPES.iter().find(|(m, _)| *m == media_type) else {
            return message(StatusCode::BAD_REQUEST, "Unsupported mediaType");
        };
        let Some(len) = item.get("contentLength").and_then(Value::as_u64) else {
            return message(StatusCode::BAD_REQUEST, "contentLength is required");
        };
        if len == 0 || len > MAX_BYTES {
            return message(StatusCode::BAD_REQUEST, "contentLength out of range");
        }
        let id = uuid::Uuid::new_v4().to_string();
        let file = format!("{id}.{ext}");
        slots.push(json!({
            "uploadUrl": format!("http://{host}/__uploads/{id}?X-Amz-Signature={}", random_alnum(16)),
            "publicUrl": format!("http://{host}/cdn/{file}"),
            "key": file,
        }));
        uploads.push((
            id,
            Upload {
                media_type: media_type.to_string(),
                content_length: len,
                file,
                bytes: None,
            },
        ));
    }
    lock(&st.inner).uploads.extend(uploads);
    lock(&st.stats).presigns += 1;
    axum::Json(json!({ "images": slots })).into_response()
}

/// `PUT /__uploads/{id}`: the presigned URL is the credential, so no JWT is asked for (and one
/// sent anyway is counted as a leak).
pub(crate) async fn put(
    State(st): State<Arc<SimState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if headers.contains_key(header::AUTHORIZATION) {
        lock(&st.stats).leaked_auth_on_upload += 1;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut inner = lock(&st.inner);
    let Some(up) = inner.uploads.get_mut(&id) else {
        return (StatusCode::FORBIDDEN, "SignatureDoesNotMatch").into_response();
    };
    if up.bytes.is_some() || up.media_type != content_type || up.content_length != body.len() as u64
    {
        return (StatusCode::FORBIDDEN, "SignatureDoesNotMatch").into_response();
    }
    up.bytes = Some(body.to_vec());
    drop(inner);
    lock(&st.stats).uploads += 1;
    StatusCode::OK.into_response()
}

/// `GET /cdn/{file}`: a completed upload's bytes.
pub(crate) async fn cdn(State(st): State<Arc<SimState>>, Path(file): Path<String>) -> Response {
    let inner = lock(&st.inner);
    match inner
        .uploads
        .values()
        .find(|u| u.file == file && u.bytes.is_some())
    {
        Some(Upload {
            media_type,
            bytes: Some(bytes),
            ..
        }) => ([(header::CONTENT_TYPE, media_type.clone())], bytes.clone()).into_response(),
        _ => (StatusCode::NOT_FOUND, "NoSuchKey").into_response(),
    }
}

/// The bytes behind a final URL, if it names a completed upload.
pub(crate) fn uploaded(st: &SimState, url: &str) -> Option<Vec<u8>> {
    let file = url.rsplit('/').next()?;
    let inner = lock(&st.inner);
    inner
        .uploads
        .values()
        .find(|u| u.file == file && url.contains("/cdn/"))
        .and_then(|u| u.bytes.clone())
}
