//! The checks only the embedded (redb) store has: its file survives a drop and a SIGKILL, is
//! private to its owner, and a corrupt, locked or unreachable file is an open error naming it.

mod common;

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::proc::TempDir;
use common::store::{account, long_ttl, record};
use enginelabs_2api::store::{EmbeddedStore, Store, StoreError, StoreKind, open_store};

#[tokio::test]
async fn embedded_data_survives_drop_and_reopen() {
    let dir = TempDir::new("reopen");
    let path = dir.0.join("nested/deeper/store.redb");
    {
        let store = EmbeddedStore::open(&path, long_ttl()).expect("first open creates dirs");
        store
            .put_conversation("kept", &record(7))
            .await
            .expect("put");
        store
            .put_conversation("taken", &record(8))
            .await
            .expect("put");
        store.take_conversation("taken").await.expect("take");
        store
            .put_account(&account("seed", "cookie-rotated"))
            .await
            .expect("put");
        store.secret("kept-secret", b"v1").await.expect("secret");
    }
    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen");
    assert_eq!(
        store.secret("kept-secret", b"v2").await.expect("secret"),
        b"v1"
    );
    assert_eq!(store.conversation_count().await.expect("count"), 1);
    assert_eq!(store.take_conversation("taken").await.expect("take"), None);
    assert_eq!(
        store.take_conversation("kept").await.expect("take"),
        Some(record(7))
    );
    assert_eq!(
        store.get_account("seed").await.expect("get"),
        Some(account("seed", "cookie-rotated"))
    );
}

#[tokio::test]
async fn embedded_file_is_private() {
    let dir = TempDir::new("mode");
    let fresh = dir.0.join("fresh.redb");
    drop(EmbeddedStore::open(&fresh, long_ttl()).expect("open"));
    let mode = std::fs::metadata(&fresh)
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "new file mode {mode:o}");

    // An existing file with a wider mode is narrowed.
    let wide = dir.0.join("wide.redb");
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o644)
        .open(&wide)
        .expect("create");
    std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    drop(EmbeddedStore::open(&wide, long_ttl()).expect("open"));
    let mode = std::fs::metadata(&wide).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "narrowed mode {mode:o}");
}

fn assert_open_error_names(result: Result<EmbeddedStore, StoreError>, path: &Path) {
    let shown = path.display().to_string();
    match result {
        Err(err @ StoreError::Open { .. }) => {
            let StoreError::Open { path: named, .. } = &err else {
                unreachable!()
            };
            assert_eq!(named, &shown);
            assert!(
                err.to_string().contains(&shown),
                "message names the file: {err}"
            );
        }
        Err(other) => panic!("expected StoreError::Open, got {other:?}"),
        Ok(_) => panic!("expected StoreError::Open, the open succeeded"),
    }
}

#[tokio::test]
async fn embedded_corrupt_file_is_an_open_error_naming_it() {
    let dir = TempDir::new("corrupt");
    let path = dir.0.join("garbage.redb");
    let garbage: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&path, garbage).expect("write garbage");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);

    // Text that is not a database at all.
    let text = dir.0.join("text.redb");
    std::fs::write(&text, b"this is not a redb file\n").expect("write text");
    assert_open_error_names(EmbeddedStore::open(&text, long_ttl()), &text);

    // Through open_store too.
    match open_store(StoreKind::Embedded { path: path.clone() }, long_ttl()).await {
        Err(StoreError::Open { path: named, .. }) => assert_eq!(named, path.display().to_string()),
        other => panic!("expected StoreError::Open, got {:?}", other.err()),
    }
}

#[tokio::test]
async fn embedded_locked_file_is_an_open_error_naming_it() {
    let dir = TempDir::new("locked");
    let path = dir.0.join("busy.redb");
    let _holder = EmbeddedStore::open(&path, long_ttl()).expect("first open");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);
}

#[tokio::test]
async fn embedded_unwritable_directory_is_an_open_error() {
    // A regular file where the parent directory should be.
    let dir = TempDir::new("notdir");
    let blocker = dir.0.join("blocker");
    std::fs::write(&blocker, b"x").expect("write");
    let path = blocker.join("store.redb");
    assert_open_error_names(EmbeddedStore::open(&path, long_ttl()), &path);
}

// ---------------------------------------------------------------- crash safety

/// Set in the child process of [`embedded_sigkill_keeps_committed_writes`]: the path to write.
const CRASH_CHILD_ENV: &str = "EL2A_STORE_CRASH_CHILD_PATH";

/// Re-runs this test binary as a child that writes mappings, reports them committed, and is
/// then killed with SIGKILL; every reported write must be there on reopen.
#[tokio::test]
async fn embedded_sigkill_keeps_committed_writes() {
    if let Ok(path) = std::env::var(CRASH_CHILD_ENV) {
        // Child side: write, say so, then wait to be killed.
        let store = EmbeddedStore::open(Path::new(&path), long_ttl()).expect("child open");
        for n in 0..20 {
            store
                .put_conversation(&format!("crash-{n}"), &record(n))
                .await
                .expect("child put");
        }
        store
            .put_account(&account("crash-seed", "crash-cookie"))
            .await
            .expect("child put account");
        println!("committed");
        use std::io::Write as _;
        std::io::stdout().flush().expect("flush");
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }

    let dir = TempDir::new("crash");
    let path = dir.0.join("crash.redb");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "embedded_sigkill_keeps_committed_writes",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("child stdout");
    let committed = tokio::task::spawn_blocking(move || {
        use std::io::BufRead as _;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("committed"))
    })
    .await
    .expect("reader");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    assert!(committed, "the child never reported its writes");

    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen after SIGKILL");
    assert_eq!(store.conversation_count().await.expect("count"), 20);
    for n in 0..20 {
        let key = format!("crash-{n}");
        assert_eq!(
            store.take_conversation(&key).await.expect("take"),
            Some(record(n))
        );
    }
    assert_eq!(
        store.get_account("crash-seed").await.expect("get"),
        Some(account("crash-seed", "crash-cookie"))
    );
}

/// The embedded store's conversation writes return before their commit; a flush (or dropping
/// the store) commits them, so a burst queued just before a shutdown is all in the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_queued_writes_are_in_the_file_after_a_flush_or_a_drop() {
    let dir = TempDir::new("batch");
    let path = dir.0.join("batch.redb");
    let store = Arc::new(
        EmbeddedStore::open(&path, long_ttl())
            .expect("open")
            .write_behind(),
    );
    for n in 0..300u32 {
        store
            .put_conversation(&format!("flushed-{n}"), &record(n))
            .await
            .expect("put");
    }
    store.flush().await.expect("flush");
    for n in 0..100u32 {
        store
            .put_conversation(&format!("dropped-{n}"), &record(n))
            .await
            .expect("put");
    }
    drop(store);
    let store = EmbeddedStore::open(&path, long_ttl()).expect("reopen");
    assert_eq!(store.conversation_count().await.expect("count"), 400);
    for (prefix, count) in [("flushed", 300u32), ("dropped", 100)] {
        for n in 0..count {
            assert_eq!(
                store
                    .take_conversation(&format!("{prefix}-{n}"))
                    .await
                    .expect("take"),
                Some(record(n)),
                "{prefix}-{n}"
            );
        }
    }
}
