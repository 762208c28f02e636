//! The application state: config, client and admin keys (with the admin page's sessions and the
//! wrong-key back-off), the relay (upstream client, store, account pool) and the pool's
//! background probe (stopped when the state is dropped).

use std::sync::Arc;

use crate::config::{Config, Secret};
use crate::pool::{Pool, probe};
use crate::relay::Relay;
use crate::server::auth::ApiKeys;
use crate::server::error::ApiError;
use crate::store::{Store, StoreError, StoreLimits, open_store};
use crate::upstream::{EngineClient, UpstreamError};

/// Cheap to clone: one `Arc`.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    keys: ApiKeys,
    admin: ApiKeys,
    /// The admin page's session tokens (MAC key from ADMIN_KEY and the store's secret).
    sessions: Arc<crate::server::admin::session::Sessions>,
    /// Wrong admin keys by client address.
    lockout: crate::server::admin::lockout::Lockout,
    relay: Relay,
    probe: tokio::task::JoinHandle<()>,
    catalog: crate::catalog::ModelCatalog,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.probe.abort();
    }
}

/// A weak [`AppState`]: background tasks stop when the application is gone.
pub struct WeakState(std::sync::Weak<Inner>);

impl WeakState {
    pub fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(|inner| AppState { inner })
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "account `{label}` (CLERK_COOKIE / CLERK_COOKIES / CTO_REFRESH_TOKEN / CTO_CREDENTIALS_FILE / ACCOUNTS_FILE): {error}"
    )]
    Cookie { label: String, error: UpstreamError },
    #[error("could not build the HTTP client: {0}")]
    Client(UpstreamError),
}

impl AppState {
    /// Opens the store, loads the account(s) and builds the upstream client.
    pub async fn build(config: Config) -> Result<AppState, StartError> {
        let limits = StoreLimits {
            conversation_ttl: config.conversation_ttl,
            max_conversations: config.max_conversations,
        };
        let kind = config.store_kind();
        let store = open_store(kind, limits).await?;
        Self::with_store(config, store).await
    }

    /// Like [`AppState::build`] with a store the caller opened (tests share one between apps).
    pub async fn with_store(config: Config, store: Arc<dyn Store>) -> Result<AppState, StartError> {
        let engine =
            Arc::new(EngineClient::new(config.upstream.clone()).map_err(StartError::Client)?);
        let pool = Pool::new(config.pool.clone());
        pool.load_configured(&config.accounts, &store)
            .await
            .map_err(|(label, error)| StartError::Cookie { label, error })?;
        pool.load_admin_added(&store).await;
        let probe = probe::spawn(&pool, Arc::clone(&engine));
        let exposed = |keys: &[Secret]| -> Vec<String> {
            keys.iter().map(|k| k.expose().to_string()).collect()
        };
        let keys = ApiKeys::new(&exposed(&config.api_keys));
        let admin = ApiKeys::new(&exposed(config.admin_key.as_slice()));
        let sessions = Arc::new(
            crate::server::admin::session::Sessions::load(
                config.admin_key.as_ref().map(Secret::expose),
                store.as_ref(),
            )
            .await,
        );
        let catalog = crate::catalog::ModelCatalog::new(config.catalog.clone(), &config.upstream);
        let prompts = config.prompts;
        let cli = Arc::new(
            crate::upstream::cli::CliClient::new(&config.upstream).map_err(StartError::Client)?,
        );
        let state = AppState {
            inner: Arc::new(Inner {
                config,
                keys,
                admin,
                sessions,
                lockout: Default::default(),
                relay: Relay {
                    cli,
                    prompts,
                    engine,
                    store,
                    pool,
                },
                probe,
                catalog,
            }),
        };
        state.spawn_purge();
        state.spawn_catalog_refresh();
        Ok(state)
    }

    /// Purges expired conversations every [`crate::cleanup::interval_for`] the TTL until the
    /// state is dropped.
    fn spawn_purge(&self) {
        let every = crate::cleanup::interval_for(self.config().conversation_ttl);
        let weak = self.downgrade();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(state) = weak.upgrade() else { break };
                crate::cleanup::purge_once(state.relay(), state.config().upstream_cleanup).await;
            }
        });
    }

    /// Refreshes the model catalogue every `MODEL_REFRESH` until the state is dropped. The
    /// first load happens on first use ([`crate::catalog::ModelCatalog::ensure_loaded`]).
    fn spawn_catalog_refresh(&self) {
        if self.relay().pool.is_empty() {
            return;
        }
        let weak = self.downgrade();
        let every = self.config().catalog.refresh;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(state) = weak.upgrade() else { return };
                state.catalog().refresh(state.relay()).await;
            }
        });
    }

    /// A handle that does not keep the state alive (for background tasks).
    pub fn downgrade(&self) -> WeakState {
        WeakState(Arc::downgrade(&self.inner))
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn keys(&self) -> &ApiKeys {
        &self.inner.keys
    }

    /// The admin key (empty when ADMIN_KEY is unset: the admin API is off).
    pub fn admin_keys(&self) -> &ApiKeys {
        &self.inner.admin
    }

    /// The admin page's sessions.
    pub fn sessions(&self) -> &Arc<crate::server::admin::session::Sessions> {
        &self.inner.sessions
    }

    /// The back-off for wrong admin keys.
    pub fn admin_lockout(&self) -> &crate::server::admin::lockout::Lockout {
        &self.inner.lockout
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.inner.relay.pool
    }

    pub fn relay(&self) -> &Relay {
        &self.inner.relay
    }

    pub fn store(&self) -> &dyn Store {
        self.inner.relay.store.as_ref()
    }

    /// The protocol generation in use, for the root page and logs.
    pub fn generation_label(&self) -> &'static str {
        match self.inner.relay.engine.generation() {
            Some(g) => g.as_str(),
            None => "auto (not settled yet)",
        }
    }

    /// The model catalogue (live adapter list or configured `MODELS`).
    pub fn catalog(&self) -> &crate::catalog::ModelCatalog {
        &self.inner.catalog
    }

    /// [`AppState::resolve_model`] once the catalogue's first load was tried (request handlers
    /// use this, so the first request already sees the live model list).
    pub async fn model_for(&self, requested: Option<&str>) -> Result<String, ApiError> {
        self.catalog().ensure_loaded(self.relay()).await;
        self.resolve_model(requested)
    }

    /// The model a request means and the doors that serve it.
    pub async fn route_for(
        &self,
        requested: Option<&str>,
    ) -> Result<(String, crate::relay::Route), ApiError> {
        self.catalog().ensure_loaded(self.relay()).await;
        let catalog = self.catalog().snapshot();
        let m = catalog
            .resolve(requested)
            .map_err(|name| ApiError::ModelNotFound(name.chars().take(128).collect()))?;
        let route = crate::relay::Route {
            web: m.web,
            cli_model: m.cli_id.clone(),
        };
        Ok((m.id.clone(), route))
    }

    /// The canonical catalogue name (adapter key when the live list is known) for what the
    /// client asked, by any of its names or an alias, or the default model.
    pub fn resolve_model(&self, requested: Option<&str>) -> Result<String, ApiError> {
        self.catalog()
            .snapshot()
            .resolve(requested)
            .map(|m| m.id.clone())
            .map_err(ApiError::ModelNotFound)
    }
}
