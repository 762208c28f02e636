//! [`ConfigArgs`]: every setting as clap reads it from a flag or the environment, each parsed
//! into its type by a parser of [`super::values`], so a bad value is refused by clap with the
//! setting's name (`invalid value '99999' for '--port <PORT>'`). What needs two settings at
//! once is checked afterwards, in [`super::Config::from_args`].
//!
//! [`ConfigArgs::from_pairs`] builds the settings the way the binary does, from
//! `("NAME", "value")` pairs, for tests and embedders.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use super::values::{self, LogFormat, ReasoningMode, StoreArg};
use crate::relay::LongPrompts;
use crate::upstream::ProtocolChoice;
use crate::upstream::cli::credentials::Secret;

/// An optional count whose empty value means "not set" (a type alias, so that clap takes the
/// `Option` inside as the parsed value rather than as "the flag may be left out").
pub type MaybeCount = Option<usize>;

/// The raw settings as clap reads them (flags and environment).
#[derive(Args, Clone, Debug)]
pub struct ConfigArgs {
    /// Client API key (the seed's name). Clients send it as `Authorization: Bearer <key>`.
    #[arg(long, env = "API_MASTER_KEY", hide_env_values = true, value_parser = values::secret)]
    pub api_master_key: Option<Secret>,
    /// More client API keys, comma-separated. Without any key the server is open (warned about).
    #[arg(long, env = "API_KEYS", hide_env_values = true, value_parser = values::secret)]
    pub api_keys: Option<Secret>,
    /// The cookie of a logged-in cto.new browser session: the whole `Cookie:` header or the bare
    /// `__client` value.
    #[arg(long, env = "CLERK_COOKIE", hide_env_values = true, value_parser = values::secret)]
    pub clerk_cookie: Option<Secret>,
    /// More cto.new accounts: one cookie per line, or cookies separated by `|||`. Labels are
    /// `cookie-1`, `cookie-2`, ... in the order given.
    #[arg(long, env = "CLERK_COOKIES", hide_env_values = true, value_parser = values::secret)]
    pub clerk_cookies: Option<Secret>,
    /// A file of accounts: one per line as `label = cookie` or a bare cookie, or `[[account]]`
    /// blocks with `label = "..."` and `cookie = "..."` or `refresh_token = "..."`. `#` starts a
    /// comment.
    #[arg(long, env = "ACCOUNTS_FILE")]
    pub accounts_file: Option<PathBuf>,
    /// `cto login` accounts (the CLI door): refresh tokens, separated by newlines, commas or
    /// `|||`. Labels are `cli-1`, `cli-2`, ...
    #[arg(long, env = "CTO_REFRESH_TOKEN", hide_env_values = true, value_parser = values::secret)]
    pub cto_refresh_token: Option<Secret>,
    /// The credentials file `cto login` writes (JSON with `refreshToken`). Default:
    /// `~/.cto/credentials` when it exists; `none` to ignore it.
    #[arg(long, env = "CTO_CREDENTIALS_FILE")]
    pub cto_credentials_file: Option<String>,
    /// Turns at once per `cto login` account (default 2, lowered when the CLI API answers 429).
    #[arg(long, env = "CLI_CONCURRENCY", value_parser = values::optional_count)]
    pub cli_concurrency: Option<MaybeCount>,
    /// User-Agent of requests to the CLI API (default: the opencode agent string `cto` sends).
    #[arg(long, env = "CLI_USER_AGENT")]
    pub cli_user_agent: Option<String>,
    /// Key of the admin API (`/admin/api`), sent as `Authorization: Bearer <key>`. Distinct from
    /// the client keys; without it the admin API is off.
    #[arg(long, env = "ADMIN_KEY", hide_env_values = true, value_parser = values::secret)]
    pub admin_key: Option<Secret>,
    /// Turns one account runs at once. Default: what `/billing` says (`taskConcurrencyLimit`),
    /// else 2. Setting it overrides `/billing`.
    #[arg(long, env = "ACCOUNT_CONCURRENCY", value_parser = values::optional_count)]
    pub account_concurrency: Option<MaybeCount>,
    /// How long a request waits for a free account slot before answering 429, in seconds.
    #[arg(
        long,
        env = "QUEUE_TIMEOUT_SECS",
        default_value = "30",
        value_parser = values::any_seconds,
    )]
    pub queue_timeout_secs: Duration,
    /// Most requests waiting for a slot; beyond it requests get 429 at once.
    #[arg(long, env = "MAX_QUEUE", default_value = "1000", value_parser = values::number::<usize>)]
    pub max_queue: usize,
    /// How long a rate-limited account rests when the upstream gives no Retry-After.
    #[arg(long, env = "ACCOUNT_COOLDOWN", default_value = "60s", value_parser = values::duration)]
    pub account_cooldown: Duration,
    /// How often an account whose cookie was rejected is tried again.
    #[arg(
        long,
        env = "DEAD_RECHECK_INTERVAL",
        default_value = "10m",
        value_parser = values::duration,
    )]
    pub dead_recheck_interval: Duration,
    /// How often each account's quota (`/billing`) is read.
    #[arg(
        long,
        env = "QUOTA_CHECK_INTERVAL",
        default_value = "5m",
        value_parser = values::duration,
    )]
    pub quota_check_interval: Duration,
    /// Attempts to start a turn (retries with backoff on network errors, 5xx and 429).
    #[arg(long, env = "RETRY_ATTEMPTS", default_value = "3", value_parser = values::at_least_one)]
    pub retry_attempts: u32,
    /// Consecutive failures that open an account's circuit breaker (it then gets no traffic).
    #[arg(long, env = "BREAKER_FAILURES", default_value = "5", value_parser = values::at_least_one)]
    pub breaker_failures: u32,
    /// How long an open breaker keeps an account out before letting one trial request through.
    #[arg(long, env = "BREAKER_OPEN", default_value = "30s", value_parser = values::duration)]
    pub breaker_open: Duration,
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value = "0.0.0.0", value_parser = values::ip)]
    pub host: IpAddr,
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value = "8089", value_parser = values::port)]
    pub port: u16,
    /// Clerk Frontend API base URL.
    #[arg(
        long,
        env = "CLERK_BASE_URL",
        default_value = "https://clerk.cto.new",
        value_parser = values::http_url,
    )]
    pub clerk_base_url: String,
    /// EngineLabs API base URL; the WebSocket URL is derived from it (http->ws, https->wss).
    #[arg(
        long,
        env = "ENGINE_BASE_URL",
        default_value = "https://api.enginelabs.ai",
        value_parser = values::http_url,
    )]
    pub engine_base_url: String,
    /// HTTP proxy for every call to cto.new, WebSocket included: `http://[user:pass@]host:port`.
    /// Environment proxies (HTTPS_PROXY ...) are not used.
    #[arg(long, env = "UPSTREAM_PROXY", hide_env_values = true, value_parser = values::secret)]
    pub upstream_proxy: Option<Secret>,
    /// Let clients' image URLs point at private, loopback or link-local addresses (off: the
    /// proxy downloads images only from the public internet).
    #[arg(
        long,
        env = "ALLOW_PRIVATE_IMAGE_URLS",
        default_value = "false",
        value_parser = values::boolean,
        action = clap::ArgAction::Set,
    )]
    pub allow_private_image_urls: bool,
    /// Upstream protocol generation: auto (Gen-2, falling back to Gen-1), gen1 or gen2.
    #[arg(long, env = "UPSTREAM_PROTOCOL", default_value = "auto", value_parser = values::protocol)]
    pub upstream_protocol: ProtocolChoice,
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
    #[arg(
        long,
        env = "INCLUDE_PAID_MODELS",
        default_value = "false",
        value_parser = values::boolean,
        action = clap::ArgAction::Set,
    )]
    pub include_paid_models: bool,
    /// How often the live model list (`GET /chat/adapters`) is fetched again.
    #[arg(long, env = "MODEL_REFRESH", default_value = "10m", value_parser = values::duration)]
    pub model_refresh: Duration,
    /// Largest image accepted in a request, in bytes (decoded).
    #[arg(
        long,
        env = "MAX_IMAGE_BYTES",
        default_value = "5242880",
        value_parser = values::at_least::<1>,
    )]
    pub max_image_bytes: usize,
    /// Deadline in seconds for each upstream HTTP call and the WebSocket handshake.
    #[arg(long, env = "REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = values::seconds)]
    pub request_timeout_secs: Duration,
    /// A turn is abandoned when the upstream stream sends nothing for this many seconds.
    #[arg(
        long,
        env = "STREAM_IDLE_TIMEOUT_SECS",
        default_value = "120",
        value_parser = values::seconds,
    )]
    pub stream_idle_timeout_secs: Duration,
    /// Where reasoning goes: field (`reasoning_content`), think-tags (`<think>` in content), hide.
    #[arg(long, env = "REASONING", default_value = "field", value_parser = values::reasoning)]
    pub reasoning: ReasoningMode,
    /// Largest accepted request body in bytes (larger: 413).
    #[arg(
        long,
        env = "MAX_BODY_BYTES",
        default_value = "4194304",
        value_parser = values::at_least::<1024>,
    )]
    pub max_body_bytes: usize,
    /// Most messages (Responses: input items) in one request (more: 400).
    #[arg(
        long,
        env = "MAX_MESSAGES",
        default_value = "10000",
        value_parser = values::at_least::<1>,
    )]
    pub max_messages: usize,
    /// Most bytes of one prompt sent to the web agent (cto.new refuses about 20 KB and more).
    #[arg(
        long,
        env = "PROMPT_BUDGET_BYTES",
        default_value = "18000",
        value_parser = values::at_least::<2000>,
    )]
    pub prompt_budget_bytes: usize,
    /// A transcript over the budget: context-turns (send its start as context turns in the
    /// same upstream chat; each costs credits) or reject (413 that explains the limit).
    #[arg(
        long,
        env = "LONG_PROMPTS",
        default_value = "context-turns",
        value_parser = values::long_prompts,
    )]
    pub long_prompts: LongPrompts,
    /// Most context turns one request may cost.
    #[arg(
        long,
        env = "MAX_CONTEXT_TURNS",
        default_value = "8",
        value_parser = values::number::<usize>,
    )]
    pub max_context_turns: usize,
    /// Seconds a client connection has to send a request's complete headers, counted from its
    /// accept or from the end of the previous response: bounds slow and silent clients, and
    /// closes kept-alive connections left idle this long.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT_SECS",
        default_value = "30",
        value_parser = values::seconds,
    )]
    pub header_read_timeout_secs: Duration,
    /// Seconds a client has to send a request's whole body, counted from the end of its headers
    /// (slower: 408).
    #[arg(
        long,
        env = "REQUEST_BODY_TIMEOUT_SECS",
        default_value = "60",
        value_parser = values::seconds,
    )]
    pub request_body_timeout_secs: Duration,
    /// Most client connections open at once; beyond it a connection gets a short 503 and is
    /// closed. Lowered at start when the open-file limit has no room for it.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        default_value = "4096",
        value_parser = values::at_least::<1>,
    )]
    pub max_connections: usize,
    /// Conversation store: embedded (a file under DATA_DIR), redis (needs REDIS_URL) or memory.
    /// Default: redis when REDIS_URL is set, else embedded.
    #[arg(long, env = "STORE", value_parser = values::store)]
    pub store: Option<StoreArg>,
    /// Directory of the embedded store.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Redis URL for a store shared between replicas, e.g. redis://127.0.0.1:6379/0.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = values::secret)]
    pub redis_url: Option<Secret>,
    /// Key prefix in Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "el2a")]
    pub redis_prefix: String,
    /// Forget a conversation after this much disuse: seconds, or with a unit (90s, 30m, 12h, 7d).
    #[arg(long, env = "CONVERSATION_TTL", default_value = "7d", value_parser = values::duration)]
    pub conversation_ttl: Duration,
    /// Most conversations remembered; the least recently used are forgotten first.
    #[arg(
        long,
        env = "MAX_CONVERSATIONS",
        default_value = "100000",
        value_parser = values::at_least::<1>,
    )]
    pub max_conversations: usize,
    /// Delete the upstream chat history when its conversation mapping expires, so the cto.new
    /// workspace does not fill up with proxy chats.
    #[arg(
        long,
        env = "UPSTREAM_CLEANUP",
        default_value = "false",
        value_parser = values::boolean,
        action = clap::ArgAction::Set,
    )]
    pub upstream_cleanup: bool,
    /// Origins whose pages may call the client API (`/v1`) from a browser (CORS): empty (off),
    /// `*`, or comma-separated origins such as `https://chat.example.com`. Never `/admin`.
    #[arg(long, env = "CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Seconds that running requests (streams) may take to finish after SIGTERM/Ctrl-C before
    /// the process exits anyway (`0`: stop at once).
    #[arg(
        long,
        env = "SHUTDOWN_GRACE_SECS",
        default_value = "30",
        value_parser = values::grace
    )]
    pub shutdown_grace_secs: Duration,
    /// Log format: pretty or json. The level comes from RUST_LOG (default info).
    #[arg(long, env = "LOG_FORMAT", default_value = "pretty", value_parser = values::log_format)]
    pub log_format: LogFormat,
}

impl ConfigArgs {
    /// The settings from `--flag value` arguments (and, for the rest, the environment and the
    /// defaults), as `enginelabs-2api serve` would read them.
    pub fn from_flags<I, S>(flags: I) -> Result<ConfigArgs, clap::Error>
    where
        I: IntoIterator<Item = S>,
        S: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Wrap {
            #[command(flatten)]
            args: ConfigArgs,
        }
        let argv = std::iter::once(std::ffi::OsString::from("enginelabs-2api"))
            .chain(flags.into_iter().map(Into::into));
        Wrap::try_parse_from(argv).map(|w| w.args)
    }

    /// The settings from `("NAME", "value")` pairs named like the environment variables
    /// (`("STORE", "memory")`), parsed exactly as the binary parses its environment; settings
    /// not given keep their defaults (or the process environment's value).
    ///
    /// ```
    /// use enginelabs_2api::config::{Config, ConfigArgs};
    /// let args = ConfigArgs::from_pairs(&[("STORE", "memory"), ("PORT", "0")]).expect("valid");
    /// let config = Config::from_args(&args).expect("valid");
    /// assert_eq!(config.listen.port(), 0);
    /// assert!(ConfigArgs::from_pairs(&[("PORT", "99999")]).is_err());
    /// ```
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Result<ConfigArgs, clap::Error> {
        let flags = pairs.iter().map(|(name, value)| {
            format!("--{}={value}", name.to_ascii_lowercase().replace('_', "-"))
        });
        Self::from_flags(flags)
    }
}
