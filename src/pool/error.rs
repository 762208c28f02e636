//! [`PoolError`]: why no account could take a request. Each message says what to do (set a
//! cookie, log in again, wait); `server::error` maps each to its status and code.

use std::time::Duration;

use super::Kind;

/// Why no account could take a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    #[error(
        "no cto.new account is configured: set CLERK_COOKIE (or CLERK_COOKIES / ACCOUNTS_FILE) to the cookie of a logged-in cto.new browser session, add one through the admin API, or run `enginelabs-2api demo` to try the simulator"
    )]
    NoAccount,
    #[error("{}", all_dead_message(dead, dead_cli, *disabled))]
    AllDead {
        /// Cookie accounts whose session was refused.
        dead: Vec<String>,
        /// `cto login` accounts whose refresh token was refused.
        dead_cli: Vec<String>,
        disabled: usize,
    },
    #[error(
        "every cto.new account is rate limited or out of credits; the first one is back in {} s",
        retry_after.as_secs()
    )]
    AllCooling { retry_after: Duration },
    #[error(
        "too many requests are waiting for a free cto.new account (MAX_QUEUE); try again later"
    )]
    QueueFull { retry_after: Duration },
    #[error(
        "no cto.new account became free within {} s (QUEUE_TIMEOUT_SECS); try again later",
        waited.as_secs()
    )]
    QueueTimeout {
        waited: Duration,
        retry_after: Duration,
    },
    /// Accounts exist, but none of the kind that serves the model.
    #[error("{}", no_door_message(model, *kind))]
    NoDoor { model: String, kind: Kind },
    /// The account owning a conversation cannot serve it (the relay restarts it elsewhere).
    #[error("the cto.new account of this conversation is not available")]
    OwnerUnavailable,
}

fn no_door_message(model: &str, kind: Kind) -> String {
    let model: String = model.chars().take(64).collect();
    match kind {
        Kind::Web => format!(
            "the model `{model}` is served by cto.new's web agent, and no cookie account is configured: add one (CLERK_COOKIE) or pick a model the CLI accounts serve (GET /v1/models)"
        ),
        Kind::Cli => format!(
            "the model `{model}` is served only by cto.new's CLI API, and no `cto login` account is configured: add one (CTO_REFRESH_TOKEN) or pick a model of the web agent (GET /v1/models)"
        ),
    }
}

/// Names the accounts whose cookies must be refreshed (and says how), or that all are disabled.
fn all_dead_message(dead: &[String], dead_cli: &[String], disabled: usize) -> String {
    let disabled_note = match disabled {
        0 => String::new(),
        n => format!(
            "; {n} account(s) are disabled by the admin (POST /admin/api/accounts/{{id}}/enable)"
        ),
    };
    let mut why = Vec::new();
    if !dead.is_empty() {
        why.push(format!(
            "the cookies of {} were rejected by Clerk and must be refreshed (sign in to cto.new in a browser and paste a fresh cookie)",
            dead.join(", ")
        ));
    }
    if !dead_cli.is_empty() {
        why.push(format!(
            "the cto login of {} was refused (run `cto login` again and give the proxy the new refresh token: CTO_REFRESH_TOKEN, CTO_CREDENTIALS_FILE or the admin page)",
            dead_cli.join(", ")
        ));
    }
    if why.is_empty() {
        return format!("every cto.new account is disabled{disabled_note}");
    }
    format!(
        "every cto.new account is unusable: {}{disabled_note}",
        why.join("; ")
    )
}

impl PoolError {
    /// Retry-After for the answers that are worth retrying later.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PoolError::AllCooling { retry_after }
            | PoolError::QueueFull { retry_after }
            | PoolError::QueueTimeout { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}
