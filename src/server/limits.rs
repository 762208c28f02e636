//! The limits every client connection lives under, and the open-file limit they must fit in.
//!
//! Without them a client that sends its headers one byte a second, sends nothing at all, or sends
//! a chunked body that never ends holds a socket (and a buffer) for good, and about a thousand of
//! them exhaust the default 1024 open files: then `accept` fails and even `/healthz` goes silent.
//! So: the headers of each request must arrive within `HEADER_READ_TIMEOUT_SECS` (which also
//! closes kept-alive connections left idle that long), its body within
//! `REQUEST_BODY_TIMEOUT_SECS` (else 408), and at most `MAX_CONNECTIONS` connections are open at
//! once, a number kept below the open-file limit, which the process raises to its hard ceiling at
//! start. None of them runs while a response is being written: a stream of many minutes is never
//! cut by them. The settings are declared with the others in `config.rs`.

use std::time::Duration;

use crate::config::{ConfigArgs, ConfigError, bad, parse_num};

/// Bytes of request headers a client may send; beyond it hyper answers 431. Far above any real
/// client's (a long cookie is a few KiB), far below hyper's own 400 KiB read buffer, which is
/// what a slow-header client made the proxy hold per socket.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Open files kept out of the connection cap's reach, at least: the upstream connections of the
/// turns in flight, the store, the refusals being written, the log.
const MIN_RESERVED_FILES: u64 = 64;

/// The per-connection limits, as validated from the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From accept, or from the end of the previous response, to the last header byte.
    pub header_read_timeout: Duration,
    /// From the end of the headers to the last body byte.
    pub request_body_timeout: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl ConnectionLimits {
    /// Validates `HEADER_READ_TIMEOUT_SECS`, `REQUEST_BODY_TIMEOUT_SECS` and `MAX_CONNECTIONS`.
    pub(crate) fn from_args(a: &ConfigArgs) -> Result<ConnectionLimits, ConfigError> {
        let secs = |setting: &'static str, value: &str| -> Result<Duration, ConfigError> {
            let n: u64 = parse_num(setting, value)?;
            if n == 0 {
                return Err(bad(setting, "must be at least 1 (seconds)"));
            }
            Ok(Duration::from_secs(n))
        };
        let max_connections: usize = parse_num("MAX_CONNECTIONS", &a.max_connections)?;
        if max_connections == 0 {
            return Err(bad("MAX_CONNECTIONS", "must be at least 1"));
        }
        Ok(ConnectionLimits {
            header_read_timeout: secs("HEADER_READ_TIMEOUT_SECS", &a.header_read_timeout_secs)?,
            request_body_timeout: secs("REQUEST_BODY_TIMEOUT_SECS", &a.request_body_timeout_secs)?,
            max_connections,
        })
    }

    /// The connection cap lowered, if need be, so that the connections together with the
    /// reserve (a quarter of the files, at least 64) fit in `open_files`:
    /// then the cap refuses the excess before `accept` itself starts failing.
    pub fn fitted_to(self, open_files: u64) -> ConnectionLimits {
        let reserve = (open_files / 4).max(MIN_RESERVED_FILES);
        let room = usize::try_from(open_files.saturating_sub(reserve)).unwrap_or(usize::MAX);
        ConnectionLimits {
            max_connections: self.max_connections.min(room.max(1)),
            ..self
        }
    }
}

/// What [`raise_open_file_limit`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit the process started with.
    pub before: u64,
    /// The soft limit now in force.
    pub now: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. The soft default (1024 on most systems) is
/// a leftover of `select(2)`, which nothing here uses; the hard limit is what the administrator
/// allows (systemd `LimitNOFILE`, compose `ulimits`, `ulimit -Hn`). On failure the limit stays as
/// it was and the error says why; the connection cap is then fitted to the lower limit.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    let (before, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let now = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(OpenFileLimit { before, now })
}

/// The soft open-file limit in force (`None` where it cannot be read).
pub fn open_file_limit() -> Option<u64> {
    rlimit::getrlimit(rlimit::Resource::NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_args;

    #[test]
    fn defaults_and_errors_name_the_setting() {
        let l = ConnectionLimits::from_args(&test_args(&[])).expect("defaults are valid");
        assert_eq!(l.header_read_timeout, Duration::from_secs(30));
        assert_eq!(l.request_body_timeout, Duration::from_secs(60));
        assert_eq!(l.max_connections, 4096);
        for (flag, setting) in [
            ("--header-read-timeout-secs", "HEADER_READ_TIMEOUT_SECS"),
            ("--request-body-timeout-secs", "REQUEST_BODY_TIMEOUT_SECS"),
            ("--max-connections", "MAX_CONNECTIONS"),
        ] {
            for value in ["0", "soon", "-1"] {
                let arg = format!("{flag}={value}");
                let e = ConnectionLimits::from_args(&test_args(&[&arg])).expect_err("rejected");
                assert_eq!(e.setting, setting, "{flag} {value}");
            }
        }
    }

    #[test]
    fn the_cap_fits_below_the_open_file_limit() {
        let l = ConnectionLimits::from_args(&test_args(&[])).expect("valid");
        // The old default soft limit: a quarter stays free for everything else.
        assert_eq!(l.fitted_to(1024).max_connections, 768);
        // Room enough: the setting stands.
        assert_eq!(l.fitted_to(1 << 20).max_connections, 4096);
        // Absurdly low limits still leave one connection.
        assert_eq!(l.fitted_to(16).max_connections, 1);
        assert_eq!(l.fitted_to(16).header_read_timeout, l.header_read_timeout);
    }
}
