//! The doctor's report: one [`Step`] per check of an account, in order, with what was expected
//! and what came back; the text form (one line per step, then a summary that says what to do)
//! and the JSON form (`--json`) are two renderings of the same values.
//!
//! Every text that enters a step goes through the account's [`Redactor`] first, so a secret
//! that an error message quotes (a cookie, a token) never reaches the terminal or the JSON.

use serde::Serialize;

use crate::pool::login::Kind;
use crate::upstream::UpstreamError;

/// The checks, in the order they run. Their names are what the report and the tests use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    ClerkSession,
    TokenMint,
    Protocol,
    Adapters,
    Billing,
    Turn,
    Frames,
    ToolEmulation,
    CliRefresh,
    CliModels,
    CliCompletion,
    CliToolCall,
    Cleanup,
    Cloudflare,
}

impl Check {
    /// The name shown in the text report (the JSON uses the snake_case variant).
    pub fn name(self) -> &'static str {
        match self {
            Check::ClerkSession => "clerk session",
            Check::TokenMint => "token mint",
            Check::Protocol => "protocol",
            Check::Adapters => "adapters",
            Check::Billing => "billing",
            Check::Turn => "test turn",
            Check::Frames => "frames",
            Check::ToolEmulation => "tool emulation",
            Check::CliRefresh => "cli refresh",
            Check::CliModels => "cli models",
            Check::CliCompletion => "cli completion",
            Check::CliToolCall => "cli tool call",
            Check::Cleanup => "cleanup",
            Check::Cloudflare => "cloudflare",
        }
    }

    /// What a failure of this check means and what to do about it.
    pub fn advice(self) -> &'static str {
        match self {
            Check::ClerkSession => {
                "Clerk does not know a signed-in session behind the cookie (signed out, revoked, or not a cto.new cookie): sign in to cto.new in a browser and paste a fresh cookie"
            }
            Check::TokenMint => {
                "the session exists but Clerk minted no token for it: sign in again and paste a fresh cookie; if it persists, attach `doctor --json` to a bug report"
            }
            Check::Protocol => {
                "the configured UPSTREAM_PROTOCOL is not the one cto.new speaks for this account: set UPSTREAM_PROTOCOL=auto"
            }
            Check::Adapters => {
                "the model list could not be read: the account may lack access to the web agent; check it in a browser"
            }
            Check::Billing => {
                "the billing call failed: the account may be out of credits or restricted; check cto.new's billing page"
            }
            Check::Turn => {
                "a one-word turn did not complete: see what came back; a timeout or a closed stream can be the network, anything else is worth a bug report with a capture"
            }
            Check::Frames => {
                "the stream sent no frames at all: attach `doctor --json` to a bug report"
            }
            Check::ToolEmulation => {
                "the agent did not answer the tool request in the emulated format: tool calls through this account will come back as text; try another model (MODEL) or report it with `doctor --json`"
            }
            Check::CliRefresh => {
                "the `cto login` refresh token was refused (spent, revoked or logged out elsewhere): run `cto login` again and configure the new refresh token from ~/.cto/credentials"
            }
            Check::CliModels => {
                "the CLI door lists no models for this login: check the account with `cto` itself"
            }
            Check::CliCompletion => {
                "a one-word completion on the CLI door failed: see what came back; report it with `doctor --json`"
            }
            Check::CliToolCall => {
                "the CLI door did not answer a tool request with a native tool call: report it with `doctor --json`"
            }
            Check::Cleanup => {
                "the test chats could not be deleted: remove them in cto.new's chat list by hand"
            }
            Check::Cloudflare => {
                "Cloudflare challenged this client: try later, through another network (UPSTREAM_PROXY), or with a build that has the `impersonate` feature"
            }
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Pass,
    /// Works, but something deserves a look (does not fail the account).
    Warn,
    Fail,
    /// Skipped: an earlier step failed, or the check is not possible here.
    NotChecked,
}

impl Outcome {
    fn mark(self) -> &'static str {
        match self {
            Outcome::Pass => "✓",
            Outcome::Warn => "!",
            Outcome::Fail => "✗",
            Outcome::NotChecked => "-",
        }
    }
}

/// One check of one account.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub check: Check,
    pub outcome: Outcome,
    /// What was seen (a pass), or why it was not checked.
    pub detail: String,
    /// For a failure: what the step expected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

/// Replaces known secrets in texts with `<redacted>`.
#[derive(Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Adds a secret (ignored when too short to be one: it would blank out ordinary words).
    pub fn add(&mut self, secret: &str) {
        let s = secret.trim();
        if s.len() >= 8 && !self.secrets.iter().any(|k| k == s) {
            self.secrets.push(s.to_string());
        }
    }

    /// The secrets known so far (the capture is redacted with them too).
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    pub fn apply(&self, text: &str) -> String {
        // Longest first, so a secret that contains another is replaced whole.
        let mut keys: Vec<&String> = self.secrets.iter().collect();
        keys.sort_by_key(|k| std::cmp::Reverse(k.len()));
        keys.iter()
            .fold(text.to_string(), |t, k| t.replace(k.as_str(), "<redacted>"))
    }
}

/// Every step of one account.
#[derive(Debug, Serialize)]
pub struct AccountReport {
    pub label: String,
    pub kind: Kind,
    pub passed: bool,
    pub steps: Vec<Step>,
    #[serde(skip)]
    pub redactor: Redactor,
    /// The first step that met a Cloudflare challenge.
    #[serde(skip)]
    challenged_at: Option<Check>,
}

impl AccountReport {
    pub fn new(label: &str, kind: Kind) -> Self {
        AccountReport {
            label: label.to_string(),
            kind,
            passed: true,
            steps: Vec::new(),
            redactor: Redactor::default(),
            challenged_at: None,
        }
    }

    fn push(&mut self, check: Check, outcome: Outcome, detail: &str, expected: Option<&str>) {
        if outcome == Outcome::Fail {
            self.passed = false;
        }
        self.steps.push(Step {
            check,
            outcome,
            detail: self.redactor.apply(detail),
            expected: expected.map(|e| self.redactor.apply(e)),
        });
    }

    pub fn pass(&mut self, check: Check, detail: impl AsRef<str>) {
        self.push(check, Outcome::Pass, detail.as_ref(), None);
    }

    pub fn warn(&mut self, check: Check, detail: impl AsRef<str>) {
        self.push(check, Outcome::Warn, detail.as_ref(), None);
    }

    /// A failure: what was expected, and what came back.
    pub fn fail(&mut self, check: Check, expected: &str, got: impl AsRef<str>) {
        self.push(check, Outcome::Fail, got.as_ref(), Some(expected));
    }

    /// A failure from an upstream error (noting a Cloudflare challenge for the last step).
    pub fn fail_err(&mut self, check: Check, expected: &str, err: &UpstreamError) {
        self.note(check, err);
        self.fail(check, expected, err.to_string());
    }

    /// Notes a Cloudflare challenge in an error that did not fail a step by itself.
    pub fn note(&mut self, check: Check, err: &UpstreamError) {
        if matches!(err, UpstreamError::CloudflareChallenge { .. }) && self.challenged_at.is_none()
        {
            self.challenged_at = Some(check);
        }
    }

    pub fn not_checked(&mut self, checks: &[Check], why: &str) {
        for check in checks {
            self.push(*check, Outcome::NotChecked, why, None);
        }
    }

    /// The last step: which transport ran, and whether any step met a challenge.
    pub fn cloudflare(&mut self, transport: &str) {
        match self.challenged_at {
            None => self.pass(
                Check::Cloudflare,
                format!("transport {transport}; no challenge seen"),
            ),
            Some(at) => self.fail(
                Check::Cloudflare,
                "answers from the API, not challenge pages",
                format!(
                    "transport {transport}; a challenge page answered at `{}`",
                    at.name()
                ),
            ),
        }
    }

    /// The first failed step.
    pub fn first_failure(&self) -> Option<&Step> {
        self.steps.iter().find(|s| s.outcome == Outcome::Fail)
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub transport: &'static str,
    pub passed: bool,
    pub accounts: Vec<AccountReport>,
}

impl Report {
    pub fn new(transport: &'static str, accounts: Vec<AccountReport>) -> Self {
        let passed = !accounts.is_empty() && accounts.iter().all(|a| a.passed);
        Report {
            transport,
            passed,
            accounts,
        }
    }

    /// One line per step, then the summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for a in &self.accounts {
            out.push_str(&format!(
                "account `{}` ({} door)\n",
                a.label,
                a.kind.as_str()
            ));
            for s in &a.steps {
                out.push_str(&format!("  {} {}: ", s.outcome.mark(), s.check.name()));
                match (&s.outcome, &s.expected) {
                    (Outcome::Fail, Some(expected)) => {
                        out.push_str(&format!("expected {expected}; got {}\n", s.detail))
                    }
                    (Outcome::NotChecked, _) => {
                        out.push_str(&format!("not checked ({})\n", s.detail));
                    }
                    _ => out.push_str(&format!("{}\n", s.detail)),
                }
            }
        }
        let good = self.accounts.iter().filter(|a| a.passed).count();
        out.push_str(&format!(
            "summary: {good} of {} account(s) pass\n",
            self.accounts.len()
        ));
        if self.accounts.is_empty() {
            out.push_str(
                "  no account is configured: set CLERK_COOKIE (web door) or CTO_REFRESH_TOKEN (CLI door), or ACCOUNTS_FILE\n",
            );
        }
        for a in &self.accounts {
            if let Some(step) = a.first_failure() {
                out.push_str(&format!(
                    "  `{}` fails at `{}`: {}\n",
                    a.label,
                    step.check.name(),
                    step.check.advice()
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_a_step() {
        let mut r = AccountReport::new("a", Kind::Web);
        r.redactor.add("__client=abcdefgh12345");
        r.redactor.add("abcdefgh12345");
        r.redactor.add("ok");
        r.fail(
            Check::ClerkSession,
            "no abcdefgh12345 here",
            "cookie __client=abcdefgh12345 refused; ok",
        );
        let step = &r.steps[0];
        assert_eq!(step.detail, "cookie <redacted> refused; ok");
        assert_eq!(step.expected.as_deref(), Some("no <redacted> here"));
        assert!(!r.passed);
    }

    #[test]
    fn the_summary_names_the_first_failed_step_and_its_advice() {
        let mut r = AccountReport::new("main", Kind::Cli);
        r.pass(Check::CliRefresh, "fine");
        r.warn(Check::CliModels, "odd");
        r.fail(Check::CliCompletion, "an answer", "HTTP 500");
        r.not_checked(&[Check::CliToolCall], "needs a completion");
        let report = Report::new("plain", vec![r]);
        assert!(!report.passed);
        let text = report.text();
        assert!(text.contains("✓ cli refresh: fine"), "{text}");
        assert!(
            text.contains("✗ cli completion: expected an answer; got HTTP 500"),
            "{text}"
        );
        assert!(
            text.contains("- cli tool call: not checked (needs a completion)"),
            "{text}"
        );
        assert!(text.contains("`main` fails at `cli completion`"), "{text}");
        let json = serde_json::to_value(&report).unwrap_or_default();
        assert_eq!(json["accounts"][0]["steps"][2]["check"], "cli_completion");
        assert_eq!(json["accounts"][0]["steps"][2]["outcome"], "fail");
    }
}
