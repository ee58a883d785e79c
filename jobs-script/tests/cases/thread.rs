//! Scripts as thread jobs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{JobState, Payload, ReceiveOptions, Record, Stream};
use jobs_script::{start_script, to_json, Dynamic, Limits, ScriptExecutor};
use serde_json::json;

use crate::support::{
    output_json, params_spec, progress_of, run_thread, session, shown, wait_all, wait_first_record,
    wait_state,
};

mod conformance {
    jobs_core::conformance_tests!(crate::support::Subject);
}

fn records(recs: Vec<jobs_core::Received>) -> Vec<Record> {
    recs.into_iter().map(|r| r.record).collect()
}

#[test]
fn emit_and_last_value_are_output_as_json_values() {
    let (info, recs) = run_thread(
        r#"emit(1); emit(2.5); emit("three"); emit(true); emit([1, "a"]); emit(#{ "k": [1, 2] });
           42"#,
        &Limits::default(),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(info.type_name, "ThreadJob");
    let recs = records(recs);
    assert_eq!(
        output_json(&recs),
        [
            json!(1),
            json!(2.5),
            json!("three"),
            json!(true),
            json!([1, "a"]),
            json!({"k": [1, 2]}),
            json!(42)
        ]
    );
    // Text output: scalars plainly, structures as JSON.
    let text: Vec<String> = recs.iter().map(|r| shown(r).1).collect();
    assert_eq!(
        text,
        [
            "1",
            "2.5",
            "three",
            "true",
            r#"[1,"a"]"#,
            r#"{"k":[1,2]}"#,
            "42"
        ]
    );
}

#[test]
fn a_unit_last_value_is_not_output() {
    let (info, recs) = run_thread("let x = 1; emit(x);", &Limits::default());
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(output_json(&records(recs)), [json!(1)]);
}

#[test]
fn every_stream_function_writes_its_stream_in_order() {
    let (info, recs) = run_thread(
        r#"
        emit("out");
        error("bad thing");
        warn("careful");
        verbose("details");
        debug("dbg");
        debug([1, 2]);
        info("fyi");
        print("printed");
        progress(50, "copying");
        progress(75.5, "copying");
        sleep(0);
        sleep(0.01);
        emit("done");
        "#,
        &Limits::default(),
    );
    // A non-terminating error leaves the job Completed.
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let recs = records(recs);
    use Stream::*;
    let got: Vec<(Stream, String)> = recs.iter().map(shown).collect();
    assert_eq!(
        got[..8],
        [
            (Output, "out".to_string()),
            (Error, "bad thing".to_string()),
            (Warning, "careful".to_string()),
            (Verbose, "details".to_string()),
            (Debug, "dbg".to_string()),
            (Debug, "[1,2]".to_string()),
            (Information, "fyi".to_string()),
            (Information, "printed".to_string()),
        ]
    );
    assert_eq!(
        progress_of(&recs[8]),
        Some((Some(50.0), "copying".to_string()))
    );
    assert_eq!(
        progress_of(&recs[9]),
        Some((Some(75.5), "copying".to_string()))
    );
    assert_eq!(got[10], (Output, "done".to_string()));
    assert_eq!(recs.len(), 11);
}

#[test]
fn throw_fails_with_the_message_and_keeps_earlier_records() {
    let (info, recs) = run_thread(
        r#"emit(1); warn("w"); throw "disk full"; emit(2);"#,
        &Limits::default(),
    );
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("disk full"));
    let got: Vec<(Stream, String)> = records(recs).iter().map(shown).collect();
    assert_eq!(
        got,
        [
            (Stream::Output, "1".to_string()),
            (Stream::Warning, "w".to_string())
        ]
    );
}

#[test]
fn throw_inside_a_function_keeps_the_exact_message() {
    let (info, _) = run_thread(
        "fn check(x) { if x > 1 { throw `too big: ${x}`; } x }\ncheck(1); check(5);",
        &Limits::default(),
    );
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("too big: 5"));
}

#[test]
fn syntax_error_fails_with_message_and_position() {
    let (info, recs) = run_thread("emit(1);\nlet x = ;\n", &Limits::default());
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.starts_with("syntax error: "), "{reason}");
    assert!(reason.ends_with("(line 2, column 9)"), "{reason}");
    // Nothing ran.
    assert!(recs.is_empty());
}

#[test]
fn runtime_error_fails_with_message_and_position() {
    let (info, recs) = run_thread("emit(1);\nlet y = nope + 1;", &Limits::default());
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("nope"), "{reason}");
    assert!(reason.ends_with("(line 2, column 9)"), "{reason}");
    assert_eq!(output_json(&records(recs)), [json!(1)]);
}

mod limits {
    use super::*;

    fn reason_of(script: &str, limits: Limits) -> String {
        let (info, _) = run_thread(script, &limits);
        assert_eq!(info.state, JobState::Failed);
        info.reason.unwrap_or_default()
    }

    #[test]
    fn max_operations() {
        let r = reason_of(
            "let n = 0; loop { n += 1; }",
            Limits::new().max_operations(500),
        );
        assert!(
            r.starts_with("script exceeded the operation limit (max_operations = 500)"),
            "{r}"
        );
    }

    #[test]
    fn max_string_size() {
        let r = reason_of(
            r#"let s = "ab"; loop { s += s; }"#,
            Limits::new().max_string_size(64),
        );
        assert!(
            r.starts_with("script exceeded the string size limit (max_string_size = 64)"),
            "{r}"
        );
    }

    #[test]
    fn max_array_size() {
        let r = reason_of(
            "let a = []; loop { a.push(1); }",
            Limits::new().max_array_size(10),
        );
        assert!(
            r.starts_with("script exceeded the array size limit (max_array_size = 10)"),
            "{r}"
        );
    }

    #[test]
    fn max_map_size() {
        let r = reason_of(
            "let m = #{}; let i = 0; loop { m.set(`k${i}`, i); i += 1; }",
            Limits::new().max_map_size(5),
        );
        assert!(
            r.starts_with("script exceeded the map size limit (max_map_size = 5)"),
            "{r}"
        );
    }

    #[test]
    fn max_call_depth() {
        let r = reason_of(
            "fn down(n) { down(n + 1) }\ndown(0)",
            Limits::new().max_call_depth(5),
        );
        assert!(
            r.starts_with("script exceeded the call depth limit (max_call_depth = 5)"),
            "{r}"
        );
    }

    /// The default limits keep a runaway script from taking the session
    /// down: it fails its own job, naming the limit, and another job of the
    /// same session completes.
    #[test]
    fn a_doubling_string_fails_its_job_alone_by_default() {
        let s = session();
        let other =
            start_script(&s, r#"sleep(0.2); emit("done")"#, &Limits::default()).expect("start");
        let runaway = start_script(
            &s,
            r#"let s = "xxxxxxxxxxxxxxxx"; loop { s += s; }"#,
            &Limits::default(),
        )
        .expect("start");
        let info = runaway.wait_blocking().expect("wait");
        assert_eq!(info.state, JobState::Failed);
        let r = info.reason.unwrap_or_default();
        assert!(
            r.starts_with("script exceeded the string size limit (max_string_size = 16777216)"),
            "{r}"
        );
        let info = other.wait_blocking().expect("wait");
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        let out: Vec<_> = other
            .receive()
            .expect("receive")
            .iter()
            .map(|v| to_json(v))
            .collect();
        assert_eq!(out, [json!("done")]);
    }

    /// Nesting arrays needs no more memory than the size limits allow, but
    /// the engine walks nested values recursively: a script runs on a
    /// thread with a stack deep enough for it, so the session survives and
    /// the job stops on request.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let s = session();
        let other =
            start_script(&s, r#"sleep(0.2); emit("done")"#, &Limits::default()).expect("start");
        let deep = start_script(
            &s,
            r#"let a = []; let n = 0; loop { a = [a]; n += 1; if n == 3000 { emit("deep"); } }"#,
            &Limits::default(),
        )
        .expect("start");
        wait_first_record(&s, deep.id());
        let info = deep.stop_blocking().expect("stop");
        assert_eq!(info.state, JobState::Stopped, "{:?}", info.reason);
        let info = other.wait_blocking().expect("wait");
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    }

    /// An output value outlives its script and is rendered and dropped on
    /// the session's threads: one nested too deep is refused at `emit`.
    #[test]
    fn an_output_value_nested_too_deep_is_refused() {
        let r = reason_of(
            "let a = []; for i in 0..200 { a = [a]; } emit(a)",
            Limits::default(),
        );
        assert!(r.contains("nested deeper than 100 levels"), "{r}");
        let r = reason_of(
            "let a = []; for i in 0..200 { a = [a]; } a",
            Limits::default(),
        );
        assert!(r.contains("nested deeper than 100 levels"), "{r}");
        let (info, recs) = run_thread(
            "let a = 1; for i in 0..99 { a = [a]; } emit(a)",
            &Limits::default(),
        );
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        let mut v = output_json(&records(recs)).remove(0);
        let mut depth = 0;
        while let serde_json::Value::Array(mut a) = v {
            v = a.remove(0);
            depth += 1;
        }
        assert_eq!((depth, v), (99, json!(1)));
    }

    #[test]
    fn a_doubling_array_fails_by_default() {
        let r = reason_of("let a = [1]; loop { a += a; }", Limits::default());
        assert!(
            r.starts_with("script exceeded the array size limit (max_array_size = 1048576)"),
            "{r}"
        );
    }

    #[test]
    fn max_expr_depth() {
        let deep = format!("{}1{}", "(".repeat(40), ")".repeat(40));
        let r = reason_of(&deep, Limits::new().max_expr_depth(20));
        assert!(
            r.starts_with("script exceeded the expression depth limit (max_expr_depth = 20)"),
            "{r}"
        );
    }

    /// A session's limits apply to every script job of it; a job's own
    /// limits override them, one by one.
    #[test]
    fn a_session_limit_applies_and_a_job_limit_overrides_it() {
        let s = jobs_core::Session::new().expect("session");
        s.register(Arc::new(
            ScriptExecutor::new().limits(Limits::new().max_string_size(64).max_array_size(8)),
        ));
        let doubling = r#"let s = "ab"; loop { s += s; }"#;
        // A spec with its work as payload, and one with params only (as the
        // CLI sends it): both get the session's limit.
        let with_payload = start_script(&s, doubling, &Limits::default()).expect("start");
        let params_only = s
            .start(params_spec(doubling, &Limits::default()))
            .expect("start");
        let own = s
            .start(params_spec(doubling, &Limits::new().max_string_size(1024)))
            .expect("start");
        let reason = |id| {
            let info = s
                .wait_blocking(
                    &[id],
                    jobs_core::WaitMode::All,
                    Some(Duration::from_secs(30)),
                )
                .expect("wait");
            assert!(!info.timed_out);
            let info = s.info(id).expect("info");
            assert_eq!(info.state, JobState::Failed);
            info.reason.unwrap_or_default()
        };
        for id in [with_payload.id(), params_only] {
            let r = reason(id);
            assert!(r.contains("(max_string_size = 64)"), "{r}");
        }
        let r = reason(own);
        assert!(r.contains("(max_string_size = 1024)"), "{r}");
    }

    #[test]
    fn within_limits_the_script_completes() {
        let (info, recs) = run_thread(
            "let a = []; for i in 0..10 { a.push(i) } a.len()",
            &Limits::new()
                .max_operations(10_000)
                .max_array_size(10)
                .max_string_size(10)
                .max_call_depth(4),
        );
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        assert_eq!(output_json(&records(recs)), [json!(10)]);
    }
}

mod stop {
    use super::*;

    fn stop_promptly(script: &str) {
        let s = session();
        let job = start_script(&s, script, &Limits::default()).expect("start");
        wait_first_record(&s, job.id());
        let t0 = Instant::now();
        let info = job.stop_blocking().expect("stop");
        let took = t0.elapsed();
        assert_eq!(info.state, JobState::Stopped);
        // Not abandoned after the grace period: the script itself ended.
        let reason = info.reason.unwrap_or_default();
        assert!(!reason.contains("abandoned"), "{reason}");
        assert!(took < Duration::from_secs(4), "stop took {took:?}");
    }

    #[test]
    fn a_tight_loop_stops() {
        stop_promptly(r#"emit("started"); loop {}"#);
    }

    #[test]
    fn a_long_sleep_stops() {
        stop_promptly(r#"emit("started"); sleep(1000); emit("never")"#);
    }

    #[test]
    fn a_recursive_script_stops() {
        stop_promptly(r#"emit("started"); fn spin() { loop { let x = 1; } } spin()"#);
    }
}

#[test]
fn output_values_are_live_and_received_by_reference() {
    let s = session();
    let job = start_script(
        &s,
        r#"emit(#{ "name": "n", "list": [1, 2, 3] }); "last""#,
        &Limits::default(),
    )
    .expect("start");
    job.wait_blocking().expect("wait");
    // Held live in the session, not serialized.
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let raw = s.receive(&[job.id()], keep).expect("receive");
    let Payload::Live(live) = &raw[0].record.payload else {
        panic!("not live: {:?}", raw[0].record.payload);
    };
    assert_eq!(live.render(), json!({"name": "n", "list": [1, 2, 3]}));
    let first: Arc<Dynamic> = live.downcast::<Dynamic>().expect("a Dynamic");
    // Two receives hand back the same allocation.
    let typed = job.receive().expect("receive");
    assert_eq!(typed.len(), 2);
    assert!(Arc::ptr_eq(&first, &typed[0]));
    assert_eq!(to_json(&typed[1]), json!("last"));
    assert_eq!(to_json(&typed[0])["list"], json!([1, 2, 3]));
    assert!(!job.info().expect("info").has_more_data);
}

#[test]
fn many_scripts_run_side_by_side_within_the_throttle() {
    let s = session();
    let jobs: Vec<_> = (0..50)
        .map(|i| start_script(&s, &format!("{i} * 2"), &Limits::default()).expect("start"))
        .collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id()).collect();
    wait_all(&s, &ids);
    for (i, j) in jobs.iter().enumerate() {
        let got = j.receive().expect("receive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_int().expect("int"), (i * 2) as i64);
    }
}

#[test]
fn a_queued_script_is_not_started_until_a_slot_frees() {
    let s = session();
    s.set_throttle("ThreadJob", 1);
    let a = start_script(&s, r#"emit("a"); sleep(1000)"#, &Limits::default()).expect("start");
    let b = start_script(&s, "1", &Limits::default()).expect("start");
    wait_state(&s, a.id(), JobState::Running);
    assert_eq!(b.state().expect("state"), JobState::NotStarted);
    a.stop_blocking().expect("stop");
    assert_eq!(b.wait_blocking().expect("wait").state, JobState::Completed);
}
