//! A real worker process: the `script-worker` example, started as the CLI
//! starts `jobctl __worker`, stopped with SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use jobs_core::{Record, Stream};
use jobs_script::{
    worker_args, Limits, WorkerScript, EXIT_COMPLETED, EXIT_FAILED, EXIT_STOPPED, EXIT_USAGE,
    RECORDS_FD_ENV,
};
use serde_json::json;

use crate::support::{output_json, shown};

/// The example binary, built by `cargo test` next to the test binaries.
fn worker_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    dir.join("examples").join("script-worker")
}

/// Kills the child on drop, so a failing test leaves no process behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a worker whose records channel is its stdout (fd 1).
fn spawn(script: &str, limits: &Limits) -> Guard {
    let child = Command::new(worker_bin())
        .args(worker_args(&WorkerScript::Inline(script.into()), limits))
        .env(RECORDS_FD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the worker example");
    Guard(child)
}

fn parse(lines: &str) -> Vec<Record> {
    lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a record"))
        .collect()
}

#[test]
fn a_worker_process_writes_records_and_exits_zero() {
    let mut g = spawn(
        r#"warn("w"); emit([1, 2]); #{ "ok": true }"#,
        &Limits::new().max_operations(1000),
    );
    let mut out = String::new();
    g.0.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(g.0.wait().expect("wait").code(), Some(EXIT_COMPLETED));
    let recs = parse(&out);
    assert_eq!(shown(&recs[0]), (Stream::Warning, "w".to_string()));
    assert_eq!(output_json(&recs), [json!([1, 2]), json!({"ok": true})]);
}

#[test]
fn a_throwing_worker_exits_one() {
    let mut g = spawn(r#"throw "nope""#, &Limits::default());
    let mut out = String::new();
    g.0.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("read");
    assert_eq!(g.0.wait().expect("wait").code(), Some(EXIT_FAILED));
    let recs = parse(&out);
    assert_eq!(shown(&recs[0]), (Stream::Error, "nope".to_string()));
}

fn sigterm_stops(script: &str) {
    let mut g = spawn(script, &Limits::default());
    let mut lines = BufReader::new(g.0.stdout.take().expect("stdout")).lines();
    // The first record says the script runs (and the signal watcher with it).
    let first = lines.next().expect("a first record").expect("line");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&first).expect("json")["data"],
        json!("started")
    );
    let status = Command::new("kill")
        .args(["-TERM", &g.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    assert_eq!(g.0.wait().expect("wait").code(), Some(EXIT_STOPPED));
}

#[test]
fn sigterm_stops_a_tight_loop() {
    sigterm_stops(r#"emit("started"); loop {}"#);
}

#[test]
fn sigterm_stops_a_long_sleep() {
    sigterm_stops(r#"emit("started"); sleep(1000)"#);
}

#[test]
fn without_the_channel_output_is_text_on_stdout() {
    let out = Command::new(worker_bin())
        .args(worker_args(
            &WorkerScript::Inline(
                r#"warn("w"); emit("hello"); emit(#{ "a": 1 }); throw "bad""#.into(),
            ),
            &Limits::default(),
        ))
        .env_remove(RECORDS_FD_ENV)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(EXIT_FAILED));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n{\"a\":1}\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "WARNING: w\nbad\n");
}

#[test]
fn bad_arguments_exit_two() {
    let out = Command::new(worker_bin())
        .args(["__worker", "--bogus", "x"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(EXIT_USAGE));
    let out = Command::new(worker_bin())
        .args(["__worker", "--script", "/nonexistent/script.rhai"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(EXIT_USAGE));
}

#[test]
fn a_script_file_runs() {
    let dir = std::env::temp_dir().join(format!("jobs-script-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("s.rhai");
    std::fs::write(&file, "emit(1); 2").expect("write");
    let out = Command::new(worker_bin())
        .args(worker_args(&WorkerScript::File(file), &Limits::default()))
        .env(RECORDS_FD_ENV, "1")
        .output()
        .expect("run");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(EXIT_COMPLETED));
    let recs = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(output_json(&recs), [json!(1), json!(2)]);
}

/// A worker run through `sh` with its address space capped, so that a
/// worker reading without bound fails fast instead of eating the machine.
fn capped_worker(args: &[std::ffi::OsString]) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v 2000000; exec "$0" "$@""#)
        .arg(worker_bin())
        .args(args)
        .env(RECORDS_FD_ENV, "1")
        .stdin(Stdio::null())
        .output()
        .expect("run")
}

#[test]
fn an_endless_script_file_is_refused_at_the_cap() {
    let out = capped_worker(&worker_args(
        &WorkerScript::File("/dev/zero".into()),
        &Limits::default(),
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_USAGE), "{stderr}");
    assert!(stderr.contains("/dev/zero"), "{stderr}");
    assert!(stderr.contains("longer than 16 MiB"), "{stderr}");
}

/// A script too large for an argument (the OS takes 128 KiB at most per
/// argument) reaches the worker on its stdin; only its length is an
/// argument, so the text is not in the process table either.
#[test]
fn a_large_script_reaches_the_worker_through_stdin() {
    let script = format!("// {}\nemit(1); 2", "x".repeat(300 << 10));
    let too_big = Command::new(worker_bin())
        .args(worker_args(
            &WorkerScript::Inline(script.clone()),
            &Limits::default(),
        ))
        .spawn();
    assert!(too_big.is_err(), "an argument of 300 KiB");

    let piped = WorkerScript::Stdin(script.clone());
    let args = worker_args(&piped, &Limits::default());
    assert!(
        args.iter().map(|a| a.len()).sum::<usize>() < 100,
        "{args:?}"
    );
    assert_eq!(piped.stdin(), Some(script.as_str()));
    let mut child = Command::new(worker_bin())
        .args(&args)
        .env(RECORDS_FD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let feeding = std::thread::spawn(move || {
        use std::io::Write;
        stdin
            .write_all(script.as_bytes())
            .expect("write the script");
    });
    let out = child.wait_with_output().expect("wait");
    feeding.join().expect("feeder");
    assert_eq!(out.status.code(), Some(EXIT_COMPLETED));
    let recs = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(output_json(&recs), [json!(1), json!(2)]);
}

#[test]
fn a_script_cut_short_on_stdin_is_refused() {
    let mut child = Command::new(worker_bin())
        .args(worker_args(
            &WorkerScript::Stdin("emit(1); emit(2);".into()),
            &Limits::default(),
        ))
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"emit(1);").expect("write");
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_USAGE), "{stderr}");
    assert!(stderr.contains("cut short"), "{stderr}");
}

/// As a CLI runs a script as a process job: the worker's argv holds the
/// script's length, the process executor feeds the text to its stdin.
#[test]
fn a_large_script_runs_as_a_process_job() {
    use jobs_core::{JobState, ReceiveOptions, Session, WaitMode};
    let s = Session::new().expect("session");
    s.register(std::sync::Arc::new(jobs_process::ProcessExecutor::new()));
    let script = WorkerScript::Stdin(format!("// {}\nemit(\"big\"); 2", "x".repeat(300 << 10)));
    let mut argv = vec![worker_bin().display().to_string()];
    argv.extend(
        worker_args(&script, &Limits::default())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    let spec = jobs_process::ProcessSpec::program(argv).stdin(script.stdin().unwrap_or_default());
    let id = s.start(spec.into_job_spec()).expect("start");
    let out = s
        .wait_blocking(
            &[id],
            WaitMode::All,
            Some(std::time::Duration::from_secs(60)),
        )
        .expect("wait");
    assert!(!out.timed_out);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let recs: Vec<Record> = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive")
        .into_iter()
        .map(|r| r.record)
        .collect();
    assert_eq!(output_json(&recs), [json!("big"), json!(2)]);
}
