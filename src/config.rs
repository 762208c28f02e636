//! Configuration: one [`Config`] built from command-line flags, the environment and a `.env`
//! file (flags win over the environment, the environment over `.env`), validated at start-up.
//!
//! Names follow the Python seed project so its users can bring their `.env` along. Every error
//! names the setting it is about. Secrets (keys, cookies) are redacted from `Debug`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::pool::PoolConfig;
use crate::pool::settings::{account_sources, pool_config};
use crate::pool::sources::AccountSource;
use crate::upstream::{ProtocolChoice, UpstreamConfig};

/// The shortest ADMIN_KEY accepted. With the back-off on wrong keys (five tries, then at most
/// about one every five minutes per address), twelve random characters are out of reach; a
/// shorter key is refused at start-up rather than warned about, since a warning in a log
/// nobody reads protects nothing.
pub const MIN_ADMIN_KEY_CHARS: usize = 12;

/// The raw settings as clap reads them (flags and environment).
#[derive(Args, Clone, Default)]
pub struct ConfigArgs {
    /// Client API key (the seed's name). Clients send it as `Authorization: Bearer <key>`.
    #[arg(long, env = "API_MASTER_KEY", hide_env_values = true)]
    pub api_master_key: Option<String>,
    /// More client API keys, comma-separated. Without any key the server is open (warned about).
    #[arg(long, env = "API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// The cookie of a logged-in cto.new browser session: the whole `Cookie:` header or the bare
    /// `__client` value.
    #[arg(long, env = "CLERK_COOKIE", hide_env_values = true)]
    pub clerk_cookie: Option<String>,
    /// More cto.new accounts: one cookie per line, or cookies separated by `|||`. Labels are
    /// `cookie-1`, `cookie-2`, ... in the order given.
    #[arg(long, env = "CLERK_COOKIES", hide_env_values = true)]
    pub clerk_cookies: Option<String>,
    /// A file of accounts: one per line as `label = cookie` or a bare cookie, or `[[account]]`
    /// blocks with `label = "..."` and `cookie = "..."` or `refresh_token = "..."`. `#` starts a
    /// comment.
    #[arg(long, env = "ACCOUNTS_FILE")]
    pub accounts_file: Option<PathBuf>,
    /// `cto login` accounts (the CLI door): refresh tokens, separated by newlines, commas or
    /// `|||`. Labels are `cli-1`, `cli-2`, ...
    #[arg(long, env = "CTO_REFRESH_TOKEN", hide_env_values = true)]
    pub cto_refresh_token: Option<String>,
    /// The credentials file `cto login` writes (JSON with `refreshToken`). Default:
    /// `~/.cto/credentials` when it exists; `none` to ignore it.
    #[arg(long, env = "CTO_CREDENTIALS_FILE")]
    pub cto_credentials_file: Option<String>,
    /// Turns at once per `cto login` account (default 2, lowered when the CLI API answers 429).
    #[arg(long, env = "CLI_CONCURRENCY")]
    pub cli_concurrency: Option<String>,
    /// User-Agent of requests to the CLI API (default: the opencode agent string `cto` sends).
    #[arg(long, env = "CLI_USER_AGENT")]
    pub cli_user_agent: Option<String>,
    /// Key of the admin API (`/admin/api`), sent as `Authorization: Bearer <key>`. Distinct from
    /// the client keys; without it the admin API is off.
    #[arg(long, env = "ADMIN_KEY", hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Turns one account runs at once. Default: what `/billing` says (`taskConcurrencyLimit`),
    /// else 2. Setting it overrides `/billing`.
    #[arg(long, env = "ACCOUNT_CONCURRENCY")]
    pub account_concurrency: Option<String>,
    /// How long a request waits for a free account slot before answering 429, in seconds.
    #[arg(long, env = "QUEUE_TIMEOUT_SECS", default_value = "30")]
    pub queue_timeout_secs: String,
    /// Most requests waiting for a slot; beyond it requests get 429 at once.
    #[arg(long, env = "MAX_QUEUE", default_value = "1000")]
    pub max_queue: String,
    /// How long a rate-limited account rests when the upstream gives no Retry-After.
    #[arg(long, env = "ACCOUNT_COOLDOWN", default_value = "60s")]
    pub account_cooldown: String,
    /// How often an account whose cookie was rejected is tried again.
    #[arg(long, env = "DEAD_RECHECK_INTERVAL", default_value = "10m")]
    pub dead_recheck_interval: String,
    /// How often each account's quota (`/billing`) is read.
    #[arg(long, env = "QUOTA_CHECK_INTERVAL", default_value = "5m")]
    pub quota_check_interval: String,
    /// Attempts to start a turn (retries with backoff on network errors, 5xx and 429).
    #[arg(long, env = "RETRY_ATTEMPTS", default_value = "3")]
    pub retry_attempts: String,
    /// Consecutive failures that open an account's circuit breaker (it then gets no traffic).
    #[arg(long, env = "BREAKER_FAILURES", default_value = "5")]
    pub breaker_failures: String,
    /// How long an open breaker keeps an account out before letting one trial request through.
    #[arg(long, env = "BREAKER_OPEN", default_value = "30s")]
    pub breaker_open: String,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0")]
    pub host: String,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value = "8089")]
    pub port: String,
    /// Clerk Frontend API base URL.
    #[arg(long, env = "CLERK_BASE_URL", default_value = "https://clerk.cto.new")]
    pub clerk_base_url: String,
    /// EngineLabs API base URL; the WebSocket URL is derived from it (http->ws, https->wss).
    #[arg(
        long,
        env = "ENGINE_BASE_URL",
        default_value = "https://api.enginelabs.ai"
    )]
    pub engine_base_url: String,
    /// HTTP proxy for every call to cto.new, WebSocket included: `http://[user:pass@]host:port`.
    /// Environment proxies (HTTPS_PROXY ...) are not used.
    #[arg(long, env = "UPSTREAM_PROXY", hide_env_values = true)]
    pub upstream_proxy: Option<String>,
    /// Let clients' image URLs point at private, loopback or link-local addresses (off: the
    /// proxy downloads images only from the public internet).
    #[arg(long, env = "ALLOW_PRIVATE_IMAGE_URLS", default_value = "false")]
    pub allow_private_image_urls: String,
    /// Upstream protocol generation: auto (Gen-2, falling back to Gen-1), gen1 or gen2.
    #[arg(long, env = "UPSTREAM_PROTOCOL", default_value = "auto")]
    pub upstream_protocol: String,
    /// Models offered on /v1/models, comma-separated.
    #[arg(long, env = "MODELS", default_value = "ClaudeSonnet4_5,GPT5")]
    pub models: String,
    /// Model used when a request names none (default: the first of MODELS).
    #[arg(long, env = "DEFAULT_MODEL")]
    pub default_model: Option<String>,
    /// Extra model names, `alias=model` pairs, comma-separated (e.g. gpt-4o=gpt_5_4).
    #[arg(long, env = "MODEL_ALIASES", default_value = "")]
    pub model_aliases: String,
    /// Also offer adapters that need a paid tier (`minimumTier` > 0).
    #[arg(long, env = "INCLUDE_PAID_MODELS", default_value = "false")]
    pub include_paid_models: String,
    /// How often the live model list (`GET /chat/adapters`) is fetched again.
    #[arg(long, env = "MODEL_REFRESH", default_value = "10m")]
    pub model_refresh: String,
    /// Largest image accepted in a request, in bytes (decoded).
    #[arg(long, env = "MAX_IMAGE_BYTES", default_value = "5242880")]
    pub max_image_bytes: String,
    /// Deadline in seconds for each upstream HTTP call and the WebSocket handshake.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value = "30")]
    pub request_timeout_secs: String,
    /// A turn is abandoned when the upstream stream sends nothing for this many seconds.
    #[arg(long, env = "STREAM_IDLE_TIMEOUT_SECS", default_value = "120")]
    pub stream_idle_timeout_secs: String,
    /// Where reasoning goes: field (`reasoning_content`), think-tags (`<think>` in content), hide.
    #[arg(long, env = "REASONING", default_value = "field")]
    pub reasoning: String,
    /// Largest accepted request body in bytes (larger: 413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "4194304")]
    pub max_body_bytes: String,
    /// Most messages (Responses: input items) in one request (more: 400).
    #[arg(long, env = "MAX_MESSAGES", default_value = "10000")]
    pub max_messages: String,
    /// Most bytes of one prompt sent to the web agent (cto.new refuses about 20 KB and more).
    #[arg(long, env = "PROMPT_BUDGET_BYTES", default_value = "18000")]
    pub prompt_budget_bytes: String,
    /// A transcript over the budget: context-turns (send its start as context turns in the
    /// same upstream chat; each costs credits) or reject (413 that explains the limit).
    #[arg(long, env = "LONG_PROMPTS", default_value = "context-turns")]
    pub long_prompts: String,
    /// Most context turns one request may cost.
    #[arg(long, env = "MAX_CONTEXT_TURNS", default_value = "8")]
    pub max_context_turns: String,
    /// Seconds a client connection has to send a request's complete headers, counted from its
    /// accept or from the end of the previous response: bounds slow and silent clients, and
    /// closes kept-alive connections left idle this long.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECS", default_value = "30")]
    pub header_read_timeout_secs: String,
    /// Seconds a client has to send a request's whole body, counted from the end of its headers
    /// (slower: 408).
    #[arg(long, env = "REQUEST_BODY_TIMEOUT_SECS", default_value = "60")]
    pub request_body_timeout_secs: String,
    /// Most client connections open at once; beyond it a connection gets a short 503 and is
    /// closed. Lowered at start when the open-file limit has no room for it.
    #[arg(long, env = "MAX_CONNECTIONS", default_value = "4096")]
    pub max_connections: String,
    /// Conversation store: embedded (a file under DATA_DIR), redis (needs REDIS_URL) or memory.
    /// Default: redis when REDIS_URL is set, else embedded.
    #[arg(long, env = "STORE")]
    pub store: Option<String>,
    /// Directory of the embedded store.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Redis URL for a store shared between replicas, e.g. redis://127.0.0.1:6379/0.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Key prefix in Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "el2a")]
    pub redis_prefix: String,
    /// Forget a conversation after this much disuse: seconds, or with a unit (90s, 30m, 12h, 7d).
    #[arg(long, env = "CONVERSATION_TTL", default_value = "7d")]
    pub conversation_ttl: String,
    /// Most conversations remembered; the least recently used are forgotten first.
    #[arg(long, env = "MAX_CONVERSATIONS", default_value = "100000")]
    pub max_conversations: String,
    /// Delete the upstream chat history when its conversation mapping expires, so the cto.new
    /// workspace does not fill up with proxy chats.
    #[arg(long, env = "UPSTREAM_CLEANUP", default_value = "false")]
    pub upstream_cleanup: String,
    /// Origins whose pages may call the client API (`/v1`) from a browser (CORS): empty (off),
    /// `*`, or comma-separated origins such as `https://chat.example.com`. Never `/admin`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Log format: pretty or json. The level comes from RUST_LOG (default info).
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty")]
    pub log_format: String,
}

/// Where thinking text goes in OpenAI answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningMode {
    /// `reasoning_content` beside `content` (DeepSeek-style; what most clients render).
    Field,
    /// `<think>...</think>` at the start of `content`.
    ThinkTags,
    /// Dropped.
    Hide,
}

/// Which store keeps conversation memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Memory,
    Embedded { dir: PathBuf },
    Redis { url: String, prefix: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub api_keys: Vec<String>,
    pub clerk_cookie: Option<String>,
    /// Every configured account (CLERK_COOKIE, CLERK_COOKIES, ACCOUNTS_FILE), deduplicated.
    pub accounts: Vec<AccountSource>,
    pub admin_key: Option<String>,
    pub pool: PoolConfig,
    pub upstream: UpstreamConfig,
    pub models: Vec<String>,
    pub default_model: String,
    /// Aliases, paid models, refresh interval and image limit (see [`crate::catalog`]).
    pub catalog: crate::catalog::CatalogSettings,
    pub reasoning: ReasoningMode,
    /// How prompts for the web agent are sized (`PROMPT_BUDGET_BYTES`, `LONG_PROMPTS`,
    /// `MAX_CONTEXT_TURNS`).
    pub prompts: crate::relay::PromptSettings,
    pub max_body_bytes: usize,
    /// Header, body and idle timeouts of client connections, and their cap.
    pub connections: crate::server::limits::ConnectionLimits,
    /// Which browser origins may call the client API (`CORS_ORIGINS`).
    pub cors: crate::server::cors::CorsOrigins,
    /// Most messages (or Responses input items) in one request.
    pub max_messages: usize,
    pub store: StoreChoice,
    pub conversation_ttl: Duration,
    pub max_conversations: usize,
    pub upstream_cleanup: bool,
    pub log_format: LogFormat,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field(
                "api_keys",
                &format_args!("<{} redacted>", self.api_keys.len()),
            )
            .field(
                "clerk_cookie",
                &self.clerk_cookie.as_ref().map(|_| "<redacted>"),
            )
            .field("accounts", &self.accounts)
            .field("admin_key", &self.admin_key.as_ref().map(|_| "<redacted>"))
            .field("pool", &self.pool)
            .field("clerk_base_url", &self.upstream.clerk_base_url)
            .field("engine_base_url", &self.upstream.engine_base_url)
            .field("protocol", &self.upstream.protocol)
            .field("upstream_proxy", &self.upstream.proxy)
            .field("models", &self.models)
            .field("default_model", &self.default_model)
            .field("catalog", &self.catalog)
            .field("reasoning", &self.reasoning)
            .field("prompts", &self.prompts)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("connections", &self.connections)
            .field("cors", &self.cors)
            .field("max_messages", &self.max_messages)
            .field("store", &self.store_label())
            .field("conversation_ttl", &self.conversation_ttl)
            .field("max_conversations", &self.max_conversations)
            .field("upstream_cleanup", &self.upstream_cleanup)
            .finish()
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

impl Config {
    /// Validates the raw settings.
    pub fn from_args(a: &ConfigArgs) -> Result<Config, ConfigError> {
        let host: IpAddr = a.host.trim().parse().map_err(|_| {
            bad(
                "HOST",
                format!(
                    "`{}` is not an IP address (e.g. 0.0.0.0 or 127.0.0.1)",
                    a.host
                ),
            )
        })?;
        let port: u16 = parse_num("PORT", &a.port)?;

        let mut api_keys = Vec::new();
        for key in a.api_master_key.iter().chain(a.api_keys.iter()) {
            for k in key.split(',').map(str::trim).filter(|k| !k.is_empty()) {
                if !api_keys.iter().any(|existing: &String| existing == k) {
                    api_keys.push(k.to_string());
                }
            }
        }

        let clerk_cookie = a
            .clerk_cookie
            .as_ref()
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty());
        let clerk_base_url = check_url("CLERK_BASE_URL", &a.clerk_base_url)?;
        let engine_base_url = check_url("ENGINE_BASE_URL", &a.engine_base_url)?;
        let mut upstream = UpstreamConfig::with_urls(&clerk_base_url, &engine_base_url);
        upstream.protocol = match a.upstream_protocol.trim().to_ascii_lowercase().as_str() {
            "auto" => ProtocolChoice::Auto,
            "gen1" => ProtocolChoice::Gen1,
            "gen2" => ProtocolChoice::Gen2,
            other => {
                return Err(bad(
                    "UPSTREAM_PROTOCOL",
                    format!("`{other}` is not one of auto, gen1, gen2"),
                ));
            }
        };
        upstream.proxy = match a.upstream_proxy.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(v) => Some(
                crate::upstream::transport::UpstreamProxy::parse(v)
                    .map_err(|m| bad("UPSTREAM_PROXY", m))?,
            ),
        };
        upstream.allow_private_image_urls =
            parse_bool("ALLOW_PRIVATE_IMAGE_URLS", &a.allow_private_image_urls)?;
        if let Some(ua) = a
            .cli_user_agent
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            upstream.cli_user_agent = ua.to_string();
        }
        let timeout: u64 = parse_num("REQUEST_TIMEOUT_SECS", &a.request_timeout_secs)?;
        if timeout == 0 {
            return Err(bad("REQUEST_TIMEOUT_SECS", "must be at least 1"));
        }
        upstream.request_timeout = Duration::from_secs(timeout);
        let idle: u64 = parse_num("STREAM_IDLE_TIMEOUT_SECS", &a.stream_idle_timeout_secs)?;
        if idle == 0 {
            return Err(bad("STREAM_IDLE_TIMEOUT_SECS", "must be at least 1"));
        }
        upstream.idle_timeout = Duration::from_secs(idle);

        let models: Vec<String> = a
            .models
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect();
        if models.is_empty() {
            return Err(bad("MODELS", "must name at least one model"));
        }
        let default_model = match a
            .default_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
        {
            Some(m) => {
                if !models.iter().any(|x| x == m) {
                    return Err(bad(
                        "DEFAULT_MODEL",
                        format!("`{m}` is not in MODELS ({})", models.join(",")),
                    ));
                }
                m.to_string()
            }
            None => models[0].clone(),
        };
        let reasoning = match a.reasoning.trim().to_ascii_lowercase().as_str() {
            "field" => ReasoningMode::Field,
            "think-tags" | "think_tags" | "think" => ReasoningMode::ThinkTags,
            "hide" | "none" => ReasoningMode::Hide,
            other => {
                return Err(bad(
                    "REASONING",
                    format!("`{other}` is not one of field, think-tags, hide"),
                ));
            }
        };
        let prompts = prompt_settings(a)?;
        let max_body_bytes: usize = parse_num("MAX_BODY_BYTES", &a.max_body_bytes)?;
        if max_body_bytes < 1024 {
            return Err(bad("MAX_BODY_BYTES", "must be at least 1024"));
        }
        let max_messages: usize = parse_num("MAX_MESSAGES", &a.max_messages)?;
        if max_messages == 0 {
            return Err(bad("MAX_MESSAGES", "must be at least 1"));
        }
        let redis_url = a
            .redis_url
            .as_ref()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty());
        let store = match a
            .store
            .as_deref()
            .map(|s| s.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("") => match redis_url {
                Some(url) => StoreChoice::Redis {
                    url,
                    prefix: a.redis_prefix.clone(),
                },
                None => StoreChoice::Embedded {
                    dir: a.data_dir.clone(),
                },
            },
            Some("memory") => StoreChoice::Memory,
            Some("embedded") => StoreChoice::Embedded {
                dir: a.data_dir.clone(),
            },
            Some("redis") => match redis_url {
                Some(url) => StoreChoice::Redis {
                    url,
                    prefix: a.redis_prefix.clone(),
                },
                None => return Err(bad("STORE", "`redis` needs REDIS_URL")),
            },
            Some(other) => {
                return Err(bad(
                    "STORE",
                    format!("`{other}` is not one of embedded, redis, memory"),
                ));
            }
        };
        if let StoreChoice::Redis { url, .. } = &store
            && !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("unix://"))
        {
            return Err(bad(
                "REDIS_URL",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        let conversation_ttl = parse_duration("CONVERSATION_TTL", &a.conversation_ttl)?;
        let max_conversations: usize = parse_num("MAX_CONVERSATIONS", &a.max_conversations)?;
        if max_conversations == 0 {
            return Err(bad("MAX_CONVERSATIONS", "must be at least 1"));
        }
        let upstream_cleanup = parse_bool("UPSTREAM_CLEANUP", &a.upstream_cleanup)?;
        let log_format = match a.log_format.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => {
                return Err(bad(
                    "LOG_FORMAT",
                    format!("`{other}` is not one of pretty, json"),
                ));
            }
        };

        let accounts = account_sources(a, clerk_cookie.as_deref())?;
        let admin_key = a
            .admin_key
            .as_ref()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        if let Some(k) = &admin_key
            && k.chars().count() < MIN_ADMIN_KEY_CHARS
        {
            return Err(bad(
                "ADMIN_KEY",
                format!(
                    "must be at least {MIN_ADMIN_KEY_CHARS} characters (it is the password of the admin page and API); e.g. `openssl rand -hex 16`"
                ),
            ));
        }
        if let Some(k) = &admin_key
            && api_keys.iter().any(|c| c == k)
        {
            return Err(bad(
                "ADMIN_KEY",
                "must differ from every client key (API_MASTER_KEY, API_KEYS)",
            ));
        }
        let pool = pool_config(a, &upstream)?;

        Ok(Config {
            listen: SocketAddr::new(host, port),
            api_keys,
            clerk_cookie,
            accounts,
            admin_key,
            pool,
            upstream,
            models,
            default_model,
            catalog: crate::catalog::CatalogSettings::from_args(a)?,
            reasoning,
            prompts,
            max_body_bytes,
            connections: crate::server::limits::ConnectionLimits::from_args(a)?,
            cors: crate::server::cors::CorsOrigins::parse(&a.cors_origins)?,
            max_messages,
            store,
            conversation_ttl,
            max_conversations,
            upstream_cleanup,
            log_format,
        })
    }

    /// A short description of the store for logs (no secrets: the Redis URL may hold a password).
    /// The store to open for this choice (`serve` and `doctor` open the same one).
    pub fn store_kind(&self) -> crate::store::StoreKind {
        use crate::store::StoreKind;
        match &self.store {
            StoreChoice::Memory => StoreKind::Memory,
            StoreChoice::Embedded { dir } => StoreKind::Embedded {
                path: dir.join("enginelabs-2api.redb"),
            },
            StoreChoice::Redis { url, prefix } => StoreKind::Redis {
                url: url.clone(),
                prefix: prefix.clone(),
            },
        }
    }

    pub fn store_label(&self) -> String {
        match &self.store {
            StoreChoice::Memory => "memory".to_string(),
            StoreChoice::Embedded { dir } => format!("embedded ({})", dir.display()),
            StoreChoice::Redis { .. } => "redis".to_string(),
        }
    }
}

/// `PROMPT_BUDGET_BYTES`, `LONG_PROMPTS`, `MAX_CONTEXT_TURNS`.
fn prompt_settings(a: &ConfigArgs) -> Result<crate::relay::PromptSettings, ConfigError> {
    use crate::relay::LongPrompts;
    let budget: usize = parse_num("PROMPT_BUDGET_BYTES", &a.prompt_budget_bytes)?;
    if budget < 2000 {
        return Err(bad("PROMPT_BUDGET_BYTES", "must be at least 2000"));
    }
    let long_prompts = match a.long_prompts.trim().to_ascii_lowercase().as_str() {
        "context-turns" | "context_turns" | "split" => LongPrompts::ContextTurns,
        "reject" => LongPrompts::Reject,
        other => {
            return Err(bad(
                "LONG_PROMPTS",
                format!("`{other}` is not one of context-turns, reject"),
            ));
        }
    };
    Ok(crate::relay::PromptSettings {
        budget,
        long_prompts,
        max_context_turns: parse_num("MAX_CONTEXT_TURNS", &a.max_context_turns)?,
    })
}

pub(crate) fn parse_num<T: std::str::FromStr>(
    setting: &'static str,
    value: &str,
) -> Result<T, ConfigError> {
    value.trim().parse().map_err(|_| {
        bad(
            setting,
            format!("`{value}` is not a valid non-negative number"),
        )
    })
}

fn parse_bool(setting: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(bad(setting, format!("`{other}` is not true or false"))),
    }
}

fn check_url(setting: &'static str, value: &str) -> Result<String, ConfigError> {
    let v = value.trim();
    let parsed =
        url::Url::parse(v).map_err(|e| bad(setting, format!("`{v}` is not a URL ({e})")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad(
            setting,
            format!("`{v}` must be an http:// or https:// URL with a host"),
        ));
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// `90`, `90s`, `30m`, `12h`, `7d`.
pub fn parse_duration(setting: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let v = value.trim();
    let (num, mult) = match v.char_indices().last() {
        Some((i, 's')) => (&v[..i], 1),
        Some((i, 'm')) => (&v[..i], 60),
        Some((i, 'h')) => (&v[..i], 3600),
        Some((i, 'd')) => (&v[..i], 86_400),
        _ => (v, 1),
    };
    let n: u64 = num.trim().parse().map_err(|_| {
        bad(
            setting,
            format!("`{v}` is not a duration (e.g. 3600, 90s, 30m, 12h, 7d)"),
        )
    })?;
    if n == 0 {
        return Err(bad(setting, "must be more than zero"));
    }
    Ok(Duration::from_secs(n.saturating_mul(mult)))
}

/// Settings parsed from these flags (and the environment), for unit tests of any module.
#[cfg(test)]
pub(crate) fn test_args(extra: &[&str]) -> ConfigArgs {
    use clap::Parser;
    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ConfigArgs,
    }
    let mut v = vec!["t"];
    v.extend_from_slice(extra);
    T::parse_from(v).a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> ConfigArgs {
        test_args(extra)
    }

    #[test]
    fn defaults_validate() {
        let c = Config::from_args(&args(&["--store", "memory"])).expect("valid");
        assert_eq!(c.listen.port(), 8089);
        assert_eq!(c.default_model, "ClaudeSonnet4_5");
        assert_eq!(c.upstream.ws_base_url, "wss://api.enginelabs.ai");
        assert!(c.api_keys.is_empty());
    }

    #[test]
    fn errors_name_the_setting() {
        let e = Config::from_args(&args(&["--port", "99999"])).expect_err("bad port");
        assert_eq!(e.setting, "PORT");
        let e = Config::from_args(&args(&["--upstream-protocol", "gen3"])).expect_err("bad proto");
        assert_eq!(e.setting, "UPSTREAM_PROTOCOL");
        let e = Config::from_args(&args(&["--engine-base-url", "ftp://x"])).expect_err("bad url");
        assert_eq!(e.setting, "ENGINE_BASE_URL");
        let e = Config::from_args(&args(&["--reasoning", "loud"])).expect_err("bad reasoning");
        assert_eq!(e.setting, "REASONING");
        let e = Config::from_args(&args(&["--default-model", "nope"])).expect_err("bad model");
        assert_eq!(e.setting, "DEFAULT_MODEL");
        let e = Config::from_args(&args(&["--upstream-proxy", "socks5://u:pw@h:1"]))
            .expect_err("bad proxy");
        assert_eq!(e.setting, "UPSTREAM_PROXY");
        assert!(!e.to_string().contains("pw"), "{e}");
    }

    #[test]
    fn the_upstream_proxy_is_parsed_and_its_password_never_shown() {
        let c = Config::from_args(&args(&[
            "--store",
            "memory",
            "--upstream-proxy",
            "http://me:hunter2@10.0.0.1:7890",
        ]))
        .expect("valid");
        let proxy = c.upstream.proxy.as_ref().expect("proxy set");
        assert_eq!(proxy.address(), "10.0.0.1:7890");
        let shown = format!("{c:?}");
        assert!(
            shown.contains("http://10.0.0.1:7890 (with credentials)"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let c = Config::from_args(&args(&["--store", "memory", "--upstream-proxy", ""]))
            .expect("empty means none");
        assert!(c.upstream.proxy.is_none());
    }

    #[test]
    fn keys_merge_and_debug_redacts() {
        let c = Config::from_args(&args(&[
            "--api-master-key",
            "k1",
            "--api-keys",
            "k2, k1 ,k3",
            "--clerk-cookie",
            "__client=sekrit",
        ]))
        .expect("valid");
        assert_eq!(c.api_keys, vec!["k1", "k2", "k3"]);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sekrit") && !dbg.contains("k2"), "{dbg}");
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("X", "7d").ok(),
            Some(Duration::from_secs(604_800))
        );
        assert_eq!(
            parse_duration("X", "90").ok(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_duration("X", "30m").ok(),
            Some(Duration::from_secs(1800))
        );
        assert!(parse_duration("X", "soon").is_err());
    }
}
