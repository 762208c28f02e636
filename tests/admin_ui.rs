//! The admin web page (`/admin`): off without ADMIN_KEY, login and its cookie, the admin API
//! opened by either the key or the page session (with the CSRF header on state-changing calls),
//! logout, no cookie value in any answer, the playground, and a real browser run
//! (`browser_flow`: Debian's Chromium driven by playwright-core through tests/browser/admin.mjs).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::proc::{TempDir, spawn_proxy};
use common::{Harness, KEY, start_with};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use enginelabs_2api::store::{Store, StoreLimits, memory::MemoryStore};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "adm-ui-secret-77";
const COOKIE_NAME: &str = "el2a_admin";

async fn harness(admin: Option<&str>) -> Harness {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
    harness_on(store, admin).await
}

/// A proxy on this store (replicas share one, as they share Redis).
async fn harness_on(store: Arc<dyn Store>, admin: Option<&str>) -> Harness {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let mut a = common::args_for(&sim);
    a.admin_key = admin.map(str::to_string);
    start_with(sim, a, store).await
}

/// A client that does not follow redirects (to see the login answer itself).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

async fn login(h: &Harness, key: &str) -> reqwest::Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("key", key)
        .finish();
    http()
        .post(format!("{}/admin/login", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("login")
}

/// Logs in and returns the `name=value` pair of the session cookie.
async fn session(h: &Harness) -> String {
    let resp = login(h, ADMIN).await;
    assert_eq!(resp.status(), 303);
    set_cookie(&resp)
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}

fn set_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .to_string()
}

/// How the call authenticates.
#[derive(Clone, Copy)]
enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    /// The cookie plus `X-Admin-Request: 1`.
    CookieCsrf(&'a str),
}

async fn call(
    h: &Harness,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (u16, String) {
    call_with(&http(), h, method, path, auth, body).await
}

async fn call_with(
    http: &reqwest::Client,
    h: &Harness,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (u16, String) {
    let mut req = http.request(method, format!("{}{path}", h.base));
    req = match auth {
        Auth::None => req,
        Auth::Bearer(k) => req.bearer_auth(k),
        Auth::Cookie(c) => req.header("cookie", c),
        Auth::CookieCsrf(c) => req.header("cookie", c).header("x-admin-request", "1"),
    };
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

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

fn client_value(cookie: &str) -> String {
    cookie
        .split("__client=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("__client value")
        .to_string()
}

#[tokio::test]
async fn without_admin_key_the_page_is_off_and_says_how_to_turn_it_on() {
    let h = harness(None).await;
    for (method, path) in [
        (Method::GET, "/admin"),
        (Method::POST, "/admin/login"),
        (Method::GET, "/admin/api/overview"),
    ] {
        let (s, body) = call(&h, method, path, Auth::None, None).await;
        assert_eq!(s, 404, "{path}: {body}");
        assert!(body.contains("ADMIN_KEY"), "{path}: {body}");
    }
    let resp = login(&h, "anything").await;
    assert!(resp.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn login_with_a_wrong_key_shows_an_error_and_the_right_one_gives_a_strict_cookie() {
    let h = harness(Some(ADMIN)).await;
    let (s, page) = call(&h, Method::GET, "/admin", Auth::None, None).await;
    assert_eq!(s, 200);
    assert!(page.contains("id=\"login-form\""), "{page}");

    for wrong in ["nope", "", KEY] {
        let resp = login(&h, wrong).await;
        assert_eq!(resp.status(), 401, "{wrong:?}");
        assert!(resp.headers().get("set-cookie").is_none());
        let body = resp.text().await.expect("body");
        assert!(body.contains("Wrong admin key"), "{body}");
        assert!(body.contains("id=\"login-form\""));
    }

    let resp = login(&h, ADMIN).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(
        resp.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/admin")
    );
    let c = set_cookie(&resp);
    assert!(c.starts_with(&format!("{COOKIE_NAME}=")), "{c}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(c.contains(attr), "{attr} missing in {c}");
    }
    let token = c
        .split(';')
        .next()
        .expect("pair")
        .split('=')
        .nth(1)
        .expect("value");
    // `<expiry>.<16 random bytes>.<HMAC-SHA256>`, all hex but the expiry.
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    assert!(parts[0].parse::<u64>().is_ok(), "{token}");
    assert_eq!((parts[1].len(), parts[2].len()), (32, 64), "{token}");
    assert!(!c.contains(ADMIN), "the cookie is not the key");

    // With the cookie, /admin is the app; the page is never framed and runs only its own script.
    let pair = c.split(';').next().expect("pair").to_string();
    let resp = http()
        .get(format!("{}/admin", h.base))
        .header("cookie", &pair)
        .send()
        .await
        .expect("page");
    let csp = resp
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let page = resp.text().await.expect("body");
    assert!(
        page.contains("id=\"tabs\"") && !page.contains("login-form"),
        "{page}"
    );
}

#[tokio::test]
async fn the_admin_api_needs_the_key_or_a_session_and_the_csrf_header_for_changes() {
    let h = harness(Some(ADMIN)).await;
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

/// Two replicas with the same ADMIN_KEY and store (or one restarted): a session opened on one
/// works on the other, so a load balancer without sticky sessions does not log the page out. A
/// replica with another key refuses it.
#[tokio::test]
async fn a_session_works_on_every_replica_with_the_same_key() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
    let first = harness_on(Arc::clone(&store), Some(ADMIN)).await;
    let second = harness_on(Arc::clone(&store), Some(ADMIN)).await;
    let cookie = session(&first).await;
    let accounts = |h| {
        call(
            h,
            Method::GET,
            "/admin/api/accounts",
            Auth::Cookie(&cookie),
            None,
        )
    };
    let (s, body) = accounts(&second).await;
    assert_eq!(s, 200, "{body}");
    let (_, page) = call(&second, Method::GET, "/admin", Auth::Cookie(&cookie), None).await;
    assert!(
        page.contains("id=\"tabs\""),
        "logged in on the other replica"
    );
    let other_key = harness_on(store, Some("another-admin-key")).await;
    assert_eq!(accounts(&other_key).await.0, 401);
}

#[tokio::test]
async fn logout_ends_the_session_on_the_server() {
    let h = harness(Some(ADMIN)).await;
    let cookie = session(&h).await;
    let other = session(&h).await;
    let (s, _) = call(
        &h,
        Method::GET,
        "/admin/api/accounts",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let resp = http()
        .post(format!("{}/admin/logout", h.base))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("logout");
    assert_eq!(resp.status(), 303);
    let cleared = set_cookie(&resp);
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // Even a client that keeps the old cookie is out.
    let (s, _) = call(
        &h,
        Method::GET,
        "/admin/api/accounts",
        Auth::Cookie(&cookie),
        None,
    )
    .await;
    assert_eq!(s, 401);
    let (_, page) = call(&h, Method::GET, "/admin", Auth::Cookie(&cookie), None).await;
    assert!(page.contains("login-form"));
    // Another session is untouched.
    let (s, _) = call(
        &h,
        Method::GET,
        "/admin/api/accounts",
        Auth::Cookie(&other),
        None,
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn no_answer_of_the_page_or_the_admin_api_carries_a_cookie_value() {
    let h = harness(Some(ADMIN)).await;
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

/// The settings tab shows the upstream proxy and the transport, never the proxy's password.
#[tokio::test]
async fn settings_show_the_proxy_without_its_password() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let mut a = common::args_for(&sim);
    a.admin_key = Some(ADMIN.to_string());
    a.upstream_proxy = Some("http://me:pw-secret-9@127.0.0.1:3128".to_string());
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new(StoreLimits::default()));
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
        v["upstream"]["proxy"],
        "http://127.0.0.1:3128 (with credentials)"
    );
    assert!(v["upstream"]["transport"].is_string(), "{body}");
}

#[tokio::test]
async fn the_playground_streams_through_the_chat_handler_and_feeds_the_overview() {
    let h = harness(Some(ADMIN)).await;
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

/// Debian's Chromium, driven by playwright-core, through the whole page against the real binary.
#[tokio::test]
#[ignore = "needs Chromium and playwright-core: BROWSER_NODE_MODULES (.ci/run installs both)"]
async fn browser_flow() {
    let modules = std::env::var("BROWSER_NODE_MODULES").expect(
        "BROWSER_NODE_MODULES is unset: a node_modules folder holding `playwright-core` (.ci/run sets it)",
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing (apt-get install -y chromium; .ci/run does)"
    );
    let sim = Simulator::start(SimConfig {
        frame_delay: Duration::from_millis(15),
        reply_words: 40,
        ..SimConfig::default()
    })
    .await
    .expect("sim");
    sim.set_faults(Faults {
        thinking: true,
        ..Faults::default()
    });
    let extra = sim.add_account();
    let tmp = TempDir::new("admin-ui");
    let proxy = spawn_proxy(
        &[
            ("ADMIN_KEY", ADMIN.to_string()),
            ("API_MASTER_KEY", KEY.to_string()),
            ("CLERK_COOKIE", sim.account().cookie),
            ("CLERK_BASE_URL", sim.url()),
            ("ENGINE_BASE_URL", sim.url()),
            ("STORE", "memory".to_string()),
        ],
        &tmp.0.join("proxy.log"),
    )
    .await;

    // ESM resolves packages from the script's folder upwards: run a copy beside node_modules.
    let dir = std::path::Path::new(&modules)
        .parent()
        .expect("node_modules has a parent")
        .to_path_buf();
    let script = dir.join("admin.mjs");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/admin.mjs");
    std::fs::copy(&source, &script).expect("copy the script");
    // The README's pictures are only rewritten on request, so a test run leaves the tree clean.
    let shots = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots")
    } else {
        tmp.0.join("screenshots")
    };
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("node")
            .arg(&script)
            .arg(&proxy.base)
            .arg(ADMIN)
            .arg(&extra.cookie)
            .arg(&shots)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser run finished in time")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{stderr}\nproxy log:\n{}",
        proxy.logs()
    );
    assert!(stdout.contains("ok: logged out"), "{stdout}");
    for name in ["login", "overview", "accounts", "playground", "settings"] {
        assert!(shots.join(format!("{name}.png")).exists(), "{name}.png");
    }
    let logs = proxy.logs();
    assert!(
        !logs.contains(&client_value(&extra.cookie)),
        "a cookie reached the logs"
    );
    proxy.stop().await;
}
