//! The bench's child processes (simulator, proxy, floor) and what `/proc` says about them.
//!
//! Pinned passes start each child under `taskset -c CORE` (util-linux; this crate forbids the
//! `unsafe` a direct `sched_setaffinity` would need) and move the bench's own threads to core 1
//! with `taskset -a -p` for the pass ([`PinSelf`]).

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::process::{Child, Command};

use super::{BenchArgs, BenchStore, Door, Pinning, Result};

pub const BENCH_KEY: &str = "sk-bench";

pub struct Children {
    sim: Child,
    proxy: Child,
    /// The floor relay (`bench --floor-server`); `None` on the CLI door.
    floor: Option<Child>,
    pub sim_url: String,
    pub proxy_url: String,
    pub floor_url: String,
    /// The proxy's RSS after start-up, before its first request (bytes).
    pub proxy_idle_rss: u64,
    pub cookie: String,
    /// A second simulated account for the direct (no proxy) runs: Clerk rotates a cookie on
    /// every mint, so two clients sharing one account would sign each other out.
    pub direct_cookie: String,
    /// A `cto login` of that second account, for the direct runs of `--door cli`.
    pub direct_refresh_token: String,
    dir: std::path::PathBuf,
}

impl Drop for Children {
    fn drop(&mut self) {
        let _ = self.sim.start_kill();
        let _ = self.proxy.start_kill();
        if let Some(floor) = &mut self.floor {
            let _ = floor.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn wait_for(url: &str) -> Result<()> {
    let http = reqwest::Client::new();
    for _ in 0..200 {
        if http.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Err(format!("{url} did not come up").into())
}

/// A command for `program`, under `taskset -c core` when pinned.
fn command(program: &std::path::Path, pinning: Pinning, core: u8) -> Command {
    match pinning {
        Pinning::Free => Command::new(program),
        Pinning::Pinned => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(core.to_string()).arg(program);
            c
        }
    }
}

/// Adds a simulated account and returns its answer (`user_id`, `cookie`).
async fn add_account(sim_url: &str) -> Result<serde_json::Value> {
    Ok(reqwest::Client::new()
        .post(format!("{sim_url}/__sim/accounts"))
        .send()
        .await
        .map_err(|e| format!("cannot add a simulator account: {e}"))?
        .json()
        .await
        .map_err(|e| format!("bad simulator account answer: {e}"))?)
}

impl Children {
    pub async fn start(args: &BenchArgs, pinning: Pinning) -> Result<Children> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let proxy_exe = args.proxy_bin.clone().unwrap_or_else(|| exe.clone());
        let dir = std::env::temp_dir().join(format!("el2a-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let cookie_file = dir.join("cookie");
        let sim_port = args.port;
        let proxy_port = args.port + 1;
        let floor_port = args.port + 2;
        let sim = command(&exe, pinning, 1)
            .args([
                "simulate",
                "--port",
                &sim_port.to_string(),
                "--reply-words",
                &args.words.to_string(),
            ])
            .args([
                "--frame-delay-ms",
                &args.frame_delay_ms.to_string(),
                "--cookie-file",
            ])
            .arg(&cookie_file)
            .stdout(Stdio::null())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the simulator: {e}"))?;
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        wait_for(&format!("{sim_url}/__sim/stats")).await?;
        let cookie = std::fs::read_to_string(&cookie_file)
            .map_err(|e| format!("no simulator cookie: {e}"))?;
        let direct = add_account(&sim_url).await?;
        let direct_cookie = direct["cookie"]
            .as_str()
            .ok_or("the simulator account has no cookie")?
            .to_string();
        // CLI logins of the two accounts (used with `--door cli`).
        let cli_login = |user: String| {
            let url = format!("{sim_url}/__sim/accounts/{user}/cli-login");
            async move {
                let v: serde_json::Value = reqwest::Client::new()
                    .post(url)
                    .send()
                    .await
                    .map_err(|e| format!("cannot log in on the CLI door: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("bad CLI login answer: {e}"))?;
                v["refresh_token"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "the CLI login has no refresh token".to_string())
            }
        };
        let first_user: serde_json::Value = reqwest::Client::new()
            .get(format!("{sim_url}/__sim/accounts"))
            .send()
            .await
            .map_err(|e| format!("cannot list the simulator accounts: {e}"))?
            .json()
            .await
            .map_err(|e| format!("bad simulator account list: {e}"))?;
        let first_user = first_user[0]["user_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let refresh_token = cli_login(first_user).await?;
        let direct_refresh_token =
            cli_login(direct["user_id"].as_str().unwrap_or_default().to_string()).await?;
        let mut proxy = command(&proxy_exe, pinning, 0);
        proxy
            .arg("serve")
            .current_dir(&dir)
            .env_clear()
            .env("RUST_LOG", "warn")
            .env("HOST", "127.0.0.1")
            .env("PORT", proxy_port.to_string())
            .env("API_MASTER_KEY", BENCH_KEY)
            .env("CLERK_BASE_URL", &sim_url)
            .env("ENGINE_BASE_URL", &sim_url)
            .env("MODELS", "GPT5");
        match args.store {
            BenchStore::Memory => proxy.env("STORE", "memory"),
            BenchStore::Embedded => proxy
                .env("STORE", "embedded")
                .env("DATA_DIR", dir.join("data")),
        };
        if args.scenario == super::Scenario::Streams {
            // The proxy's own cost is measured, not cto.new's per-account limit (2 turns).
            proxy
                .env("ACCOUNT_CONCURRENCY", "100000")
                .env("CLI_CONCURRENCY", "100000");
        }
        proxy.env("CTO_CREDENTIALS_FILE", "none");
        match args.door {
            Door::Web => proxy.env("CLERK_COOKIE", &cookie),
            Door::Cli => proxy.env("CTO_REFRESH_TOKEN", &refresh_token),
        };
        // glibc tunings of this process reach the proxy, to compare them.
        for (name, value) in std::env::vars().filter(|(n, _)| n.starts_with("MALLOC_")) {
            proxy.env(name, value);
        }
        for setting in &args.proxy_env {
            let (name, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("--proxy-env `{setting}`: expected NAME=value"))?;
            proxy.env(name, value);
        }
        let proxy = proxy
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the proxy: {e}"))?;
        let proxy_url = format!("http://127.0.0.1:{proxy_port}");
        wait_for(&format!("{proxy_url}/healthz")).await?;
        // Start-up work that runs after the listener is up settles first.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let proxy_idle_rss = proxy.id().and_then(rss_bytes).unwrap_or(0);
        let floor_url = format!("http://127.0.0.1:{floor_port}");
        let floor =
            if args.scenario == super::Scenario::Streams && args.door == Door::Web && !args.tools {
                // Its own account: Clerk rotates a cookie on every mint.
                let account = add_account(&sim_url).await?;
                let floor = command(&exe, pinning, 0)
                    .args(["bench", "--floor-server", "--port", &floor_port.to_string()])
                    .env("RUST_LOG", "warn")
                    .env(super::floor::UPSTREAM_VAR, &sim_url)
                    .env(
                        super::floor::COOKIE_VAR,
                        account["cookie"].as_str().unwrap_or_default(),
                    )
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(|e| format!("cannot start the floor relay: {e}"))?;
                wait_for(&format!("{floor_url}/healthz")).await?;
                Some(floor)
            } else {
                None
            };
        Ok(Children {
            sim,
            proxy,
            floor,
            sim_url,
            proxy_url,
            floor_url,
            proxy_idle_rss,
            cookie,
            direct_cookie,
            direct_refresh_token,
            dir,
        })
    }

    /// Kills the children and waits until they are gone, so that the next pass finds their
    /// ports free.
    pub async fn stop(mut self) {
        let _ = self.sim.kill().await;
        let _ = self.proxy.kill().await;
        if let Some(floor) = &mut self.floor {
            let _ = floor.kill().await;
        }
    }

    pub fn sim_pid(&self) -> u32 {
        self.sim.id().unwrap_or(0)
    }

    pub fn proxy_pid(&self) -> u32 {
        self.proxy.id().unwrap_or(0)
    }

    /// User + system CPU time of the proxy so far.
    pub fn proxy_cpu(&self) -> Result<Duration> {
        cpu_time(self.proxy_pid())
    }

    pub fn floor_pid(&self) -> u32 {
        self.floor.as_ref().and_then(Child::id).unwrap_or(0)
    }

    /// User + system CPU time of the floor relay so far.
    pub fn floor_cpu(&self) -> Result<Duration> {
        cpu_time(self.floor_pid())
    }

    /// User + system CPU time of the simulator so far.
    pub fn sim_cpu(&self) -> Result<Duration> {
        cpu_time(self.sim_pid())
    }

    /// Samples the proxy's RSS every 20 ms until stopped; returns the largest sample in bytes.
    pub fn rss_sampler(&self) -> RssSampler {
        let pid = self.proxy_pid();
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(r) = rss_bytes(pid) {
                    p.fetch_max(r, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        RssSampler { peak, stop, task }
    }
}

pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// utime + stime from `/proc/PID/stat` (clock ticks of 10 ms on Linux).
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("cannot read /proc/{pid}/stat: {e}"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .ok_or("bad /proc stat field")
    };
    // utime and stime are fields 14 and 15 of stat; here 0-based after the name: 11 and 12.
    let total = ticks(11)? + ticks(12)?;
    Ok(Duration::from_millis(total * 10))
}

/// The number after `field:` in `/proc/PID/status`.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Resident set size from `/proc/PID/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS").map(|kb| kb * 1024)
}

/// Threads of the process, from `/proc/PID/status`.
pub fn threads(pid: u32) -> Option<u32> {
    status_field(pid, "Threads").and_then(|n| u32::try_from(n).ok())
}

/// This process's threads on core 1 while a pinned pass runs; back on every core when dropped.
pub struct PinSelf(bool);

impl PinSelf {
    pub fn apply(pinning: Pinning) -> Result<PinSelf> {
        if pinning == Pinning::Free {
            return Ok(PinSelf(false));
        }
        set_own_cores("1")?;
        Ok(PinSelf(true))
    }
}

impl Drop for PinSelf {
    fn drop(&mut self) {
        if self.0 {
            let cores = std::thread::available_parallelism().map_or(2, usize::from);
            let _ = set_own_cores(&format!("0-{}", cores.saturating_sub(1)));
        }
    }
}

/// `taskset -a -p -c CORES PID` on this process: every thread, present ones included.
fn set_own_cores(cores: &str) -> Result<()> {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cores, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run taskset (util-linux): {e}"))?;
    if !status.success() {
        return Err(format!("taskset -a -p -c {cores} failed: {status}").into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_threads_and_memory() {
        let me = std::process::id();
        assert!(threads(me).is_some_and(|n| n >= 1));
        assert!(rss_bytes(me).is_some_and(|b| b > 0));
        assert!(cpu_time(me).is_ok());
    }
}
