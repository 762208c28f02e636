//! What each subcommand does: serve, demo, simulate. `main` only parses and dispatches.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::cli::{DemoArgs, SimulateArgs};
use crate::config::ConnectionLimits;
use crate::config::{Config, ConfigArgs, LogFormat, Secret, StoreArg};
use crate::server::limits;
use crate::server::{AppState, app, listener};
use crate::simulator::{Faults, SimConfig, Simulator};

/// Sets up logging: `LOG_FORMAT` chooses pretty or JSON lines; `RUST_LOG` the level (default info).
/// `default_level` applies when `RUST_LOG` is not set (`doctor` keeps its own output clean
/// with `warn`).
pub fn init_tracing(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Pretty => builder.fmt_fields(crate::logging::fields()).try_init(),
    };
    if result.is_err() {
        eprintln!("tracing was already initialised");
    }
}

/// Binds the listener, with an error that says which address failed.
fn bind(addr: SocketAddr) -> anyhow_like::Result<TcpListener> {
    listener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e} (set HOST/PORT)").into())
}

/// Runs the proxy until SIGTERM or Ctrl-C.
pub async fn serve(config: Config) -> anyhow_like::Result<()> {
    if config.api_keys.is_empty() {
        tracing::warn!(
            "NO API KEY IS SET: anyone who can reach this port can use your cto.new account. Set API_MASTER_KEY (or API_KEYS)."
        );
    }
    if config.accounts.is_empty() {
        tracing::warn!(
            "no cto.new account is configured (CLERK_COOKIE, CLERK_COOKIES or ACCOUNTS_FILE): chat requests fail with 503 until one is added (also possible at runtime through the admin API). Run `enginelabs-2api demo` to try the simulator."
        );
    }
    let grace = config.shutdown_grace;
    let listen = config.listen;
    let limits = config.connections;
    raise_open_file_limit();
    tracing::info!(
        config = ?config,
        transport = crate::upstream::transport::Transport::NAME,
        "starting"
    );
    let state = AppState::build(config).await.map_err(|e| e.to_string())?;
    let listener = bind(listen)?;
    tracing::info!(addr = %listener.local_addr().map_err(|e| e.to_string())?, "listening");
    serve_until_shutdown(listener, app(state.clone()), limits, grace).await;
    if let Err(e) = state.store().flush().await {
        tracing::warn!(error = %e, "could not commit the store's last writes");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts the simulator and the proxy in one process, and tells the newcomer how to call it.
pub async fn demo(mut args: ConfigArgs, demo: DemoArgs) -> anyhow_like::Result<()> {
    let sim_cfg = SimConfig {
        frame_delay: std::time::Duration::from_millis(demo.frame_delay_ms),
        reply_words: demo.reply_words,
        ..SimConfig::default()
    };
    let sim = Simulator::start(sim_cfg)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    sim.set_faults(Faults {
        thinking: demo.thinking,
        ..Faults::default()
    });
    match demo.door {
        crate::cli::DemoDoor::Web => args.clerk_cookie = Some(Secret::new(sim.account().cookie)),
        crate::cli::DemoDoor::Cli => {
            args.cto_refresh_token = Some(Secret::new(
                sim.cli_login(&sim.account().user_id)
                    .map(|a| a.refresh_token)
                    .unwrap_or_default(),
            ));
            // Only the demo's own login: never the operator's `~/.cto/credentials`.
            args.cto_credentials_file = Some("none".into());
        }
    }
    args.clerk_base_url = sim.url();
    args.engine_base_url = sim.url();
    if args.api_master_key.is_none() && args.api_keys.is_none() {
        args.api_master_key = Some(Secret::new("sk-demo"));
    }
    // The demo forgets its conversations unless a store was asked for.
    args.store.get_or_insert(StoreArg::Memory);
    let config = Config::from_args(&args).map_err(|e| e.to_string())?;
    let grace = config.shutdown_grace;
    raise_open_file_limit();
    let key = config
        .api_keys
        .first()
        .map(|k| k.expose().to_string())
        .unwrap_or_default();
    let state = AppState::build(config.clone())
        .await
        .map_err(|e| e.to_string())?;
    let listener = bind(config.listen)?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    let host = if config.listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        config.listen.ip().to_string()
    };
    let base = format!("http://{host}:{port}/v1");
    let door = match demo.door {
        crate::cli::DemoDoor::Web => "a cookie account on the web agent (tools emulated)",
        crate::cli::DemoDoor::Cli => "a `cto login` account on the CLI API (native tools)",
    };
    println!(
        "enginelabs-2api demo: the proxy runs against the built-in simulator of cto.new (no cookie needed), with {door}"
    );
    println!("  simulator:  {}", sim.url());
    println!("  base URL:   {base}");
    println!("  API key:    {key}");
    println!(
        "  models:     GET {base}/models lists the live catalogue (configured fallback: {})",
        config.catalog.models.join(", ")
    );
    println!("  try it:");
    println!(
        "    curl -N {base}/chat/completions -H 'Authorization: Bearer {key}' -H 'Content-Type: application/json' \\\n      -d '{{\"model\":\"{}\",\"stream\":true,\"messages\":[{{\"role\":\"user\",\"content\":\"Hello!\"}}]}}'",
        config.catalog.default_model
    );
    println!("  Ctrl-C stops it.");
    serve_until_shutdown(listener, app(state), config.connections, grace).await;
    // The simulator serves until here.
    let _ = &sim;
    Ok(())
}

/// Runs the simulator alone (for out-of-process tests and the benchmark).
pub async fn simulate(args: SimulateArgs) -> anyhow_like::Result<()> {
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .map_err(|e| format!("bad --host/--port: {e}"))?;
    if let Some(path) = &args.replay {
        let capture = crate::simulator::replay::load(path)?;
        let server = crate::simulator::replay::start(capture, addr)
            .await
            .map_err(|e| format!("cannot serve the replay on {addr}: {e}"))?;
        println!("replaying {} on {}", path.display(), server.url());
        shutdown_signal().await;
        return Ok(());
    }
    let cfg = SimConfig {
        token_ttl: std::time::Duration::from_secs(args.token_ttl_secs.max(1)),
        frame_delay: std::time::Duration::from_millis(args.frame_delay_ms),
        reply_words: args.reply_words,
        gen2: !args.no_gen2,
        ..SimConfig::default()
    };
    let sim = Simulator::start_on(addr, cfg)
        .await
        .map_err(|e| format!("cannot start the simulator on {addr}: {e}"))?;
    let cookie = sim.account().cookie;
    match &args.cookie_file {
        Some(path) => std::fs::write(path, &cookie)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        None => println!("cookie: {cookie}"),
    }
    println!("simulator listening on {}", sim.url());
    shutdown_signal().await;
    Ok(())
}

/// Serves until SIGTERM/Ctrl-C, then stops accepting and lets running requests finish for up
/// to `grace`. Waiting for every connection alone could take forever (one long agent turn would
/// hold the process), so the wait is bounded; whatever still runs when the grace period ends is
/// cut when the runtime stops, and the exit is still a clean one.
async fn serve_until_shutdown(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
) {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = listener::serve(listener, router, limits, async move {
        shutdown_signal().await;
        let _ = signalled_tx.send(());
    });
    tokio::pin!(server);
    let deadline = async {
        // A closed channel means the server ended without a signal: the select took that branch.
        if signalled_rx.await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!(
            grace_secs = grace.as_secs(),
            "waiting for running requests to finish"
        );
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        () = &mut server => {}
        () = deadline => {
            tracing::warn!(
                grace_secs = grace.as_secs(),
                "the shutdown grace period is over; cutting the requests still running"
            );
        }
    }
}

/// Raises the soft open-file limit to the hard one (see [`limits::raise_open_file_limit`]) and
/// says what it found; the connection cap is fitted to the result when serving starts.
fn raise_open_file_limit() {
    match limits::raise_open_file_limit() {
        Ok(l) if l.now > l.before => {
            tracing::info!(from = l.before, to = l.now, "raised the open-file limit");
        }
        Ok(l) => tracing::info!(open_file_limit = l.now, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; finishing open requests");
}

/// A boxed error with a readable message: enough for a binary's top level.
pub mod anyhow_like {
    pub type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;
}
