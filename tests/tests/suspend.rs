//! `suspend` and `resume` (Suspend-Job, Resume-Job), and what `wait`
//! makes of a suspended job: process, script and remote jobs, batches, a
//! type that cannot suspend, and refused requests.

use std::time::Duration;

use jobctl_tests::{eventually, Run, TestHome};

use crate::remote::{self, Sshd};

/// Runs a jobctl command of one test's session (a remote test's needs the
/// ssh `$HOME`).
type Jobctl<'a> = &'a dyn Fn(&[&str]) -> Run;

fn ok(jc: Jobctl, args: &[&str]) -> String {
    let r = jc(args);
    assert_eq!(r.code, 0, "jobctl {} failed: {}", args.join(" "), r.stderr);
    r.text()
}

/// The lines a job (and its children) wrote so far, kept for later.
fn lines(jc: Jobctl, id: &str) -> usize {
    ok(jc, &["receive", id, "--keep"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count()
}

fn state(jc: Jobctl, id: &str) -> String {
    let out = ok(jc, &["list", id, "--json", "--include-children"]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    rows.as_array()
        .and_then(|a| a.iter().find(|j| j["id"].as_u64() == id.parse().ok()))
        .map(|j| j["state"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("job {id} not in {out}"))
}

/// The whole cycle on a job that writes one line every 100 ms, `total`
/// in all: suspended, its output stands still for a second, `wait`
/// returns on it, `wait --force` does not; resumed, it goes on and
/// completes with every line.
fn suspend_cycle(jc: Jobctl, id: &str, total: usize) {
    assert!(
        eventually(Duration::from_secs(30), || lines(jc, id) >= 2),
        "the job wrote nothing"
    );
    let out = ok(jc, &["suspend", id]);
    assert!(out.contains("Suspended"), "suspend prints the rows: {out}");
    assert_eq!(state(jc, id), "Suspended");
    // What was written just before the stop may still be on its way.
    std::thread::sleep(Duration::from_millis(300));
    let before = lines(jc, id);
    std::thread::sleep(Duration::from_secs(1));
    let after = lines(jc, id);
    assert_eq!(before, after, "the counter moved while suspended");
    assert!(before < total, "the job finished before it was suspended");

    let r = jc(&["wait", id, "--timeout", "20"]);
    assert_eq!(r.code, 0, "wait returns on Suspended: {}", r.stderr);
    assert!(r.text().contains("Suspended"), "{}", r.text());
    let r = jc(&["wait", id, "--force", "--timeout", "1"]);
    assert_eq!(r.code, 124, "wait --force waits on: {}", r.stderr);
    assert_eq!(state(jc, id), "Suspended");

    assert!(
        ok(jc, &["resume", "-q", id]).is_empty(),
        "-q prints nothing"
    );
    assert!(
        eventually(Duration::from_secs(30), || lines(jc, id) > after),
        "the counter did not go on after resume"
    );
    let out = ok(jc, &["wait", id, "--force", "--timeout", "60"]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(lines(jc, id), total);
}

const COUNTER: &str = "for i in $(seq 1 30); do echo $i; sleep 0.1; done";

#[test]
fn a_process_job_is_suspended_and_resumed() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home.start(&["-c", COUNTER]).to_string();
    suspend_cycle(&jc, &id, 30);
}

#[test]
fn a_detached_process_job_is_suspended_and_resumed() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home.start(&["--detached", "-c", COUNTER]).to_string();
    suspend_cycle(&jc, &id, 30);
}

#[test]
fn a_script_job_is_suspended_and_resumed() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home
        .start(&[
            "--type",
            "thread",
            "-e",
            "for i in 0..30 { emit(i); sleep(0.1); }",
        ])
        .to_string();
    suspend_cycle(&jc, &id, 30);
}

#[test]
fn a_process_script_job_is_suspended_and_resumed() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home
        .start(&["-e", "for i in 0..30 { emit(i); sleep(0.1); }"])
        .to_string();
    suspend_cycle(&jc, &id, 30);
}

#[test]
fn a_remote_job_is_suspended_and_resumed() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let host = format!("127.0.0.1:{}", sshd.port);
    let jc = |a: &[&str]| remote::run(&home, &sshd, a);
    let id = ok(&jc, &["start", "-q", "--host", &host, "-c", COUNTER]);
    suspend_cycle(&jc, id.trim(), 30);
}

/// The states of a process group's live members (`T`: stopped).
fn group_states(pgid: i32) -> Vec<String> {
    crate::disconnected::group_members(pgid)
        .into_iter()
        .filter_map(|pid| std::fs::read(format!("/proc/{pid}/stat")).ok())
        .filter_map(|stat| jobctl_tests::stat_fields(&stat).first().cloned())
        .collect()
}

#[test]
fn a_detached_remote_job_is_suspended_on_its_host_across_a_daemon_restart() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let host = format!("127.0.0.1:{}", sshd.port);
    let jc = |a: &[&str]| remote::run(&home, &sshd, a);
    let id = ok(
        &jc,
        &["start", "-q", "--detached", "--host", &host, "-c", COUNTER],
    );
    let id = id.trim();
    let child = crate::disconnected::children(&home, id.parse().expect("id"))[0];
    let folder = crate::disconnected::remote_folder(&home, &sshd, &host, child);
    let pgid = crate::disconnected::remote_group(&folder);
    assert!(
        eventually(Duration::from_secs(30), || lines(&jc, id) >= 2),
        "the job wrote nothing"
    );
    let out = ok(&jc, &["suspend", id]);
    assert!(out.contains("Suspended"), "{out}");
    assert_eq!(state(&jc, &child.to_string()), "Suspended");
    let stopped = |want: bool| {
        let states = group_states(pgid);
        !states.is_empty() && states.iter().all(|s| (s == "T") == want)
    };
    assert!(
        eventually(Duration::from_secs(5), || stopped(true)),
        "the group on the host is not stopped: {:?}",
        group_states(pgid)
    );
    std::thread::sleep(Duration::from_millis(300));
    let before = lines(&jc, id);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&jc, id), before, "the counter moved while suspended");

    // A new daemon takes it over Suspended, and it stays stopped.
    ok(&jc, &["daemon", "stop"]);
    assert!(stopped(true), "stopped while no daemon runs");
    assert_eq!(state(&jc, id), "Suspended");
    std::thread::sleep(Duration::from_secs(1));
    assert!(stopped(true), "{:?}", group_states(pgid));
    assert_eq!(lines(&jc, id), before, "the counter moved while suspended");

    ok(&jc, &["resume", "-q", id]);
    assert!(
        eventually(Duration::from_secs(5), || stopped(false)),
        "the group on the host was not continued: {:?}",
        group_states(pgid)
    );
    let out = ok(&jc, &["wait", id, "--force", "--timeout", "60"]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(lines(&jc, id), 30);
}

#[test]
fn a_suspended_batch_starts_no_new_child_until_resumed() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let items = home.path().join("items");
    std::fs::write(&items, "a\nb\nc\n").expect("items");
    let id = home
        .start(&[
            "--each",
            items.to_str().expect("utf-8"),
            "--throttle",
            "1",
            "-c",
            "echo {}; sleep 1",
        ])
        .to_string();
    assert!(eventually(Duration::from_secs(30), || lines(&jc, &id) >= 1));
    ok(&jc, &["suspend", &id]);
    assert_eq!(state(&jc, &id), "Suspended");
    let job = home.job(id.parse().expect("id"));
    let kids: Vec<String> = job["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(state(&jc, &kids[0]), "Suspended");
    // Longer than the running child's second: it neither ends nor lets
    // the next one start.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(state(&jc, &kids[0]), "Suspended");
    for k in &kids[1..] {
        assert_eq!(state(&jc, k), "NotStarted", "child {k} started");
    }
    assert_eq!(lines(&jc, &id), 1);
    ok(&jc, &["resume", &id]);
    let out = ok(&jc, &["wait", &id, "--timeout", "60"]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(lines(&jc, &id), 3);
}

#[test]
fn a_suspended_job_is_stopped_and_its_group_does_not_stay_stopped() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home.start(&["-c", "echo $$; exec sleep 300"]).to_string();
    let mut pid = 0u32;
    assert!(eventually(Duration::from_secs(20), || {
        pid = ok(&jc, &["receive", &id, "--keep"])
            .trim()
            .parse()
            .unwrap_or(0);
        pid != 0
    }));
    ok(&jc, &["suspend", &id]);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let st = stat
        .rsplit_once(')')
        .map(|(_, r)| r.trim_start().chars().next());
    assert_eq!(st, Some(Some('T')), "the process is not stopped: {stat}");
    let out = ok(&jc, &["stop", &id]);
    assert!(out.contains("Stopped"), "{out}");
    assert!(
        eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the stopped job's process lives on"
    );
}

#[test]
fn bad_requests_are_refused_and_change_no_job() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let done = home.start(&["--", "true"]).to_string();
    ok(&jc, &["wait", &done]);
    let running = home.start(&["--", "sleep", "300"]).to_string();
    assert!(eventually(Duration::from_secs(20), || state(&jc, &running)
        == "Running"));

    let r = home.run(&["suspend", &running, &done]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("job {done} is Completed")),
        "{}",
        r.stderr
    );
    assert_eq!(
        state(&jc, &running),
        "Running",
        "a refused request changed a job"
    );
    assert_eq!(state(&jc, &done), "Completed");

    let r = home.run(&["resume", &running]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("job {running} is Running")),
        "{}",
        r.stderr
    );
    assert_eq!(state(&jc, &running), "Running");

    let r = home.run(&["suspend", "999"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no job with id 999"), "{}", r.stderr);
    let r = home.run(&["resume"]);
    assert_eq!(r.code, 2, "naming no job is a usage error: {}", r.stderr);
    home.ok(&["stop", &running]);
}

#[test]
fn a_c_plugin_job_is_suspended_and_resumed_through_the_abi() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins folder");
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    crate::plugins::build_c_plugin(&plugins);
    let jc = |a: &[&str]| home.run(a);
    let id = home
        .start(&["--type", "CShellJob", "-c", COUNTER])
        .to_string();
    suspend_cycle(&jc, &id, 30);
}

#[test]
fn a_type_that_cannot_suspend_is_refused_naming_it() {
    let plugin = crate::plugins::fixture_plugins().join("libfixture_plugin.so");
    let home = TestHome::new();
    let mut start = home.cmd(&["daemon", "start", "--plugin"]);
    start.arg(&plugin);
    let r = jobctl_tests::finish(
        start.spawn().expect("spawn"),
        jobctl_tests::COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let jc = |a: &[&str]| home.run(a);
    let id = home
        .start(&["--type", "FixtureJob", "-c", r#"[["sleep", 60000]]"#])
        .to_string();
    assert!(eventually(Duration::from_secs(20), || state(&jc, &id) == "Running"));
    let r = home.run(&["suspend", &id]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("jobs of type FixtureJob cannot be suspended"),
        "{}",
        r.stderr
    );
    assert_eq!(state(&jc, &id), "Running");
    home.ok(&["stop", &id]);
}

#[test]
fn a_suspended_detached_job_stays_suspended_across_a_daemon_restart() {
    let home = TestHome::new();
    let jc = |a: &[&str]| home.run(a);
    let id = home.start(&["--detached", "-c", COUNTER]).to_string();
    assert!(eventually(Duration::from_secs(30), || lines(&jc, &id) >= 2));
    ok(&jc, &["suspend", &id]);
    home.ok(&["daemon", "stop"]);
    // The next command starts a daemon that takes the job over.
    assert_eq!(state(&jc, &id), "Suspended");
    std::thread::sleep(Duration::from_millis(300));
    let before = lines(&jc, &id);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lines(&jc, &id), before, "the counter moved while suspended");
    ok(&jc, &["resume", &id]);
    let out = ok(&jc, &["wait", &id, "--force", "--timeout", "60"]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(lines(&jc, &id), 30);
}
