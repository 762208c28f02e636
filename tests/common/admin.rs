//! The admin surface's test kit: a proxy with an ADMIN_KEY on a store of the test's choosing
//! (replicas share one, as they share Redis), the login form, and calls that authenticate each
//! way the admin API accepts.

use std::sync::Arc;
use std::time::Duration;

use enginelabs_2api::simulator::{SimConfig, Simulator};
use enginelabs_2api::store::{Store, StoreLimits, memory::MemoryStore};
use reqwest::Method;
use serde_json::Value;

use super::{Harness, start_with};

/// The admin key of these tests (ADMIN_KEY needs at least 12 characters).
pub const ADMIN: &str = "adm-test-secret-42";

/// The name of the admin page's session cookie.
pub const COOKIE_NAME: &str = "el2a_admin";

/// An empty memory store.
pub fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new(StoreLimits::default()))
}

/// A simulator and a proxy with this ADMIN_KEY (none: the admin surface is off) on a fresh
/// memory store, which is returned too.
pub async fn start(admin: Option<&str>) -> (Harness, Arc<dyn Store>) {
    let store = memory();
    (start_on(Arc::clone(&store), admin).await, store)
}

/// A simulator and a proxy with this ADMIN_KEY on `store`.
pub async fn start_on(store: Arc<dyn Store>, admin: Option<&str>) -> Harness {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let mut a = super::args_for(&sim);
    a.admin_key = admin.map(enginelabs_2api::config::Secret::new);
    start_with(sim, a, store).await
}

/// A client that does not follow redirects (to see the login answer itself).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

/// Posts the login form with this key from `http`.
pub async fn login_from(http: &reqwest::Client, h: &Harness, key: &str) -> reqwest::Response {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("key", key)
        .finish();
    http.post(format!("{}/admin/login", h.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .expect("login")
}

/// Posts the login form with this key.
pub async fn login(h: &Harness, key: &str) -> reqwest::Response {
    login_from(&no_redirects(), h, key).await
}

/// The whole `Set-Cookie` header of an answer, which must have one.
pub fn set_cookie(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("set-cookie")
        .expect("set-cookie")
        .to_str()
        .expect("ascii")
        .to_string()
}

/// The `name=value` pair of the session cookie a successful login sets.
pub fn session_pair(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), 303, "a login that succeeds redirects");
    set_cookie(resp)
        .split(';')
        .next()
        .expect("pair")
        .to_string()
}

/// Logs in with [`ADMIN`] and returns the `name=value` pair of the session cookie.
pub async fn session(h: &Harness) -> String {
    session_pair(&login(h, ADMIN).await)
}

/// The `__client` value of a Clerk cookie (what must never leak).
pub fn client_value(cookie: &str) -> String {
    cookie
        .split("__client=")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("__client value")
        .to_string()
}

/// How an admin call authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Cookie(&'a str),
    /// The cookie plus `X-Admin-Request: 1`.
    CookieCsrf(&'a str),
}

/// One call to the proxy; returns (status, body).
pub async fn call(
    h: &Harness,
    method: Method,
    path: &str,
    auth: Auth<'_>,
    body: Option<Value>,
) -> (u16, String) {
    call_with(&no_redirects(), h, method, path, auth, body).await
}

/// [`call`] from a client of the test's choosing (another client address, say).
pub async fn call_with(
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

/// A body that must be JSON.
pub fn json_of(text: &str) -> Value {
    serde_json::from_str(text).expect("json")
}
