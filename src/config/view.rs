//! The one redacted view of the settings: every setting by its variable name with the value in
//! force (defaults filled in, lists cleaned), secrets shown only as `<redacted>`. `Debug` of
//! [`super::Config`], the start-up log and the admin settings page all print this list, so a
//! setting added to [`super::ConfigArgs`] is shown everywhere once it is added here (a test
//! checks that none is missing).

use std::fmt::Display;
use std::time::Duration;

use super::{Config, ConfigArgs, CorsOrigins, Secret};

/// How a secret setting is shown.
pub const REDACTED: &str = "<redacted>";
/// How a setting left unset is shown.
pub const UNSET: &str = "(unset)";

fn secret(s: Option<&Secret>) -> String {
    match s {
        Some(s) if !s.expose().trim().is_empty() => REDACTED.into(),
        _ => UNSET.into(),
    }
}

fn opt<T: Display>(v: Option<T>) -> String {
    v.map_or_else(|| UNSET.into(), |v| v.to_string())
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The list: listener, keys, accounts, pool, upstream, models, requests, connections, store, logs.
pub(super) fn shown(a: &ConfigArgs, c: &Config) -> Vec<(&'static str, String)> {
    let p = &c.pool;
    let u = &c.upstream;
    let cat = &c.catalog;
    let path = |p: &Option<std::path::PathBuf>| opt(p.as_ref().map(|p| p.display()));
    vec![
        ("HOST", c.listen.ip().to_string()),
        ("PORT", c.listen.port().to_string()),
        ("API_MASTER_KEY", secret(a.api_master_key.as_ref())),
        ("API_KEYS", secret(a.api_keys.as_ref())),
        ("ADMIN_KEY", secret(c.admin_key.as_ref())),
        ("CLERK_COOKIE", secret(c.clerk_cookie.as_ref())),
        ("CLERK_COOKIES", secret(a.clerk_cookies.as_ref())),
        ("ACCOUNTS_FILE", path(&a.accounts_file)),
        ("CTO_REFRESH_TOKEN", secret(a.cto_refresh_token.as_ref())),
        ("CTO_CREDENTIALS_FILE", opt(a.cto_credentials_file.as_ref())),
        ("CLI_CONCURRENCY", opt(p.cli_concurrency)),
        ("CLI_USER_AGENT", u.cli_user_agent.clone()),
        ("ACCOUNT_CONCURRENCY", opt(p.concurrency)),
        ("QUEUE_TIMEOUT_SECS", secs(p.queue_timeout)),
        ("MAX_QUEUE", p.max_queue.to_string()),
        ("ACCOUNT_COOLDOWN", secs(p.cooldown)),
        ("DEAD_RECHECK_INTERVAL", secs(p.dead_recheck)),
        ("QUOTA_CHECK_INTERVAL", secs(p.quota_check)),
        ("RETRY_ATTEMPTS", p.attempts.to_string()),
        ("BREAKER_FAILURES", p.breaker.failures.to_string()),
        ("BREAKER_OPEN", secs(p.breaker.open_for)),
        ("CLERK_BASE_URL", u.clerk_base_url.clone()),
        ("ENGINE_BASE_URL", u.engine_base_url.clone()),
        // Display leaves the proxy's credentials out.
        ("UPSTREAM_PROXY", opt(u.proxy.as_ref())),
        (
            "ALLOW_PRIVATE_IMAGE_URLS",
            u.allow_private_image_urls.to_string(),
        ),
        (
            "UPSTREAM_PROTOCOL",
            format!("{:?}", u.protocol).to_lowercase(),
        ),
        ("REQUEST_TIMEOUT_SECS", secs(u.request_timeout)),
        ("STREAM_IDLE_TIMEOUT_SECS", secs(u.idle_timeout)),
        ("MODELS", cat.models.join(",")),
        ("DEFAULT_MODEL", cat.default_model.clone()),
        (
            "MODEL_ALIASES",
            cat.aliases
                .iter()
                .map(|(a, t)| format!("{a}={t}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("INCLUDE_PAID_MODELS", cat.include_paid.to_string()),
        ("MODEL_REFRESH", secs(cat.refresh)),
        ("MAX_IMAGE_BYTES", cat.max_image_bytes.to_string()),
        ("REASONING", format!("{:?}", c.reasoning)),
        ("MAX_BODY_BYTES", c.max_body_bytes.to_string()),
        ("MAX_MESSAGES", c.max_messages.to_string()),
        ("PROMPT_BUDGET_BYTES", c.prompts.budget.to_string()),
        ("LONG_PROMPTS", format!("{:?}", c.prompts.long_prompts)),
        ("MAX_CONTEXT_TURNS", c.prompts.max_context_turns.to_string()),
        (
            "HEADER_READ_TIMEOUT_SECS",
            secs(c.connections.header_read_timeout),
        ),
        (
            "REQUEST_BODY_TIMEOUT_SECS",
            secs(c.connections.request_body_timeout),
        ),
        ("MAX_CONNECTIONS", c.connections.max_connections.to_string()),
        ("CORS_ORIGINS", cors(&c.cors)),
        ("STORE", c.store_label()),
        ("DATA_DIR", a.data_dir.display().to_string()),
        ("REDIS_URL", secret(a.redis_url.as_ref())),
        ("REDIS_PREFIX", a.redis_prefix.clone()),
        ("CONVERSATION_TTL", secs(c.conversation_ttl)),
        ("MAX_CONVERSATIONS", c.max_conversations.to_string()),
        ("UPSTREAM_CLEANUP", c.upstream_cleanup.to_string()),
        ("SHUTDOWN_GRACE_SECS", secs(c.shutdown_grace)),
        ("LOG_FORMAT", format!("{:?}", c.log_format)),
    ]
}

fn cors(c: &CorsOrigins) -> String {
    match c {
        CorsOrigins::Off => UNSET.into(),
        CorsOrigins::Any => "*".into(),
        CorsOrigins::List(list) => list
            .iter()
            .filter_map(|o| o.to_str().ok())
            .collect::<Vec<_>>()
            .join(","),
    }
}
