//! The admin API (`/admin/api/accounts`): its key, adding (validated at once), listing without
//! cookies, disabling, enabling, removing, and persistence of added accounts.

mod common;

use std::sync::Arc;

use common::admin::{ADMIN, Auth, call, client_value, json_of, memory, start as harness};
use common::{Harness, KEY, start_with, user};
use enginelabs_2api::config::Config;
use enginelabs_2api::server::AppState;
use enginelabs_2api::simulator::{SimConfig, Simulator};
use serde_json::{Value, json};

#[tokio::test]
async fn without_admin_key_the_api_is_off_and_says_how_to_enable_it() {
    let (h, _) = harness(None).await;
    let (s, body) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(KEY),
        None,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("ADMIN_KEY"), "{body}");
}

#[tokio::test]
async fn wrong_missing_or_client_keys_are_refused() {
    let (h, _) = harness(Some(ADMIN)).await;
    for key in [Auth::None, Auth::Bearer("nope"), Auth::Bearer(KEY)] {
        let (s, body) = call(&h, reqwest::Method::GET, "/admin/api/accounts", key, None).await;
        assert_eq!(s, 401, "{key:?}: {body}");
        assert_eq!(json_of(&body)["error"]["code"], "invalid_admin_key");
    }
    let (s, _) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    // The admin key does not open the client API either.
    let resp = h
        .http
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(ADMIN)
        .json(&json!({"messages": [user("hi")]}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn add_list_disable_enable_remove() {
    let (h, store) = harness(Some(ADMIN)).await;
    let first = h.sim.account();
    let second = h.sim.add_account();
    let secret = client_value(&second.cookie);

    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": second.cookie, "label": "second"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let added = json_of(&body);
    assert_eq!(added["user_id"], second.user_id.as_str());
    assert_eq!(added["label"], "second");
    assert_eq!(added["origin"], "admin");
    let id = added["id"].as_str().expect("id").to_string();
    assert!(id.starts_with("acct_"), "{id}");
    assert!(
        !body.contains(&secret),
        "the answer never carries the cookie"
    );

    // Adding the same account again is a conflict.
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": second.cookie})),
    )
    .await;
    assert_eq!(s, 409, "{body}");
    // So is the cookie of the configured account, even before it was ever used.
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": first.cookie})),
    )
    .await;
    assert_eq!(s, 409, "{body}");

    // Use both accounts, then check that no cookie value (pasted or rotated) is listed.
    for i in 0..4 {
        let (s, v) = h
            .chat(json!({"messages": [user(&format!("admin q{i}"))]}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let (s, list) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200);
    let mut cookies = vec![secret.clone()];
    for u in [&first.user_id, &second.user_id] {
        cookies.push(client_value(
            &h.sim.account_of(u).expect("sim account").cookie,
        ));
    }
    for c in &cookies {
        assert!(!list.contains(c.as_str()), "cookie value leaked in {list}");
    }
    let data = json_of(&list)["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 2);
    assert!(
        data.iter()
            .all(|a| a["limit"].is_number() && a["state"] == "active")
    );

    // Disable the configured account: new conversations land on the added one.
    let default_id = data
        .iter()
        .find(|a| a["label"] == "default")
        .and_then(|a| a["id"].as_str())
        .expect("default id")
        .to_string();
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        &format!("/admin/api/accounts/{default_id}/disable"),
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(json_of(&body)["state"], "disabled");
    let before = h.sim.stats().triggers.len();
    for i in 0..3 {
        let (s, v) = h
            .chat(json!({"messages": [user(&format!("disabled q{i}"))]}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let triggers = h.sim.stats().triggers;
    assert!(
        triggers[before..]
            .iter()
            .all(|t| t.user_id == second.user_id)
    );
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        &format!("/admin/api/accounts/{default_id}/enable"),
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(json_of(&body)["state"], "active");

    // The added account is in the store; a second proxy on the same store loads it.
    let stored = store.list_accounts().await.expect("list");
    assert!(stored.iter().any(|r| r.label.as_deref() == Some("second")));
    let mut a = common::args_for(&h.sim);
    a.clerk_cookie = None;
    let other = AppState::with_store(Config::from_args(&a).expect("config"), Arc::clone(&store))
        .await
        .expect("state");
    let labels: Vec<String> = other
        .pool()
        .snapshot()
        .into_iter()
        .map(|v| v.label)
        .collect();
    assert_eq!(
        labels,
        ["second"],
        "the admin-added account is loaded at start"
    );

    // Remove it: gone from the list and from the store.
    let (s, body) = call(
        &h,
        reqwest::Method::DELETE,
        &format!("/admin/api/accounts/{id}"),
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (_, list) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(json_of(&list)["data"].as_array().expect("data").len(), 1);
    assert!(
        !store
            .list_accounts()
            .await
            .expect("list")
            .iter()
            .any(|r| r.label.as_deref() == Some("second"))
    );
    let (s, _) = call(
        &h,
        reqwest::Method::DELETE,
        &format!("/admin/api/accounts/{id}"),
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bad_cookies_are_refused_with_the_reason() {
    let (h, _) = harness(Some(ADMIN)).await;
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": "__client=not-a-real-session", "label": "bad"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let v = json_of(&body);
    assert_eq!(v["error"]["code"], "cookie_rejected", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("rejected"),
        "{v}"
    );
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": "session=abc"})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    assert!(body.contains("__client"), "{body}");
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({})),
    )
    .await;
    assert_eq!(s, 400, "{body}");
    let (_, list) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    assert_eq!(json_of(&list)["data"].as_array().expect("data").len(), 1);
}

#[tokio::test]
async fn accounts_file_labels_show_in_the_list() {
    let sim = Simulator::start(SimConfig::default()).await.expect("sim");
    let b = sim.add_account();
    let dir = std::env::temp_dir().join(format!("el2a-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("accounts.txt");
    let text = format!(
        "# two accounts\nalpha = {}\n[[account]]\nlabel = \"beta\"\ncookie = \"{}\"\n",
        sim.account().cookie,
        b.cookie
    );
    std::fs::write(&path, text).expect("write");
    let mut a = common::args_for(&sim);
    a.clerk_cookie = None;
    a.accounts_file = Some(path.clone());
    a.admin_key = Some(enginelabs_2api::config::Secret::new(ADMIN));
    let h = start_with(sim, a, memory()).await;
    let (_, list) = call(
        &h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    let mut labels: Vec<String> = json_of(&list)["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|v| v["label"].as_str().expect("label").to_string())
        .collect();
    labels.sort();
    assert_eq!(labels, ["alpha", "beta"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The ids of the accounts the admin API lists.
async fn account_ids(h: &Harness) -> Vec<String> {
    let (_, list) = call(
        h,
        reqwest::Method::GET,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        None,
    )
    .await;
    json_of(&list)["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| a["id"].as_str().expect("id").to_string())
        .collect()
}

/// `POST /admin/api/accounts/{id}/{action}`, which must succeed; returns the account's view.
async fn act(h: &Harness, id: &str, action: &str) -> Value {
    let path = format!("/admin/api/accounts/{id}/{action}");
    let (s, body) = call(h, reqwest::Method::POST, &path, Auth::Bearer(ADMIN), None).await;
    assert_eq!(s, 200, "{action}: {body}");
    json_of(&body)
}

/// An account the admin disabled stays disabled when the proxy restarts on the same store, a
/// configured one as well as an added one, and a cookie rotation does not undo it.
#[tokio::test]
async fn disabling_survives_a_restart() {
    let (h, store) = harness(Some(ADMIN)).await;
    // The configuration as pasted: the restart reads the same, whatever Clerk rotates later.
    let configured = common::args_for(&h.sim);
    let second = h.sim.add_account();
    let (s, body) = call(
        &h,
        reqwest::Method::POST,
        "/admin/api/accounts",
        Auth::Bearer(ADMIN),
        Some(json!({"cookie": second.cookie, "label": "second"})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let ids = account_ids(&h).await;
    assert_eq!(ids.len(), 2);
    for id in &ids {
        act(&h, id, "disable").await;
    }
    // A check mints a fresh token, so Clerk rotates both cookies; the rewritten records must
    // keep the flag. Wait until the store holds the rotated cookies.
    for id in &ids {
        let view = act(&h, id, "check").await;
        assert_eq!(view["state"], "disabled", "a check does not enable");
    }
    let current: Vec<String> = [h.sim.account().user_id, second.user_id.clone()]
        .iter()
        .map(|u| client_value(&h.sim.account_of(u).expect("sim account").cookie))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let stored = store.list_accounts().await.expect("list");
        let rotated = current
            .iter()
            .all(|c| stored.iter().any(|r| &r.client_cookie == c));
        if rotated {
            assert!(stored.iter().all(|r| r.disabled), "rotation kept the flag");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the rotated cookies were not persisted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let restart = || async {
        let other = AppState::with_store(
            Config::from_args(&configured).expect("config"),
            Arc::clone(&store),
        )
        .await
        .expect("state");
        let mut states: Vec<(String, String)> = other
            .pool()
            .snapshot()
            .into_iter()
            .map(|v| (v.label, v.state.to_string()))
            .collect();
        states.sort();
        states
    };
    let states = restart().await;
    assert_eq!(states.len(), 2, "{states:?}");
    assert!(
        states.iter().all(|(_, s)| s == "disabled"),
        "both stay disabled: {states:?}"
    );
    // Enabling is remembered too (ids are final now that the identities are known).
    let ids = account_ids(&h).await;
    for id in &ids {
        act(&h, id, "enable").await;
    }
    let states = restart().await;
    assert!(
        states.iter().all(|(_, s)| s == "active"),
        "both active again: {states:?}"
    );
    // The stored records never hold the disabled flag for another account.
    assert!(
        store
            .list_accounts()
            .await
            .expect("list")
            .iter()
            .all(|r| !r.disabled)
    );
}
