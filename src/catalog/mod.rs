//! The model catalogue: which models `/v1/models` offers and what a client's model name means.
//!
//! The live list comes from `GET /chat/adapters` (Gen-2, protocol notes §4.6), fetched on
//! first use (the first request waits for it, bounded) and again every `MODEL_REFRESH`. Until
//! that works (Gen-1, no account, the call failing) the configured `MODELS` are the catalogue;
//! a live list that could not be refreshed is kept rather than replaced by the configured one,
//! as it is still the better guess.
//!
//! A client may name a model by any of its three upstream names (`gpt_5_4`, `GPT5_4`,
//! `gpt-5.4`, any case) or by a `MODEL_ALIASES` alias; the canonical name (the adapter `key`)
//! is what the relay, the conversation scope and the upstream see. Disabled adapters, and
//! paid ones unless `INCLUDE_PAID_MODELS`, are neither listed nor resolved.
//!
//! Lookups are synchronous: handlers read an `Arc` snapshot behind a `RwLock` held only for
//! the clone, and the refresh task swaps in a new snapshot.
//!
//! # Layout
//! - this file: [`Catalog`] (one snapshot), [`ModelCatalog`] (the shared, refreshed one);
//! - `settings`: [`CatalogSettings`] from the raw config;
//! - `images`: [`prepare_images`], the image checks that need the catalogue.

mod images;
mod settings;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

pub use images::prepare_images;
pub use settings::CatalogSettings;

use crate::config::Config;
use crate::server::AppState;
use crate::upstream::engine::Adapter;
use crate::upstream::{ProtocolChoice, UpstreamError};

/// One model on offer.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogModel {
    /// The canonical name: the adapter `key`, or the configured name without a live list.
    pub id: String,
    /// Other names it answers to (`engineAgentKey`, `model`).
    pub other_names: Vec<String>,
    /// `owned_by` on `/v1/models`.
    pub provider: Option<String>,
    /// `None` when unknown (configured list): images are then refused.
    pub supports_images: Option<bool>,
    /// The web agent serves it (cookie accounts).
    pub web: bool,
    /// The CLI API serves it (`cto login` accounts), under this id.
    pub cli_id: Option<String>,
}

impl CatalogModel {
    fn answers_to(&self, name: &str) -> bool {
        std::iter::once(&self.id)
            .chain(&self.other_names)
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// One snapshot of the catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    models: Vec<CatalogModel>,
    /// Every name of the adapters left out (disabled, or paid without `INCLUDE_PAID_MODELS`):
    /// a client naming one gets a 404, never a stand-in by the Claude family rule.
    excluded: Vec<String>,
    aliases: Vec<(String, String)>,
    default: String,
    live: bool,
}

impl Catalog {
    /// The configured `MODELS`: what is offered without a live list.
    pub fn configured(config: &Config) -> Catalog {
        Catalog {
            models: config
                .models
                .iter()
                .map(|m| CatalogModel {
                    id: m.clone(),
                    other_names: Vec::new(),
                    provider: None,
                    supports_images: None,
                    web: true,
                    cli_id: None,
                })
                .collect(),
            excluded: Vec::new(),
            aliases: config.catalog.aliases.clone(),
            default: config.default_model.clone(),
            live: false,
        }
    }

    /// The live list: enabled adapters, paid ones only when `include_paid`, each key once.
    pub fn from_adapters(adapters: &[Adapter], config: &Config) -> Catalog {
        let mut models: Vec<CatalogModel> = Vec::with_capacity(adapters.len());
        let mut excluded = Vec::new();
        for a in adapters {
            let paid = a.minimum_tier.unwrap_or(0) > 0;
            if a.enabled == Some(false) || (paid && !config.catalog.include_paid) {
                excluded.extend(
                    [
                        Some(a.key.clone()),
                        a.engine_agent_key.clone(),
                        a.model.clone(),
                    ]
                    .into_iter()
                    .flatten(),
                );
                continue;
            }
            if models.iter().any(|m| m.id.eq_ignore_ascii_case(&a.key)) {
                continue;
            }
            models.push(CatalogModel {
                id: a.key.clone(),
                other_names: [a.engine_agent_key.clone(), a.model.clone()]
                    .into_iter()
                    .flatten()
                    .filter(|n| !n.is_empty())
                    .collect(),
                provider: a.provider.clone().filter(|p| !p.is_empty()),
                supports_images: a.supports_images,
                web: true,
                cli_id: None,
            });
        }
        Catalog {
            models,
            excluded,
            aliases: config.catalog.aliases.clone(),
            default: config.default_model.clone(),
            live: true,
        }
    }

    /// This catalogue with the CLI door's models joined: a CLI id that names a web model
    /// (by any of its names) marks that model as served by both doors; the others become
    /// models of their own. Without cookie accounts (`web: false`) the web models go.
    pub fn with_cli(&self, cli_ids: &[String], web: bool) -> Catalog {
        let mut c = self.clone();
        if !web {
            c.models.clear();
        }
        for id in cli_ids {
            match c.models.iter_mut().find(|m| m.answers_to(id)) {
                Some(m) => m.cli_id = Some(id.clone()),
                None => c.models.push(CatalogModel {
                    id: id.clone(),
                    other_names: Vec::new(),
                    provider: None,
                    supports_images: None,
                    web: false,
                    cli_id: Some(id.clone()),
                }),
            }
        }
        if !cli_ids.is_empty() {
            c.live = c.live || !web;
        }
        c
    }

    /// Whether this came from `GET /chat/adapters` (else: the configured list).
    pub fn is_live(&self) -> bool {
        self.live
    }

    pub fn models(&self) -> &[CatalogModel] {
        &self.models
    }

    /// The model a name means: a model's own name first, then a `MODEL_ALIASES` alias (one
    /// level), then the Claude family rule ([`Catalog::claude_family`]).
    pub fn find(&self, name: &str) -> Option<&CatalogModel> {
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        self.find_named(name).or_else(|| self.claude_family(name))
    }

    /// A model's own name, then a `MODEL_ALIASES` alias (one level).
    fn find_named(&self, name: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.answers_to(name)).or_else(|| {
            let (_, target) = self
                .aliases
                .iter()
                .find(|(a, _)| a.eq_ignore_ascii_case(name))?;
            self.models.iter().find(|m| m.answers_to(target))
        })
    }

    /// Anthropic model names (`claude-sonnet-4-5`, dated variants, `claude-opus-*`,
    /// `claude-haiku-*`, `claude-3-5-*`), which Claude Code sends, mean the closest model on
    /// offer: one of the same family (a name containing `opus`, `sonnet` or `haiku`), else
    /// any Claude model (Sonnet first), else the default model. `MODEL_ALIASES` overrides it.
    pub fn claude_family(&self, name: &str) -> Option<&CatalogModel> {
        let lower = name.to_ascii_lowercase();
        if !lower.starts_with("claude")
            || self.excluded.iter().any(|n| n.eq_ignore_ascii_case(name))
        {
            return None;
        }
        let family = ["opus", "haiku", "sonnet"]
            .into_iter()
            .find(|f| lower.contains(f))
            .unwrap_or("sonnet");
        let named = |word: &str| {
            self.models.iter().find(|m| {
                std::iter::once(&m.id)
                    .chain(&m.other_names)
                    .any(|n| n.to_ascii_lowercase().contains(word))
            })
        };
        named(family)
            .or_else(|| named("sonnet"))
            .or_else(|| named("claude"))
            .or_else(|| self.find_named(&self.default))
            .or_else(|| self.models.first())
    }

    /// The Claude names `/v1/models` lists (Claude Code keeps the ids that start with
    /// `claude` when it discovers a gateway's models), each resolving by the family rule.
    pub const CLAUDE_ALIASES: [&'static str; 3] =
        ["claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"];

    /// What a request means: the named model, or the default one (`DEFAULT_MODEL` when it is
    /// on offer, else the first model listed). `Err` carries the unknown name.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&CatalogModel, String> {
        match requested {
            Some(name) => self.find(name).ok_or_else(|| name.to_string()),
            None => self
                .find(&self.default)
                .or_else(|| self.models.first())
                .ok_or_else(|| self.default.clone()),
        }
    }

    /// Aliases whose target is not in this catalogue (logged after a refresh).
    pub fn dangling_aliases(&self) -> Vec<&str> {
        self.aliases
            .iter()
            .filter(|(_, t)| !self.models.iter().any(|m| m.answers_to(t)))
            .map(|(a, _)| a.as_str())
            .collect()
    }
}

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
    pub fn new(config: &Config) -> Self {
        let configured = Arc::new(Catalog::configured(config));
        ModelCatalog {
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
    pub async fn ensure_loaded(&self, state: &AppState) {
        self.loaded
            .get_or_init(|| async {
                if state.relay().pool.is_empty() {
                    return;
                }
                let bound = state
                    .config()
                    .upstream
                    .request_timeout
                    .min(Duration::from_secs(10));
                if tokio::time::timeout(bound, self.refresh(state)).await.is_err() {
                    tracing::warn!("the model list did not arrive in time; serving the configured MODELS for now");
                }
            })
            .await;
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
    pub async fn refresh(&self, state: &AppState) -> bool {
        let cli = self.refresh_cli(state).await;
        self.refresh_web(state).await || cli
    }

    /// The CLI door's `GET /models`, with any `cto login` account.
    async fn refresh_cli(&self, state: &AppState) -> bool {
        let pool = &state.relay().pool;
        let Some(account) = pool.any_cli_account() else {
            return false;
        };
        match state.relay().cli.models(&account).await {
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
    async fn refresh_web(&self, state: &AppState) -> bool {
        let config = state.config();
        let Some(account) = state.relay().pool.any_account() else {
            return false;
        };
        if config.upstream.protocol == ProtocolChoice::Gen1 {
            return self.check_account(state, &account).await;
        }
        match state.relay().engine.refresh_adapters(&account).await {
            Ok(list) => {
                let catalog = Catalog::from_adapters(&list, config);
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
                self.check_account(state, &account).await && self.snapshot().is_live()
            }
        }
    }

    /// Without an adapter list (Gen-1), at least learn whether the account's session works.
    async fn check_account(&self, state: &AppState, account: &crate::upstream::Account) -> bool {
        match state.relay().engine.ensure_ready(account).await {
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

/// Refreshes the catalogue every `MODEL_REFRESH` in the background until the state is gone.
/// The first load happens on first use ([`ModelCatalog::ensure_loaded`]), not at start, so
/// start-up makes no upstream call and a cookie revoked before the first request is seen by it.
pub fn spawn(state: &AppState) {
    if state.relay().pool.is_empty() {
        return;
    }
    let weak = state.downgrade();
    let every = state.config().catalog.refresh;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let Some(state) = weak.upgrade() else { return };
            state.catalog().refresh(&state).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigError;

    fn config(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut v = vec!["--store", "memory"];
        v.extend_from_slice(extra);
        Config::from_args(&crate::config::test_args(&v))
    }

    fn adapter(key: &str, engine: &str, model: &str, tier: i64, enabled: bool) -> Adapter {
        Adapter {
            key: key.into(),
            engine_agent_key: Some(engine.into()),
            model: Some(model.into()),
            provider: Some("openai".into()),
            minimum_tier: Some(tier),
            enabled: Some(enabled),
            supports_images: Some(true),
            ..Adapter::default()
        }
    }

    #[test]
    fn claude_names_take_the_closest_model_but_never_an_excluded_one() {
        let c = config(&["--model-aliases", "claude-haiku-4-5=gpt_5_4"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter(
                    "claude_sonnet_4_5",
                    "ClaudeSonnet4_5",
                    "claude-sonnet-4.5",
                    0,
                    true,
                ),
                adapter(
                    "claude_opus_4_6",
                    "ClaudeOpus4_6",
                    "claude-opus-4.6",
                    1,
                    true,
                ),
            ],
            &c,
        );
        let id = |n: &str| cat.find(n).map(|m| m.id.clone());
        assert_eq!(
            id("claude-sonnet-4-5-20250929").as_deref(),
            Some("claude_sonnet_4_5")
        );
        assert_eq!(
            id("claude-3-5-sonnet-latest").as_deref(),
            Some("claude_sonnet_4_5")
        );
        // No opus on offer (paid): the closest is Sonnet; the paid model's own names stay 404.
        assert_eq!(id("claude-opus-4-1").as_deref(), Some("claude_sonnet_4_5"));
        assert_eq!(id("claude-opus-4.6"), None);
        assert_eq!(id("ClaudeOpus4_6"), None);
        // MODEL_ALIASES wins over the family rule.
        assert_eq!(id("claude-haiku-4-5").as_deref(), Some("gpt_5_4"));
        assert_eq!(id("gpt-unknown"), None);
        // Without any Claude model the default stands in (and a Claude default never loops).
        let only_gpt =
            config(&["--models", "claude-x,GPT5", "--default-model", "claude-x"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true)],
            &only_gpt,
        );
        assert_eq!(
            cat.find("claude-sonnet-4-5").map(|m| m.id.as_str()),
            Some("gpt_5_4")
        );
    }

    #[test]
    fn live_names_aliases_and_filters() {
        let c = config(&["--model-aliases", "gpt-4o=GPT5_4"]).expect("valid");
        let cat = Catalog::from_adapters(
            &[
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter("gpt_5_4", "GPT5_4", "gpt-5.4", 0, true),
                adapter("old", "Old", "old-1", 0, false),
                adapter("pro", "Pro", "pro-1", 1, true),
            ],
            &c,
        );
        assert!(cat.is_live());
        assert_eq!(cat.models().len(), 1);
        for name in ["gpt_5_4", "GPT5_4", "GPT-5.4", "Gpt-4O"] {
            assert_eq!(cat.find(name).map(|m| m.id.as_str()), Some("gpt_5_4"));
        }
        assert!(cat.find("old").is_none() && cat.find("pro").is_none());
        // DEFAULT_MODEL (ClaudeSonnet4_5) is not offered: the first model is the default.
        assert_eq!(cat.resolve(None).map(|m| m.id.as_str()), Ok("gpt_5_4"));
        assert_eq!(
            cat.resolve(Some("nope")).map(|m| m.id.clone()),
            Err("nope".into())
        );
        let paid = config(&["--include-paid-models", "true"]).expect("valid");
        let cat = Catalog::from_adapters(&[adapter("pro", "Pro", "pro-1", 1, true)], &paid);
        assert!(cat.find("pro-1").is_some());
    }

    #[test]
    fn configured_list_without_live_data() {
        let c = config(&["--model-aliases", "fast=gpt5"]).expect("valid");
        let cat = Catalog::configured(&c);
        assert!(!cat.is_live());
        assert_eq!(
            cat.resolve(None).map(|m| m.id.as_str()),
            Ok("ClaudeSonnet4_5")
        );
        assert_eq!(cat.find("FAST").map(|m| m.id.as_str()), Some("GPT5"));
        assert_eq!(cat.find("gpt5").and_then(|m| m.supports_images), None);
    }
}
