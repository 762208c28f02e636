//! The account pool's settings as `Config::from_args` validates them (the flags and variables
//! themselves are declared with the others in `config.rs`): where accounts come from, and the
//! scheduling, health and retry knobs. Errors name the setting, like every config error.

use std::time::Duration;

use crate::config::{ConfigArgs, ConfigError, bad, parse_duration, parse_num};
use crate::pool::sources::{self, AccountSource};
use crate::pool::{Backoff, BreakerConfig, PoolConfig};
use crate::upstream::UpstreamConfig;

/// CLERK_COOKIE (label `default`), then CLERK_COOKIES, then CTO_REFRESH_TOKEN, then
/// CTO_CREDENTIALS_FILE (default `~/.cto/credentials` when it exists), then ACCOUNTS_FILE; a
/// secret given twice is kept once (its first label wins).
pub(crate) fn account_sources(
    a: &ConfigArgs,
    clerk_cookie: Option<&str>,
) -> Result<Vec<AccountSource>, ConfigError> {
    let mut out = Vec::new();
    if let Some(c) = clerk_cookie {
        out.push(AccountSource::new("default", c));
    }
    if let Some(list) = &a.clerk_cookies {
        out.extend(sources::parse_cookie_list(list));
    }
    if let Some(list) = &a.cto_refresh_token {
        out.extend(sources::parse_refresh_tokens(list));
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
fn credentials_file(a: &ConfigArgs) -> Option<std::path::PathBuf> {
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

/// The scheduling, health and retry settings of the account pool.
pub(crate) fn pool_config(
    a: &ConfigArgs,
    upstream: &UpstreamConfig,
) -> Result<PoolConfig, ConfigError> {
    let concurrency = match a.account_concurrency.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => {
            let n: usize = parse_num("ACCOUNT_CONCURRENCY", v)?;
            if n == 0 {
                return Err(bad("ACCOUNT_CONCURRENCY", "must be at least 1"));
            }
            Some(n)
        }
    };
    let cli_concurrency = match a.cli_concurrency.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => {
            let n: usize = parse_num("CLI_CONCURRENCY", v)?;
            if n == 0 {
                return Err(bad("CLI_CONCURRENCY", "must be at least 1"));
            }
            Some(n)
        }
    };
    let queue_secs: u64 = parse_num("QUEUE_TIMEOUT_SECS", &a.queue_timeout_secs)?;
    let max_queue: usize = parse_num("MAX_QUEUE", &a.max_queue)?;
    let attempts: u32 = parse_num("RETRY_ATTEMPTS", &a.retry_attempts)?;
    if attempts == 0 {
        return Err(bad("RETRY_ATTEMPTS", "must be at least 1"));
    }
    let failures: u32 = parse_num("BREAKER_FAILURES", &a.breaker_failures)?;
    if failures == 0 {
        return Err(bad("BREAKER_FAILURES", "must be at least 1"));
    }
    Ok(PoolConfig {
        concurrency,
        cli_concurrency,
        queue_timeout: Duration::from_secs(queue_secs),
        max_queue,
        cooldown: parse_duration("ACCOUNT_COOLDOWN", &a.account_cooldown)?,
        dead_recheck: parse_duration("DEAD_RECHECK_INTERVAL", &a.dead_recheck_interval)?,
        quota_check: parse_duration("QUOTA_CHECK_INTERVAL", &a.quota_check_interval)?,
        attempts,
        deadline: upstream.request_timeout,
        backoff: Backoff::default(),
        breaker: BreakerConfig {
            failures,
            open_for: parse_duration("BREAKER_OPEN", &a.breaker_open)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::{Config, ConfigArgs, test_args};

    fn args(extra: &[&str]) -> ConfigArgs {
        test_args(extra)
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
        let e = Config::from_args(&args(&["--account-concurrency", "0"])).expect_err("zero");
        assert_eq!(e.setting, "ACCOUNT_CONCURRENCY");
        let e = Config::from_args(&args(&["--api-master-key", "k", "--admin-key", "k"]))
            .expect_err("same key");
        assert_eq!(e.setting, "ADMIN_KEY");
        let e = Config::from_args(&args(&["--accounts-file", "/nonexistent/accounts"]))
            .expect_err("missing file");
        assert_eq!(e.setting, "ACCOUNTS_FILE");
        let e = Config::from_args(&args(&["--breaker-open", "soon"])).expect_err("bad");
        assert_eq!(e.setting, "BREAKER_OPEN");
    }
}
