//! The admin API as the page uses it: opened by either the key or the page session (with the
//! CSRF header on state-changing calls), no cookie value in any answer, the settings tab, and
//! the playground feeding the overview.

mod common;

use common::admin::{
    ADMIN, Auth, COOKIE_NAME, call, call_with, client_value, memory, session,
    start_on as harness_on,
};
use common::{KEY, start_with};
use enginelabs_2api::config::Secret;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use reqwest::Method;
use serde_json::{Value, json};

/// Every admin API route, with a body where it takes one. `{id}` is an account id.
fn admin_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/admin/api/accounts".into(), None),
        (
            Method::POST,
            "/admin/api/accounts".into(),
            Some(json!({"cookie": "__client=nope"})),
        ),
        (Method::GET, format!("/admin/api/accounts/{id}"), None),
        (
            Method::POST,
            format!("/admin/api/accounts/{id}/disable"),
            None,
        ),
        (
            Method::POST,
            format!("/admin/api/accounts/{id}/enable"),
            None,
        ),
        (
            Method::POST,
            format!("/admin/api/accounts/{id}/check"),
            None,
        ),
        (Method::DELETE, format!("/admin/api/accounts/{id}"), None),
        (Method::GET, "/admin/api/session".into(), None),
        (Method::GET, "/admin/api/overview".into(), None),
        (Method::GET, "/admin/api/settings".into(), None),
        (Method::GET, "/admin/api/models".into(), None),
        (
            Method::POST,
            "/admin/api/chat".into(),
            Some(json!({"messages": [{"role": "user", "content": "hi"}]})),
        ),
    ]
}

#[tokio::test]
async fn the_admin_api_needs_the_key_or_a_session_and_the_csrf_header_for_changes() {
    let h = harness_on(memory(), Some(ADMIN)).await;
    let cookie = session(&h).await;
    let forged = format!("{COOKIE_NAME}={}", "ab".repeat(32));
    // A check discovers the account's user, which fixes its id (`acct_...`).
    let pending = h.state.pool().snapshot()[0].id.clone();
    let (s, checked) = call(
        &h,
        Method::POST,
        &format!("/admin/api/accounts/{pending}/check"),
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{checked}");
    let id = serde_json::from_str::<Value>(&checked).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();

    // The wrong keys come from an address of their own: after five of them it is locked out
    // (429), which must not lock out the right key sent below (tests/admin_guard.rs).
    let guesser = h.client_from([127, 0, 0, 9]);
    for (method, path, body) in admin_routes(&id) {
        for auth in [
            Auth::None,
            Auth::Bearer("wrong"),
            Auth::Bearer(KEY),
            Auth::Cookie(&forged),
            Auth::CookieCsrf(&forged),
        ] {
            let (s, text) =
                call_with(&guesser, &h, method.clone(), &path, auth, body.clone()).await;
            let locked = s == 429 && text.contains("admin_locked_out");
            assert!(s == 401 || locked, "{method} {path}: {s} {text}");
        }
        let changes = method != Method::GET;
        if changes {
            // A cookie alone (what a cross-site form could send) does not change anything.
            let (s, text) = call(
                &h,
                method.clone(),
                &path,
                Auth::Cookie(&cookie),
                body.clone(),
            )
            .await;
            assert_eq!(s, 403, "{method} {path}: {text}");
            assert!(text.contains("X-Admin-Request"), "{text}");
        }
    }
    assert_eq!(
        h.state.pool().snapshot()[0].state.as_str(),
        "active",
        "nothing was changed"
    );

    // Now every route answers to the session (with the header on changes) and to the key.
    for (method, path, body) in admin_routes(&id) {
        if method == Method::DELETE {
            continue; // below, last
        }
        let auth = if method == Method::GET {
            Auth::Cookie(&cookie)
        } else {
            Auth::CookieCsrf(&cookie)
        };
        let (s, text) = call(&h, method.clone(), &path, auth, body.clone()).await;
        assert!(s != 401 && s != 403, "{method} {path}: {s} {text}");
        let (s, text) = call(&h, method.clone(), &path, Auth::Bearer(ADMIN), body.clone()).await;
        assert!(
            s != 401 && s != 403,
            "{method} {path} with the key: {s} {text}"
        );
    }
    let (s, text) = call(
        &h,
        Method::POST,
        &format!("/admin/api/accounts/{id}/disable"),
        Auth::CookieCsrf(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert_eq!(h.state.pool().snapshot()[0].state.as_str(), "disabled");
    let (s, text) = call(
        &h,
        Method::DELETE,
        &format!("/admin/api/accounts/{id}"),
        Auth::CookieCsrf(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 200, "{text}");
    assert!(h.state.pool().snapshot().is_empty());
}

#[tokio::test]
async fn no_answer_of_the_page_or_the_admin_api_carries_a_cookie_value() {
    let h = harness_on(memory(), Some(ADMIN)).await;
    let cookie = session(&h).await;
    let configured = h.sim.account();
    let second = h.sim.add_account();
    let mut bodies = Vec::new();

    let (s, added) = call(
        &h,
        Method::POST,
        "/admin/api/accounts",
        Auth::CookieCsrf(&cookie),
        Some(json!({"cookie": second.cookie, "label": "pasted"})),
    )
    .await;
    assert_eq!(s, 200, "{added}");
    let id = serde_json::from_str::<Value>(&added).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    bodies.push(("add".to_string(), added));
    // A playground turn through the page session, so accounts are used and cookies rotate.
    let (s, chat) = call(
        &h,
        Method::POST,
        "/admin/api/chat",
        Auth::CookieCsrf(&cookie),
        Some(json!({"messages": [{"role": "user", "content": "scan me"}]})),
    )
    .await;
    assert_eq!(s, 200, "{chat}");
    bodies.push(("chat".to_string(), chat));
    for path in [
        format!("/admin/api/accounts/{id}/check"),
        format!("/admin/api/accounts/{id}/disable"),
        format!("/admin/api/accounts/{id}/enable"),
    ] {
        let (s, b) = call(&h, Method::POST, &path, Auth::CookieCsrf(&cookie), None).await;
        assert_eq!(s, 200, "{path}: {b}");
        bodies.push((path, b));
    }
    for path in [
        "/admin".to_string(),
        "/admin/admin.js".to_string(),
        "/admin/admin.css".to_string(),
        "/admin/api/session".to_string(),
        "/admin/api/accounts".to_string(),
        format!("/admin/api/accounts/{id}"),
        "/admin/api/overview".to_string(),
        "/admin/api/settings".to_string(),
        "/admin/api/models".to_string(),
        "/".to_string(),
        "/metrics".to_string(),
    ] {
        let (s, b) = call(&h, Method::GET, &path, Auth::Cookie(&cookie), None).await;
        assert_eq!(s, 200, "{path}: {b}");
        bodies.push((path, b));
    }
    let (_, removed) = call(
        &h,
        Method::DELETE,
        &format!("/admin/api/accounts/{id}"),
        Auth::CookieCsrf(&cookie),
        None,
    )
    .await;
    bodies.push(("delete".to_string(), removed));

    let mut secrets = vec![
        client_value(&configured.cookie),
        client_value(&second.cookie),
        ADMIN.to_string(),
        KEY.to_string(),
    ];
    for u in [&configured.user_id, &second.user_id] {
        secrets.push(client_value(
            &h.sim.account_of(u).expect("sim account").cookie,
        ));
    }
    for (path, body) in &bodies {
        for s in &secrets {
            assert!(!body.contains(s.as_str()), "{path} leaks a secret: {body}");
        }
    }
    let settings = &bodies
        .iter()
        .find(|(p, _)| p == "/admin/api/settings")
        .expect("settings")
        .1;
    assert!(settings.contains("<redacted>"), "{settings}");
}

/// The settings tab shows every setting, the upstream proxy and the transport, never a secret
/// (the proxy's password, the keys).
#[tokio::test]
async fn settings_show_the_proxy_without_its_password() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let mut a = common::args_for(&sim);
    a.admin_key = Some(Secret::new(ADMIN));
    a.upstream_proxy = Some(Secret::new("http://me:pw-secret-9@127.0.0.1:3128"));
    let store = memory();
    let h = start_with(sim, a, store).await;
    let (s, body) = call(
        &h,
        Method::GET,
        "/admin/api/settings",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(!body.contains("pw-secret-9"), "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        v["UPSTREAM_PROXY"],
        "http://127.0.0.1:3128 (with credentials)"
    );
    assert!(v["transport"].is_string(), "{body}");
    // Every setting of the command line (and so of `.env.example`) is listed; secrets redacted.
    for arg in <enginelabs_2api::cli::Cli as clap::CommandFactory>::command().get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            assert!(v[env].is_string(), "the settings page misses {env}: {body}");
        }
    }
    assert_eq!(v["ADMIN_KEY"], "<redacted>");
    assert!(!body.contains(ADMIN) && !body.contains(KEY), "{body}");
}

#[tokio::test]
async fn the_playground_streams_through_the_chat_handler_and_feeds_the_overview() {
    let h = harness_on(memory(), Some(ADMIN)).await;
    h.sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let cookie = session(&h).await;
    let (s, models) = call(
        &h,
        Method::GET,
        "/admin/api/models",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let models: Value = serde_json::from_str(&models).expect("json");
    // The live catalogue of the simulator (Gen-2), the same list /v1/models gives clients.
    let ids: Vec<&str> = models["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"gpt_5_4") && ids.contains(&"gpt_5"),
        "{ids:?}"
    );

    let mut messages = vec![json!({"role": "user", "content": "first question"})];
    let (s, text) = call(
        &h,
        Method::POST,
        "/admin/api/chat",
        Auth::CookieCsrf(&cookie),
        Some(json!({"model": "GPT5", "messages": messages, "stream": true})),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let (content, reasoning) = common::stream_text(&common::sse_data(&text));
    assert!(
        content.starts_with("Turn 1: you said \"first question\""),
        "{content}"
    );
    assert!(reasoning.contains("Considering turn 1"), "{reasoning}");
    messages.push(json!({"role": "assistant", "content": content}));
    messages.push(json!({"role": "user", "content": "second question"}));
    let (s, text) = call(
        &h,
        Method::POST,
        "/admin/api/chat",
        Auth::CookieCsrf(&cookie),
        Some(json!({"model": "GPT5", "messages": messages, "stream": true})),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    let (content, _) = common::stream_text(&common::sse_data(&text));
    assert!(
        content.starts_with("Turn 2: you said \"second question\""),
        "continuity: {content}"
    );
    let triggers = h.sim.stats().triggers;
    assert_eq!(triggers.len(), 2);
    assert_eq!(triggers[0].chat_history_id, triggers[1].chat_history_id);

    let (s, ov) = call(
        &h,
        Method::GET,
        "/admin/api/overview",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let ov: Value = serde_json::from_str(&ov).expect("json");
    assert_eq!(ov["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(ov["store_backend"], "memory");
    assert!(ov["upstream_protocol"].is_string());
    assert_eq!(ov["accounts"]["total"], 1);
    let t = &ov["traffic"];
    assert_eq!(t["points"].as_array().map(Vec::len), Some(30));
    // The stats are process-wide: other tests in this binary add to them, never take away.
    assert!(t["requests"].as_u64().unwrap_or(0) >= 2, "{t}");
    assert!(
        t["ttfb_p50_ms"].is_number() && t["ttfb_p95_ms"].is_number(),
        "{t}"
    );
}
