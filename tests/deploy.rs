//! The deployment files agree with the code, checked without a Docker engine (CI has none):
//! the Dockerfile's build stage copies every file the build reads and builds the features the
//! tests test; `.env.example` names every setting with its default, and both READMEs document it.

use std::path::{Path, PathBuf};

use clap::CommandFactory as _;
use enginelabs_2api::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The build stage of the Dockerfile: from the first `FROM` to the second.
fn build_stage() -> String {
    let dockerfile = format!("\n{}", read(&root().join("Dockerfile")));
    let mut stages = dockerfile.split("\nFROM ").skip(1);
    let build = stages.next().expect("a build stage");
    assert!(stages.next().is_some(), "a runtime stage after the build");
    build.to_string()
}

/// Sources of the `COPY` lines of the build stage (relative to the context).
fn copied(stage: &str) -> Vec<PathBuf> {
    stage
        .lines()
        .filter_map(|l| l.trim().strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--from"))
        .flat_map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            parts[..parts.len() - 1]
                .iter()
                .map(PathBuf::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every file `include_str!`/`include_bytes!` reads, from every `.rs` file under `dir`.
fn included_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            included_files(&path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = read(&path);
        for mac in ["include_str!(\"", "include_bytes!(\""] {
            for (at, _) in text.match_indices(mac) {
                let rest = &text[at + mac.len()..];
                let rel = &rest[..rest.find('"').expect("closing quote")];
                let file = path.parent().expect("parent").join(rel);
                out.push(normalize(&file));
            }
        }
    }
}

/// Resolves `..` without touching the file system (the file must exist anyway).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[test]
fn the_docker_build_copies_every_file_the_build_reads() {
    let stage = build_stage();
    let copied: Vec<PathBuf> = copied(&stage).iter().map(|p| root().join(p)).collect();
    let covered = |file: &Path| copied.iter().any(|c| file.starts_with(c));
    for needed in ["Cargo.toml", "Cargo.lock", "src/main.rs", "src/lib.rs"] {
        assert!(
            covered(&root().join(needed)),
            "the Dockerfile does not copy {needed}"
        );
    }
    let mut included = Vec::new();
    included_files(&root().join("src"), &mut included);
    assert!(
        !included.is_empty(),
        "the admin page is compiled in with include_str!"
    );
    for file in included {
        assert!(file.exists(), "{} is included but missing", file.display());
        assert!(
            covered(&file),
            "the build reads {} but the Dockerfile does not copy it",
            file.display()
        );
    }
}

#[test]
fn the_docker_build_is_the_tested_build_unless_asked_otherwise() {
    let stage = build_stage();
    let build = stage
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(
        build.contains("--release") && build.contains("--locked"),
        "{build}"
    );
    assert!(!build.contains("--no-default-features"), "{build}");
    // Features only through the FEATURES build argument, empty by default: the default image
    // is the binary `cargo test` tests; `--build-arg FEATURES=impersonate` the one CI tests
    // with `--features impersonate`.
    assert!(
        stage.contains("ARG FEATURES=\"\""),
        "FEATURES defaults to none"
    );
    assert!(
        build.contains("${FEATURES:+--features \"$FEATURES\"}"),
        "{build}"
    );
    let compose = read(&root().join("docker-compose.yml"));
    assert!(
        compose.contains("FEATURES: \"${FEATURES:-}\""),
        "compose passes FEATURES through, empty by default"
    );
}

#[test]
fn env_example_names_every_setting_with_its_default() {
    let example = read(&root().join(".env.example"));
    // `NAME=value` lines, commented out or not.
    let lines: Vec<(&str, &str)> = example
        .lines()
        .map(|l| l.trim().trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .collect();
    let cmd = Cli::command();
    let (mut checked, mut missing) = (0, Vec::new());
    for arg in cmd.get_arguments() {
        let Some(env) = arg.get_env().and_then(|e| e.to_str()) else {
            continue;
        };
        checked += 1;
        let values: Vec<&str> = lines
            .iter()
            .filter(|(k, _)| *k == env)
            .map(|(_, v)| v.trim().trim_matches('"'))
            .collect();
        if values.is_empty() {
            missing.push(env.to_string());
            continue;
        }
        if let Some(default) = arg.get_default_values().first().and_then(|d| d.to_str()) {
            assert!(
                values.contains(&default),
                ".env.example gives {env}={values:?}, but its default is {default:?}"
            );
        }
    }
    assert!(
        missing.is_empty(),
        ".env.example does not mention {missing:?}"
    );
    assert!(checked > 30, "only {checked} settings found");
}

#[test]
fn both_readmes_document_every_setting() {
    for readme in ["README.md", "README.zh-CN.md"] {
        let text = read(&root().join(readme));
        let missing: Vec<String> = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env().and_then(|e| e.to_str()).map(str::to_string))
            .filter(|env| !text.contains(&format!("`{env}`")))
            .collect();
        assert!(missing.is_empty(), "{readme} does not document {missing:?}");
    }
}
