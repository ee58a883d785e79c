//! Start, list, show, filters, environment: the everyday path.

use jobctl_tests::{finish, TestHome, COMMAND_TIMEOUT};

#[test]
fn start_prints_the_row_and_quiet_prints_the_id() {
    let home = TestHome::new();
    let out = home.ok(&["start", "--", "echo", "hello"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "Id",
            "Name",
            "PSJobTypeName",
            "State",
            "HasMoreData",
            "Location",
            "Command"
        ]
    );
    assert!(
        lines[1].starts_with("--  ----  -------------  -----"),
        "{out}"
    );
    let row: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(row[..3], ["1", "Job1", "BackgroundJob"]);
    assert_eq!(row[5..], ["localhost", "echo", "hello"]);
    assert_eq!(home.ok(&["start", "-q", "--", "true"]).trim(), "2");
    home.ok(&["wait"]);
    assert_eq!(home.ok(&["receive", "1"]), "hello\n");
}

#[test]
fn list_json_has_the_documented_fields() {
    let home = TestHome::new();
    let id = home.start(&["--name", "sleepy", "-c", "exit 4"]);
    home.ok(&["wait", &id.to_string()]);
    let v = home.job(id);
    for key in [
        "id",
        "instance_id",
        "name",
        "type",
        "state",
        "has_more_data",
        "location",
        "command",
        "reason",
        "exit_code",
        "begin",
        "end",
        "parent",
        "children",
    ] {
        assert!(v.get(key).is_some(), "no {key} in {v}");
    }
    assert_eq!(v["name"], "sleepy");
    assert_eq!(v["type"], "BackgroundJob");
    assert_eq!(v["state"], "Failed");
    assert_eq!(v["exit_code"], 4);
    assert_eq!(v["reason"], "exited with status 4");
    assert_eq!(v["command"], "exit 4");
    assert_eq!(v["location"], "localhost");
    assert_eq!(v["has_more_data"], false);
    assert!(v["begin"].is_string() && v["end"].is_string());
}

#[test]
fn show_prints_every_property_and_json() {
    let home = TestHome::new();
    let id = home.start(&["-c", "echo x; exit 2"]);
    home.ok(&["wait"]);
    let out = home.ok(&["show", &id.to_string()]);
    for prop in [
        "Id",
        "InstanceId",
        "Name",
        "PSJobTypeName",
        "State",
        "Reason",
        "HasMoreData",
        "Location",
        "Command",
        "ExitCode",
        "Begin",
        "End",
        "Parent",
        "Children",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(prop) && l.contains(" :")),
            "no {prop} in {out}"
        );
    }
    assert!(out.contains("exited with status 2"), "{out}");
    let v: serde_json::Value =
        serde_json::from_str(&home.ok(&["show", &id.to_string(), "--json"])).expect("json");
    assert_eq!(v["id"], id);
    assert_eq!(v["exit_code"], 2);
    assert!(v["child_jobs"].as_array().is_some_and(|a| a.is_empty()));
}

#[test]
fn list_filters() {
    let home = TestHome::new();
    let a = home.start(&["--name", "build-a", "--", "echo", "a"]);
    let b = home.start(&["--name", "build-b", "-c", "echo b; exit 1"]);
    let c = home.start(&["--name", "test-c", "--", "sleep", "30"]);
    home.ok(&["wait", &a.to_string(), &b.to_string()]);
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let v: serde_json::Value = serde_json::from_str(&home.ok(&all)).expect("json");
        v.as_array()
            .expect("array")
            .iter()
            .map(|j| j["id"].as_u64().expect("id"))
            .collect()
    };
    assert_eq!(ids(&[]), [a, b, c]);
    assert_eq!(ids(&["--name", "build*"]), [a, b]);
    assert_eq!(ids(&["--state", "Failed"]), [b]);
    assert_eq!(ids(&["--state", "running"]), [c]);
    assert_eq!(ids(&["--type", "process"]), [a, b, c]);
    assert_eq!(ids(&["--type", "BackgroundJob"]), [a, b, c]);
    assert!(ids(&["--type", "thread"]).is_empty());
    assert_eq!(ids(&["--command", "sleep*"]), [c]);
    assert_eq!(ids(&["--command", "ECHO A"]), [a]);
    assert_eq!(ids(&["--has-more-data", "true"]), [a, b, c]);
    home.ok(&["receive", &a.to_string()]);
    assert_eq!(ids(&["--has-more-data", "false"]), [a]);
    assert_eq!(ids(&["--newest", "2"]), [b, c]);
    assert_eq!(ids(&["--include-children"]), [a, b, c]);
    assert_eq!(ids(&[&c.to_string(), &a.to_string()]), [a, c]);
    assert_eq!(home.ok(&["get", "--name", "test-c"]).lines().count(), 3);
    assert_eq!(home.ok(&["list", "--name", "nothing*"]), "");
    let bad = home.run(&["list", "--state", "Sleeping"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    home.ok(&["stop", &c.to_string()]);
}

#[test]
fn job_gets_the_callers_cwd_and_environment_not_the_daemons() {
    let home = TestHome::new();
    // The daemon starts with a variable the job must not see.
    let mut first = home.cmd(&["daemon", "start"]);
    first.env("DAEMON_ONLY", "leak");
    finish(
        first.spawn().expect("spawn"),
        COMMAND_TIMEOUT,
        "daemon start",
    );
    let dir = tempfile::tempdir().expect("dir");
    let mut start = home.cmd(&[
        "start",
        "-q",
        "-c",
        "pwd; echo \"${DAEMON_ONLY-unset} $CALLER_VAR $OVER\"",
    ]);
    start
        .current_dir(dir.path())
        .env("CALLER_VAR", "mine")
        .env("OVER", "old")
        .env_remove("DAEMON_ONLY");
    start.args(["--env", "OVER=new"]);
    let r = finish(start.spawn().expect("spawn"), COMMAND_TIMEOUT, "start");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = r.text().trim().to_string();
    home.ok(&["wait", &id]);
    let out = home.ok(&["receive", &id]);
    let canon = dir.path().canonicalize().expect("canon");
    assert_eq!(out, format!("{}\nunset mine new\n", canon.display()));
    // --cwd overrides, relative to the caller's directory.
    std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
    let mut start = home.cmd(&["start", "-q", "--cwd", "sub", "--", "pwd"]);
    start.current_dir(dir.path());
    let r = finish(start.spawn().expect("spawn"), COMMAND_TIMEOUT, "start");
    let id = r.text().trim().to_string();
    home.ok(&["wait", &id]);
    assert_eq!(
        home.ok(&["receive", &id]),
        format!("{}\n", canon.join("sub").display())
    );
}

#[test]
fn plugins_completions_and_help() {
    let home = TestHome::new();
    let out = home.ok(&["plugins"]);
    assert!(out.contains("BackgroundJob"), "{out}");
    assert!(out.contains("ThreadJob"), "{out}");
    let bash = home.ok(&["completions", "bash"]);
    assert!(
        bash.contains("jobctl") && bash.contains("receive"),
        "{bash}"
    );
    assert!(!home.ok(&["completions", "zsh"]).is_empty());
    for cmd in [
        "start",
        "list",
        "show",
        "receive",
        "wait",
        "stop",
        "remove",
        "run",
        "daemon",
        "plugins",
        "completions",
    ] {
        let help = home.ok(&[cmd, "--help"]);
        assert!(
            help.contains("Examples:"),
            "{cmd} --help has no examples: {help}"
        );
    }
}

#[test]
fn script_jobs_as_process_and_thread() {
    let home = TestHome::new();
    for ty in ["process", "thread"] {
        let r = home.run(&[
            "run",
            "--type",
            ty,
            "-e",
            r#"emit("a"); warn("w"); verbose("v"); debug("d"); info("i"); error("e"); progress(50, "half"); 42"#,
        ]);
        assert_eq!(r.code, 0, "{ty}: {}", r.stderr);
        assert_eq!(r.text(), "a\n42\n", "{ty}");
        assert_eq!(
            r.stderr, "WARNING: w\nVERBOSE: v\nDEBUG: d\nINFO: i\ne\n",
            "{ty}: progress is left out when stderr is not a terminal"
        );
        let r = home.run(&["run", "--type", ty, "-e", r#"emit(1); throw "boom""#]);
        assert_eq!(r.code, 1, "{ty}: {}", r.stderr);
        assert_eq!(r.text(), "1\n");
        assert!(r.stderr.contains("boom"), "{ty}: {}", r.stderr);
    }
    let file = home.path().join("s.rhai");
    std::fs::write(&file, "emit(\"from file\")").expect("write");
    let out = home.ok(&[
        "run",
        "--type",
        "thread",
        "--script",
        file.to_str().expect("utf8"),
    ]);
    assert_eq!(out, "from file\n");
    let id = home.start(&["--type", "thread", "-e", "6 * 7"]);
    home.ok(&["wait"]);
    assert_eq!(home.job(id)["type"], "ThreadJob");
    assert_eq!(home.ok(&["receive", &id.to_string()]), "42\n");
}

#[test]
fn thread_type_refuses_programs_and_shell_lines() {
    let home = TestHome::new();
    for args in [
        &["start", "--type", "thread", "--", "echo", "hi"][..],
        &["start", "--type", "thread", "-c", "echo hi"][..],
    ] {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(
            r.stderr.starts_with("jobctl: ") && r.stderr.contains("scripts only"),
            "{}",
            r.stderr
        );
    }
}

/// Whether `text` holds a character a terminal would act on rather than
/// show (a newline ends a line; tabs align).
fn has_raw_controls(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn control_characters_in_jobs_are_shown_escaped_and_json_stays_exact() {
    let home = TestHome::new();
    let name = "red\u{1b}[31m\rname\u{7f}\u{9b}";
    let line = "printf 'x\\033[2J' # \u{1b}]0;title\u{7}";
    let a = home.start(&["--name", name, "-c", line]);
    // A thread job fails with its thrown message as the reason.
    let b = home.start(&["--type", "thread", "-e", "throw \"bad\\x1b[0m\\r news\""]);
    // A remote job's location is its host.
    let c = home.start(&["--host", "no\u{1b}host.invalid", "--", "true"]);
    home.ok(&["wait"]);
    let table = home.ok(&["list", "--include-children"]);
    assert!(!has_raw_controls(&table), "{table:?}");
    assert!(
        table.contains(r"red\u{1b}[31m\u{d}name\u{7f}\u{9b}"),
        "{table}"
    );
    assert!(
        table.contains(r"x\033[2J' # \u{1b}]0;title\u{7}"),
        "{table}"
    );
    assert!(table.contains(r"no\u{1b}host.invalid"), "{table}");
    for id in [a, b, c] {
        let shown = home.ok(&["show", &id.to_string()]);
        assert!(!has_raw_controls(&shown), "{shown:?}");
    }
    let shown = home.ok(&["show", &b.to_string()]);
    assert!(shown.contains(r"bad\u{1b}[0m\u{d} news"), "{shown}");
    // JSON is exact.
    assert_eq!(home.job(a)["name"], name);
    assert_eq!(home.job(a)["command"], line);
    assert_eq!(home.job(b)["reason"], "bad\u{1b}[0m\r news");
    // The reason a receive writes to stderr is shown escaped too.
    let r = home.run(&["receive", &b.to_string()]);
    assert!(!has_raw_controls(&r.stderr), "{:?}", r.stderr);
    // Records are data: raw.
    assert_eq!(home.run(&["receive", &a.to_string()]).stdout, b"x\x1b[2J");
}

#[test]
fn bad_hosts_and_an_empty_program_are_usage_errors_and_start_nothing() {
    let home = TestHome::new();
    let cases: [(&[&str], &str); 7] = [
        (
            &["start", "--host", "", "--", "true"],
            "malformed host pattern ''",
        ),
        (
            &["start", "--host", ",", "--", "true"],
            "malformed host pattern ',': an empty host between commas",
        ),
        (
            &["start", "--host", "h1,,h2", "--", "true"],
            "malformed host pattern 'h1,,h2': an empty host between commas",
        ),
        (&["start", "--host", "h:70000", "--", "true"], "70000"),
        (&["start", "--", ""], "program"),
        (&["start", "--host", "h1", "--", ""], "program"),
        (&["run", "--", ""], "program"),
    ];
    for (args, says) in cases {
        let r = home.run(args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("jobctl: ") && r.stderr.lines().count() == 1,
            "{args:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert_eq!(
        home.ok(&["list", "--json", "--include-children"]).trim(),
        "[]"
    );
}

/// A thread script that grows without bound fails alone, with the limit
/// named; the daemon and the session's other jobs go on.
#[test]
fn a_runaway_thread_script_fails_alone_and_the_session_lives() {
    let home = TestHome::new();
    // A map grown key by key is bounded by the memory limit alone: a low
    // one (the daemon reads it at start) keeps the test short.
    let mut start = home.cmd(&["daemon", "start"]);
    start.env("JOBCTL_SCRIPT_MAX_MEMORY", "80");
    let started = jobctl_tests::finish(
        start.spawn().expect("spawn"),
        jobctl_tests::COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(started.code, 0, "{}", started.stderr);
    let other = home.start(&["-c", "sleep 1; echo survived"]);
    let pid = home.daemon_pid().expect("daemon pid");
    for script in [
        "let m = #{}; let i = 0; loop { m[`k${i}`] = i; i += 1; }",
        r#"let s = "xxxxxxxxxxxxxxxx"; loop { s += s; }"#,
        "let a = [1]; loop { a += a; }",
    ] {
        let run = home.run(&["run", "--type", "thread", "-e", script]);
        assert_eq!(run.code, 1, "{script}: {}", run.stderr);
        assert!(
            run.stderr.contains("limit"),
            "{script}: the reason names the limit: {}",
            run.stderr
        );
    }
    assert_eq!(home.daemon_pid(), Some(pid), "the daemon lived on");
    home.ok(&["wait", &other.to_string()]);
    assert_eq!(home.ok(&["receive", &other.to_string()]), "survived\n");
}
