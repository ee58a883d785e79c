//! Wait, stop, remove, run, and the exit codes of the contract.

use std::time::{Duration, Instant};

use jobctl_tests::{alive, eventually, TestHome};

/// Pids a job printed, one per line.
fn pids(text: &str) -> Vec<u32> {
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[test]
fn wait_all_any_and_timeout() {
    let home = TestHome::new();
    let quick = home.start(&["--", "true"]).to_string();
    let slow = home.start(&["--", "sleep", "30"]).to_string();
    let out = home.ok(&["wait", &quick, &slow, "--any"]);
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].starts_with(&format!("{quick} ")), "{out}");
    assert!(rows[0].contains("Completed"), "{out}");

    let begin = Instant::now();
    let r = home.run(&["wait", &slow, "--timeout", "0.3"]);
    assert_eq!(r.code, 124, "{}", r.stderr);
    assert_eq!(r.stdout, b"", "a timed-out wait prints nothing");
    assert!(begin.elapsed() >= Duration::from_millis(300));
    assert_eq!(home.job(slow.parse().expect("id"))["state"], "Running");
    let r = home.run(&["wait", "--timeout", "0.1"]);
    assert_eq!(r.code, 124);

    home.ok(&["stop", &slow]);
    let out = home.ok(&["wait"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(out.contains("Stopped"), "{out}");
    assert_eq!(home.ok(&["wait", "--timeout", "5"]).lines().count(), 4);
}

#[test]
fn stop_terminates_the_whole_process_tree() {
    let home = TestHome::new();
    let id = home
        .start(&[
            "-c",
            "sleep 300 & echo $!; sleep 300 & echo $!; echo $$; wait",
        ])
        .to_string();
    let mut got = Vec::new();
    assert!(eventually(Duration::from_secs(20), || {
        got = pids(&home.ok(&["receive", &id, "--keep"]));
        got.len() == 3
    }));
    assert!(got.iter().all(|&p| alive(p)));
    home.ok(&["stop", &id]);
    assert_eq!(home.job(id.parse().expect("id"))["state"], "Stopped");
    assert!(
        eventually(Duration::from_secs(10), || got.iter().all(|&p| !alive(p))),
        "processes of the stopped job live on: {got:?}"
    );
    // stop by name and state
    let a = home
        .start(&["--name", "grp-a", "--", "sleep", "30"])
        .to_string();
    let b = home
        .start(&["--name", "grp-b", "--", "sleep", "30"])
        .to_string();
    home.ok(&["stop", "--name", "grp-a"]);
    assert_eq!(home.job(a.parse().expect("id"))["state"], "Stopped");
    assert_eq!(home.job(b.parse().expect("id"))["state"], "Running");
    home.ok(&["stop", "--state", "Running"]);
    assert_eq!(home.job(b.parse().expect("id"))["state"], "Stopped");
}

#[test]
fn remove_refuses_running_jobs_unless_forced() {
    let home = TestHome::new();
    let done = home.start(&["--", "true"]).to_string();
    let running = home
        .start(&["--name", "busy", "--", "sleep", "30"])
        .to_string();
    home.ok(&["wait", &done]);
    let r = home.run(&["remove", &running]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("jobctl: "), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("job {running}"))
            && r.stderr.contains("busy")
            && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(home.job(running.parse().expect("id"))["state"], "Running");
    home.ok(&["rm", &done]);
    assert_eq!(home.run(&["show", &done]).code, 2);
    home.ok(&["remove", &running, "--force"]);
    assert_eq!(home.run(&["show", &running]).code, 2);

    let a = home.start(&["--", "true"]).to_string();
    let b = home.start(&["-c", "exit 1"]).to_string();
    let c = home.start(&["--", "sleep", "30"]).to_string();
    home.ok(&["wait", &a, &b]);
    home.ok(&["remove", "--state", "Failed"]);
    assert_eq!(home.run(&["show", &b]).code, 2);
    assert_eq!(home.run(&["show", &a]).code, 0);
    let r = home.run(&["remove", "--all"]);
    assert_eq!(r.code, 1, "the running one is refused");
    assert_eq!(home.run(&["show", &a]).code, 2, "the finished one went");
    home.ok(&["remove", "--all", "--force"]);
    assert_eq!(home.run(&["show", &c]).code, 2);
    assert_eq!(home.ok(&["list"]), "");
}

#[test]
fn run_exits_with_the_jobs_exit_code() {
    let home = TestHome::new();
    let r = home.run(&["run", "-c", "echo hello from a job"]);
    assert_eq!((r.code, r.text().as_str()), (0, "hello from a job\n"));
    let r = home.run(&["run", "-c", "echo partial; exit 7"]);
    assert_eq!((r.code, r.text().as_str()), (7, "partial\n"));
    assert!(r.stderr.contains("exited with status 7"), "{}", r.stderr);
    let r = home.run(&["run", "-c", "kill -9 $$"]);
    assert_eq!(r.code, 1, "failed without an exit code: {}", r.stderr);
    let r = home.run(&["run", "--", "/nonexistent/program"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(home.ok(&["list"]), "", "run removes its jobs");

    let child = home
        .cmd(&["run", "--name", "victim", "--", "sleep", "30"])
        .spawn()
        .expect("spawn");
    assert!(eventually(Duration::from_secs(20), || home
        .ok(&["list", "--name", "victim", "--state", "Running"])
        .contains("victim")));
    home.ok(&["stop", "--name", "victim"]);
    let r = jobctl_tests::finish(child, jobctl_tests::COMMAND_TIMEOUT, "run");
    assert_eq!(r.code, 130, "{}", r.stderr);
}

#[test]
fn unknown_ids_exit_2_with_one_line() {
    let home = TestHome::new();
    for args in [
        &["show", "7"][..],
        &["list", "7"][..],
        &["receive", "7"][..],
        &["wait", "7"][..],
        &["stop", "7"][..],
        &["remove", "7"][..],
    ] {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr, "jobctl: no job with id 7\n", "{args:?}");
    }
}

#[test]
fn usage_errors_exit_2() {
    let home = TestHome::new();
    for args in [
        &["start"][..],
        &["start", "-c", "x", "-e", "y"][..],
        &["frobnicate"][..],
        &["wait", "--timeout", "soon"][..],
        &["start", "--env", "NOEQUALS", "--", "true"][..],
        &["list", "--has-more-data", "maybe"][..],
    ] {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    }
    let r = home.run(&["start", "--type", "nosuchtype", "--", "true"]);
    assert_eq!(r.code, 1, "an unknown executor type fails: {}", r.stderr);
    assert!(r.stderr.contains("nosuchtype"), "{}", r.stderr);
    let r = home.run(&["start", "--throttle", "0", "--", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn throttle_queues_jobs_not_started() {
    let home = TestHome::new();
    let a = home
        .start(&["--throttle", "1", "--", "sleep", "30"])
        .to_string();
    let b = home.start(&["--", "true"]).to_string();
    assert_eq!(home.job(b.parse().expect("id"))["state"], "NotStarted");
    home.ok(&["stop", &a]);
    home.ok(&["wait", &b]);
    assert_eq!(home.job(b.parse().expect("id"))["state"], "Completed");
}

#[test]
fn ctrl_c_on_run_stops_its_job() {
    let home = TestHome::new();
    let pid_file = home.path().join("job.pid");
    let line = format!("echo $$ > '{}'; exec sleep 30", pid_file.display());
    let child = home
        .cmd(&["run", "--name", "interrupted", "-c", &line])
        .spawn()
        .expect("spawn");
    let client = child.id();
    let mut job_pid = None;
    assert!(eventually(Duration::from_secs(20), || {
        job_pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok());
        job_pid.is_some()
    }));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(client as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("kill");
    let r = jobctl_tests::finish(child, jobctl_tests::COMMAND_TIMEOUT, "run");
    assert_eq!(r.code, 130, "{}", r.stderr);
    let pid = job_pid.expect("pid");
    assert!(eventually(Duration::from_secs(10), || !alive(pid)));
    assert_eq!(home.ok(&["list"]), "", "run removed its job");
}

#[test]
fn run_with_a_timeout_kills_the_tree_and_fails_with_the_reason() {
    let home = TestHome::new();
    let marker = home.path().join("grandchild.pid");
    let line = format!(
        "sleep 30 & echo $! > '{}'; sleep 30",
        marker.to_str().expect("utf-8 path")
    );
    let begin = Instant::now();
    let r = home.run(&["run", "--timeout", "1s", "-c", &line]);
    let took = begin.elapsed();
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("timed out after 1s"), "{}", r.stderr);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    let pid: u32 = std::fs::read_to_string(&marker)
        .expect("marker")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        eventually(Duration::from_secs(10), || !alive(pid)),
        "the job's background sleep {pid} lives on"
    );
}

#[test]
fn a_started_job_past_its_timeout_is_failed_not_stopped() {
    let home = TestHome::new();
    let id = home.start(&["--timeout", "500ms", "--", "sleep", "30"]);
    home.ok(&["wait", &id.to_string(), "--timeout", "10"]);
    let job = home.job(id);
    assert_eq!(job["state"], "Failed", "{job}");
    assert_eq!(job["reason"], "timed out after 500ms", "{job}");
}

#[test]
fn a_batch_times_out_only_its_slow_item() {
    let home = TestHome::new();
    let file = home.path().join("items");
    std::fs::write(&file, "0\n30\n0\n").expect("items");
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--timeout",
        "1",
        "--",
        "sleep",
        "{}",
    ]);
    home.ok(&["wait", &id.to_string(), "--timeout", "20"]);
    let parent = home.job(id);
    assert_eq!(parent["state"], "Failed", "{parent}");
    let kids: Vec<serde_json::Value> = parent["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| home.job(c.as_u64().expect("id")))
        .collect();
    let states: Vec<&str> = kids
        .iter()
        .map(|k| k["state"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(states, ["Completed", "Failed", "Completed"], "{kids:?}");
    assert_eq!(kids[1]["reason"], "timed out after 1s");
}

#[test]
fn a_malformed_timeout_is_a_usage_error() {
    let home = TestHome::new();
    for bad in ["abc", "0", "5x", "-1s", ""] {
        let r = home.run(&["start", "--timeout", bad, "--", "true"]);
        assert_eq!(r.code, 2, "--timeout {bad:?}: {}", r.stderr);
    }
    assert_eq!(home.ok(&["list"]), "", "nothing started");
}

#[test]
fn wait_returns_on_blocked_and_wait_force_only_on_finished() {
    let plugin = crate::plugins::fixture_plugins().join("libfixture_plugin.so");
    let home = TestHome::new();
    let r = jobctl_tests::finish(
        home.cmd(&["daemon", "start", "--plugin"])
            .arg(&plugin)
            .spawn()
            .expect("spawn"),
        jobctl_tests::COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = home.start(&["--type", "FixtureJob", "-c", r#"[["block", 3000]]"#]);
    let ids = id.to_string();
    assert!(
        eventually(Duration::from_secs(10), || home.job(id)["state"]
            == "Blocked"),
        "{}",
        home.job(id)
    );
    let out = home.ok(&["wait", &ids, "--timeout", "10"]);
    assert!(
        out.contains("Blocked"),
        "plain wait returns on Blocked: {out}"
    );
    let r = home.run(&["wait", "--force", &ids, "--timeout", "0.5"]);
    assert_eq!(
        r.code, 124,
        "wait --force goes on while Blocked: {}",
        r.stderr
    );
    let out = home.ok(&["wait", "--force", &ids, "--timeout", "20"]);
    assert!(out.contains("Completed"), "{out}");
    assert_eq!(home.job(id)["state"], "Completed");
}

#[test]
fn stop_prints_the_stopped_rows_and_quiet_prints_nothing() {
    let home = TestHome::new();
    let a = home
        .start(&["--name", "pass-a", "--", "sleep", "30"])
        .to_string();
    let b = home
        .start(&["--name", "pass-b", "--", "sleep", "30"])
        .to_string();
    let out = home.ok(&["stop", &a]);
    let rows: Vec<&str> = out.lines().skip(2).collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].starts_with(&format!("{a} ")), "{out}");
    assert!(
        rows[0].contains("pass-a") && rows[0].contains("Stopped"),
        "{out}"
    );
    assert_eq!(home.ok(&["stop", "-q", &b]), "");
    assert_eq!(home.job(b.parse().expect("id"))["state"], "Stopped");
}
