//! The configuration's rules, each named after what it guarantees.

use clap::CommandFactory;

use super::*;

fn args(extra: &[&str]) -> ConfigArgs {
    ConfigArgs::from_flags(extra).expect("flags parse")
}

/// The message clap gives for these flags (each refused value names its setting).
fn refused(extra: &[&str]) -> String {
    ConfigArgs::from_flags(extra)
        .expect_err("refused by clap")
        .to_string()
}

#[test]
fn defaults_validate() {
    let c = Config::from_args(&args(&["--store", "memory"])).expect("valid");
    assert_eq!(c.listen.port(), 8089);
    assert_eq!(c.catalog.default_model, "ClaudeSonnet4_5");
    assert_eq!(c.upstream.ws_base_url, "wss://api.enginelabs.ai");
    assert!(c.api_keys.is_empty());
}

#[test]
fn errors_name_the_setting() {
    for (flags, setting) in [
        (["--port", "99999"], "PORT"),
        (["--upstream-protocol", "gen3"], "UPSTREAM_PROTOCOL"),
        (["--engine-base-url", "ftp://x"], "ENGINE_BASE_URL"),
        (["--reasoning", "loud"], "REASONING"),
        (["--host", "localhost"], "HOST"),
        (["--include-paid-models", "maybe"], "INCLUDE_PAID_MODELS"),
        (["--max-image-bytes", "0"], "MAX_IMAGE_BYTES"),
        (["--max-messages", "0"], "MAX_MESSAGES"),
        (["--store", "disk"], "STORE"),
        (["--log-format", "xml"], "LOG_FORMAT"),
        (["--conversation-ttl", "soon"], "CONVERSATION_TTL"),
    ] {
        let e = refused(&flags);
        assert!(e.contains(setting), "{flags:?}: {e}");
    }
    let e = Config::from_args(&args(&["--default-model", "nope"])).expect_err("bad model");
    assert_eq!(e.setting, "DEFAULT_MODEL");
    for bad in ["x", "=y", "x=", "a=b,A=c", "a=a"] {
        let e = Config::from_args(&args(&["--model-aliases", bad])).expect_err(bad);
        assert_eq!(e.setting, "MODEL_ALIASES", "{bad}");
    }
    let e = Config::from_args(&args(&["--upstream-proxy", "socks5://u:pw@h:1"]))
        .expect_err("bad proxy");
    assert_eq!(e.setting, "UPSTREAM_PROXY");
    assert!(!e.to_string().contains("pw"), "{e}");
    let e = Config::from_args(&args(&["--store", "redis", "--redis-url", "http://x"]))
        .expect_err("bad redis url");
    assert_eq!(e.setting, "REDIS_URL");
}

#[test]
fn the_upstream_proxy_is_parsed_and_its_password_never_shown() {
    let c = Config::from_args(&args(&[
        "--store",
        "memory",
        "--upstream-proxy",
        "http://me:hunter2@10.0.0.1:7890",
    ]))
    .expect("valid");
    let proxy = c.upstream.proxy.as_ref().expect("proxy set");
    assert_eq!(proxy.address(), "10.0.0.1:7890");
    let shown = format!("{c:?}");
    assert!(
        shown.contains("http://10.0.0.1:7890 (with credentials)"),
        "{shown}"
    );
    assert!(!shown.contains("hunter2"), "{shown}");
    let c = Config::from_args(&args(&["--store", "memory", "--upstream-proxy", ""]))
        .expect("empty means none");
    assert!(c.upstream.proxy.is_none());
}

#[test]
fn keys_merge_and_debug_redacts() {
    let c = Config::from_args(&args(&[
        "--api-master-key",
        "k1",
        "--api-keys",
        "k2, k1 ,k3",
        "--clerk-cookie",
        "__client=sekrit",
    ]))
    .expect("valid");
    let keys: Vec<&str> = c.api_keys.iter().map(Secret::expose).collect();
    assert_eq!(keys, vec!["k1", "k2", "k3"]);
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("sekrit") && !dbg.contains("k2"), "{dbg}");
    assert!(!format!("{:?}", args(&["--admin-key", "adm-sekrit-123"])).contains("sekrit"));
}

#[test]
fn the_pairs_builder_reads_like_the_environment() {
    let a =
        ConfigArgs::from_pairs(&[("STORE", "memory"), ("LONG_PROMPTS", "reject")]).expect("valid");
    assert_eq!(a.store, Some(StoreArg::Memory));
    assert_eq!(a.long_prompts, crate::relay::LongPrompts::Reject);
    let e = ConfigArgs::from_pairs(&[("MAX_QUEUE", "lots")]).expect_err("refused");
    assert!(e.to_string().contains("MAX_QUEUE"), "{e}");
}

/// Every setting of `.env.example` (and of the command line) is in the one redacted view,
/// and no secret given shows in it.
#[test]
fn the_settings_view_names_every_setting_and_no_secret() {
    let secrets = [
        ("API_MASTER_KEY", "sk-view-secret-1"),
        ("API_KEYS", "sk-view-secret-2"),
        ("ADMIN_KEY", "adm-view-secret-3"),
        ("CLERK_COOKIE", "__client=view-secret-4"),
        ("CLERK_COOKIES", "__client=view-secret-5"),
        ("CTO_REFRESH_TOKEN", "view-secret-6"),
        ("CTO_CREDENTIALS_FILE", "none"),
        ("UPSTREAM_PROXY", "http://me:view-secret-7@10.0.0.1:1"),
        ("REDIS_URL", "redis://:view-secret-8@127.0.0.1:6379"),
    ];
    let c = Config::from_args(&ConfigArgs::from_pairs(&secrets).expect("parse")).expect("valid");
    let names: Vec<&str> = c.settings().iter().map(|(n, _)| *n).collect();
    #[derive(clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        args: ConfigArgs,
    }
    for arg in Wrap::command().get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            assert!(names.contains(&env), "the settings view misses {env}");
        }
    }
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"))
        .expect(".env.example");
    for (name, _) in example
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
    {
        let is_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        // RUST_LOG is tracing's own filter, read by the subscriber, not one of the settings.
        if is_name && name != "RUST_LOG" {
            assert!(names.contains(&name), "the settings view misses {name}");
        }
    }
    let shown = format!("{c:?}");
    assert!(!shown.contains("view-secret"), "{shown}");
    assert!(shown.contains(view::REDACTED), "{shown}");
}
