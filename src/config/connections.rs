//! [`ConnectionLimits`]: the limits every client connection lives under
//! (`HEADER_READ_TIMEOUT_SECS`, `REQUEST_BODY_TIMEOUT_SECS`, `MAX_CONNECTIONS`); the server's
//! accept loop (`server/listener.rs`) enforces them and `server/limits.rs` says why they exist.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigArgs};

    fn limits(flags: &[&str]) -> Result<ConnectionLimits, clap::Error> {
        let mut all = vec!["--store=memory"];
        all.extend_from_slice(flags);
        let args = ConfigArgs::from_flags(all)?;
        Ok(Config::from_args(&args).expect("valid").connections)
    }

    #[test]
    fn defaults_and_errors_name_the_setting() {
        let l = limits(&[]).expect("defaults are valid");
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
                let e = limits(&[&arg]).expect_err("rejected");
                assert!(e.to_string().contains(setting), "{flag} {value}: {e}");
            }
        }
    }

    #[test]
    fn the_cap_fits_below_the_open_file_limit() {
        let l = limits(&[]).expect("valid");
        // The old default soft limit: a quarter stays free for everything else.
        assert_eq!(l.fitted_to(1024).max_connections, 768);
        // Room enough: the setting stands.
        assert_eq!(l.fitted_to(1 << 20).max_connections, 4096);
        // Absurdly low limits still leave one connection.
        assert_eq!(l.fitted_to(16).max_connections, 1);
        assert_eq!(l.fitted_to(16).header_read_timeout, l.header_read_timeout);
    }
}
