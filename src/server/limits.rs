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
//! cut by them. The settings and their type live in `config/connections.rs`.

pub use crate::config::ConnectionLimits;

/// Bytes of request headers a client may send; beyond it hyper answers 431. Far above any real
/// client's (a long cookie is a few KiB), far below hyper's own 400 KiB read buffer, which is
/// what a slow-header client made the proxy hold per socket.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

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
