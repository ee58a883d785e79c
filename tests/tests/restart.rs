//! Lifecycle control: `restart` (a new job from the stored spec, and a
//! batch's failed children in place), retries with a delay, and `stop
//! --signal --grace`.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use jobctl_tests::{alive, eventually, kill9, TestHome};

const LONG: Duration = Duration::from_secs(60);

/// Waits (bounded) until job `id` is finished; returns its row.
fn finished(home: &TestHome, id: u64) -> serde_json::Value {
    home.ok(&["wait", &id.to_string(), "--force", "--timeout", "120"]);
    home.job(id)
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `jobctl start -q` run from `dir` with `vars` added to its environment.
fn start_in(home: &TestHome, dir: &Path, vars: &[(&str, &str)], args: &[&str]) -> u64 {
    let mut all = vec!["start", "-q"];
    all.extend_from_slice(args);
    let mut cmd = home.cmd(&all);
    cmd.current_dir(dir);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run jobctl start");
    assert!(
        out.status.success(),
        "start failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("start printed an id")
}

fn time(v: &serde_json::Value) -> SystemTime {
    let s = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    // RFC 3339 in UTC with microseconds: 2026-12-06T23:29:22.118313Z.
    let (date, clock) = s.trim_end_matches('Z').split_once('T').expect("a time");
    let d: Vec<i64> = date.split('-').map(|p| p.parse().expect("date")).collect();
    let (hms, micros) = clock.split_once('.').unwrap_or((clock, "0"));
    let t: Vec<i64> = hms.split(':').map(|p| p.parse().expect("clock")).collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + t[0] * 3600 + t[1] * 60 + t[2];
    let micros: u64 = format!("{micros:0<6}")[..6].parse().expect("micros");
    SystemTime::UNIX_EPOCH
        + Duration::from_secs(u64::try_from(secs).expect("after 1970"))
        + Duration::from_micros(micros)
}

#[test]
fn restart_runs_in_the_first_starts_directory_and_environment() {
    let home = TestHome::new();
    let work = tempfile::tempdir().expect("tempdir");
    let first_dir = work.path().join("first");
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&first_dir).expect("mkdir");
    std::fs::create_dir(&elsewhere).expect("mkdir");
    let marker = work.path().join("marker");
    let line = format!(
        "echo \"$(pwd) $RESTART_MARK\" >> '{}'; exit 3",
        marker.display()
    );
    let id = start_in(
        &home,
        &first_dir,
        &[("RESTART_MARK", "first-start")],
        &["--name", "flaky", "-c", &line],
    );
    assert_eq!(finished(&home, id)["state"], "Failed");

    // From another directory, with another value of the variable.
    let mut cmd = home.cmd(&["restart", &id.to_string()]);
    cmd.current_dir(&elsewhere).env("RESTART_MARK", "changed");
    let out = cmd.output().expect("run restart");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    let row = table.lines().nth(2).expect("restart prints the new row");
    let new: u64 = row
        .split_whitespace()
        .next()
        .and_then(|w| w.parse().ok())
        .expect("an id");
    assert_ne!(new, id);
    assert!(row.contains("flaky"), "the name is kept: {table}");

    let job = finished(&home, new);
    assert_eq!(job["state"], "Failed", "{job}");
    assert_eq!(job["exit_code"], 3, "{job}");
    assert_eq!(job["restarted_from"], id, "{job}");
    assert_eq!(job["name"], "flaky");
    assert!(home.job(id).get("restarted_from").is_none());
    let want = format!("{} first-start", first_dir.display());
    assert_eq!(lines(&marker), [want.clone(), want]);

    // -q prints the id alone, and a restart of a restart works the same.
    let again = home.ok(&["restart", "-q", &new.to_string()]);
    let again: u64 = again.trim().parse().expect("an id");
    assert_eq!(finished(&home, again)["restarted_from"], new);
    assert_eq!(lines(&marker).len(), 3);
}

#[test]
fn restart_after_the_daemon_was_killed_uses_the_stored_spec() {
    let home = TestHome::new();
    let work = tempfile::tempdir().expect("tempdir");
    let marker = work.path().join("runs");
    let line = format!("echo \"$CRASH_MARK\" >> '{}'; exit 1", marker.display());
    let id = start_in(
        &home,
        work.path(),
        &[("CRASH_MARK", "kept")],
        &["--retries", "1", "-c", &line],
    );
    let job = finished(&home, id);
    assert_eq!(job["attempts"], 2, "{job}");
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    assert!(
        eventually(LONG, || !alive(pid)),
        "the killed daemon lingers"
    );
    // The next command starts a new daemon over the same store.
    let out = home.ok(&["restart", "-q", &id.to_string()]);
    let new: u64 = out.trim().parse().expect("an id");
    let job = finished(&home, new);
    assert_eq!(job["restarted_from"], id, "{job}");
    assert_eq!(job["state"], "Failed", "{job}");
    assert_eq!(job["attempts"], 2, "the retries are kept: {job}");
    assert_eq!(lines(&marker), ["kept"; 4]);
}

#[test]
fn restart_failed_reruns_exactly_the_failed_items_in_place() {
    let home = TestHome::new();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path().display().to_string();
    let items = work.path().join("items");
    std::fs::write(&items, "a\nb\nc\nd\ne\n").expect("items");
    let line = format!(
        "echo run >> '{dir}'/{{}}.runs; [ -e '{dir}'/fixed ] || case {{}} in b|d) exit 1;; esac"
    );
    let id = home.start(&[
        "--each",
        items.to_str().expect("utf-8"),
        "--name",
        "batch",
        "-c",
        &line,
    ]);
    let parent = finished(&home, id);
    assert_eq!(parent["state"], "Failed", "{parent}");
    let children: Vec<u64> = parent["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c.as_u64().expect("id"))
        .collect();
    assert_eq!(children.len(), 5);

    // Not a batch, and a child: usage errors; a running job: refused.
    let single = home.start(&["--", "sleep", "60"]);
    let r = home.run(&["restart", &single.to_string(), "--failed"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a batch"), "{}", r.stderr);
    let r = home.run(&["restart", &single.to_string()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("Running"), "{}", r.stderr);
    let r = home.run(&["restart", &children[1].to_string()]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    home.ok(&["stop", "-q", &single.to_string()]);

    std::fs::write(work.path().join("fixed"), "").expect("fix");
    let out = home.ok(&["restart", &id.to_string(), "--failed"]);
    assert!(out.contains("batch"), "the batch's row: {out}");
    let parent = finished(&home, id);
    assert_eq!(parent["state"], "Completed", "{parent}");
    assert_eq!(parent["reason"], serde_json::Value::Null, "{parent}");
    let after: Vec<u64> = parent["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c.as_u64().expect("id"))
        .collect();
    assert_eq!(after, children, "the same children, in place");
    for (item, runs) in [("a", 1), ("b", 2), ("c", 1), ("d", 2), ("e", 1)] {
        let n = lines(&work.path().join(format!("{item}.runs"))).len();
        assert_eq!(n, runs, "item {item} ran {n} times");
    }
    for (i, &c) in children.iter().enumerate() {
        let child = home.job(c);
        assert_eq!(child["state"], "Completed", "{child}");
        let attempts = if i == 1 || i == 3 { 2 } else { 1 };
        assert_eq!(child["attempts"], attempts, "{child}");
    }
    // Nothing failed is left: a second rerun changes nothing.
    home.ok(&["restart", &id.to_string(), "--failed"]);
    assert_eq!(home.job(id)["state"], "Completed");
    assert_eq!(lines(&work.path().join("b.runs")).len(), 2);
}

#[test]
fn retries_wait_their_delay_and_a_stop_during_it_ends_them() {
    let home = TestHome::new();
    let work = tempfile::tempdir().expect("tempdir");
    let count = work.path().join("count");
    let line = format!(
        "n=$(cat '{c}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{c}'; [ $n -ge 3 ]",
        c = count.display()
    );
    let id = home.start(&["--retries", "2", "--retry-delay", "1", "-c", &line]);
    let job = finished(&home, id);
    assert_eq!(job["state"], "Completed", "{job}");
    assert_eq!(job["attempts"], 3, "{job}");
    let took = time(&job["end"])
        .duration_since(time(&job["begin"]))
        .expect("end after begin");
    assert!(
        took >= Duration::from_millis(1900),
        "two delays of 1s: {took:?}"
    );
    let r = home.run(&["receive", &id.to_string()]);
    assert!(r.stderr.contains("INFO: attempt 2 of 3"), "{}", r.stderr);
    assert!(r.stderr.contains("INFO: attempt 3 of 3"), "{}", r.stderr);

    // A stop while the job waits for its next attempt ends it at once.
    let ran = work.path().join("ran");
    let line = format!("touch '{}'; exit 1", ran.display());
    let id = home.start(&["--retries", "5", "--retry-delay", "10m", "-c", &line]);
    assert!(eventually(LONG, || ran.exists()));
    // The attempt has ended a moment after its file appeared.
    std::thread::sleep(Duration::from_millis(500));
    let begin = Instant::now();
    let out = home.ok(&["stop", &id.to_string()]);
    assert!(out.contains("Stopped"), "{out}");
    assert!(
        begin.elapsed() < Duration::from_secs(60),
        "the delay held the stop"
    );
    let job = home.job(id);
    assert_eq!(job["state"], "Stopped", "{job}");
    assert_eq!(job["attempts"], 1, "no attempt after the stop: {job}");
}

#[test]
fn stop_signal_reaches_the_jobs_trap_before_any_kill() {
    let home = TestHome::new();
    let work = tempfile::tempdir().expect("tempdir");
    let marker = work.path().join("int");
    let line = format!(
        "trap 'echo got-int > \"{}\"; exit 0' INT; echo ready; while :; do sleep 0.1; done",
        marker.display()
    );
    let id = home.start(&["-c", &line]);
    let sid = id.to_string();
    assert!(eventually(LONG, || home
        .ok(&["receive", &sid, "--keep"])
        .contains("ready")));
    let out = home.ok(&["stop", &sid, "--signal", "INT", "--grace", "60"]);
    assert!(out.contains("Stopped"), "{out}");
    assert_eq!(lines(&marker), ["got-int"], "the trap ran");
    let job = home.job(id);
    assert_eq!(job["state"], "Stopped", "{job}");
    assert_eq!(job["reason"], serde_json::Value::Null, "not killed: {job}");

    // A job that ignores the signal is killed once the grace passed.
    let id = home.start(&["-c", "trap '' INT; echo ready; sleep 300"]);
    let sid = id.to_string();
    assert!(eventually(LONG, || home
        .ok(&["receive", &sid, "--keep"])
        .contains("ready")));
    let begin = Instant::now();
    home.ok(&["stop", "-q", &sid, "--signal", "SIGINT", "--grace", "1"]);
    let took = begin.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "killed before the grace: {took:?}"
    );
    assert!(took < LONG, "the grace held the stop for {took:?}");
    let job = home.job(id);
    assert_eq!(job["state"], "Stopped", "{job}");
    assert_eq!(
        job["reason"], "did not end within 1s of SIGINT: killed with SIGKILL",
        "{job}"
    );
}

#[test]
fn bad_lifecycle_options_are_usage_errors_and_start_nothing() {
    let home = TestHome::new();
    for args in [
        &[
            "start",
            "--retries",
            "1",
            "--retry-delay",
            "abc",
            "--",
            "true",
        ][..],
        &["start", "--retry-delay", "5s", "--", "true"],
        &["start", "--retries", "x", "--", "true"],
        &["start", "--timeout", "soon", "--", "true"],
    ] {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    assert_eq!(home.ok(&["list", "--json"]).trim(), "[]", "no job started");
    let id = home.start(&["--", "sleep", "60"]).to_string();
    for args in [
        &["stop", id.as_str(), "--signal", "NOPE"][..],
        &["stop", id.as_str(), "--signal", "999"],
        &["stop", id.as_str(), "--grace", "later"],
        &["restart", "99"],
    ] {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    let job = home.job(id.parse().expect("id"));
    assert_eq!(job["state"], "Running", "a refused stop stops nothing");
    home.ok(&["stop", "-q", &id]);
}
