//! `cto login` accounts in the pool: loading the configured ones and the admin-added ones, and
//! adding one through the admin API. Their refresh tokens rotate on every use; each rotation is
//! written to the store at once under a lock shared by every replica ([`super::refresh`]), so a
//! restart starts from the newest token, never a spent one, and two replicas never spend the
//! same one.

use std::sync::Arc;

use super::Pool;
use super::entry::{AccountView, Entry, Origin};
use super::login::Login;
use super::manage::{ADMIN_SEED, ManageError};
use super::refresh::{StoredRefresh, starting_credentials};
use super::sources::AccountSource;
use crate::store::{AccountKind, AccountRecord, Store};
use crate::upstream::UpstreamError;
use crate::upstream::cli::{CliAccount, CliClient, Credentials, seed_hash};

/// The account of `credentials` under the store key `seed`, its rotations kept there.
fn account(
    store: &Arc<dyn Store>,
    seed: &str,
    label: &str,
    credentials: &Credentials,
) -> CliAccount {
    let refresh = Arc::new(StoredRefresh::new(Arc::clone(store), seed, label));
    // The id stays the hash of the token first given, whatever the store key.
    let id = seed.strip_prefix(ADMIN_SEED).unwrap_or(seed);
    CliAccount::with_id(id, label, credentials, refresh)
}

impl Pool {
    /// Adds a configured `cto login`, starting from the newest refresh token the store holds
    /// for it (no upstream call: the first turn refreshes).
    pub(super) async fn load_cli(
        &self,
        s: &AccountSource,
        store: &Arc<dyn Store>,
    ) -> Result<(), (String, UpstreamError)> {
        let configured = Credentials::parse(s.secret.expose()).map_err(|e| (s.label.clone(), e))?;
        let seed = seed_hash(configured.refresh_token.expose());
        let disabled = match store.get_account(&seed).await {
            Ok(r) => r.is_some_and(|r| r.disabled),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the stored CLI account");
                false
            }
        };
        let credentials = starting_credentials(store, &seed, &s.label, configured).await;
        let account = account(store, &seed, &s.label, &credentials);
        self.insert_cli(seed, Origin::Config, account, disabled);
        Ok(())
    }

    /// Adds a CLI login an admin added in an earlier run, from its stored record.
    pub(super) fn load_admin_cli(&self, rec: &AccountRecord, store: &Arc<dyn Store>) {
        let label = rec.label.clone().unwrap_or_else(|| "cli".to_string());
        match Credentials::parse(&rec.client_cookie) {
            Ok(c) => {
                let account = account(store, &rec.seed_hash, &label, &c);
                self.insert_cli(rec.seed_hash.clone(), Origin::Admin, account, rec.disabled);
            }
            Err(e) => tracing::warn!(label, error = %e, "skipping a stored CLI account"),
        }
    }

    fn insert_cli(
        &self,
        seed: String,
        origin: Origin,
        account: CliAccount,
        disabled: bool,
    ) -> String {
        let e = Entry::new(self.next_key(), seed, origin, Login::Cli(Arc::new(account)));
        self.push(e, disabled)
    }

    /// Validates a pasted refresh token (or `~/.cto/credentials` JSON) at once with one
    /// refresh, then adds and stores it.
    pub async fn add_cli(
        &self,
        cli: &CliClient,
        store: &Arc<dyn Store>,
        label: &str,
        pasted: &str,
    ) -> Result<AccountView, ManageError> {
        let credentials = Credentials::parse(pasted).map_err(ManageError::Rejected)?;
        let id = seed_hash(credentials.refresh_token.expose());
        let seed = format!("{ADMIN_SEED}{id}");
        if let Some(existing) = self.id_with_seed(&[&seed, &id]) {
            return Err(ManageError::Duplicate(existing));
        }
        // The record first: the validating refresh rotates the token, and the rotation is a
        // compare-and-set against it.
        let record = AccountRecord {
            seed_hash: seed.clone(),
            account_id: Some(id.clone()),
            label: Some(label.to_string()),
            client_cookie: credentials.refresh_token.expose().to_string(),
            session_id: None,
            updated_ms: crate::store::now_ms(),
            disabled: false,
            kind: AccountKind::Cli,
        };
        store
            .put_account(&record)
            .await
            .map_err(|e| ManageError::Store(e.to_string()))?;
        let account = account(store, &seed, label, &credentials);
        if let Err(e) = cli.access_token(&account).await {
            let _ = store.remove_account(&seed).await;
            return Err(ManageError::Rejected(e));
        }
        let id = self.insert_cli(seed, Origin::Admin, account, false);
        self.view(&id)
    }
}
