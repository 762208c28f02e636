//! The cto.new accounts the proxy drives, and the persistence of their rotated cookies.
//!
//! Clerk rotates the `__client` cookie; the rotated value must survive a restart, or the proxy
//! would fall back to the stale pasted cookie. Each account is keyed in the store by a hash of
//! the cookie *as pasted* (its seed), so the same `.env` finds its latest cookie again.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::conversation::fingerprint::hex;
use crate::store::{AccountRecord, Store, now_ms};
use crate::upstream::{Account, UpstreamError};

/// One configured account and the key its state is stored under.
pub struct Slot {
    pub seed_hash: String,
    pub account: Arc<Account>,
}

/// The accounts in use. One today (`CLERK_COOKIE`); the pool of several comes later.
#[derive(Default)]
pub struct Accounts {
    slots: Vec<Slot>,
}

/// Hash of a pasted cookie: the store key of its account (never the cookie itself).
pub fn seed_hash(pasted_cookie: &str) -> String {
    hex(&Sha256::digest(format!("el2a-seed:{}", pasted_cookie.trim()).as_bytes())[..16])
}

impl Accounts {
    /// Builds the account for a pasted cookie, preferring the latest rotated cookie and session
    /// that the store remembers for it; then keeps the store up to date with every rotation.
    pub async fn load(
        label: &str,
        pasted_cookie: &str,
        store: &Arc<dyn Store>,
    ) -> Result<Slot, UpstreamError> {
        let seed = seed_hash(pasted_cookie);
        let remembered = match store.get_account(&seed).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the remembered cookie; using the configured one");
                None
            }
        };
        let account = match &remembered {
            Some(rec) => {
                tracing::info!(
                    label,
                    "using the latest rotated cookie remembered by the store"
                );
                Account::with_session(label, &rec.client_cookie, rec.session_id.clone())?
            }
            None => Account::new(label, pasted_cookie)?,
        };
        let account = Arc::new(account);
        spawn_persister(seed.clone(), label.to_string(), &account, Arc::clone(store));
        Ok(Slot {
            seed_hash: seed,
            account,
        })
    }

    pub fn push(&mut self, slot: Slot) {
        self.slots.push(slot);
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The account for a new conversation.
    pub fn pick(&self) -> Option<Arc<Account>> {
        self.slots.first().map(|s| Arc::clone(&s.account))
    }

    /// The account with this id (the owner of a continued conversation), if still configured.
    pub fn by_id(&self, account_id: &str) -> Option<Arc<Account>> {
        self.slots
            .iter()
            .find(|s| account_id_of(&s.account).as_deref() == Some(account_id))
            .map(|s| Arc::clone(&s.account))
    }

    pub fn all(&self) -> impl Iterator<Item = &Slot> {
        self.slots.iter()
    }
}

/// Stable account id derived from the Clerk user id (known after discovery).
pub fn account_id_of(account: &Account) -> Option<String> {
    account
        .identity()
        .map(|id| account_id_for_user(&id.user_id))
}

pub fn account_id_for_user(user_id: &str) -> String {
    format!("acct_{}", hex(&Sha256::digest(user_id.as_bytes())[..6]))
}

/// Writes the account's cookie to the store whenever Clerk rotates it.
fn spawn_persister(seed: String, label: String, account: &Arc<Account>, store: Arc<dyn Store>) {
    let mut rx = account.subscribe_cookie();
    let weak = Arc::downgrade(account);
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let cookie = rx.borrow_and_update().clone();
            let Some(account) = weak.upgrade() else { break };
            let identity = account.identity();
            let record = AccountRecord {
                seed_hash: seed.clone(),
                account_id: identity.as_ref().map(|i| account_id_for_user(&i.user_id)),
                label: Some(label.clone()),
                client_cookie: cookie,
                session_id: identity.map(|i| i.session_id),
                updated_ms: now_ms(),
            };
            drop(account);
            if let Err(e) = store.put_account(&record).await {
                tracing::warn!(error = %e, "could not persist the rotated cookie");
            } else {
                tracing::debug!("persisted the rotated cookie");
            }
        }
    });
}
