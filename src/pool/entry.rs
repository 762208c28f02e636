//! One account in the pool: the upstream [`Account`](crate::upstream::Account) plus what the pool knows about it
//! (health, breaker, slots in use, quota, the model it last ran), and the cookie-free view of
//! it that the admin API lists.

use std::time::Instant;

use serde::Serialize;

use super::account_id_for_user;
use super::account_state::{Health, HealthState, Quota, secs_until};
use super::breaker::Breaker;
use super::login::{Kind, Login};

/// Where an account was configured: the environment (returns at every start) or the admin API
/// (persisted in the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    Config,
    Admin,
}

pub struct Entry {
    /// Internal handle; never shown (ids derive from the user id once it is known).
    pub key: u64,
    pub seed: String,
    pub origin: Origin,
    pub login: Login,
    /// The account id remembered by the store, until discovery tells the real one.
    pub id_hint: Option<String>,
    pub health: Health,
    pub breaker: Breaker,
    pub in_flight: usize,
    /// Most turns ever in flight at once (tests check it never exceeds the limit).
    pub peak_in_flight: usize,
    /// The limit read from `/billing`, if any.
    pub billing_limit: Option<usize>,
    pub quota: Option<Quota>,
    /// When the quota should be read next (`None`: not before the account was used once).
    pub quota_due: Option<Instant>,
    /// When a dead account is probed next.
    pub recheck_due: Option<Instant>,
    pub last_error: Option<String>,
    pub last_success_ms: Option<u64>,
    /// The model the account last ran (Gen-2's preferred model is team-wide, so staying on it
    /// saves a switch).
    pub last_model: Option<String>,
    /// Monotonic pick counter, for round robin among equally busy accounts.
    pub last_pick: u64,
    /// A limit learned from the upstream's 429s (CLI accounts, whose limit nobody documents).
    pub learned_limit: Option<usize>,
}

impl Entry {
    pub fn new(key: u64, seed: String, origin: Origin, login: Login) -> Entry {
        Entry {
            key,
            seed,
            origin,
            login,
            learned_limit: None,
            id_hint: None,
            health: Health::Active,
            breaker: Breaker::default(),
            in_flight: 0,
            peak_in_flight: 0,
            billing_limit: None,
            quota: None,
            quota_due: None,
            recheck_due: None,
            last_error: None,
            last_success_ms: None,
            last_model: None,
            last_pick: 0,
        }
    }

    /// `acct_...` from the Clerk user id once known (the same id conversations are stored
    /// under), else the store's memory of it, else a placeholder from the cookie's seed hash.
    /// A `cto login` account's id is its stable seed hash (`cli_…`).
    pub fn id(&self) -> String {
        let web = match &self.login {
            Login::Web(a) => a,
            Login::Cli(a) => return a.id().to_string(),
        };
        match web.identity() {
            Some(i) => account_id_for_user(&i.user_id),
            None => self
                .id_hint
                .clone()
                .unwrap_or_else(|| format!("pending_{}", &self.seed[..self.seed.len().min(12)])),
        }
    }

    /// Whether `id` names this entry (its real id, its remembered id, or its placeholder).
    pub fn answers_to(&self, id: &str) -> bool {
        self.id() == id || self.id_hint.as_deref() == Some(id)
    }

    /// Turns at once: the configured limit of the account's kind, else `/billing`'s (web),
    /// else 2; never above what the upstream's 429s taught.
    pub fn limit(&self, configured: Option<usize>) -> usize {
        let base = configured.or(self.billing_limit).unwrap_or(2);
        self.learned_limit.map_or(base, |l| base.min(l)).max(1)
    }

    pub fn kind(&self) -> Kind {
        self.login.kind()
    }

    pub fn view(&self, now: Instant, configured: Option<usize>) -> AccountView {
        AccountView {
            id: self.id(),
            label: self.login.label().to_string(),
            kind: self.kind(),
            user_id: self
                .login
                .web()
                .and_then(|a| a.identity())
                .map(|i| i.user_id),
            origin: self.origin,
            state: self.health.state(now),
            reason: self.health.reason().map(str::to_string),
            cooling_for_secs: self
                .health
                .cooling_until()
                .filter(|u| *u > now)
                .map(|u| secs_until(now, u)),
            breaker: self.breaker.name(now),
            in_flight: self.in_flight,
            limit: self.limit(configured),
            peak_in_flight: self.peak_in_flight,
            last_error: self.last_error.clone(),
            last_success_ms: self.last_success_ms,
            model: self.last_model.clone(),
            quota: self.quota.clone(),
        }
    }
}

/// What the admin API shows of an account. Never the cookie.
#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: String,
    pub label: String,
    /// `web` (a browser cookie) or `cli` (a `cto login` refresh token).
    pub kind: Kind,
    pub user_id: Option<String>,
    pub origin: Origin,
    pub state: HealthState,
    pub reason: Option<String>,
    pub cooling_for_secs: Option<u64>,
    pub breaker: &'static str,
    pub in_flight: usize,
    pub limit: usize,
    pub peak_in_flight: usize,
    pub last_error: Option<String>,
    pub last_success_ms: Option<u64>,
    pub model: Option<String>,
    pub quota: Option<Quota>,
}
