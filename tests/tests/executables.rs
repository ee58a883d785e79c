//! Executables as executors: plugins/py-example/py-shell (Python) in a
//! session's `executors` folder, driven through `jobctl`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jobctl_tests::{eventually, kill9, TestHome};

/// The Python executor of the repository.
fn py_shell() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/py-example/py-shell")
}

/// Installs `text` as the executable `name` in the home's `executors`
/// folder (mode 0700, the file 0755).
fn install(home: &TestHome, name: &str, text: &[u8]) -> PathBuf {
    let dir = home.path().join("executors");
    std::fs::create_dir_all(&dir).expect("mkdir executors");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let file = dir.join(name);
    std::fs::write(&file, text).expect("write the executable");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    file
}

fn install_py_shell(home: &TestHome) -> PathBuf {
    install(
        home,
        "py-shell",
        &std::fs::read(py_shell()).expect("read py-shell"),
    )
}

/// Waits (bounded) for a job to finish.
fn wait(home: &TestHome, id: u64) {
    let r = home.run(&["wait", &id.to_string(), "--timeout", "60"]);
    assert_ne!(
        r.code,
        124,
        "job {id} did not finish: {}",
        home.log_tail(20)
    );
}

/// The first output line of a job, once it wrote one (kept for later).
fn first_line(home: &TestHome, id: u64) -> String {
    let mut line = String::new();
    let got = eventually(Duration::from_secs(60), || {
        let out = home.ok(&["receive", "--keep", &id.to_string()]);
        match out.lines().next() {
            Some(l) => {
                line = l.to_string();
                true
            }
            None => false,
        }
    });
    assert!(got, "job {id} wrote nothing: {}", home.log_tail(20));
    line
}

#[test]
fn an_executable_runs_jobs_started_received_waited_and_stopped_through_jobctl() {
    let home = TestHome::new();
    let file = install_py_shell(&home);
    let listed = home.ok(&["plugins"]);
    let row = listed
        .lines()
        .find(|l| l.starts_with("py-shell"))
        .unwrap_or_else(|| panic!("no py-shell in {listed}"));
    assert!(
        row.contains(&format!("executable {}", file.display())),
        "{row}"
    );

    let ok = home.start(&["--type", "py-shell", "-c", "echo hello; printf 'two\\n'"]);
    wait(&home, ok);
    assert_eq!(home.ok(&["receive", &ok.to_string()]), "hello\ntwo\n");
    let v = home.job(ok);
    assert_eq!(v["state"], "Completed", "{v}");
    assert_eq!(v["type"], "py-shell");

    // A program with its arguments, in the caller's folder.
    let prog = home.start(&["--type", "py-shell", "--", "sh", "-c", "pwd"]);
    wait(&home, prog);
    let cwd = std::env::current_dir().expect("cwd");
    assert_eq!(
        home.ok(&["receive", &prog.to_string()]).trim_end(),
        cwd.to_str().expect("utf-8")
    );

    let bad = home.start(&["--type", "py-shell", "-c", "echo boom >&2; exit 3"]);
    wait(&home, bad);
    let v = home.job(bad);
    assert_eq!(v["state"], "Failed", "{v}");
    assert_eq!(v["exit_code"], 3);
    assert_eq!(v["reason"], "exited with status 3: boom");

    let missing = home.start(&["--type", "py-shell", "--", "/no/such/program"]);
    wait(&home, missing);
    let v = home.job(missing);
    assert_eq!(v["state"], "Failed", "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("cannot run the job:") && reason.contains("/no/such/program"),
        "{v}"
    );

    let long = home.start(&["--type", "py-shell", "-c", "echo started; sleep 120"]);
    assert_eq!(first_line(&home, long), "started");
    home.ok(&["stop", &long.to_string()]);
    let v = home.job(long);
    assert_eq!(v["state"], "Stopped", "{v}");
}

#[test]
fn a_crash_of_the_executable_fails_its_running_job_and_the_next_job_restarts_it() {
    let home = TestHome::new();
    install_py_shell(&home);
    // $PPID of the job's shell is the executor; $$ the job itself.
    let id = home.start(&["--type", "py-shell", "-c", "echo $PPID $$; exec sleep 120"]);
    let line = first_line(&home, id);
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().expect("a pid"))
        .collect();
    let (executor, job) = (pids[0], pids[1]);
    kill9(executor);
    wait(&home, id);
    // The orphaned job is the test's to end.
    kill9(job);
    let v = home.job(id);
    assert_eq!(v["state"], "Failed", "{v}");
    assert_eq!(
        v["reason"],
        "executor py-shell exited: killed by signal 9 (SIGKILL)"
    );
    let log = std::fs::read_to_string(home.path().join("daemon.log")).unwrap_or_default();
    assert!(log.contains("executor py-shell exited"), "{log}");

    let next = home.start(&["--type", "py-shell", "-c", "echo $PPID"]);
    wait(&home, next);
    assert_eq!(home.job(next)["state"], "Completed");
    let again: u32 = home
        .ok(&["receive", &next.to_string()])
        .trim()
        .parse()
        .expect("a pid");
    assert_ne!(again, executor, "a new executor process ran the next job");
}

#[test]
fn an_executors_folder_others_may_write_is_refused() {
    let home = TestHome::new();
    install_py_shell(&home);
    let dir = home.path().join("executors");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let listed = home.ok(&["plugins"]);
    assert!(
        !listed.lines().any(|l| l.starts_with("py-shell")),
        "{listed}"
    );
    let refusal = format!(
        "not loaded: {}: refused: {} is writable by its group or others (mode 0777)",
        dir.join("py-shell").display(),
        dir.display()
    );
    assert!(listed.contains(&refusal), "{listed}");
    let log = std::fs::read_to_string(home.path().join("daemon.log")).unwrap_or_default();
    assert!(
        log.contains("executable not used") && log.contains("mode 0777"),
        "{log}"
    );
    let r = home.run(&["start", "--type", "py-shell", "-c", "echo hi"]);
    assert_ne!(r.code, 0, "a refused executor ran a job: {}", r.text());
}

#[test]
fn a_hello_of_another_protocol_version_is_refused_naming_both_versions() {
    let home = TestHome::new();
    install(
        &home,
        "future",
        b"#!/bin/sh\necho '{\"msg\":\"hello\",\"protocol\":2}'\nexec cat >/dev/null\n",
    );
    let id = home.start(&["--type", "future", "-c", "echo hi"]);
    wait(&home, id);
    let v = home.job(id);
    assert_eq!(v["state"], "Failed", "{v}");
    let want = "executor future refused: it speaks executor protocol version 2, this jobctl speaks version 1";
    assert_eq!(v["reason"], want);
    let log = std::fs::read_to_string(home.path().join("daemon.log")).unwrap_or_default();
    assert!(log.contains(want), "{log}");
}

#[test]
fn executables_are_found_in_the_folders_of_jobctl_executor_path() {
    let home = TestHome::new();
    let dir = tempfile::Builder::new()
        .prefix("jobctl-executors-")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir()
        .expect("temp dir");
    let file = dir.path().join("pyx");
    std::fs::copy(py_shell(), &file).expect("copy py-shell");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // The daemon this command starts reads the variable.
    let r = jobctl_tests::finish(
        home.cmd(&["run", "--type", "pyx", "-c", "echo via the path"])
            .env(
                "JOBCTL_EXECUTOR_PATH",
                format!("/no/such/folder:{}", dir.path().display()),
            )
            .spawn()
            .expect("spawn jobctl"),
        jobctl_tests::COMMAND_TIMEOUT,
        "jobctl run --type pyx",
    );
    assert_eq!(r.code, 0, "{} {}", r.stderr, home.log_tail(20));
    assert_eq!(r.text(), "via the path\n");
    let listed = home.ok(&["plugins"]);
    assert!(
        listed.contains("not loaded: cannot read /no/such/folder"),
        "{listed}"
    );
}
