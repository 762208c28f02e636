//! What the agent-CLI tests (`tests/agents.rs`) share: where the installed clients are, the proxy
//! in demo mode with its log kept, a throw-away HOME and work directory, and a client run bounded
//! by a timeout whose output is kept for the failure message.
//!
//! Every client runs with a cleared environment (PATH, HOME, TERM and what its test sets), so
//! nothing of the machine's own `ANTHROPIC_*`, `OPENAI_*`, `CODEX_HOME` or config files leaks in,
//! and its HOME is a fresh directory, so it finds no login, no settings and no history.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::proc::{TempDir, free_port};

/// The client key of the proxy under test (a dummy: the proxy runs against its simulator).
pub const KEY: &str = "sk-agents-test";

/// How long one client may run before it is killed. A working turn takes seconds; Codex
/// retries a failing request five times with backoff (about 7 s in all).
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(180);

/// The client's executable in `AGENT_BIN_DIR` (`.ci/run` fills it with `claude`, `codex` and
/// `opencode`). The tests are `#[ignore]`d without it; run explicitly, they fail here, loudly.
pub fn agent_bin(name: &str) -> PathBuf {
    let Ok(dir) = std::env::var("AGENT_BIN_DIR") else {
        panic!(
            "AGENT_BIN_DIR is unset: it must name a folder holding the `claude`, `codex` and \
             `opencode` executables. `.ci/run` installs the pinned versions \
             (tests/agents/package.json) into target/agents/ and sets it to target/agents/bin"
        );
    };
    let path = Path::new(&dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: AGENT_BIN_DIR={dir} holds no `{name}` (run .ci/run, or its \
         \"agent CLIs\" step, to install it)",
        path.display()
    );
    path
}

/// A fresh folder with a HOME and a work directory for one client run, removed on drop.
pub struct Workspace {
    _root: TempDir,
    pub home: PathBuf,
    pub work: PathBuf,
    /// Where the client's stdout/stderr and the proxy's log are written.
    pub logs: PathBuf,
}

impl Workspace {
    pub fn new(tag: &str) -> Workspace {
        let root = TempDir::new(tag);
        let [home, work, logs] = ["home", "work", "logs"].map(|d| root.0.join(d));
        for d in [&home, &work, &logs] {
            std::fs::create_dir_all(d).expect("workspace folder");
        }
        Workspace {
            _root: root,
            home,
            work,
            logs,
        }
    }

    /// A command for `program` with only PATH, HOME and TERM set, run from the work directory.
    pub fn command(&self, program: &Path) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(program);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TERM", "dumb")
            .env("NO_COLOR", "1")
            .current_dir(&self.work);
        cmd
    }

    pub fn write(&self, path: &Path, text: &str) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("config folder");
        }
        std::fs::write(path, text).expect("write a config file");
    }
}

/// `enginelabs-2api demo` (the proxy in front of its simulator) on a free loopback port, its
/// stdout and stderr kept in a log file for the failure message.
pub struct DemoProxy {
    _child: tokio::process::Child,
    pub base: String,
    log: PathBuf,
}

/// The door the demo's account uses (`demo --door`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// A cookie account on the web agent: tools emulated in the prompt.
    Web,
    /// A `cto login` account on the CLI API: native tool calls.
    Cli,
}

impl Door {
    pub fn arg(self) -> &'static str {
        match self {
            Door::Web => "web",
            Door::Cli => "cli",
        }
    }

    /// A GPT model this door's catalogue has (the web agent's adapter key, the CLI API's id).
    pub fn gpt_model(self) -> &'static str {
        match self {
            Door::Web => "gpt_5",
            Door::Cli => "gpt-5.4",
        }
    }

    /// A model for opencode: one whose name opencode does not take for a GPT-5 (for those it
    /// offers `apply_patch` instead of its `write` tool). The CLI door's is a model only that
    /// door serves.
    pub fn opencode_model(self) -> &'static str {
        match self {
            Door::Web => "gpt_5",
            Door::Cli => "kimi-k2.5",
        }
    }
}

impl DemoProxy {
    pub async fn start(ws: &Workspace, door: Door) -> DemoProxy {
        let port = free_port();
        let log = ws.logs.join("proxy.log");
        let file = std::fs::File::create(&log).expect("proxy log");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_enginelabs-2api"))
            .args(["demo", "--frame-delay-ms", "1", "--door", door.arg()])
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("API_MASTER_KEY", KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(file.try_clone().expect("clone")))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .expect("start the demo");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..200 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                return DemoProxy {
                    _child: child,
                    base,
                    log,
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the demo did not start; its log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One line per client request the proxy answered (`POST /v1/messages -> 400`), read from
    /// its log (its own start-up probes of `/healthz` left out).
    pub fn answered(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("answered status=") && !l.contains("path=/healthz"))
            .map(|l| {
                let field = |key: &str| {
                    l.split(key)
                        .nth(1)
                        .and_then(|rest| rest.split(['}', ' ']).next())
                        .unwrap_or("?")
                        .to_string()
                };
                format!(
                    "{} {} -> {}",
                    field("method="),
                    field("path="),
                    field("status=")
                )
            })
            .collect()
    }
}

/// How a client run ended, with everything it printed.
pub struct Run {
    pub what: &'static str,
    /// `None` when it was killed at the timeout.
    pub status: Option<ExitStatus>,
    pub elapsed: Duration,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    fn ending(&self) -> String {
        match self.status {
            None => format!("killed after {:?} (timeout)", self.elapsed),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit {code} after {:.1?}", self.elapsed),
                (None, Some(sig)) => format!("killed by signal {sig} after {:.1?}", self.elapsed),
                _ => format!("{s} after {:.1?}", self.elapsed),
            },
        }
    }
}

/// Runs a client to its end, or kills it (with its whole process group: the `codex` launcher
/// is a Node script whose child is the real binary) after [`CLIENT_TIMEOUT`]. `stdin`, when
/// given, is written to it and closed; else it reads an empty stdin.
pub async fn run_client(
    what: &'static str,
    mut cmd: tokio::process::Command,
    stdin: Option<&str>,
    ws: &Workspace,
) -> Run {
    let out_path = ws.logs.join("client.stdout");
    let err_path = ws.logs.join("client.stderr");
    let out = std::fs::File::create(&out_path).expect("stdout file");
    let err = std::fs::File::create(&err_path).expect("stderr file");
    cmd.stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    // The client leads its own process group (`process_group(0)`): its id names the group.
    let group = child.id();
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let status = match tokio::time::timeout(CLIENT_TIMEOUT, child.wait()).await {
        Ok(status) => Some(status.expect("wait for the client")),
        Err(_) => None,
    };
    // Whether it ended or not, nothing it started may outlive the test (an empty group is
    // "no such process", harmless).
    if let Some(group) = group {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{group}")])
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.wait().await;
    Run {
        what,
        status,
        elapsed: started.elapsed(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// The failure message: the broken expectation, how the client ended, what the proxy answered,
/// the client's output, the work directory and the proxy's log.
pub fn report(expectation: &str, run: &Run, proxy: &DemoProxy, ws: &Workspace) -> String {
    let answered = proxy.answered();
    let answered = if answered.is_empty() {
        "no request reached the proxy (is the client's base URL right?)".to_string()
    } else {
        answered.join("\n  ")
    };
    let files: Vec<String> = std::fs::read_dir(&ws.work)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{expectation}\n\
         {what}: {ending}\n\
         the proxy answered:\n  {answered}\n\
         work dir holds: {files:?}\n\
         ---- {what} stdout ----\n{stdout}\n\
         ---- {what} stderr ----\n{stderr}\n\
         ---- proxy log ----\n{log}",
        what = run.what,
        ending = run.ending(),
        stdout = tail(&run.stdout),
        stderr = tail(&run.stderr),
        log = tail(&proxy.log()),
    )
}

/// The last 16 KiB of a text, so a chatty client cannot bury the rest of the message.
fn tail(text: &str) -> &str {
    const MAX: usize = 16 * 1024;
    if text.len() <= MAX {
        return text;
    }
    let mut start = text.len() - MAX;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// Asserts that the client created `path` holding exactly `content`.
pub fn assert_file(path: &Path, content: &str, run: &Run, proxy: &DemoProxy, ws: &Workspace) {
    match std::fs::read_to_string(path) {
        Ok(found) => assert_eq!(
            found,
            content,
            "{}",
            report(
                &format!("{} holds {found:?}, expected {content:?}", path.display()),
                run,
                proxy,
                ws
            )
        ),
        Err(e) => panic!(
            "{}",
            report(
                &format!("{} did not create {}: {e}", run.what, path.display()),
                run,
                proxy,
                ws
            )
        ),
    }
}
