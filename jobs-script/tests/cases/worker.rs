//! The worker mode in this process: records as JSON lines on a pipe.

use std::io::{BufRead, BufReader};
use std::thread::JoinHandle;
use std::time::Duration;

use jobs_core::{Payload, Record, StopToken, Stream};
use jobs_script::{
    run_worker_with, Limits, EXIT_COMPLETED, EXIT_FAILED, EXIT_STOPPED, FAILURE_CATEGORY,
};
use serde_json::json;

use crate::support::{output_json, progress_of, shown};

/// A pipe whose reader parses every line as one record, on a thread.
fn channel() -> (std::io::PipeWriter, JoinHandle<Vec<Record>>) {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let reading = std::thread::spawn(move || {
        BufReader::new(reader)
            .lines()
            .map(|l| serde_json::from_str::<Record>(&l.expect("line")).expect("a record"))
            .collect()
    });
    (writer, reading)
}

fn run(script: &str, limits: &Limits) -> (i32, Vec<Record>) {
    let (writer, reading) = channel();
    let code = run_worker_with(script, limits, Some(Box::new(writer)), &StopToken::new());
    (code, reading.join().expect("reader"))
}

fn failure_reason(recs: &[Record]) -> String {
    let last = recs.last().expect("a failure record");
    assert_eq!(last.stream, Stream::Error);
    match &last.payload {
        Payload::Error(e) => {
            assert_eq!(e.category.as_deref(), Some(FAILURE_CATEGORY));
            e.message.clone()
        }
        other => panic!("not an error record: {other:?}"),
    }
}

#[test]
fn every_function_writes_a_record_line_in_order() {
    let (code, recs) = run(
        r#"
        emit(#{ "a": [1, 2.5, "x", true] });
        error("bad");
        warn("careful");
        verbose("v");
        debug("d");
        info("i");
        progress(10, "step");
        sleep(0.001);
        "last"
        "#,
        &Limits::default(),
    );
    assert_eq!(code, EXIT_COMPLETED);
    use Stream::*;
    let got: Vec<(Stream, String)> = recs.iter().map(shown).collect();
    assert_eq!(got[0], (Output, r#"{"a":[1,2.5,"x",true]}"#.to_string()));
    assert_eq!(
        got[1..6],
        [
            (Error, "bad".to_string()),
            (Warning, "careful".to_string()),
            (Verbose, "v".to_string()),
            (Debug, "d".to_string()),
            (Information, "i".to_string()),
        ]
    );
    assert_eq!(
        progress_of(&recs[6]),
        Some((Some(10.0), "step".to_string()))
    );
    assert_eq!(got[7], (Output, "last".to_string()));
    assert_eq!(recs.len(), 8);
    // Output values travel as JSON values, not text.
    assert!(matches!(recs[0].payload, Payload::Value(_)));
    assert_eq!(
        output_json(&recs),
        [json!({"a": [1, 2.5, "x", true]}), json!("last")]
    );
}

#[test]
fn the_channel_line_format_is_the_record_serialization() {
    let (reader, writer) = std::io::pipe().expect("pipe");
    let code = run_worker_with(
        r#"warn("careful"); emit(5)"#,
        &Limits::default(),
        Some(Box::new(writer)),
        &StopToken::new(),
    );
    assert_eq!(code, EXIT_COMPLETED);
    let lines: Vec<serde_json::Value> = BufReader::new(reader)
        .lines()
        .map(|l| serde_json::from_str(&l.expect("line")).expect("json"))
        .collect();
    assert_eq!(
        lines,
        [
            json!({"stream": "warning", "kind": "text", "data": "careful"}),
            json!({"stream": "output", "kind": "value", "data": 5}),
        ]
    );
}

#[test]
fn throw_exits_failed_with_the_exact_reason_after_earlier_records() {
    let (code, recs) = run(r#"emit(1); throw "disk full";"#, &Limits::default());
    assert_eq!(code, EXIT_FAILED);
    assert_eq!(output_json(&recs), [json!(1)]);
    assert_eq!(failure_reason(&recs), "disk full");
    assert_eq!(recs.len(), 2);
}

#[test]
fn syntax_error_reason_has_the_position() {
    let (code, recs) = run("emit(1);\nlet x = ;", &Limits::default());
    assert_eq!(code, EXIT_FAILED);
    let reason = failure_reason(&recs);
    assert!(reason.starts_with("syntax error: "), "{reason}");
    assert!(reason.ends_with("(line 2, column 9)"), "{reason}");
}

#[test]
fn limits_fail_with_the_limit_named() {
    let (code, recs) = run("loop {}", &Limits::new().max_operations(100));
    assert_eq!(code, EXIT_FAILED);
    let reason = failure_reason(&recs);
    assert!(reason.contains("(max_operations = 100)"), "{reason}");
    let (code, recs) = run(
        r#"let s = "x"; loop { s += s }"#,
        &Limits::new().max_string_size(8),
    );
    assert_eq!(code, EXIT_FAILED);
    assert!(failure_reason(&recs).contains("max_string_size"));
}

/// By default a runaway script fails the worker with the limit named,
/// rather than aborting it on a failed allocation.
#[test]
fn a_doubling_string_fails_by_default() {
    let (code, recs) = run(
        r#"let s = "xxxxxxxxxxxxxxxx"; loop { s += s }"#,
        &Limits::default(),
    );
    assert_eq!(code, EXIT_FAILED);
    let reason = failure_reason(&recs);
    assert!(reason.contains("(max_string_size = 16777216)"), "{reason}");
}

fn stopped_after_start(script: &str) {
    let (writer, reading) = channel();
    let stop = StopToken::new();
    let trigger = stop.clone();
    let script = script.to_string();
    let worker = std::thread::spawn(move || {
        run_worker_with(&script, &Limits::default(), Some(Box::new(writer)), &stop)
    });
    // Let it get into the loop or the sleep, then stop it.
    std::thread::sleep(Duration::from_millis(100));
    trigger.trigger();
    assert_eq!(worker.join().expect("worker"), EXIT_STOPPED);
    let recs = reading.join().expect("reader");
    // Stopped, not failed: no failure record.
    assert!(recs.iter().all(|r| r.stream == Stream::Output), "{recs:?}");
}

#[test]
fn stop_ends_a_tight_loop() {
    stopped_after_start(r#"emit("go"); loop {}"#);
}

#[test]
fn stop_ends_a_long_sleep() {
    stopped_after_start(r#"emit("go"); sleep(1000)"#);
}
