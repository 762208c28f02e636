//! The cto.new simulator's Clerk side driven over real sockets (reqwest), checked against the
//! protocol notes: client discovery, token mints, cookie rotation, revoked and replaced
//! sessions, and EngineLabs refusing bad tokens. The EngineLabs turns: tests/sim_engine.rs;
//! faults and the `/__sim` control plane: tests/sim_faults.rs.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use enginelabs_2api::simulator::{Faults, SimConfig, Simulator};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod common;

use common::sim::*;

#[tokio::test]
async fn client_discovery_has_the_documented_shape() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    assert!(acc.cookie.starts_with("__client=sim_client_"));
    assert!(acc.cookie.contains("__client_uat="));
    let resp = get_client(&sim, &acc.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body["client"].is_null());
    let client = &body["response"];
    assert_eq!(client["object"], "client");
    assert_eq!(client["last_active_session_id"], acc.session_id.as_str());
    let session = &client["sessions"][0];
    assert_eq!(session["status"], "active");
    assert_eq!(session["last_active_organization_id"], acc.org_id.as_str());
    assert_eq!(session["user"]["id"], acc.user_id.as_str());
    assert_eq!(
        session["user"]["organization_memberships"][0]["organization"]["id"],
        acc.org_id.as_str()
    );
    // Milliseconds, not seconds.
    assert!(session["last_active_at"].as_u64().unwrap() > 1_000_000_000_000);
    let stale = claims(session["last_active_token"]["jwt"].as_str().unwrap());
    assert!(stale["exp"].as_u64().unwrap() < now_secs());
    assert_eq!(sim.stats().client_calls, 1);

    let resp = get_client(&sim, "__client=nonsense").await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "signed_out");
    assert!(body["clerk_trace_id"].is_string());
}

#[tokio::test]
async fn mint_returns_a_bare_token_with_the_configured_ttl() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(7),
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let resp = mint_raw(&sim, &acc.session_id, &acc.cookie).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "token");
    assert!(body.get("response").is_none());
    let jwt = body["jwt"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].is_string());
    let c = claims(jwt);
    let iat = c["iat"].as_u64().unwrap();
    assert_eq!(c["exp"].as_u64().unwrap(), iat + 7);
    assert_eq!(c["nbf"].as_u64().unwrap(), iat - 10);
    assert_eq!(c["sub"], acc.user_id.as_str());
    assert_eq!(c["sid"], acc.session_id.as_str());
    assert_eq!(c["azp"], ORIGIN);
    assert_eq!(c["v"], 2);
    assert_eq!(c["o"]["id"], acc.org_id.as_str());
    assert_eq!(sim.stats().mints, 1);
}

fn set_cookie_value(resp: &reqwest::Response) -> Option<String> {
    let raw = resp.headers().get("set-cookie")?.to_str().ok()?.to_owned();
    assert!(
        raw.contains("Path=/; HttpOnly; Secure; SameSite=Lax"),
        "{raw}"
    );
    let first = raw.split(';').next()?;
    first.strip_prefix("__client=").map(str::to_owned)
}

#[tokio::test]
async fn rotation_keeps_one_grace_value_and_kills_older_ones() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let sid = acc.session_id.clone();
    let c0 = acc.cookie.clone();
    let r = mint_raw(&sim, &sid, &c0).await;
    let c1 = format!("__client={}", set_cookie_value(&r).expect("rotated"));
    let r = mint_raw(&sim, &sid, &c1).await;
    let c2 = format!("__client={}", set_cookie_value(&r).expect("rotated"));
    assert_ne!(c1, c2);
    // c0 is two rotations old: dead.
    let r = mint_raw(&sim, &sid, &c0).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "signed_out");
    assert_eq!(
        get_client(&sim, &c0).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // c1 is the grace value, c2 the current one.
    assert_eq!(get_client(&sim, &c1).await.status(), StatusCode::OK);
    assert_eq!(get_client(&sim, &c2).await.status(), StatusCode::OK);
    assert!(sim.account().cookie.starts_with(&c2));
    let r = mint_raw(&sim, &sid, &c2).await;
    assert_eq!(r.status(), StatusCode::OK);

    let fixed = Simulator::start(SimConfig {
        rotate_cookies: false,
        ..cfg()
    })
    .await
    .unwrap();
    let a = fixed.account();
    let r = mint_raw(&fixed, &a.session_id, &a.cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn revoke_and_restore() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    sim.revoke(&acc.user_id);
    assert_eq!(
        get_client(&sim, &acc.cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mint_raw(&sim, &acc.session_id, &acc.cookie).await.status(),
        StatusCode::UNAUTHORIZED
    );
    sim.set_faults(Faults {
        revoked_as_empty_client: true,
        ..Faults::default()
    });
    let r = get_client(&sim, &acc.cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert!(body["response"]["last_active_session_id"].is_null());
    assert_eq!(body["response"]["sessions"].as_array().unwrap().len(), 0);
    sim.restore(&acc.user_id);
    assert_eq!(get_client(&sim, &acc.cookie).await.status(), StatusCode::OK);
    assert_eq!(sim.stats().mints, 0);
    mint(&sim, &acc).await;
}

#[tokio::test]
async fn replaced_session_answers_404_and_discovery_shows_the_new_one() {
    let sim = Simulator::start(SimConfig {
        rotate_cookies: false,
        ..cfg()
    })
    .await
    .unwrap();
    let acc = sim.account();
    let new_sid = sim.replace_session(&acc.user_id);
    assert_ne!(new_sid, acc.session_id);
    let r = mint_raw(&sim, &acc.session_id, &acc.cookie).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "resource_not_found");
    let body: Value = get_client(&sim, &acc.cookie).await.json().await.unwrap();
    assert_eq!(body["response"]["last_active_session_id"], new_sid.as_str());
    assert_eq!(
        mint_raw(&sim, &new_sid, &acc.cookie).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn engine_rejects_expired_forged_and_missing_tokens() {
    let sim = Simulator::start(cfg()).await.unwrap();
    let acc = sim.account();
    let body: Value = get_client(&sim, &acc.cookie).await.json().await.unwrap();
    let stale = body["response"]["sessions"][0]["last_active_token"]["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = api(&sim, reqwest::Method::GET, "/current-user", &stale, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["message"], "Unauthorized");

    let good = mint(&sim, &acc).await;
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut c = claims(&good);
    c["sub"] = json!("user_someoneelse");
    parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
    let forged = parts.join(".");
    let r = api(&sim, reqwest::Method::GET, "/billing", &forged, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = http()
        .get(format!("{}/billing", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().rejected_jwts, 3);

    let r = api(&sim, reqwest::Method::GET, "/current-user", &good, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["currentUser"]["id"], acc.user_id.as_str());
    assert_eq!(body["currentUser"]["team"]["id"], acc.org_id.as_str());
    assert_eq!(sim.stats().rejected_jwts, 3);
}

#[tokio::test]
async fn a_minted_token_dies_at_its_exp() {
    let sim = Simulator::start(SimConfig {
        token_ttl: Duration::from_secs(1),
        ..cfg()
    })
    .await
    .unwrap();
    let jwt = mint(&sim, &sim.account()).await;
    let exp = claims(&jwt)["exp"].as_u64().unwrap();
    while now_secs() <= exp {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = api(&sim, reqwest::Method::GET, "/billing", &jwt, None).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sim.stats().rejected_jwts, 1);
}
