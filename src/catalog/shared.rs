//! [`ModelCatalog`]: the catalogue as the server shares it, a snapshot behind a lock held only
//! for the clone, and its refresh from the upstream through the relay's clients (the web
//! agent's `GET /chat/adapters`, the CLI API's `GET /models`). The server runs the periodic
//! refresh; the first load happens on first use ([`ModelCatalog::ensure_loaded`]), not at
//! start, so start-up makes no upstream call and a cookie revoked before the first request is
//! seen by it.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use super::{Catalog, CatalogSettings};
use crate::relay::Relay;
use crate::upstream::{ProtocolChoice, UpstreamConfig, UpstreamError};

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the last look at the upstream account said (for `/readyz`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountProbe {
    /// Nothing tried yet.
    Untried,
    /// The session worked (the adapter list, or at least the JWT, came back).
    Usable,
    /// Clerk or EngineLabs refused the cookie: the account is dead until a fresh cookie.
    Dead(String),
}

/// The shared catalogue: a snapshot plus what the last refresh learned.
pub struct ModelCatalog {
    settings: CatalogSettings,
    /// How long the first request waits for the first load: the request timeout, at most 10 s.
    first_load_wait: Duration,
    /// `UPSTREAM_PROTOCOL=gen1`: there is no adapter list to fetch.
    gen1: bool,
    current: RwLock<Arc<Catalog>>,
    /// The web part (live adapters or configured `MODELS`), before the CLI models join.
    web: RwLock<Arc<Catalog>>,
    /// The CLI door's model ids, as its last `GET /models` said.
    cli_ids: RwLock<Vec<String>>,
    probe: Mutex<AccountProbe>,
    /// Set once the first load was tried (whatever its outcome).
    loaded: tokio::sync::OnceCell<()>,
}

impl ModelCatalog {
    pub fn new(settings: CatalogSettings, upstream: &UpstreamConfig) -> Self {
        let configured = Arc::new(Catalog::configured(&settings));
        ModelCatalog {
            settings,
            first_load_wait: upstream.request_timeout.min(Duration::from_secs(10)),
            gen1: upstream.protocol == ProtocolChoice::Gen1,
            web: RwLock::new(Arc::clone(&configured)),
            cli_ids: RwLock::new(Vec::new()),
            current: RwLock::new(configured),
            probe: Mutex::new(AccountProbe::Untried),
            loaded: tokio::sync::OnceCell::new(),
        }
    }

    /// Makes sure the first load was tried: the first request waits for it (bounded by the
    /// request timeout, at most 10 s), later ones return at once. A failed first load leaves
    /// the configured `MODELS` in place until a background refresh works.
    pub async fn ensure_loaded(&self, relay: &Relay) {
        self.loaded
            .get_or_init(|| async {
                if relay.pool.is_empty() {
                    return;
                }
                let bound = self.first_load_wait;
                if tokio::time::timeout(bound, self.refresh(relay)).await.is_err() {
                    tracing::warn!("the model list did not arrive in time; serving the configured MODELS for now");
                }
            })
            .await;
    }

    /// The settings the catalogue was built with.
    pub fn settings(&self) -> &CatalogSettings {
        &self.settings
    }

    /// The current snapshot (cheap: an `Arc` clone).
    pub fn snapshot(&self) -> Arc<Catalog> {
        Arc::clone(&read(&self.current))
    }

    /// Swaps in a new web part, or new CLI ids, and rebuilds the joined snapshot.
    fn set(&self, web: Option<Catalog>, cli_ids: Option<Vec<String>>, has_web: bool) {
        if let Some(w) = web {
            *write(&self.web) = Arc::new(w);
        }
        if let Some(ids) = cli_ids {
            *write(&self.cli_ids) = ids;
        }
        let web = Arc::clone(&read(&self.web));
        let ids = read(&self.cli_ids).clone();
        let joined = if ids.is_empty() && has_web {
            web
        } else {
            Arc::new(web.with_cli(&ids, has_web))
        };
        *write(&self.current) = joined;
    }

    pub fn probe(&self) -> AccountProbe {
        self.probe
            .lock()
            .map(|p| p.clone())
            .unwrap_or(AccountProbe::Untried)
    }

    fn set_probe(&self, probe: AccountProbe) {
        if let Ok(mut p) = self.probe.lock() {
            *p = probe;
        }
    }

    /// Fetches the adapter list now (bypassing the client's cache) and swaps it in. Returns
    /// whether the catalogue is live afterwards. Gen-1 (fixed) and no account: nothing to do.
    pub async fn refresh(&self, relay: &Relay) -> bool {
        let cli = self.refresh_cli(relay).await;
        self.refresh_web(relay).await || cli
    }

    /// The CLI door's `GET /models`, with any `cto login` account.
    async fn refresh_cli(&self, relay: &Relay) -> bool {
        let pool = &relay.pool;
        let Some(account) = pool.any_cli_account() else {
            return false;
        };
        match relay.cli.models(&account).await {
            Ok(ids) => {
                tracing::debug!(models = ids.len(), "CLI model list refreshed");
                self.set(None, Some(ids), pool.has(crate::pool::Kind::Web));
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not fetch the CLI API's model list; keeping the current one");
                false
            }
        }
    }

    /// The web agent's adapter list.
    async fn refresh_web(&self, relay: &Relay) -> bool {
        let Some(account) = relay.pool.any_account() else {
            return false;
        };
        if self.gen1 {
            return self.check_account(relay, &account).await;
        }
        match relay.engine.refresh_adapters(&account).await {
            Ok(list) => {
                let catalog = Catalog::from_adapters(&list, &self.settings);
                let dangling = catalog.dangling_aliases();
                if !dangling.is_empty() {
                    tracing::warn!(aliases = ?dangling, "MODEL_ALIASES name models the live catalogue does not offer");
                }
                tracing::debug!(models = catalog.models().len(), "model catalogue refreshed");
                self.set(Some(catalog), None, true);
                self.set_probe(AccountProbe::Usable);
                true
            }
            Err(e) => {
                self.note_failure(&e);
                if !matches!(
                    e,
                    UpstreamError::Status {
                        status: 404 | 405,
                        ..
                    }
                ) {
                    tracing::warn!(error = %e, "could not fetch the model list; keeping the current catalogue");
                }
                self.check_account(relay, &account).await && self.snapshot().is_live()
            }
        }
    }

    /// Without an adapter list (Gen-1), at least learn whether the account's session works.
    async fn check_account(&self, relay: &Relay, account: &crate::upstream::Account) -> bool {
        match relay.engine.ensure_ready(account).await {
            Ok(_) => self.set_probe(AccountProbe::Usable),
            Err(e) => self.note_failure(&e),
        }
        self.snapshot().is_live()
    }

    fn note_failure(&self, e: &UpstreamError) {
        if matches!(
            e,
            UpstreamError::CookieRejected { .. } | UpstreamError::BadCookie(_)
        ) {
            self.set_probe(AccountProbe::Dead(e.to_string()));
        }
    }
}
