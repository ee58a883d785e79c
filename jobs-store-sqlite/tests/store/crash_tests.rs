//! The durability contract under a real SIGKILL: this test runs itself as
//! a child process that writes and then waits to be killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs_core::{JobState, Record, Store};

use super::tests::info;
use super::SqliteStore;

const CHILD_ENV: &str = "JOBS_STORE_CRASH_CHILD";
const RECORDS: u64 = 1000;

/// Kills the child on every path out of the test.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The child's part: job rows, then records, a pause longer than the
/// flush interval, a marker, then nothing until the kill.
fn child(dir: &Path) -> ! {
    let store = SqliteStore::open(&dir.join("store.db")).expect("child open");
    store.save_job(&info(1, JobState::Running)).expect("save");
    store.save_job(&info(2, JobState::Completed)).expect("save");
    // After the last job row: only the background writer puts these on disk.
    for seq in 1..=RECORDS {
        store
            .append(1, seq, Record::output_text(format!("record {seq}")))
            .expect("append");
    }
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(dir.join("ready"), b"").expect("marker");
    loop {
        std::thread::sleep(Duration::from_secs(60));
    }
}

#[test]
fn a_sigkill_loses_nothing_older_than_the_flush_interval() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let name = concat!(
        module_path!(),
        "::a_sigkill_loses_nothing_older_than_the_flush_interval"
    );
    let name = name.split_once("::").map_or(name, |(_, rest)| rest);
    let exe = std::env::current_exe().expect("test binary");
    let mut guard = Guard(
        Command::new(exe)
            .args([name, "--exact", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child"),
    );
    let marker: PathBuf = dir.path().join("ready");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        if let Some(status) = guard.0.try_wait().expect("child status") {
            panic!("the child ended early: {status}");
        }
        assert!(Instant::now() < deadline, "the child never got ready");
        std::thread::sleep(Duration::from_millis(10));
    }
    guard.0.kill().expect("SIGKILL");
    let status = guard.0.wait().expect("reap");
    assert!(!status.success(), "the child was killed");

    let store = SqliteStore::open(&dir.path().join("store.db")).expect("reopen");
    let jobs = store.load_jobs().expect("load");
    let states: Vec<(u64, JobState)> = jobs.iter().map(|j| (j.id, j.state)).collect();
    assert_eq!(
        states,
        vec![(1, JobState::Running), (2, JobState::Completed)]
    );
    let mut seqs = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read(1, after, 300).expect("read");
        let Some((last, _)) = page.last() else { break };
        after = *last;
        seqs.extend(page.iter().map(|(s, _)| *s));
    }
    assert_eq!(seqs, (1..=RECORDS).collect::<Vec<_>>());
    assert_eq!(store.max_seq().expect("max"), RECORDS);
}
