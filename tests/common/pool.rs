//! Helpers for the account-pool tests: a proxy over several simulated accounts, the admin
//! list by label, and which simulated user ran a prompt.

use std::collections::HashMap;
use std::sync::Arc;

use enginelabs_2api::config::ConfigArgs;
use enginelabs_2api::config::Secret;
use enginelabs_2api::simulator::{SimConfig, Simulator};
use serde_json::{Value, json};

use super::{Harness, user};

pub const ADMIN: &str = "adm-test-key";

/// A harness whose proxy drives `n` simulated accounts given as CLERK_COOKIES
/// (labels `cookie-1`...), with `tweak` applied last. Returns the user ids in label order.
pub async fn pool_of(
    n: usize,
    sim_cfg: SimConfig,
    tweak: impl FnOnce(&mut ConfigArgs),
) -> (Harness, Vec<String>) {
    let sim_probe = Simulator::start(sim_cfg).await.expect("sim");
    let mut accounts = vec![sim_probe.account()];
    for _ in 1..n {
        accounts.push(sim_probe.add_account());
    }
    let cookies: Vec<String> = accounts.iter().map(|a| a.cookie.clone()).collect();
    let users = accounts.iter().map(|a| a.user_id.clone()).collect();
    let mut a = super::args_for(&sim_probe);
    a.clerk_cookie = None;
    a.clerk_cookies = Some(Secret::new(cookies.join("|||")));
    a.admin_key = Some(Secret::new(ADMIN));
    tweak(&mut a);
    let store: Arc<dyn enginelabs_2api::store::Store> = Arc::new(
        enginelabs_2api::store::memory::MemoryStore::new(Default::default()),
    );
    (super::start_with(sim_probe, a, store).await, users)
}

pub fn ask(text: &str) -> Value {
    json!({"model": "ClaudeSonnet4_5", "messages": [user(text)]})
}

/// The admin list, by label.
pub async fn accounts(h: &Harness) -> HashMap<String, Value> {
    let v: Value = h
        .http
        .get(format!("{}/admin/api/accounts", h.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|a| (a["label"].as_str().expect("label").to_string(), a.clone()))
        .collect()
}

/// The user the simulator ran the trigger with this prompt text for.
pub fn user_of(h: &Harness, needle: &str) -> Vec<(String, u32)> {
    h.sim
        .stats()
        .triggers
        .iter()
        .filter(|t| t.prompt.contains(needle))
        .map(|t| (t.user_id.clone(), t.turn))
        .collect()
}
