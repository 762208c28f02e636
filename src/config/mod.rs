//! Configuration: one [`Config`] built from command-line flags, the environment and a `.env`
//! file (flags win over the environment, the environment over `.env`), validated at start-up.
//!
//! Names follow the Python seed project so its users can bring their `.env` along. Every error
//! names the setting it is about: clap refuses a value of the wrong type itself (each flag has
//! its own parser), and [`Config::from_args`] checks what needs two settings at once. Secrets
//! (keys, cookies, tokens, the Redis and proxy URLs) live in [`Secret`], which cannot be printed;
//! [`Config::settings`] is the one redacted view of every setting, used by `Debug`, the start-up
//! log and the admin page.
//!
//! # Layout
//! - [`args`]: [`ConfigArgs`], the flags and variables clap reads, and the public builders;
//! - [`values`]: the parser of each kind of value, and the enums of the settings;
//! - [`accounts`]: the account sources and the pool's settings;
//! - [`connections`], [`cors`]: the client connection limits and the CORS origins;
//! - [`view`]: the redacted list of every setting.

pub mod accounts;
pub mod args;
pub mod connections;
pub mod cors;
pub mod values;
pub mod view;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use args::{ConfigArgs, MaybeCount};
pub use connections::ConnectionLimits;
pub use cors::CorsOrigins;
pub use values::{LogFormat, ReasoningMode, StoreArg};

use crate::catalog::CatalogSettings;
use crate::pool::PoolConfig;
use crate::pool::sources::AccountSource;
use crate::relay::PromptSettings;
use crate::upstream::UpstreamConfig;
pub use crate::upstream::cli::credentials::Secret;

/// The shortest ADMIN_KEY accepted. With the back-off on wrong keys (five tries, then at most
/// about one every five minutes per address), twelve random characters are out of reach; a
/// shorter key is refused at start-up rather than warned about, since a warning in a log
/// nobody reads protects nothing.
pub const MIN_ADMIN_KEY_CHARS: usize = 12;

/// Which store keeps conversation memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Memory,
    Embedded { dir: PathBuf },
    Redis { url: Secret, prefix: String },
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Client keys (API_MASTER_KEY and API_KEYS, each once).
    pub api_keys: Vec<Secret>,
    pub clerk_cookie: Option<Secret>,
    /// Every configured account (CLERK_COOKIE, CLERK_COOKIES, ACCOUNTS_FILE), deduplicated.
    pub accounts: Vec<AccountSource>,
    pub admin_key: Option<Secret>,
    pub pool: PoolConfig,
    pub upstream: UpstreamConfig,
    /// Models, aliases, paid models, refresh interval and image limit (see [`crate::catalog`]).
    pub catalog: CatalogSettings,
    pub reasoning: ReasoningMode,
    /// How prompts for the web agent are sized (`PROMPT_BUDGET_BYTES`, `LONG_PROMPTS`,
    /// `MAX_CONTEXT_TURNS`).
    pub prompts: PromptSettings,
    pub max_body_bytes: usize,
    /// Header, body and idle timeouts of client connections, and their cap.
    pub connections: ConnectionLimits,
    /// Which browser origins may call the client API (`CORS_ORIGINS`).
    pub cors: CorsOrigins,
    /// Most messages (or Responses input items) in one request.
    pub max_messages: usize,
    pub store: StoreChoice,
    pub conversation_ttl: Duration,
    pub max_conversations: usize,
    pub upstream_cleanup: bool,
    pub log_format: LogFormat,
    /// How long open requests may finish after SIGTERM/Ctrl-C (`SHUTDOWN_GRACE_SECS`).
    pub shutdown_grace: Duration,
    /// Every setting by its name, as shown (see [`Config::settings`]); taken when the settings
    /// are validated, so change the [`ConfigArgs`] rather than a built `Config`.
    shown: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Config");
        for (name, value) in &self.shown {
            s.field(name, value);
        }
        s.finish()
    }
}

/// A setting that failed validation; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

pub(crate) fn bad(setting: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        message: message.into(),
    }
}

/// A secret given and not blank, trimmed.
fn given(secret: Option<&Secret>) -> Option<Secret> {
    secret
        .map(|s| s.expose().trim())
        .filter(|s| !s.is_empty())
        .map(Secret::new)
}

impl Config {
    /// Builds the configuration from the parsed settings, checking what involves two of them
    /// (or a file): each value alone was already checked by clap.
    pub fn from_args(a: &ConfigArgs) -> Result<Config, ConfigError> {
        let mut api_keys: Vec<Secret> = Vec::new();
        for list in a.api_master_key.iter().chain(a.api_keys.iter()) {
            for k in list
                .expose()
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
            {
                if !api_keys.iter().any(|existing| existing.expose() == k) {
                    api_keys.push(Secret::new(k));
                }
            }
        }
        let clerk_cookie = given(a.clerk_cookie.as_ref());
        let admin_key = given(a.admin_key.as_ref());
        check_admin_key(admin_key.as_ref(), &api_keys)?;
        let upstream = upstream(a)?;
        let store = store(a)?;
        let accounts = accounts::account_sources(a, clerk_cookie.as_ref())?;
        let mut config = Config {
            listen: SocketAddr::new(a.host, a.port),
            api_keys,
            clerk_cookie,
            accounts,
            admin_key,
            pool: accounts::pool_config(a, &upstream),
            upstream,
            catalog: catalog(a)?,
            reasoning: a.reasoning,
            prompts: PromptSettings {
                budget: a.prompt_budget_bytes,
                long_prompts: a.long_prompts,
                max_context_turns: a.max_context_turns,
            },
            max_body_bytes: a.max_body_bytes,
            connections: ConnectionLimits {
                header_read_timeout: a.header_read_timeout_secs,
                request_body_timeout: a.request_body_timeout_secs,
                max_connections: a.max_connections,
            },
            cors: CorsOrigins::parse(&a.cors_origins)?,
            max_messages: a.max_messages,
            store,
            conversation_ttl: a.conversation_ttl,
            max_conversations: a.max_conversations,
            upstream_cleanup: a.upstream_cleanup,
            log_format: a.log_format,
            shutdown_grace: a.shutdown_grace_secs,
            shown: Vec::new(),
        };
        config.shown = view::shown(a, &config);
        Ok(config)
    }

    /// Every setting by its variable name with the value in force, secrets shown only as
    /// `<redacted>`: what `Debug`, the start-up log and the admin settings page print.
    pub fn settings(&self) -> &[(&'static str, String)] {
        &self.shown
    }

    /// The store to open for this choice (`serve` and `doctor` open the same one).
    pub fn store_kind(&self) -> crate::store::StoreKind {
        use crate::store::StoreKind;
        match &self.store {
            StoreChoice::Memory => StoreKind::Memory,
            StoreChoice::Embedded { dir } => StoreKind::Embedded {
                path: dir.join("enginelabs-2api.redb"),
            },
            StoreChoice::Redis { url, prefix } => StoreKind::Redis {
                url: url.expose().to_string(),
                prefix: prefix.clone(),
            },
        }
    }

    /// A short description of the store for logs (no secrets: the Redis URL may hold a password).
    pub fn store_label(&self) -> String {
        match &self.store {
            StoreChoice::Memory => "memory".to_string(),
            StoreChoice::Embedded { dir } => format!("embedded ({})", dir.display()),
            StoreChoice::Redis { .. } => "redis".to_string(),
        }
    }
}

/// `ADMIN_KEY`: long enough, and not also a client key.
fn check_admin_key(admin_key: Option<&Secret>, api_keys: &[Secret]) -> Result<(), ConfigError> {
    let Some(k) = admin_key else { return Ok(()) };
    if k.expose().chars().count() < MIN_ADMIN_KEY_CHARS {
        return Err(bad(
            "ADMIN_KEY",
            format!(
                "must be at least {MIN_ADMIN_KEY_CHARS} characters (it is the password of the admin page and API); e.g. `openssl rand -hex 16`"
            ),
        ));
    }
    if api_keys.iter().any(|c| c == k) {
        return Err(bad(
            "ADMIN_KEY",
            "must differ from every client key (API_MASTER_KEY, API_KEYS)",
        ));
    }
    Ok(())
}

/// The upstream client's settings: URLs, protocol, proxy, timeouts, user agent.
fn upstream(a: &ConfigArgs) -> Result<UpstreamConfig, ConfigError> {
    let mut upstream = UpstreamConfig::with_urls(&a.clerk_base_url, &a.engine_base_url);
    upstream.protocol = a.upstream_protocol;
    upstream.proxy = match given(a.upstream_proxy.as_ref()) {
        None => None,
        Some(v) => Some(
            crate::upstream::transport::UpstreamProxy::parse(v.expose())
                .map_err(|m| bad("UPSTREAM_PROXY", m))?,
        ),
    };
    upstream.allow_private_image_urls = a.allow_private_image_urls;
    if let Some(ua) = a
        .cli_user_agent
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        upstream.cli_user_agent = ua.to_string();
    }
    upstream.request_timeout = a.request_timeout_secs;
    upstream.idle_timeout = a.stream_idle_timeout_secs;
    Ok(upstream)
}

/// `STORE` with `REDIS_URL`, `DATA_DIR` and `REDIS_PREFIX`.
fn store(a: &ConfigArgs) -> Result<StoreChoice, ConfigError> {
    let redis_url = given(a.redis_url.as_ref());
    let embedded = || StoreChoice::Embedded {
        dir: a.data_dir.clone(),
    };
    let store = match (a.store.unwrap_or(StoreArg::Auto), redis_url) {
        (StoreArg::Memory, _) => StoreChoice::Memory,
        (StoreArg::Embedded, _) | (StoreArg::Auto, None) => embedded(),
        (StoreArg::Redis | StoreArg::Auto, Some(url)) => StoreChoice::Redis {
            url,
            prefix: a.redis_prefix.clone(),
        },
        (StoreArg::Redis, None) => return Err(bad("STORE", "`redis` needs REDIS_URL")),
    };
    if let StoreChoice::Redis { url, .. } = &store
        && !["redis://", "rediss://", "unix://"]
            .iter()
            .any(|scheme| url.expose().starts_with(scheme))
    {
        return Err(bad(
            "REDIS_URL",
            "must start with redis://, rediss:// or unix://",
        ));
    }
    Ok(store)
}

/// `MODELS`, `DEFAULT_MODEL` (one of them), `MODEL_ALIASES` and the rest of the catalogue's.
fn catalog(a: &ConfigArgs) -> Result<CatalogSettings, ConfigError> {
    let models: Vec<String> = a
        .models
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    let Some(first) = models.first().cloned() else {
        return Err(bad("MODELS", "must name at least one model"));
    };
    let default_model = match a
        .default_model
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        Some(m) if !models.iter().any(|x| x == m) => {
            return Err(bad(
                "DEFAULT_MODEL",
                format!("`{m}` is not in MODELS ({})", models.join(",")),
            ));
        }
        Some(m) => m.to_string(),
        None => first,
    };
    Ok(CatalogSettings {
        models,
        default_model,
        aliases: crate::catalog::parse_aliases(&a.model_aliases)
            .map_err(|m| bad("MODEL_ALIASES", m))?,
        include_paid: a.include_paid_models,
        refresh: a.model_refresh,
        max_image_bytes: a.max_image_bytes,
    })
}

#[cfg(test)]
mod tests;
