//! `cto login` accounts in the pool: loading the configured ones and adding one through the
//! admin API. Their refresh tokens rotate on every use; each rotation is written to the store
//! at once (see [`refresh_store`]), so a restart starts from the newest token, never a spent one.

use std::sync::Arc;

use super::entry::{AccountView, Entry, Origin};
use super::login::Login;
use super::manage::ManageError;
use super::sources::AccountSource;
use super::{Pool, account_state::Health, lock};
use crate::store::Store;
use crate::upstream::UpstreamError;
use crate::upstream::cli::{CliAccount, CliClient, Credentials, NoStore, RefreshStore, seed_hash};

/// Where the account's rotated refresh tokens go.
fn refresh_store(_store: &Arc<dyn Store>, _seed: &str) -> Arc<dyn RefreshStore> {
    Arc::new(NoStore)
}

impl Pool {
    /// Adds a configured `cto login` (no upstream call: the first turn refreshes).
    pub(super) async fn load_cli(
        &self,
        s: &AccountSource,
        store: &Arc<dyn Store>,
    ) -> Result<(), (String, UpstreamError)> {
        let credentials = Credentials::parse(&s.cookie).map_err(|e| (s.label.clone(), e))?;
        let seed = seed_hash(credentials.refresh_token.expose());
        let disabled = match store.get_account(&seed).await {
            Ok(r) => r.is_some_and(|r| r.disabled),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the stored CLI account");
                false
            }
        };
        let account = CliAccount::new(&s.label, &credentials, refresh_store(store, &seed));
        self.insert_cli(seed, Origin::Config, account, disabled);
        Ok(())
    }

    fn insert_cli(
        &self,
        seed: String,
        origin: Origin,
        account: CliAccount,
        disabled: bool,
    ) -> String {
        let mut e = Entry::new(self.next_key(), seed, origin, Login::Cli(Arc::new(account)));
        if disabled {
            e.health = Health::Disabled;
        }
        let id = e.id();
        lock(&self.inner).entries.push(e);
        self.publish();
        self.notify.notify_waiters();
        id
    }

    /// Validates a pasted refresh token (or `~/.cto/credentials` JSON) at once with one refresh,
    /// then adds and stores it.
    pub async fn add_cli(
        &self,
        cli: &CliClient,
        store: &Arc<dyn Store>,
        label: &str,
        pasted: &str,
    ) -> Result<AccountView, ManageError> {
        let credentials = Credentials::parse(pasted).map_err(ManageError::Rejected)?;
        let seed = seed_hash(credentials.refresh_token.expose());
        if let Some(id) = self.id_with_seed(&[&seed]) {
            return Err(ManageError::Duplicate(id));
        }
        let account = CliAccount::new(label, &credentials, refresh_store(store, &seed));
        cli.access_token(&account)
            .await
            .map_err(ManageError::Rejected)?;
        let id = self.insert_cli(seed, Origin::Admin, account, false);
        self.view(&id)
    }
}
