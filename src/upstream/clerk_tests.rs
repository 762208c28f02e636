//! Network tests of the Clerk steps against a tiny scripted axum mock: the cases the simulator
//! does not cover (Clerk's `missing_expired_token` retry, 429 on mint, single-flight minting,
//! what is sent in the query and body).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::clerk::{self, Account};
use super::transport::Transport;
use super::{UpstreamConfig, UpstreamError};

/// A scripted answer for the next mint.
type Scripted = (u16, Vec<(&'static str, &'static str)>, String);

#[derive(Default)]
struct Mock {
    /// Answers for the next mints; when empty a fresh token is minted.
    script: Mutex<VecDeque<Scripted>>,
    /// (query, body, cookie) of every mint request.
    mints: Mutex<Vec<(String, String, String)>>,
    client_calls: Mutex<u32>,
}

fn token(sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let payload = json!({"sub": sub, "sid": "sess_1", "iat": now, "exp": now + 60});
    format!(
        "eyJhbGciOiJSUzI1NiJ9.{}.sig",
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

async fn client(State(m): State<Arc<Mock>>) -> Response {
    *m.client_calls.lock().expect("lock") += 1;
    let body = json!({"response": {"last_active_session_id": "sess_1", "sessions": [
        {"id": "sess_1", "status": "active", "last_active_organization_id": "org_1",
         "user": {"id": "user_1"}}]}, "client": null});
    (
        [("set-cookie", "__client=from-discovery; Path=/; HttpOnly")],
        axum::Json(body),
    )
        .into_response()
}

async fn mint(
    State(m): State<Arc<Mock>>,
    Path(_sid): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let cookie = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    m.mints
        .lock()
        .expect("lock")
        .push((query.unwrap_or_default(), body, cookie));
    // Slow enough that concurrent callers overlap.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let next = m.script.lock().expect("lock").pop_front();
    match next {
        Some((status, hdrs, body)) => {
            let mut resp = (StatusCode::from_u16(status).expect("status"), body).into_response();
            for (k, v) in hdrs {
                resp.headers_mut().insert(k, v.parse().expect("header"));
            }
            resp
        }
        None => axum::Json(json!({"object": "token", "jwt": token("user_1")})).into_response(),
    }
}

async fn start(mock: Arc<Mock>) -> UpstreamConfig {
    let app = Router::new()
        .route("/v1/client", get(client))
        .route("/v1/client/sessions/{sid}/tokens", post(mint))
        .with_state(mock);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    UpstreamConfig::with_urls(&url, &url)
}

fn http_client() -> Transport {
    Transport::new(&UpstreamConfig::cto_new()).expect("transport")
}

#[tokio::test]
async fn discovery_then_single_flight_mint() {
    let mock = Arc::new(Mock::default());
    let cfg = start(Arc::clone(&mock)).await;
    let http = http_client();
    let account = Arc::new(Account::new("a", "x=y; __client=pasted").expect("account"));
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (http, cfg, account) = (http.clone(), cfg.clone(), Arc::clone(&account));
        tasks.push(tokio::spawn(async move {
            clerk::jwt(&http, &cfg, &account).await
        }));
    }
    for t in tasks {
        t.await.expect("task").expect("jwt");
    }
    assert_eq!(account.mint_count(), 1);
    assert_eq!(*mock.client_calls.lock().expect("lock"), 1);
    let mints = mock.mints.lock().expect("lock").clone();
    assert_eq!(mints.len(), 1);
    let (query, body, cookie) = &mints[0];
    assert!(query.contains("__clerk_api_version="), "{query}");
    assert!(query.contains("_clerk_js_version="), "{query}");
    assert_eq!(body, "organization_id=org_1");
    // The cookie rotated by the discovery answer is the one used to mint.
    assert_eq!(cookie, "__client=from-discovery");
    assert_eq!(account.current_client_cookie(), "from-discovery");
    let id = account.identity().expect("identity");
    assert_eq!(id.org_id.as_deref(), Some("org_1"));
}

#[tokio::test]
async fn missing_expired_token_is_retried_with_the_last_token() {
    let mock = Arc::new(Mock::default());
    let cfg = start(Arc::clone(&mock)).await;
    let http = http_client();
    let account = Account::new("a", "pasted").expect("account");
    let first = clerk::jwt(&http, &cfg, &account).await.expect("jwt");
    account.invalidate_jwt();
    mock.script.lock().expect("lock").push_back((
        422,
        vec![("content-type", "application/json")],
        json!({"errors": [{"code": "missing_expired_token"}]}).to_string(),
    ));
    clerk::jwt(&http, &cfg, &account)
        .await
        .expect("jwt after retry");
    let mints = mock.mints.lock().expect("lock").clone();
    assert_eq!(mints.len(), 3);
    assert!(!mints[1].0.contains("expired_token"));
    let expected = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("expired_token", &first)
        .finish();
    assert!(mints[2].0.contains(&expected), "{}", mints[2].0);
}

#[tokio::test]
async fn mint_failures_are_mapped() {
    let mock = Arc::new(Mock::default());
    let cfg = start(Arc::clone(&mock)).await;
    let http = http_client();
    let account = Account::with_session("a", "pasted", Some("sess_1".into())).expect("account");
    let script = |s: Scripted| mock.script.lock().expect("lock").push_back(s);

    script((429, vec![("retry-after", "9")], String::new()));
    let err = clerk::jwt(&http, &cfg, &account).await.expect_err("429");
    assert!(
        matches!(err, UpstreamError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(9)),
        "{err:?}"
    );

    script((
        401,
        vec![("content-type", "application/json")],
        json!({"errors": [{"code": "signed_out", "message": "Signed out"}]}).to_string(),
    ));
    match clerk::jwt(&http, &cfg, &account).await {
        Err(UpstreamError::CookieRejected { detail }) => {
            assert!(detail.contains("signed_out"), "{detail}");
            assert!(!detail.contains("pasted"));
        }
        other => panic!("unexpected {other:?}"),
    }

    script((
        403,
        vec![("content-type", "text/html")],
        "<html>Just a moment...</html>".to_string(),
    ));
    let err = clerk::jwt(&http, &cfg, &account)
        .await
        .expect_err("challenge");
    assert!(
        matches!(err, UpstreamError::CloudflareChallenge { status: 403, .. }),
        "{err:?}"
    );

    // A persisted session id mints without discovery and without forcing an org.
    clerk::jwt(&http, &cfg, &account).await.expect("jwt");
    assert_eq!(*mock.client_calls.lock().expect("lock"), 0);
    let mints = mock.mints.lock().expect("lock").clone();
    assert_eq!(mints.last().map(|m| m.1.as_str()), Some(""));
    assert_eq!(account.identity().expect("identity").user_id, "user_1");
}
