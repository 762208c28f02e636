//! The admin surface against a hostile client: wrong keys back off per client address (the
//! Bearer header, `x-api-key` and the login form share one count, concurrent guesses included),
//! session tokens need a secret the store keeps (not only ADMIN_KEY), a short ADMIN_KEY does not
//! start, and bad input to the admin API is a 400 in the JSON error shape.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Harness;
use common::admin::{ADMIN, login_from as login, memory, session_pair, start_on as harness_on};
use enginelabs_2api::config::{Config, ConfigArgs};
use serde_json::{Value, json};

async fn harness() -> Harness {
    harness_on(memory(), Some(ADMIN)).await
}

/// `GET /admin/api/accounts` with this key as a Bearer token; (status, Retry-After, body).
async fn accounts(h: &Harness, http: &reqwest::Client, key: &str) -> (u16, Option<u64>, Value) {
    let resp = http
        .get(format!("{}/admin/api/accounts", h.base))
        .bearer_auth(key)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (status, retry, resp.json().await.expect("json"))
}

#[tokio::test]
async fn wrong_admin_keys_back_off_per_client_address() {
    let h = harness().await;
    let guesser = h.client_from([127, 0, 0, 2]);
    for _ in 0..5 {
        let (s, _, body) = accounts(&h, &guesser, "wrong-guess").await;
        assert_eq!(s, 401, "{body}");
    }
    // Locked out now: even the right key is refused, so a guess learns nothing.
    let (s, retry, body) = accounts(&h, &guesser, ADMIN).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["error"]["code"], "admin_locked_out", "{body}");
    assert!(retry.is_some_and(|r| r >= 1), "Retry-After: {retry:?}");
    // The login form and `x-api-key` count for the same address.
    let resp = login(&guesser, &h, ADMIN).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().await.expect("page").contains("login-form"));
    let resp = guesser
        .get(format!("{}/admin/api/accounts", h.base))
        .header("x-api-key", ADMIN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    // Another address is not affected.
    let other = h.client_from([127, 0, 0, 3]);
    assert_eq!(accounts(&h, &other, ADMIN).await.0, 200);
    // Once the lock-out is over, the right key works again and clears the count.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(accounts(&h, &guesser, ADMIN).await.0, 200);
    assert_eq!(accounts(&h, &guesser, "wrong-again").await.0, 401);
}

/// Concurrent guesses are counted as they arrive: no burst gets more than the free tries.
#[tokio::test]
async fn concurrent_guesses_do_not_slip_past_the_count() {
    let h = harness().await;
    let guesser = h.client_from([127, 0, 0, 4]);
    let mut tasks = Vec::new();
    for i in 0..60 {
        let (http, base) = (guesser.clone(), h.base.clone());
        tasks.push(tokio::spawn(async move {
            http.get(format!("{base}/admin/api/accounts"))
                .bearer_auth(format!("guess-{i}"))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.expect("task"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let locked = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, locked), (5, 55), "{statuses:?}");
}

/// A live page session keeps working while its address is locked out (a session token cannot be
/// guessed, so refusing it would only let whoever shares the address lock the admin out).
#[tokio::test]
async fn a_live_session_is_not_locked_out() {
    let h = harness().await;
    let http = h.client_from([127, 0, 0, 5]);
    let cookie = session_pair(&login(&http, &h, ADMIN).await);
    for _ in 0..6 {
        accounts(&h, &http, "wrong-guess").await;
    }
    assert_eq!(accounts(&h, &http, ADMIN).await.0, 429);
    let resp = http
        .get(format!("{}/admin/api/accounts", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
}

/// The session MAC key is derived from a random secret the store keeps, keyed with ADMIN_KEY:
/// replicas (and restarts) sharing the store accept each other's sessions, a leaked cookie
/// alone does not let anyone test guesses of the key, and a new ADMIN_KEY logs everybody out.
#[tokio::test]
async fn sessions_need_the_stores_secret_and_the_key() {
    let shared = memory();
    let first = harness_on(Arc::clone(&shared), Some(ADMIN)).await;
    let http = first.client_from([127, 0, 0, 6]);
    let cookie = session_pair(&login(&http, &first, ADMIN).await);
    let with_cookie = |h: &Harness| {
        let url = format!("{}/admin/api/session", h.base);
        let req = http.get(url).header("cookie", &cookie);
        async move { req.send().await.expect("send").status().as_u16() }
    };
    assert_eq!(with_cookie(&first).await, 200);
    let replica = harness_on(Arc::clone(&shared), Some(ADMIN)).await;
    assert_eq!(with_cookie(&replica).await, 200, "same store, same key");
    let elsewhere = harness_on(memory(), Some(ADMIN)).await;
    assert_eq!(
        with_cookie(&elsewhere).await,
        401,
        "the key alone is not enough"
    );
    let rekeyed = harness_on(shared, Some("another-admin-key-22")).await;
    assert_eq!(with_cookie(&rekeyed).await, 401, "a new ADMIN_KEY logs out");
}

#[test]
fn a_short_admin_key_does_not_start() {
    let mut a = ConfigArgs::from_pairs(&[("STORE", "memory"), ("ADMIN_KEY", "a")]).expect("parse");
    let err = Config::from_args(&a).expect_err("refused");
    assert_eq!(err.setting, "ADMIN_KEY");
    assert!(err.to_string().contains("12"), "{err}");
    a.admin_key = Some(enginelabs_2api::config::Secret::new("twelve-chars"));
    assert!(Config::from_args(&a).is_ok());
}

async fn add(h: &Harness, body: Value) -> (u16, Value) {
    let resp = h
        .http
        .post(format!("{}/admin/api/accounts", h.base))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .expect("send");
    (
        resp.status().as_u16(),
        resp.json().await.expect("json error"),
    )
}

#[tokio::test]
async fn labels_are_bounded_and_printable() {
    let h = harness().await;
    let cookie = h.sim.add_account().cookie;
    for label in [
        "x".repeat(65),
        "evil\r\nINFO forged line".to_string(),
        "esc\u{1b}[31mred".to_string(),
        "nul\0".to_string(),
        "bidi\u{202e}txt".to_string(),
    ] {
        let (s, v) = add(&h, json!({"cookie": cookie, "label": label})).await;
        assert_eq!(s, 400, "{label:?}: {v}");
        assert_eq!(v["error"]["param"], "label", "{v}");
    }
    assert_eq!(h.state.pool().len(), 1, "nothing was added");
    let (s, v) = add(&h, json!({"cookie": cookie, "label": "é-ok 64 chars max"})).await;
    assert_eq!(s, 200, "{v}");
}

/// A pasted cookie with CR, LF or NUL in it is the user's paste gone wrong: a 400 that says so,
/// never sent on (where it failed as a 502).
#[tokio::test]
async fn cookies_with_control_characters_are_a_400() {
    let h = harness().await;
    for bad in [
        "__client=abc\r\nX-Injected: 1",
        "__client=abc\0def",
        "abc\ndef",
    ] {
        let (s, v) = add(&h, json!({"cookie": bad})).await;
        assert_eq!(s, 400, "{bad:?}: {v}");
        assert_eq!(v["error"]["code"], "cookie_rejected", "{v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("control character"), "{msg}");
    }
    assert_eq!(h.state.pool().len(), 1, "nothing was added");
}

#[tokio::test]
async fn a_bad_query_string_gets_the_json_error_shape() {
    let h = harness().await;
    let resp = h
        .http
        .get(format!("{}/admin/api/overview?minutes=x", h.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 400);
    let v: Value = resp.json().await.expect("JSON, not axum's plain text");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("minutes")),
        "{v}"
    );
}
