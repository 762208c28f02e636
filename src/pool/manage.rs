//! Putting accounts into the pool and taking them out: loading the configured ones (with the
//! rotated cookie the store remembers), the ones added through the admin API, and the admin
//! operations (add, remove, disable, enable, re-check now).
//!
//! Clerk rotates `__client`; every rotation is written to the store under the account's seed
//! hash, so a restart finds the latest cookie instead of the stale pasted one. Accounts added
//! through the admin API are stored under an `adm-` seed so they are loaded again at start.

use std::sync::Arc;
use std::time::Instant;

use super::account_state::{Health, Quota};
use super::entry::{AccountView, Entry, Origin};
use super::login::Login;
use super::retry::classify;
use super::sources::AccountSource;
use super::{Pool, account_id_for_user, apply_failure, lock, seed_hash};
use crate::store::{AccountRecord, Store, now_ms};
use crate::upstream::cli::CliAccount;
use crate::upstream::{Account, EngineClient, UpstreamError};

/// Seed prefix of accounts added through the admin API.
pub(super) const ADMIN_SEED: &str = "adm-";

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    #[error("no account with id `{0}` (GET /admin/api/accounts lists them)")]
    NotFound(String),
    #[error("the cookie was not accepted: {0}")]
    Rejected(UpstreamError),
    #[error("this cookie's account ({0}) is already in the pool")]
    Duplicate(String),
    #[error("could not store the account: {0}")]
    Store(String),
}

impl Pool {
    /// Adds the configured accounts (no upstream call: identities are discovered on first use).
    /// A cookie that cannot be parsed fails the start, naming its label.
    pub async fn load_configured(
        &self,
        sources: &[AccountSource],
        store: &Arc<dyn Store>,
    ) -> Result<(), (String, UpstreamError)> {
        for s in sources {
            if s.kind == super::login::Kind::Cli {
                self.load_cli(s, store).await?;
                continue;
            }
            let seed = seed_hash(s.secret.expose());
            let remembered = match store.get_account(&seed).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the remembered cookie; using the configured one");
                    None
                }
            };
            let (account, hint, disabled) = match remembered {
                Some(rec) => {
                    tracing::info!(label = %s.label, "using the latest rotated cookie remembered by the store");
                    let a = Account::with_session(&s.label, &rec.client_cookie, rec.session_id)
                        .map_err(|e| (s.label.clone(), e))?;
                    (a, rec.account_id, rec.disabled)
                }
                None => (
                    Account::new(&s.label, s.secret.expose()).map_err(|e| (s.label.clone(), e))?,
                    None,
                    false,
                ),
            };
            self.insert(seed, Origin::Config, account, hint, disabled, store);
        }
        Ok(())
    }

    /// Adds the accounts an admin added in an earlier run.
    pub async fn load_admin_added(&self, store: &Arc<dyn Store>) {
        let records = match store.list_accounts().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not list the stored accounts");
                return;
            }
        };
        for rec in records
            .into_iter()
            .filter(|r| r.seed_hash.starts_with(ADMIN_SEED))
        {
            if rec.kind == crate::store::AccountKind::Cli {
                self.load_admin_cli(&rec, store);
                continue;
            }
            let label = rec.label.clone().unwrap_or_else(|| "admin".to_string());
            match Account::with_session(&label, &rec.client_cookie, rec.session_id) {
                Ok(a) => {
                    let disabled = rec.disabled;
                    self.insert(
                        rec.seed_hash,
                        Origin::Admin,
                        a,
                        rec.account_id,
                        disabled,
                        store,
                    );
                }
                Err(e) => tracing::warn!(label, error = %e, "skipping a stored account"),
            }
        }
    }

    fn insert(
        &self,
        seed: String,
        origin: Origin,
        account: Account,
        hint: Option<String>,
        disabled: bool,
        store: &Arc<dyn Store>,
    ) -> String {
        let account = Arc::new(account);
        spawn_persister(
            seed.clone(),
            &account,
            Arc::clone(store),
            Arc::clone(&self.record_lock),
        );
        let mut e = Entry::new(self.next_key(), seed, origin, Login::Web(account));
        e.id_hint = hint;
        self.push(e, disabled)
    }

    /// Puts a new entry in the pool (disabled, if the admin said so) and wakes the queue;
    /// returns its id.
    pub(super) fn push(&self, mut e: Entry, disabled: bool) -> String {
        if disabled {
            e.health = Health::Disabled;
        }
        let id = e.id();
        lock(&self.inner).entries.push(e);
        self.publish();
        self.notify.notify_waiters();
        id
    }

    /// Validates a cookie at once (discovery and a JWT mint), then adds and stores it.
    pub async fn add(
        &self,
        engine: &EngineClient,
        store: &Arc<dyn Store>,
        label: &str,
        cookie: &str,
    ) -> Result<AccountView, ManageError> {
        let account = Account::new(label, cookie).map_err(ManageError::Rejected)?;
        let seed = format!("{ADMIN_SEED}{}", seed_hash(cookie));
        let configured = seed_hash(cookie);
        if let Some(id) = self.id_with_seed(&[&seed, &configured]) {
            return Err(ManageError::Duplicate(id));
        }
        let identity = engine
            .ensure_ready(&account)
            .await
            .map_err(ManageError::Rejected)?;
        let id = account_id_for_user(&identity.user_id);
        if self.key_of(&id).is_some() {
            return Err(ManageError::Duplicate(id));
        }
        // Discovery filled in the identity: the record carries its ids.
        let record = record_of(&seed, &account, account.current_client_cookie());
        store
            .put_account(&record)
            .await
            .map_err(|e| ManageError::Store(e.to_string()))?;
        self.insert(seed, Origin::Admin, account, Some(id.clone()), false, store);
        self.view(&id)
    }

    /// Takes an account out (in-flight turns finish). An admin-added one is forgotten by the
    /// store too; a configured one comes back at the next start unless removed from the config.
    pub async fn remove(&self, store: &dyn Store, id: &str) -> Result<AccountView, ManageError> {
        let removed = {
            let mut g = lock(&self.inner);
            let i = g
                .entries
                .iter()
                .position(|e| e.answers_to(id))
                .ok_or_else(|| ManageError::NotFound(id.to_string()))?;
            let e = g.entries.remove(i);
            (
                e.view(Instant::now(), self.cfg.limits().of(e.kind())),
                e.origin,
                e.seed,
            )
        };
        self.publish();
        if removed.1 == Origin::Admin
            && let Err(e) = store.remove_account(&removed.2).await
        {
            return Err(ManageError::Store(e.to_string()));
        }
        Ok(removed.0)
    }

    /// Disables (no new turns) or enables an account, and records it in the store so a restart
    /// keeps it that way. The pool changes even when the store fails (the error says so).
    pub async fn set_disabled(
        &self,
        store: &Arc<dyn Store>,
        id: &str,
        disabled: bool,
    ) -> Result<AccountView, ManageError> {
        let key = self
            .key_of(id)
            .ok_or_else(|| ManageError::NotFound(id.to_string()))?;
        self.update(key, |e, _| {
            if disabled {
                e.health = Health::Disabled;
            } else if e.health == Health::Disabled {
                e.health = Health::Active;
                e.breaker.on_success();
            }
        });
        let (seed, account) = {
            let g = lock(&self.inner);
            let e = g
                .entries
                .iter()
                .find(|e| e.key == key)
                .ok_or_else(|| ManageError::NotFound(id.to_string()))?;
            (e.seed.clone(), e.login.clone())
        };
        if let Login::Cli(a) = &account {
            // Under the account's lock, so the write cannot put back a token spent meanwhile.
            let found = super::refresh::set_disabled(store, &seed, disabled)
                .await
                .map_err(|e| ManageError::Store(e.to_string()))?;
            if !found {
                store
                    .put_account(&AccountRecord {
                        disabled,
                        ..cli_record(&seed, a)
                    })
                    .await
                    .map_err(|e| ManageError::Store(e.to_string()))?;
            }
            return self.view(id);
        }
        let _serial = self.record_lock.lock().await;
        let mut record = match (store.get_account(&seed).await, &account) {
            (Ok(Some(rec)), _) => rec,
            (Ok(None), Login::Web(a)) => record_of(&seed, a, a.current_client_cookie()),
            (Ok(None), Login::Cli(a)) => cli_record(&seed, a),
            (Err(e), _) => return Err(ManageError::Store(e.to_string())),
        };
        record.disabled = disabled;
        store
            .put_account(&record)
            .await
            .map_err(|e| ManageError::Store(e.to_string()))?;
        self.view(id)
    }

    /// Checks the cookie now (fresh JWT) and reads the quota; a dead account that works again
    /// becomes active.
    pub async fn check(&self, engine: &EngineClient, id: &str) -> Result<AccountView, ManageError> {
        let key = self
            .key_of(id)
            .ok_or_else(|| ManageError::NotFound(id.to_string()))?;
        let account = self
            .account_of(key)
            .ok_or_else(|| ManageError::NotFound(id.to_string()))?;
        self.probe(engine, key, &account, true).await;
        self.view(&self.id_of(key).unwrap_or_else(|| id.to_string()))
    }

    /// Reads `/billing` (after minting a fresh JWT when `fresh`, to test the cookie itself),
    /// recording what it shows.
    pub(crate) async fn probe(
        &self,
        engine: &EngineClient,
        key: u64,
        account: &Account,
        fresh: bool,
    ) {
        if fresh {
            account.invalidate_jwt();
        }
        let result = match engine.ensure_ready(account).await {
            Ok(_) => engine
                .billing(account)
                .await
                .map(|v| Quota::from_billing(&v)),
            Err(e) => Err(e),
        };
        let cfg = &self.cfg;
        self.update(key, |e, now| match result {
            Ok(q) => {
                if matches!(e.health, Health::Dead { .. }) {
                    tracing::info!(account = %e.login.label(), "the cookie works again");
                    e.health = Health::Active;
                    e.breaker.on_success();
                }
                e.recheck_due = None;
                e.quota_due = Some(now + cfg.quota_check);
                apply_quota(e, q, now, cfg.quota_check);
            }
            Err(err) => {
                let verdict = classify(&err);
                apply_failure(e, &verdict, &err, now, cfg);
                if matches!(e.health, Health::Dead { .. }) {
                    e.recheck_due = Some(now + cfg.dead_recheck);
                }
            }
        });
    }

    pub fn snapshot(&self) -> Vec<AccountView> {
        let now = Instant::now();
        lock(&self.inner)
            .entries
            .iter()
            .map(|e| e.view(now, self.cfg.limits().of(e.kind())))
            .collect()
    }

    pub fn view(&self, id: &str) -> Result<AccountView, ManageError> {
        let now = Instant::now();
        lock(&self.inner)
            .entries
            .iter()
            .find(|e| e.answers_to(id))
            .map(|e| e.view(now, self.cfg.limits().of(e.kind())))
            .ok_or_else(|| ManageError::NotFound(id.to_string()))
    }

    /// The cookie account with this key (`None` for a CLI login).
    pub(crate) fn account_of(&self, key: u64) -> Option<Arc<Account>> {
        let g = lock(&self.inner);
        g.entries
            .iter()
            .find(|e| e.key == key)
            .and_then(|e| e.login.web().cloned())
    }

    /// The id of an entry added with one of these seeds (the same cookie pasted again).
    pub(super) fn id_with_seed(&self, seeds: &[&str]) -> Option<String> {
        let g = lock(&self.inner);
        let found = g.entries.iter().find(|e| seeds.contains(&e.seed.as_str()));
        found.map(Entry::id)
    }

    fn id_of(&self, key: u64) -> Option<String> {
        lock(&self.inner)
            .entries
            .iter()
            .find(|e| e.key == key)
            .map(Entry::id)
    }
}

/// An exhausted quota rests the account until the next quota check.
pub(crate) fn apply_quota(e: &mut Entry, q: Quota, now: Instant, recheck: std::time::Duration) {
    e.billing_limit = q.concurrency_limit;
    if q.exhausted && e.health.is_usable(now) {
        e.health = Health::Cooling {
            until: now + recheck,
            reason: "the account's credits are used up (/billing)".to_string(),
        };
    } else if !q.exhausted
        && matches!(&e.health, Health::Cooling { reason, .. } if reason.contains("/billing"))
    {
        e.health = Health::Active;
    }
    e.quota = Some(q);
}

/// The stored record of a CLI login as it is now (not disabled): its current refresh token.
fn cli_record(seed: &str, account: &CliAccount) -> AccountRecord {
    AccountRecord {
        seed_hash: seed.to_string(),
        account_id: Some(account.id().to_string()),
        label: Some(account.label().to_string()),
        client_cookie: account.tokens().refresh_token().expose().to_string(),
        session_id: None,
        updated_ms: now_ms(),
        disabled: false,
        kind: crate::store::AccountKind::Cli,
    }
}

/// The stored record of an account as it is now (not disabled).
fn record_of(seed: &str, account: &Account, cookie: String) -> AccountRecord {
    let identity = account.identity();
    AccountRecord {
        seed_hash: seed.to_string(),
        account_id: identity.as_ref().map(|i| account_id_for_user(&i.user_id)),
        label: Some(account.label().to_string()),
        client_cookie: cookie,
        session_id: identity.map(|i| i.session_id),
        updated_ms: now_ms(),
        disabled: false,
        kind: crate::store::AccountKind::Web,
    }
}

fn spawn_persister(
    seed: String,
    account: &Arc<Account>,
    store: Arc<dyn Store>,
    record_lock: Arc<tokio::sync::Mutex<()>>,
) {
    let mut rx = account.subscribe_cookie();
    let weak = Arc::downgrade(account);
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let cookie = rx.borrow_and_update().clone();
            let Some(account) = weak.upgrade() else { break };
            let mut record = record_of(&seed, &account, cookie);
            drop(account);
            let _serial = record_lock.lock().await;
            match store.get_account(&seed).await {
                // An admin-added account removed while a turn still held it must stay removed.
                Ok(None) if seed.starts_with(ADMIN_SEED) => break,
                // The admin's choice survives the rotation.
                Ok(Some(old)) => record.disabled = old.disabled,
                Ok(None) => {}
                // The rotated cookie matters more than the flag: write it anyway.
                Err(e) => tracing::warn!(
                    error = %e,
                    "could not read the stored account; a disabled flag may be lost"
                ),
            }
            if let Err(e) = store.put_account(&record).await {
                tracing::warn!(error = %e, "could not persist the rotated cookie");
            } else {
                tracing::debug!("persisted the rotated cookie");
            }
        }
    });
}

#[cfg(test)]
#[path = "manage_tests.rs"]
mod tests;
