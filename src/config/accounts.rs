//! The account pool's settings: where accounts come from (CLERK_COOKIE, CLERK_COOKIES,
//! CTO_REFRESH_TOKEN, CTO_CREDENTIALS_FILE, ACCOUNTS_FILE) and the scheduling, health and retry
//! knobs, built into the pool's own [`PoolConfig`]. Errors name the setting.

use std::path::PathBuf;

use super::{ConfigArgs, ConfigError, bad};
use crate::pool::sources::{self, AccountSource};
use crate::pool::{Backoff, BreakerConfig, PoolConfig};
use crate::upstream::UpstreamConfig;
use crate::upstream::cli::credentials::Secret;

/// CLERK_COOKIE (label `default`), then CLERK_COOKIES, then CTO_REFRESH_TOKEN, then
/// CTO_CREDENTIALS_FILE (default `~/.cto/credentials` when it exists), then ACCOUNTS_FILE; a
/// secret given twice is kept once (its first label wins).
pub(super) fn account_sources(
    a: &ConfigArgs,
    clerk_cookie: Option<&Secret>,
) -> Result<Vec<AccountSource>, ConfigError> {
    let mut out = Vec::new();
    if let Some(c) = clerk_cookie {
        out.push(AccountSource::new("default", c.expose()));
    }
    if let Some(list) = &a.clerk_cookies {
        out.extend(sources::parse_cookie_list(list.expose()));
    }
    if let Some(list) = &a.cto_refresh_token {
        out.extend(sources::parse_refresh_tokens(list.expose()));
    }
    if let Some(path) = credentials_file(a) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            bad(
                "CTO_CREDENTIALS_FILE",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        crate::upstream::cli::Credentials::parse(&text)
            .map_err(|e| bad("CTO_CREDENTIALS_FILE", e.to_string()))?;
        out.push(AccountSource::cli("cto-login", &text));
    }
    if let Some(path) = &a.accounts_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            bad(
                "ACCOUNTS_FILE",
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        out.extend(sources::parse_accounts_file(&text).map_err(|e| bad("ACCOUNTS_FILE", e))?);
    }
    Ok(sources::dedup(out))
}

/// `CTO_CREDENTIALS_FILE`: the path given (`none`: no file), else `~/.cto/credentials` when it
/// exists.
fn credentials_file(a: &ConfigArgs) -> Option<PathBuf> {
    match a.cto_credentials_file.as_deref().map(str::trim) {
        Some("none" | "") => None,
        Some(p) => Some(p.into()),
        None => {
            let home = std::env::var_os("HOME")?;
            let p = std::path::Path::new(&home).join(".cto").join("credentials");
            p.is_file().then_some(p)
        }
    }
}

/// The scheduling, health and retry settings of the account pool (each already parsed by clap).
pub(super) fn pool_config(a: &ConfigArgs, upstream: &UpstreamConfig) -> PoolConfig {
    PoolConfig {
        concurrency: a.account_concurrency.flatten(),
        cli_concurrency: a.cli_concurrency.flatten(),
        queue_timeout: a.queue_timeout_secs,
        max_queue: a.max_queue,
        cooldown: a.account_cooldown,
        dead_recheck: a.dead_recheck_interval,
        quota_check: a.quota_check_interval,
        attempts: a.retry_attempts,
        deadline: upstream.request_timeout,
        backoff: Backoff::default(),
        breaker: BreakerConfig {
            failures: a.breaker_failures,
            open_for: a.breaker_open,
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, ConfigArgs};

    fn args(extra: &[&str]) -> ConfigArgs {
        ConfigArgs::from_flags(extra).expect("flags parse")
    }

    #[test]
    fn pool_settings() {
        let c = Config::from_args(&args(&["--store", "memory"])).expect("valid");
        assert_eq!(c.pool.concurrency, None);
        assert_eq!(c.pool.queue_timeout, Duration::from_secs(30));
        assert_eq!(c.pool.max_queue, 1000);
        assert_eq!(c.pool.dead_recheck, Duration::from_secs(600));
        assert!(c.accounts.is_empty() && c.admin_key.is_none());
        let c = Config::from_args(&args(&[
            "--clerk-cookie",
            "__client=a",
            "--clerk-cookies",
            "__client=b|||__client=a",
            "--admin-key",
            "adm-key-0123",
            "--account-concurrency",
            "3",
        ]))
        .expect("valid");
        let labels: Vec<_> = c.accounts.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["default", "cookie-1"]);
        assert_eq!(c.pool.concurrency, Some(3));
        assert!(!format!("{c:?}").contains("adm-key-0123"));
        let c = Config::from_args(&args(&["--account-concurrency="])).expect("empty is unset");
        assert_eq!(c.pool.concurrency, None);
        let e = ConfigArgs::from_flags(["--account-concurrency", "0"]).expect_err("zero");
        assert!(e.to_string().contains("ACCOUNT_CONCURRENCY"), "{e}");
        let e = Config::from_args(&args(&["--api-master-key", "k", "--admin-key", "k"]))
            .expect_err("same key");
        assert_eq!(e.setting, "ADMIN_KEY");
        let e = Config::from_args(&args(&["--accounts-file", "/nonexistent/accounts"]))
            .expect_err("missing file");
        assert_eq!(e.setting, "ACCOUNTS_FILE");
        let e = ConfigArgs::from_flags(["--breaker-open", "soon"]).expect_err("bad");
        assert!(e.to_string().contains("BREAKER_OPEN"), "{e}");
    }
}
