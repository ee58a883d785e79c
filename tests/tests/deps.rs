//! Dependencies between jobs (`start --after`, `--after-any`), with real
//! processes, a real sshd and a daemon killed with SIGKILL.

use std::path::Path;
use std::time::Duration;

use jobctl_tests::{eventually, kill9, TestHome};

use crate::remote::{ok as ok_remote, Sshd};

fn id(n: u64) -> String {
    n.to_string()
}

fn state(home: &TestHome, job: u64) -> String {
    home.job(job)["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn reason(home: &TestHome, job: u64) -> String {
    home.job(job)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A shell line that waits until `file` exists (the test's go signal).
pub(crate) fn until(file: &Path) -> String {
    // Also ends once the test's folder is gone (removed when the test ends,
    // passed or failed), so no job outlives its test.
    let dir = file.parent().unwrap_or(file);
    format!(
        "while [ ! -e '{}' ] && [ -d '{}' ]; do sleep 0.05; done",
        file.display(),
        dir.display()
    )
}

#[test]
fn a_failed_dependency_fails_after_jobs_without_running_them_and_after_any_runs() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (b_mark, c_mark) = (dir.path().join("b"), dir.path().join("c"));
    let a = home.start(&["--name", "build", "-c", "sleep 1; exit 1"]);
    let b_line = format!("touch '{}'", b_mark.display());
    let b = home.start(&["--name", "test", "--after", &id(a), "-c", &b_line]);
    let c_line = format!("touch '{}'", c_mark.display());
    let c = home.start(&["--after-any", &id(a), "-c", &c_line]);
    let waiting = home.job(b);
    assert_eq!(waiting["state"], "NotStarted");
    assert_eq!(waiting["after"], serde_json::json!([a]));
    assert_eq!(waiting["after_any"], serde_json::json!([]));
    assert_eq!(home.job(c)["after_any"], serde_json::json!([a]));
    let shown = home.ok(&["show", &id(b)]);
    let line = shown
        .lines()
        .find(|l| l.starts_with("Waits for"))
        .unwrap_or_else(|| panic!("no Waits for in {shown}"));
    assert!(line.ends_with(&format!(": {a} (build)")), "{line}");
    home.ok(&["wait", &id(b), &id(c)]);
    assert_eq!(state(&home, b), "Failed");
    assert_eq!(reason(&home, b), format!("dependency {a} (build) failed"));
    assert!(!b_mark.exists(), "the job after a failed one ran");
    assert_eq!(state(&home, c), "Completed");
    assert!(c_mark.exists(), "the after-any job did not run");
    // Receiving from it says why.
    let r = home.run(&["receive", &id(b)]);
    assert!(r.stderr.contains("dependency"), "{}", r.stderr);
}

#[test]
fn a_chain_of_100_jobs_runs_strictly_in_order() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("chain");
    let mut prev: Option<u64> = None;
    for i in 1..=100 {
        let line = format!("echo {i} >> '{}'", file.display());
        let mut args = vec!["-c", &line];
        let after;
        if let Some(p) = prev {
            after = id(p);
            args.extend(["--after", &after]);
        }
        prev = Some(home.start(&args));
    }
    let last = prev.expect("100 jobs");
    home.ok(&["wait", &id(last)]);
    assert_eq!(state(&home, last), "Completed");
    let got = std::fs::read_to_string(&file).expect("the chain's file");
    let want: String = (1..=100).map(|i| format!("{i}\n")).collect();
    assert_eq!(got, want);
}

#[test]
fn a_diamond_runs_its_last_job_once_after_both_branches() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("order");
    let step =
        |name: &str, pause: &str| format!("sleep {pause}; echo {name} >> '{}'", file.display());
    let a = home.start(&["-c", &step("a", "0.2")]);
    let b = home.start(&["--after", &id(a), "-c", &step("b", "0.5")]);
    let c = home.start(&["--after", &id(a), "-c", &step("c", "0")]);
    let d = home.start(&["--after", &format!("{b},{c}"), "-c", &step("d", "0")]);
    home.ok(&["wait", &id(d)]);
    assert_eq!(state(&home, d), "Completed");
    assert_eq!(home.job(d)["after"], serde_json::json!([b, c]));
    let got = std::fs::read_to_string(&file).expect("order");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert_eq!((lines[0], lines[3]), ("a", "d"), "{got}");
}

#[test]
fn unknown_ids_are_a_usage_error_and_nothing_starts() {
    let home = TestHome::new();
    let a = home.start(&["--", "true"]);
    let r = home.run(&["start", "--after", &format!("{a},99"), "--", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no job with id 99"), "{}", r.stderr);
    let r = home.run(&["start", "--after-any", &id(a + 1), "--", "true"]);
    assert_eq!(r.code, 2, "a job cannot wait for itself: {}", r.stderr);
    let r = home.run(&["start", "--after", "x", "--", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let listed: serde_json::Value =
        serde_json::from_str(&home.ok(&["list", "--json"])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
}

#[test]
fn stopping_a_waiting_job_and_removing_a_dependency_fail_the_dependents_with_a_reason() {
    let home = TestHome::new();
    let a = home.start(&["--name", "long", "--", "sleep", "60"]);
    let b = home.start(&["--name", "wait1", "--after", &id(a), "--", "true"]);
    let c = home.start(&["--after", &id(b), "--", "true"]);
    let d = home.start(&["--after", &id(a), "--", "true"]);
    home.ok(&["stop", &id(b)]);
    assert_eq!(state(&home, b), "Stopped");
    assert_eq!(
        reason(&home, c),
        format!("dependency {b} (wait1) was stopped")
    );
    assert_eq!(state(&home, d), "NotStarted");
    home.ok(&["rm", "--force", &id(a)]);
    assert_eq!(state(&home, d), "Failed");
    assert_eq!(
        reason(&home, d),
        format!("dependency {a} (long) was removed")
    );
}

#[test]
fn a_batch_can_wait_for_a_job_and_a_job_for_a_batch() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let items = dir.path().join("items");
    std::fs::write(&items, "x\ny\n").expect("items");
    let file = dir.path().join("order");
    let go = dir.path().join("go");
    let a = home.start(&[
        "-c",
        &format!("{}; echo a >> '{}'", until(&go), file.display()),
    ]);
    let line = format!("echo {{}} >> '{}'", file.display());
    let batch = home.start(&[
        "--each",
        items.to_str().expect("utf8"),
        "--after",
        &id(a),
        "-c",
        &line,
    ]);
    let z = home.start(&[
        "--after",
        &id(batch),
        "-c",
        &format!("echo z >> '{}'", file.display()),
    ]);
    let children = home.job(batch)["children"].clone();
    let kids: Vec<u64> = children
        .as_array()
        .expect("children")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect();
    assert_eq!(kids.len(), 2);
    for k in &kids {
        assert_eq!(state(&home, *k), "NotStarted");
    }
    std::fs::write(&go, "").expect("go");
    home.ok(&["wait", &id(z)]);
    assert_eq!(state(&home, batch), "Completed");
    let got = std::fs::read_to_string(&file).expect("order");
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 4, "{got}");
    assert_eq!((lines[0], lines[3]), ("a", "z"), "{got}");
}

#[test]
fn dependencies_cross_job_types_remote_then_process_then_thread() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (r_mark, p_mark) = (dir.path().join("r"), dir.path().join("p"));
    let host = format!("127.0.0.1:{}", sshd.port);
    let start = |args: &[&str]| -> u64 {
        let mut all = vec!["start", "-q"];
        all.extend_from_slice(args);
        ok_remote(&home, &sshd, &all).trim().parse().expect("an id")
    };
    let r_line = format!("sleep 0.5; touch '{}'", r_mark.display());
    let r = start(&["--host", &host, "--name", "deploy-build", "-c", &r_line]);
    let p_line = format!(
        "test -e '{}' && touch '{}'",
        r_mark.display(),
        p_mark.display()
    );
    let p = start(&["--after", &id(r), "-c", &p_line]);
    let t = start(&[
        "--type",
        "thread",
        "--after",
        &id(p),
        "-e",
        "\"after both\"",
    ]);
    ok_remote(&home, &sshd, &["wait", &id(t)]);
    let (rj, pj, tj) = (home.job(r), home.job(p), home.job(t));
    assert_eq!(rj["state"], "Completed", "{rj}");
    assert_eq!(
        pj["state"], "Completed",
        "the process job ran before the remote one ended: {pj}"
    );
    assert!(p_mark.exists());
    assert_eq!(tj["state"], "Completed", "{tj}");
    assert_eq!(tj["type"], "ThreadJob");
    // RFC 3339 UTC times of one format compare as text.
    let (p_end, t_begin) = (pj["end"].as_str(), tj["begin"].as_str());
    assert!(
        t_begin >= p_end,
        "the thread job began at {t_begin:?}, before {p_end:?}"
    );
    assert_eq!(home.ok(&["receive", &id(t)]), "after both\n");
}

/// Kills the daemon with SIGKILL and waits until it is gone.
pub(crate) fn crash(home: &TestHome) {
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    assert!(
        eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the daemon is gone"
    );
}

#[test]
fn a_sigkilled_daemon_keeps_a_waiting_job_waiting_until_its_detached_dependency_completes() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (go, mark) = (dir.path().join("go"), dir.path().join("d"));
    let a = home.start(&["--detached", "--name", "a", "-c", &until(&go)]);
    let b = home.start(&["--", "true"]);
    home.ok(&["wait", &id(b)]);
    let d_line = format!("touch '{}'", mark.display());
    let d = home.start(&["--after", &format!("{a},{b}"), "-c", &d_line]);
    crash(&home);
    // The next command starts a new daemon, which restores the table.
    assert_eq!(state(&home, d), "NotStarted");
    assert_eq!(state(&home, a), "Running");
    assert!(!mark.exists());
    std::fs::write(&go, "").expect("go");
    home.ok(&["wait", &id(d)]);
    assert_eq!(state(&home, a), "Completed");
    assert_eq!(state(&home, d), "Completed", "{}", reason(&home, d));
    assert!(mark.exists(), "the waiting job did not run");
}

#[test]
fn a_sigkilled_daemon_ends_an_attached_dependency_and_its_waiting_job_fails_naming_it() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let mark = dir.path().join("d");
    let a = home.start(&["--name", "attached", "--", "sleep", "60"]);
    let b = home.start(&["--", "true"]);
    home.ok(&["wait", &id(b)]);
    let d_line = format!("touch '{}'", mark.display());
    let d = home.start(&["--after", &format!("{a},{b}"), "-c", &d_line]);
    crash(&home);
    assert_eq!(state(&home, a), "Failed");
    assert_eq!(state(&home, d), "Failed");
    assert_eq!(
        reason(&home, d),
        format!("dependency {a} (attached) failed")
    );
    assert!(!mark.exists());
}

#[test]
fn a_daemon_stop_keeps_a_waiting_job_waiting_for_the_next_session() {
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let (go, mark) = (dir.path().join("go"), dir.path().join("d"));
    let a = home.start(&["--detached", "-c", &until(&go)]);
    let d_line = format!("touch '{}'", mark.display());
    let d = home.start(&["--after-any", &id(a), "-c", &d_line]);
    home.ok(&["daemon", "stop"]);
    assert_eq!(state(&home, d), "NotStarted");
    std::fs::write(&go, "").expect("go");
    home.ok(&["wait", &id(d)]);
    assert_eq!(state(&home, d), "Completed");
    assert!(mark.exists());
}
