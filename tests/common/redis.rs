//! Redis for the tests that need one. Those that share the suite's server read `REDIS_URL`, are
//! `#[ignore = "needs Redis (REDIS_URL)"]` (CI runs them with `--include-ignored`) and fail
//! loudly without it; each works under a [`Prefix`] of its own, whose keys go on drop. A test
//! that stops and starts Redis runs a [`LocalRedis`] of its own instead, killed on drop.

use std::io::{Read as _, Write as _};
use std::time::Duration;

/// The Redis the suite runs against. Panics when `REDIS_URL` is unset: a test that calls this is
/// `#[ignore]`d for that reason, so running it means Redis was promised.
pub fn url() -> String {
    match std::env::var("REDIS_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "REDIS_URL is unset: this test needs a Redis \
             (REDIS_URL=redis://127.0.0.1:6379 cargo test -- --include-ignored; .ci/run starts one)"
        ),
    }
}

/// A throwaway key prefix on the suite's Redis: everything a test writes under it is deleted
/// when it drops, so runs never share or leave keys.
pub struct Prefix {
    pub url: String,
    pub prefix: String,
}

impl Prefix {
    /// A fresh prefix on `REDIS_URL` (panics without it, see [`url`]).
    pub fn new() -> Prefix {
        Prefix {
            url: url(),
            prefix: format!("el2a-test-{}", uuid::Uuid::new_v4().simple()),
        }
    }

    /// Deletes every key that starts with the prefix and returns their names.
    pub async fn clean(&self) -> Vec<String> {
        delete_keys(&self.url, &self.prefix).await
    }
}

impl Drop for Prefix {
    fn drop(&mut self) {
        // Drop cannot await, and may run inside or outside a runtime: clean up on a thread with a
        // runtime of its own.
        let (url, prefix) = (self.url.clone(), self.prefix.clone());
        let cleaned = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(delete_keys(&url, &prefix));
        })
        .join();
        if cleaned.is_err() && !std::thread::panicking() {
            panic!("the keys under {} could not be deleted", self.prefix);
        }
    }
}

/// Deletes every key starting with `prefix` and returns their names.
async fn delete_keys(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL")
            .arg(&keys)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
    keys
}

/// A private `redis-server` on 127.0.0.1 (no persistence), for a test that stops and starts
/// Redis. Killed and reaped on drop, so the port is free again once it is gone.
pub struct LocalRedis {
    child: std::process::Child,
    pub port: u16,
}

impl LocalRedis {
    /// Starts `redis-server` on `port` and returns once it answers PING. Panics when the binary
    /// is missing or the server never answers: a test that calls this is `#[ignore]`d for that.
    pub async fn start(port: u16) -> LocalRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install it (apt-get install redis-server)")
            });
        let mut server = LocalRedis { child, port };
        for _ in 0..400 {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("redis-server on port {port} exited at start: {status}");
            }
            if pong(port) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {port} never answered PING");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a Redis on this port answers `PING` with `+PONG` (a listening socket alone may not be
/// ready for commands yet).
fn pong(port: u16) -> bool {
    let Ok(mut tcp) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 7];
    tcp.write_all(b"PING\r\n").is_ok() && tcp.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
