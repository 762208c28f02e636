//! The pool of cto.new accounts: which account runs each turn, how healthy each one is, and
//! what happens when one fails.
//!
//! # Layout
//! - [`sources`]: `CLERK_COOKIE`, `CLERK_COOKIES`, `ACCOUNTS_FILE` parsing;
//! - [`entry`]: one account as the pool holds it, and its cookie-free admin view;
//! - [`error`]: [`PoolError`], why no account could take a request, in words that say the fix;
//! - [`login`]: the two kinds of account ([`Login`]): a browser cookie or a `cto login`;
//! - [`account_state`]: health (active, cooling, dead, disabled) and quota from `/billing`;
//! - [`breaker`]: the per-account circuit breaker;
//! - [`retry`]: which failures are retried or failed over, and the backoff between attempts;
//! - [`schedule`]: least-busy pick, stickiness, the bounded wait queue, the slot [`Lease`];
//! - [`manage`]: add, remove, disable, enable, re-check (behind the admin API);
//! - [`cli_logins`]: `cto login` accounts: loading, adding, their rotating refresh tokens;
//! - [`probe`]: the background task that re-probes dead accounts and reads quotas;
//! - [`refresh`]: a CLI login's rotating refresh token kept in the store, locked across replicas.
//!
//! All pool state sits behind one std `Mutex`; no critical section awaits. Upstream calls
//! happen outside it, on `Arc<Account>` handles taken out under it.

pub mod account_state;
pub mod breaker;
pub mod cli_logins;
pub mod entry;
pub mod error;
pub mod login;
pub mod manage;
pub mod probe;
pub mod refresh;
pub mod retry;
pub mod schedule;
pub mod sources;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::Notify;

pub use account_state::HealthState;
pub use breaker::BreakerConfig;
pub use error::PoolError;
pub use login::{Kind, Login};
pub use retry::{Backoff, Verdict};
pub use schedule::{Doors, Lease, Limits, Want};

use crate::conversation::fingerprint::hex;
use crate::upstream::UpstreamError;
use account_state::{Health, secs_until};
use entry::Entry;

/// Scheduling, health and retry settings (see `config/accounts.rs` for their names and defaults).
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Turns per cookie account at once; `None`: `/billing`'s `taskConcurrencyLimit`, else 2.
    pub concurrency: Option<usize>,
    /// Turns per `cto login` account at once; `None`: 2, lowered by the upstream's 429s.
    pub cli_concurrency: Option<usize>,
    pub queue_timeout: Duration,
    pub max_queue: usize,
    /// Rest of a rate-limited account when the upstream gives no Retry-After.
    pub cooldown: Duration,
    pub dead_recheck: Duration,
    pub quota_check: Duration,
    /// Attempts to start one turn on transient failures.
    pub attempts: u32,
    /// Retries stop once this much time went by since the request started.
    pub deadline: Duration,
    pub backoff: Backoff,
    pub breaker: BreakerConfig,
}

impl PoolConfig {
    /// Turns at once per account, by kind.
    pub fn limits(&self) -> Limits {
        Limits {
            web: self.concurrency,
            cli: self.cli_concurrency,
        }
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            concurrency: None,
            cli_concurrency: None,
            queue_timeout: Duration::from_secs(30),
            max_queue: 1000,
            cooldown: Duration::from_secs(60),
            dead_recheck: Duration::from_secs(600),
            quota_check: Duration::from_secs(300),
            attempts: 3,
            deadline: Duration::from_secs(30),
            backoff: Backoff::default(),
            breaker: BreakerConfig {
                failures: 5,
                open_for: Duration::from_secs(30),
            },
        }
    }
}

pub(crate) struct Inner {
    pub(crate) entries: Vec<Entry>,
    pub(crate) waiting: usize,
    pub(crate) picks: u64,
}

/// The accounts in use. Shared as `Arc<Pool>`: leases hold one to give their slot back.
pub struct Pool {
    pub(crate) inner: Mutex<Inner>,
    pub(crate) notify: Notify,
    pub cfg: PoolConfig,
    next_key: AtomicU64,
    /// Serializes read-modify-writes of account records (cookie rotations, the disabled flag),
    /// so that neither overwrites the other's field.
    pub(crate) record_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Locks a std mutex, recovering from poisoning (the state is plain values).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Hash of a pasted cookie: the store key of its account (never the cookie itself).
pub fn seed_hash(pasted_cookie: &str) -> String {
    hex(&Sha256::digest(format!("el2a-seed:{}", pasted_cookie.trim()).as_bytes())[..16])
}

/// Stable account id derived from the Clerk user id; stored conversations name their owner
/// by it, so its format must not change.
pub fn account_id_for_user(user_id: &str) -> String {
    format!("acct_{}", hex(&Sha256::digest(user_id.as_bytes())[..6]))
}

impl Pool {
    pub fn new(cfg: PoolConfig) -> Arc<Pool> {
        let pool = Arc::new(Pool {
            inner: Mutex::new(Inner {
                entries: Vec::new(),
                waiting: 0,
                picks: 0,
            }),
            notify: Notify::new(),
            cfg,
            next_key: AtomicU64::new(1),
            record_lock: Arc::new(tokio::sync::Mutex::new(())),
        });
        pool.publish();
        pool
    }

    pub(crate) fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        lock(&self.inner).entries.len()
    }

    /// Requests waiting for a slot right now.
    pub fn waiting(&self) -> usize {
        lock(&self.inner).waiting
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pool key of the account with this id (the owner of a continued conversation).
    pub fn key_of(&self, account_id: &str) -> Option<u64> {
        lock(&self.inner)
            .entries
            .iter()
            .find(|e| e.answers_to(account_id))
            .map(|e| e.key)
    }

    /// A cookie account to ask account-independent questions (the web model list): the first
    /// usable one, else the first configured one.
    pub fn any_account(&self) -> Option<Arc<crate::upstream::Account>> {
        self.any_of(Kind::Web).and_then(|l| l.web().cloned())
    }

    /// A `cto login` account for the same (the CLI model list).
    pub fn any_cli_account(&self) -> Option<Arc<crate::upstream::cli::CliAccount>> {
        self.any_of(Kind::Cli).and_then(|l| l.cli().cloned())
    }

    fn any_of(&self, kind: Kind) -> Option<Login> {
        let inner = lock(&self.inner);
        let now = Instant::now();
        let mut of_kind = inner.entries.iter().filter(|e| e.kind() == kind);
        let first = of_kind.clone().next();
        of_kind
            .find(|e| e.health.is_usable(now))
            .or(first)
            .map(|e| e.login.clone())
    }

    /// Every account's store key and login, in the order they were added.
    pub fn logins(&self) -> Vec<(String, Login)> {
        lock(&self.inner)
            .entries
            .iter()
            .map(|e| (e.seed.clone(), e.login.clone()))
            .collect()
    }

    /// Whether some account of this kind is configured.
    pub fn has(&self, kind: Kind) -> bool {
        lock(&self.inner).entries.iter().any(|e| e.kind() == kind)
    }

    /// Cookie accounts whose identity is not discovered yet (their id is not final).
    pub fn undiscovered(&self) -> Vec<Arc<crate::upstream::Account>> {
        lock(&self.inner)
            .entries
            .iter()
            .filter(|e| {
                matches!(
                    e.health.state(Instant::now()),
                    HealthState::Active | HealthState::Cooling
                )
            })
            .filter_map(|e| e.login.web())
            .filter(|a| a.identity().is_none())
            .cloned()
            .collect()
    }

    /// The turn started: the account works.
    pub fn record_success(&self, lease: &mut Lease, model: &str) {
        lease.settled = true;
        self.update(lease.key, |e, now| {
            e.health.settle(now);
            if let Health::Dead { .. } = e.health {
                e.health = Health::Active;
            }
            e.breaker.on_success();
            e.last_success_ms = Some(crate::store::now_ms());
            e.last_model = Some(model.to_string());
            if e.quota_due.is_none() {
                e.quota_due = Some(now);
            }
        });
    }

    /// The turn could not start: mark the account as the failure says, and tell the caller
    /// what to do next.
    pub fn record_failure(&self, lease: &mut Lease, err: &UpstreamError) -> Verdict {
        lease.settled = true;
        let verdict = retry::classify(err);
        let cfg = &self.cfg;
        self.update(lease.key, |e, now| {
            // A CLI account refusing with 429 while others of its turns run: its limit is
            // lower than ours; learn it (the web account's limit comes from /billing).
            if e.kind() == Kind::Cli
                && matches!(err, UpstreamError::RateLimited { .. })
                && e.in_flight > 1
            {
                let learned = e.in_flight - 1;
                tracing::info!(account = %e.login.label(), limit = learned, "the CLI API refused a turn with 429 at this concurrency; lowering the account's limit");
                e.learned_limit = Some(learned);
            }
            apply_failure(e, &verdict, err, now, cfg)
        });
        verdict
    }

    /// Runs `f` on the entry with `key` (if still there), then refreshes the gauges.
    pub(crate) fn update(&self, key: u64, f: impl FnOnce(&mut Entry, Instant)) {
        {
            let mut g = lock(&self.inner);
            if let Some(e) = g.entries.iter_mut().find(|e| e.key == key) {
                f(e, Instant::now());
            }
        }
        self.publish();
        self.notify.notify_waiters();
    }

    /// Sets `el2a_accounts{state}`.
    pub(crate) fn publish(&self) {
        let now = Instant::now();
        let mut counts = [0usize; HealthState::ALL.len()];
        for e in &lock(&self.inner).entries {
            // `ALL` is in declaration order, so the discriminant is the index.
            counts[e.health.state(now) as usize] += 1;
        }
        for (state, n) in HealthState::ALL.into_iter().zip(counts) {
            metrics::gauge!(crate::metrics::ACCOUNTS, "state" => state.as_str()).set(n as f64);
        }
    }
}

/// How one failure changes an entry.
pub(crate) fn apply_failure(
    e: &mut Entry,
    verdict: &Verdict,
    err: &UpstreamError,
    now: Instant,
    cfg: &PoolConfig,
) {
    if e.health == Health::Disabled {
        // The admin's word stands; only note what happened.
        e.breaker.on_abandon();
        if *verdict != Verdict::Fatal {
            e.last_error = Some(err.to_string());
        }
        return;
    }
    match verdict {
        Verdict::Fatal => {
            e.breaker.on_abandon();
            return;
        }
        Verdict::Dead => {
            e.health = Health::Dead {
                reason: err.to_string(),
            };
            e.recheck_due = Some(now + cfg.dead_recheck);
        }
        Verdict::Cool(after) => {
            // Out of credits with no hint: they come back at the quota reset, which the
            // quota check notices; a short cooldown would only hit the limit again.
            let out_of_credits = matches!(err, UpstreamError::QuotaExhausted { .. });
            let rest = match after {
                Some(d) => *d,
                None if out_of_credits => cfg.quota_check,
                None => cfg.cooldown,
            };
            if out_of_credits {
                e.quota_due = Some(now + cfg.quota_check);
            }
            let until = now + rest;
            tracing::info!(account = %e.login.label(), secs = secs_until(now, until), "account cooling down");
            e.health = Health::Cooling {
                until,
                reason: err.to_string(),
            };
        }
        Verdict::Transient => e.breaker.on_failure(now, &cfg.breaker),
    }
    e.last_error = Some(err.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_format() {
        let id = account_id_for_user("user_abc");
        assert!(id.starts_with("acct_") && id.len() == 17, "{id}");
        assert_eq!(id, account_id_for_user("user_abc"));
        assert_eq!(seed_hash(" x "), seed_hash("x"));
    }
}
