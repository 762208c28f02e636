//! The embedded store after a write failure (a full disk): the failing call closes the file,
//! `/readyz` answers 503 naming it, `el2a_store_writable` drops to 0, and once writes work again
//! the file is reopened by itself (no restart) so conversations continue as before.
//!
//! Two ways to fill the disk: [`WriteFaults`] through the proxy (runs anywhere), and a real
//! 2 MiB tmpfs filled with a filler file, straight against the store (needs root to mount; CI
//! runs it with the ignored tests).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::proc::TempDir;
use common::*;
use enginelabs_2api::simulator::{SimConfig, Simulator};
use enginelabs_2api::store::{
    ConversationRecord, EmbeddedStore, Store, StoreHealth, StoreLimits, WriteFaults,
};
use enginelabs_2api::upstream::{Generation, HistoryRef};
use serde_json::{Value, json};

/// The store-writable gauge is process-wide: the two tests take turns.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn harness(store: EmbeddedStore) -> Harness {
    let sim = Simulator::start(SimConfig::default()).await.unwrap();
    let a = args_for(&sim);
    start_with(sim, a, Arc::new(store) as Arc<dyn Store>).await
}

async fn readyz(h: &Harness) -> (u16, Value) {
    let r = h
        .http
        .get(format!("{}/readyz", h.base))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A question and its follow-up; returns the follow-up's upstream turn number (2 when the
/// follow-up continued the first chat, 1 when it started a new one).
async fn conversation(h: &Harness, question: &str) -> u32 {
    let (status, v) = h
        .chat(json!({"model": "GPT5", "messages": [user(question)]}))
        .await;
    assert_eq!(status, 200, "{v} {:#?}", h.sim.stats().triggers);
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    let follow = json!({"model": "GPT5", "messages": [user(question), assistant(answer), user("and then?")]});
    let (status, v) = h.chat(follow).await;
    assert_eq!(status, 200, "{v} {:#?}", h.sim.stats());
    h.sim.stats().triggers.last().unwrap().turn
}

/// Breaks the disk, checks the outage is reported, heals it, and checks the recovery. Returns
/// the time from healing the disk to `/readyz` answering 200 again.
async fn break_and_heal(
    h: &Harness,
    file: &Path,
    fill: impl FnOnce(),
    heal: impl FnOnce(),
) -> Duration {
    assert_eq!(conversation(h, "before the disk fills").await, 2);
    let (status, v) = readyz(h).await;
    assert_eq!(status, 200, "{v}");

    fill();
    // Answers still come (without memory) until a write needs space the disk no longer has,
    // which closes the file (at once with the injected fault; the tmpfs may hold a few more).
    let mut rounds = 0;
    let (status, v) = loop {
        rounds += 1;
        conversation(h, &format!("while the disk is full, {rounds}")).await;
        let (status, v) = readyz(h).await;
        if status != 200 || rounds == 20 {
            break (status, v);
        }
    };
    assert_eq!(status, 503, "{v}");
    assert_eq!(
        conversation(h, "while the store is closed").await,
        1,
        "a closed store remembers nothing"
    );
    let reason = v["reason"].as_str().unwrap();
    assert!(reason.contains(&file.display().to_string()), "{reason}");
    assert!(reason.contains("cannot be written"), "{reason}");
    let scrape = h.scrape().await;
    assert_eq!(scrape.total("el2a_store_writable"), Some(0.0));
    assert!(scrape.total("el2a_store_errors_total").unwrap() >= 1.0);

    heal();
    let healed = Instant::now();
    let mut ready = false;
    while healed.elapsed() < Duration::from_secs(40) {
        if readyz(h).await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let took = healed.elapsed();
    eprintln!("the store closed after {rounds} conversation(s) on the full disk");
    assert!(ready, "the store was reopened without a restart");
    assert_eq!(h.scrape().await.total("el2a_store_writable"), Some(1.0));
    assert_eq!(
        conversation(h, "after the disk has room").await,
        2,
        "follow-ups continue their chat again"
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_disk_full_closes_the_store_and_it_reopens_once_writes_work() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = TempDir::new("store-full");
    let path = dir.0.join("store.redb");
    let faults = Arc::new(WriteFaults::default());
    let store = EmbeddedStore::open_with_faults(&path, StoreLimits::default(), Arc::clone(&faults))
        .unwrap();
    let h = harness(store).await;
    let took = break_and_heal(
        &h,
        &path,
        || faults.set_disk_full(true),
        || faults.set_disk_full(false),
    )
    .await;
    eprintln!("store recovery after the disk had room: {took:?}");
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs at {} (needs root)", dir.display());
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the proxy's tasks (and its open store file) outlive the test body a little.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Writes zeros to `path` until the file system is full.
fn fill_up(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
}

/// A record with a large Responses transcript, so that storing it needs new pages.
fn big_record(n: u32) -> ConversationRecord {
    ConversationRecord {
        account_id: "acct".into(),
        history: HistoryRef {
            generation: Generation::Gen1,
            chat_history_id: format!("chat-{n}"),
            workspace_id: None,
        },
        turns: 1,
        model: "GPT5".into(),
        last_used_ms: 0,
        transcript: Some("x".repeat(64 * 1024)),
    }
}

/// Straight against the store (the proxy's side is the test above): the kernel's own ENOSPC
/// from a full tmpfs, after which redb refuses every call until it is reopened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "mounts a tmpfs: needs root (CI runs as root with --include-ignored)"]
async fn a_real_full_tmpfs_closes_the_store_and_it_reopens_once_space_is_back() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = TempDir::new("store-tmpfs");
    let _mounted = Tmpfs::mount(&dir.0, "2m");
    let path = dir.0.join("store.redb");
    let filler = dir.0.join("filler");
    let store = EmbeddedStore::open(&path, StoreLimits::default()).unwrap();
    store
        .put_conversation("first", &big_record(0))
        .await
        .unwrap();
    assert_eq!(store.health().await, StoreHealth::Writable);

    fill_up(&filler);
    let mut failed = None;
    for n in 1..=64 {
        if let Err(e) = store
            .put_conversation(&format!("k{n}"), &big_record(n))
            .await
        {
            failed = Some(e);
            break;
        }
    }
    let err = failed.expect("a write fails once the tmpfs is full");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let StoreHealth::Unwritable(why) = store.health().await else {
        panic!("a store that cannot write is not healthy");
    };
    assert!(why.contains(&path.display().to_string()), "{why}");
    // Reads fail too while the file is closed: the store says so instead of guessing.
    assert!(store.take_conversation("first").await.is_err());

    std::fs::remove_file(&filler).unwrap();
    let healed = Instant::now();
    while store.health().await != StoreHealth::Writable {
        assert!(healed.elapsed() < Duration::from_secs(40), "reopened");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    eprintln!(
        "store recovery after the tmpfs had room: {:?}",
        healed.elapsed()
    );
    store
        .put_conversation("after", &big_record(99))
        .await
        .unwrap();
    assert_eq!(
        store.take_conversation("after").await.unwrap(),
        Some(big_record(99))
    );
    assert_eq!(
        store.take_conversation("first").await.unwrap(),
        Some(big_record(0))
    );
}
