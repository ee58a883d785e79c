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
