//! A batch that waits for another job (`start --each --after`) outlives
//! its daemon: a SIGKILL, or `daemon stop`, and the next session has it
//! waiting still, then runs every item exactly once.

use std::path::Path;

use jobctl_tests::TestHome;

use crate::deps::{crash, until};

fn id(n: u64) -> String {
    n.to_string()
}

/// A batch of items `a`, `b`, `c` after `dep`, each appending its item to
/// `log`. Returns the batch's id and its children's.
fn waiting_batch(home: &TestHome, dir: &Path, dep: u64, log: &Path) -> (u64, Vec<u64>) {
    let items = dir.join("items");
    std::fs::write(&items, "a\nb\nc\n").expect("items");
    let line = format!("echo {{}} >> '{}'", log.display());
    let batch = home.start(&[
        "--name",
        "fan",
        "--each",
        items.to_str().expect("utf8"),
        "--after",
        &id(dep),
        "-c",
        &line,
    ]);
    let kids = children(home, batch);
    assert_eq!(kids.len(), 3);
    (batch, kids)
}

fn children(home: &TestHome, batch: u64) -> Vec<u64> {
    home.job(batch)["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect()
}

/// Asserts the batch and each child are still waiting, nothing ran.
fn still_waiting(home: &TestHome, batch: u64, kids: &[u64], log: &Path) {
    let row = home.job(batch);
    assert_eq!(
        row["state"],
        "NotStarted",
        "{row}\nthe daemon's log ends:\n{}",
        home.log_tail(20)
    );
    assert_eq!(children(home, batch), kids, "the same children");
    for &k in kids {
        let row = home.job(k);
        assert_eq!(row["state"], "NotStarted", "{row}");
    }
    assert!(!log.exists(), "an item ran before its dependency ended");
}

/// Releases the dependency and checks every item ran exactly once.
fn runs_each_item_once(home: &TestHome, go: &Path, batch: u64, kids: &[u64], log: &Path) {
    std::fs::write(go, "").expect("go");
    home.ok(&["wait", &id(batch)]);
    let row = home.job(batch);
    assert_eq!(row["state"], "Completed", "{row}");
    for &k in kids {
        let row = home.job(k);
        assert_eq!(row["state"], "Completed", "{row}");
        assert_eq!(row["attempts"], 1, "{row}");
    }
    let got = std::fs::read_to_string(log).expect("the items ran");
    let mut lines: Vec<&str> = got.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["a", "b", "c"], "each item once: {got:?}");
}

#[test]
fn a_sigkilled_daemon_keeps_a_waiting_batch_waiting_until_its_detached_dependency_completes() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (go, log) = (dir.path().join("go"), dir.path().join("log"));
    let a = home.start(&["--detached", "--name", "build", "-c", &until(&go)]);
    let (batch, kids) = waiting_batch(&home, dir.path(), a, &log);
    crash(&home);
    // The next command starts a new daemon, which restores the table.
    still_waiting(&home, batch, &kids, &log);
    assert_eq!(home.job(a)["state"], "Running");
    // A second crash while it waits again changes nothing.
    crash(&home);
    still_waiting(&home, batch, &kids, &log);
    runs_each_item_once(&home, &go, batch, &kids, &log);
}

#[test]
fn a_sigkilled_daemon_ends_an_attached_dependency_and_its_waiting_batch_fails_naming_it() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let log = dir.path().join("log");
    let a = home.start(&["--name", "attached", "--", "sleep", "60"]);
    let (batch, kids) = waiting_batch(&home, dir.path(), a, &log);
    crash(&home);
    let row = home.job(batch);
    assert_eq!(row["state"], "Failed", "{row}");
    assert_eq!(
        row["reason"],
        format!("dependency {a} (attached) failed"),
        "{row}"
    );
    for &k in &kids {
        let row = home.job(k);
        assert_eq!(row["state"], "Stopped", "{row}");
    }
    assert!(!log.exists(), "an item ran");
}

#[test]
fn a_daemon_stop_keeps_a_waiting_batch_waiting_for_the_next_session() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (go, log) = (dir.path().join("go"), dir.path().join("log"));
    let a = home.start(&["--detached", "--name", "build", "-c", &until(&go)]);
    let (batch, kids) = waiting_batch(&home, dir.path(), a, &log);
    home.ok(&["daemon", "stop"]);
    still_waiting(&home, batch, &kids, &log);
    runs_each_item_once(&home, &go, batch, &kids, &log);
}
