//! CORS (`CORS_ORIGINS`) for browser-side clients: off by default; when on, preflights of the
//! client API are answered (allowing the headers the SDKs send, nothing else), answers carry
//! the origin header (errors too), and `/admin` never gets any of it.

mod common;

use common::{start, user};
use enginelabs_2api::config::Secret;
use enginelabs_2api::simulator::SimConfig;
use reqwest::Method;
use serde_json::json;

const PAGE: &str = "https://chat.example.com";

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn preflight(
    base: &str,
    path: &str,
    origin: &str,
    method: &str,
    headers: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{base}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("preflight")
}

const SDK_HEADERS: &str = "authorization,content-type,x-api-key,anthropic-version,anthropic-beta,x-stainless-os,x-stainless-retry-count";

#[tokio::test]
async fn off_by_default() {
    let h = start(SimConfig::default(), |_| {}).await;
    let resp = preflight(
        &h.base,
        "/v1/chat/completions",
        PAGE,
        "POST",
        "authorization",
    )
    .await;
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
    let resp = h
        .get("/v1/models")
        .header("origin", PAGE)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
}

#[tokio::test]
async fn listed_origins_may_call_every_client_route() {
    let h = start(SimConfig::default(), |a| {
        a.cors_origins = format!("{PAGE}, http://localhost:3000");
    })
    .await;
    for (path, method) in [
        ("/v1/chat/completions", "POST"),
        ("/v1/responses", "POST"),
        ("/v1/messages", "POST"),
        ("/v1/messages/count_tokens", "POST"),
        ("/v1/models", "GET"),
        ("/v1/models/GPT5", "GET"),
    ] {
        let resp = preflight(&h.base, path, PAGE, method, SDK_HEADERS).await;
        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        assert_eq!(
            header(&resp, "access-control-allow-origin").as_deref(),
            Some(PAGE),
            "{path}"
        );
        let methods = header(&resp, "access-control-allow-methods").unwrap_or_default();
        assert!(methods.contains(method), "{path}: {methods}");
        let allowed = header(&resp, "access-control-allow-headers")
            .unwrap_or_default()
            .to_ascii_lowercase();
        for h in SDK_HEADERS.split(',') {
            assert!(allowed.contains(h), "{path}: {h} not in {allowed}");
        }
        assert!(header(&resp, "access-control-allow-credentials").is_none());
    }
    // A header no SDK sends is left out, so the browser refuses the request.
    let resp = preflight(
        &h.base,
        "/v1/chat/completions",
        PAGE,
        "POST",
        "authorization, x-evil",
    )
    .await;
    let allowed = header(&resp, "access-control-allow-headers").unwrap_or_default();
    assert!(
        allowed.contains("authorization") && !allowed.contains("x-evil"),
        "{allowed}"
    );
    // An origin not on the list gets no allow-origin.
    let resp = preflight(
        &h.base,
        "/v1/chat/completions",
        "https://evil.example",
        "POST",
        "authorization",
    )
    .await;
    assert_eq!(header(&resp, "access-control-allow-origin"), None);

    // The call itself: the answer (an error too) names the origin and exposes the request id.
    let resp = h
        .post("/v1/chat/completions")
        .header("origin", PAGE)
        .json(&json!({"model": "GPT5", "messages": [user("hi from a page")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some(PAGE)
    );
    let exposed = header(&resp, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("x-request-id"), "{exposed}");
    let refused = reqwest::Client::new()
        .get(format!("{}/v1/models", h.base))
        .header("origin", PAGE)
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status().as_u16(), 401);
    assert_eq!(
        header(&refused, "access-control-allow-origin").as_deref(),
        Some(PAGE)
    );
    // A preflight reaches nothing behind the key check.
    assert_eq!(h.sim.stats().triggers.len(), 1);
}

#[tokio::test]
async fn any_origin_with_a_star_and_never_on_admin() {
    let h = start(SimConfig::default(), |a| {
        a.cors_origins = "*".into();
        a.admin_key = Some(Secret::new("adm-cors-secret-5"));
    })
    .await;
    let resp = preflight(
        &h.base,
        "/v1/models",
        "https://anywhere.example",
        "GET",
        "authorization",
    )
    .await;
    assert_eq!(
        header(&resp, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    for (path, method) in [
        ("/admin/api/accounts", "GET"),
        ("/admin/api/chat", "POST"),
        ("/admin/login", "POST"),
        ("/admin", "GET"),
    ] {
        let resp = preflight(&h.base, path, PAGE, method, "authorization").await;
        assert_eq!(header(&resp, "access-control-allow-origin"), None, "{path}");
        assert!(!resp.status().is_success(), "{path}: {}", resp.status());
    }
    let resp = reqwest::Client::new()
        .get(format!("{}/admin/api/accounts", h.base))
        .header("origin", PAGE)
        .bearer_auth("adm-cors-secret-5")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(header(&resp, "access-control-allow-origin"), None);
}
