//! [`Login`]: what an account in the pool logs in with, one of two doors into cto.new. A
//! cookie account (`Web`) runs turns through the web agent (Clerk JWT, trigger, WebSocket;
//! tools emulated in the prompt); a `cto login` account (`Cli`) runs them through the CLI's
//! OpenAI-compatible API (OAuth refresh token; native tools). The pool schedules both alike.

use std::sync::Arc;

use serde::Serialize;

use crate::upstream::Account;
use crate::upstream::cli::CliAccount;

/// The two doors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A browser session cookie: the web agent.
    Web,
    /// A `cto login` refresh token: the CLI API.
    Cli,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Web => "web",
            Kind::Cli => "cli",
        }
    }
}

/// One account's login, cheap to clone.
#[derive(Debug, Clone)]
pub enum Login {
    Web(Arc<Account>),
    Cli(Arc<CliAccount>),
}

impl Login {
    pub fn kind(&self) -> Kind {
        match self {
            Login::Web(_) => Kind::Web,
            Login::Cli(_) => Kind::Cli,
        }
    }

    pub fn label(&self) -> &str {
        match self {
            Login::Web(a) => a.label(),
            Login::Cli(a) => a.label(),
        }
    }

    /// The cookie account, if this is one.
    pub fn web(&self) -> Option<&Arc<Account>> {
        match self {
            Login::Web(a) => Some(a),
            Login::Cli(_) => None,
        }
    }

    /// The `cto login` account, if this is one.
    pub fn cli(&self) -> Option<&Arc<CliAccount>> {
        match self {
            Login::Cli(a) => Some(a),
            Login::Web(_) => None,
        }
    }
}
