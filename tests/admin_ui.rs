//! The admin web page (`/admin`): off without ADMIN_KEY, login and its cookie, sessions across
//! replicas, logout, and a real browser run (`browser_flow`: Debian's Chromium driven by
//! playwright-core through tests/browser/admin.mjs). The admin API behind the page:
//! tests/admin_ui_api.rs.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::KEY;
use common::admin::{
    ADMIN, Auth, COOKIE_NAME, call, client_value, login, memory, no_redirects, session, set_cookie,
    start_on as harness_on,
};
use common::proc::{TempDir, sim_env, spawn_proxy};
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use reqwest::Method;

#[tokio::test]
async fn without_admin_key_the_page_is_off_and_says_how_to_turn_it_on() {
    let h = harness_on(memory(), None).await;
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
    let h = harness_on(memory(), Some(ADMIN)).await;
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
    let resp = no_redirects()
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

/// Two replicas with the same ADMIN_KEY and store (or one restarted): a session opened on one
/// works on the other, so a load balancer without sticky sessions does not log the page out. A
/// replica with another key refuses it.
#[tokio::test]
async fn a_session_works_on_every_replica_with_the_same_key() {
    let store = memory();
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
    let h = harness_on(memory(), Some(ADMIN)).await;
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
    let resp = no_redirects()
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
        &sim_env(&sim, &[("ADMIN_KEY", ADMIN.to_string())]),
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
