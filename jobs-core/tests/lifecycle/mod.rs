//! The session's rules, one test each.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::conformance::output_lines;
use jobs_core::{
    ErrorKind, JobFilter, JobSpec, JobState, Payload, ReceiveOptions, Session, Stream, WaitMode,
};
use serde_json::json;

use crate::support::{order_log, spec, DeferredExecutor, TestExecutor, DEFERRED, TYPE};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    s.register(Arc::new(DeferredExecutor));
    s
}

fn deferred(steps: serde_json::Value) -> JobSpec {
    let mut sp = spec(steps);
    sp.type_name = DEFERRED.to_string();
    sp
}

#[test]
fn an_executor_that_reports_its_start_keeps_the_job_not_started_until_then() {
    let s = session();
    let id = s
        .start(deferred(json!([
            ["sleep", 300],
            ["running"],
            ["location", "node7"],
            ["sleep", 300]
        ])))
        .expect("start");
    assert_eq!(s.info(id).expect("info").state, JobState::NotStarted);
    assert!(s.info(id).expect("info").begin.is_none());
    wait_state(&s, id, JobState::Running);
    for _ in 0..300 {
        if s.info(id).expect("info").location == "node7" {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.info(id).expect("info").location, "node7");
    wait(&s, &[id]);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    // Never reported, still completes; stopped while queued elsewhere, Stopped.
    let quiet = s.start(deferred(json!([]))).expect("start");
    wait(&s, &[quiet]);
    assert_eq!(s.info(quiet).expect("info").state, JobState::Completed);
    let queued = s.start(deferred(json!([["sleep", 20000]]))).expect("start");
    assert_eq!(s.info(queued).expect("info").state, JobState::NotStarted);
    let info = s.stop_blocking(queued).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
}

fn wait(s: &Session, ids: &[u64]) {
    let out = s
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out, "timed out waiting for {ids:?}");
}

fn wait_state(s: &Session, id: u64, want: JobState) {
    for _ in 0..3000 {
        if s.info(id).expect("info").state == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("job {id} never reached {want}");
}

#[test]
fn unknown_type_is_refused() {
    let s = session();
    let err = s
        .start(JobSpec::new("NoSuchType", "x"))
        .expect_err("unknown type");
    assert_eq!(err.kind(), ErrorKind::UnknownType);
}

#[test]
fn illegal_transition_is_rejected() {
    let s = session();
    let id = s
        .start(spec(json!([["stopped_then_block"]])))
        .expect("start");
    wait_state(&s, id, JobState::Running);
    s.stop_blocking(id).expect("stop");
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(output_lines(&recs), ["IllegalTransition"]);
    assert_eq!(s.info(id).expect("info").state, JobState::Stopped);
}

#[test]
fn receive_while_running_then_rest() {
    let s = session();
    let id = s
        .start(spec(json!([["out", "a"], ["sleep", 400], ["out", "b"]])))
        .expect("start");
    let mut first = Vec::new();
    for _ in 0..300 {
        first = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        if !first.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(output_lines(&first), ["a"]);
    let info = s.info(id).expect("info");
    if !info.state.is_finished() {
        assert!(info.has_more_data, "a running job has more data");
    }
    wait(&s, &[id]);
    assert!(s.info(id).expect("info").has_more_data);
    let rest = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(output_lines(&rest), ["b"]);
    assert!(!s.info(id).expect("info").has_more_data);
}

#[test]
fn failure_keeps_reason_and_exit_code() {
    let s = session();
    let id = s.start(spec(json!([["fail", "it broke"]]))).expect("start");
    wait(&s, &[id]);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("it broke"));
    assert_eq!(info.exit_code, Some(3));
}

#[test]
fn panic_fails_that_job_only() {
    let s = session();
    let bad = s.start(spec(json!([["panic", "kaboom"]]))).expect("start");
    let good = s.start(spec(json!([["out", "fine"]]))).expect("start");
    wait(&s, &[bad, good]);
    let info = s.info(bad).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert!(info.reason.unwrap_or_default().contains("kaboom"));
    assert_eq!(s.info(good).expect("info").state, JobState::Completed);
}

#[test]
fn stop_of_a_queued_job_never_runs_it() {
    let s = session();
    s.set_throttle(TYPE, 1);
    let a = s.start(spec(json!([["sleep", 20000]]))).expect("start");
    let b = s.start(spec(json!([["out", "never"]]))).expect("start");
    assert_eq!(s.info(b).expect("info").state, JobState::NotStarted);
    s.stop_blocking(b).expect("stop");
    assert_eq!(s.info(b).expect("info").state, JobState::Stopped);
    s.stop_blocking(a).expect("stop");
    assert!(s
        .receive(&[b], ReceiveOptions::default())
        .expect("receive")
        .is_empty());
    assert!(!s.info(b).expect("info").has_more_data);
}

#[test]
fn throttle_two_runs_four_in_fifo_order() {
    let s = session();
    s.set_throttle(TYPE, 2);
    let tag = "fifo-";
    let ids: Vec<u64> = (0..4usize)
        .map(|i| {
            // Job 0 ends well before job 1, so job 2 takes the first free
            // slot and job 3 the next.
            let ms = [200, 900, 300, 300][i];
            s.start(spec(json!([["log", format!("{tag}{i}")], ["sleep", ms]])))
                .expect("start")
        })
        .collect();
    let states: Vec<JobState> = ids
        .iter()
        .map(|&id| s.info(id).expect("info").state)
        .collect();
    assert_eq!(
        states,
        [
            JobState::Running,
            JobState::Running,
            JobState::NotStarted,
            JobState::NotStarted
        ]
    );
    wait(&s, &ids);
    for &id in &ids {
        assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    }
    let log: Vec<String> = order_log()
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.starts_with(tag))
        .cloned()
        .collect();
    assert_eq!(log[2..], [format!("{tag}2"), format!("{tag}3")]);
    let b = |id: u64| s.info(id).expect("info").begin.expect("begin");
    let e = |id: u64| s.info(id).expect("info").end.expect("end");
    assert!(b(ids[2]) >= e(ids[0]), "job 2 starts when a slot frees");
    assert!(b(ids[2]) <= b(ids[3]));
}

fn child(steps: serde_json::Value, loc: &str) -> serde_json::Value {
    json!({ "steps": steps, "loc": loc })
}

#[test]
fn parent_completes_when_children_do_and_receive_is_tagged() {
    let s = session();
    let parent = s
        .start(spec(json!([[
            "children",
            [
                child(json!([["out", "from a"]]), "host-a"),
                child(json!([["out", "from b"]]), "host-b")
            ]
        ]])))
        .expect("start");
    wait(&s, &[parent]);
    let info = s.info(parent).expect("info");
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.children.len(), 2);
    let c0 = s.info(info.children[0]).expect("child");
    assert_eq!(c0.location, "host-a");
    assert_eq!(c0.parent, Some(parent));
    // Children are hidden from get() unless asked for.
    let top = s.get(&JobFilter::default()).expect("get");
    assert_eq!(top.len(), 1);
    let all = s
        .get(&JobFilter {
            include_children: true,
            ..Default::default()
        })
        .expect("get");
    assert_eq!(all.len(), 3);
    // A child cannot be removed on its own.
    let err = s
        .remove_blocking(info.children[0], false)
        .expect_err("child remove");
    assert_eq!(err.kind(), ErrorKind::ChildJob);
    let own = s
        .receive(
            &[parent],
            ReceiveOptions {
                no_recurse: true,
                ..Default::default()
            },
        )
        .expect("receive");
    assert!(own.is_empty());
    let recs = s
        .receive(&[parent], ReceiveOptions::default())
        .expect("receive");
    assert!(recs.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut tagged: Vec<(u64, String)> = recs
        .iter()
        .map(|r| {
            (
                r.job,
                String::from_utf8_lossy(&r.record.payload.to_display_bytes()).into_owned(),
            )
        })
        .collect();
    tagged.sort();
    assert_eq!(
        tagged,
        [
            (info.children[0], "from a".to_string()),
            (info.children[1], "from b".to_string())
        ]
    );
    assert!(!s.info(parent).expect("info").has_more_data);
    s.remove_blocking(parent, false).expect("remove");
    assert_eq!(
        s.info(info.children[1]).expect_err("gone").kind(),
        ErrorKind::NoSuchJob
    );
}

#[test]
fn parent_fails_if_any_child_fails() {
    let s = session();
    let parent = s
        .start(spec(json!([[
            "children",
            [
                child(json!([["out", "ok"]]), "good"),
                child(json!([["fail", "host unreachable"]]), "bad")
            ]
        ]])))
        .expect("start");
    wait(&s, &[parent]);
    let info = s.info(parent).expect("info");
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.expect("reason");
    assert!(reason.contains("host unreachable"), "{reason}");
    assert_eq!(
        s.info(info.children[0]).expect("child").state,
        JobState::Completed
    );
}

#[test]
fn parent_stop_stops_children_and_blocked_child_blocks_parent() {
    let s = session();
    let parent = s
        .start(spec(json!([[
            "children",
            [
                child(json!([["block", 20000]]), "b"),
                child(json!([["sleep", 20000]]), "s")
            ]
        ]])))
        .expect("start");
    wait_state(&s, parent, JobState::Blocked);
    let out = s
        .wait_blocking(&[parent], WaitMode::All, Some(Duration::from_secs(10)))
        .expect("wait");
    assert!(!out.timed_out, "wait returns for a Blocked job");
    s.request_stop(parent).expect("stop");
    let info = s.block_on(s.wait_finished(parent)).expect("wait finished");
    assert_eq!(info.state, JobState::Stopped);
    for c in info.children {
        assert!(s.info(c).expect("child").state.is_finished());
    }
}

#[test]
fn a_disconnected_child_makes_its_parent_disconnected_until_it_is_back() {
    let s = session();
    let parent = s
        .start(spec(json!([[
            "children",
            [
                child(json!([["disconnect", 3000], ["sleep", 20000]]), "d"),
                child(json!([["out", "ok"]]), "c")
            ]
        ]])))
        .expect("start");
    wait_state(&s, parent, JobState::Disconnected);
    let out = s
        .wait_blocking(&[parent], WaitMode::All, Some(Duration::from_secs(10)))
        .expect("wait");
    assert!(!out.timed_out, "wait returns for a Disconnected job");
    let kids = s.info(parent).expect("info").children;
    assert_eq!(
        s.info(kids[0]).expect("child").state,
        JobState::Disconnected
    );
    // Back: the child, and with it the parent, run again.
    wait_state(&s, kids[0], JobState::Running);
    wait_state(&s, parent, JobState::Running);
    s.request_stop(parent).expect("stop");
    let info = s.block_on(s.wait_finished(parent)).expect("wait finished");
    assert_eq!(info.state, JobState::Stopped);
}

#[test]
fn a_failed_child_outweighs_a_disconnected_one() {
    let s = session();
    let parent = s
        .start(spec(json!([[
            "children",
            [
                child(json!([["disconnect", 20000]]), "d"),
                child(json!([["sleep", 300], ["fail", "gone"]]), "f")
            ]
        ]])))
        .expect("start");
    wait_state(&s, parent, JobState::Disconnected);
    let kids = s.info(parent).expect("info").children;
    wait_state(&s, kids[1], JobState::Failed);
    assert_eq!(s.info(parent).expect("info").state, JobState::Running);
    s.request_stop(parent).expect("stop");
    let info = s.block_on(s.wait_finished(parent)).expect("wait finished");
    assert_eq!(info.state, JobState::Stopped);
}

#[test]
fn child_throttle_limits_concurrent_children() {
    let s = session();
    let kids: Vec<serde_json::Value> = (0..4)
        .map(|i| child(json!([["sleep", 300]]), &format!("h{i}")))
        .collect();
    let mut ps = spec(json!([["children", kids]]));
    ps.child_throttle = Some(1);
    let parent = s.start(ps).expect("start");
    let mut max_running = 0;
    loop {
        let info = s.info(parent).expect("info");
        let running = info
            .children
            .iter()
            .filter(|&&c| s.info(c).expect("child").state == JobState::Running)
            .count();
        max_running = max_running.max(running);
        if info.state.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(max_running, 1);
    assert_eq!(s.info(parent).expect("info").state, JobState::Completed);
}

#[test]
fn order_is_kept_across_streams_for_100k_records() {
    let s = session();
    let n = 100_000u64;
    let id = s.start(spec(json!([["interleave", n]]))).expect("start");
    wait(&s, &[id]);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(recs.len() as u64, n);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.record.stream, Stream::ALL[i % 6]);
        assert_eq!(
            r.record.payload.to_display_bytes(),
            i.to_string().into_bytes()
        );
    }
    assert!(recs.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn live_value_comes_back_as_the_same_arc() {
    let s = session();
    let value = Arc::new(String::from("shared, not copied"));
    let id = s
        .start(spec(json!([])).payload(Box::new(Arc::clone(&value))))
        .expect("start");
    wait(&s, &[id]);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(recs.len(), 1);
    let Payload::Live(live) = &recs[0].record.payload else {
        panic!("expected a live value, got {:?}", recs[0].record.payload);
    };
    let back = live.downcast::<String>().expect("a String");
    assert!(Arc::ptr_eq(&value, &back));
}

#[test]
fn follow_with_keep_then_consume() {
    let s = session();
    let id = s
        .start(spec(json!([["out", "1"], ["sleep", 100], ["out", "2"]])))
        .expect("start");
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let mut follow = s.follow(&[id], keep).expect("follow");
    let mut got = Vec::new();
    while let Some(r) = follow.next_blocking().expect("next") {
        got.push(r);
    }
    assert_eq!(output_lines(&got), ["1", "2"]);
    assert!(
        s.info(id).expect("info").has_more_data,
        "kept records remain"
    );
    s.consume(&got[..1]).expect("consume");
    let rest = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(output_lines(&rest), ["2"]);
}

#[test]
fn follow_holds_a_bounded_part_of_a_large_output() {
    let s = session();
    let big = "x".repeat(1 << 20);
    let steps: Vec<serde_json::Value> = (0..20)
        .map(|i| json!(["out", format!("{i}{big}")]))
        .collect();
    let id = s.start(spec(json!(steps))).expect("start");
    wait_state(&s, id, JobState::Completed);
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let mut follow = s.follow(&[id], keep).expect("follow");
    let mut got = Vec::new();
    loop {
        let batch = s.block_on(follow.next_batch(1000)).expect("next batch");
        if batch.is_empty() {
            break;
        }
        let bytes: usize = batch.iter().map(|r| r.record.approx_size()).sum();
        assert!(
            bytes <= (5 << 20) + 64,
            "a batch of {} records and {bytes} bytes",
            batch.len()
        );
        got.extend(batch);
    }
    let firsts: Vec<String> = output_lines(&got)
        .iter()
        .map(|l| l.trim_end_matches('x').to_string())
        .collect();
    let want: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    assert_eq!(firsts, want);
}

#[test]
fn get_filters() {
    let s = session();
    let a = s
        .start(spec(json!([["out", "x"]])).name("Build-Linux"))
        .expect("start");
    let b = s
        .start(spec(json!([["fail", "no"]])).name("build-mac"))
        .expect("start");
    let c = s
        .start(spec(json!([["sleep", 20000]])).name("deploy"))
        .expect("start");
    wait(&s, &[a, b]);
    let names =
        |f: JobFilter| -> Vec<u64> { s.get(&f).expect("get").into_iter().map(|i| i.id).collect() };
    assert_eq!(
        names(JobFilter {
            name: Some("build-*".into()),
            ..Default::default()
        }),
        [a, b]
    );
    assert_eq!(
        names(JobFilter {
            state: Some(JobState::Failed),
            ..Default::default()
        }),
        [b]
    );
    assert_eq!(
        names(JobFilter {
            type_name: Some("testjob".into()),
            ..Default::default()
        }),
        [a, b, c]
    );
    assert_eq!(
        names(JobFilter {
            command: Some("*sleep*".into()),
            ..Default::default()
        }),
        [c]
    );
    assert_eq!(
        names(JobFilter {
            has_more_data: Some(false),
            ..Default::default()
        }),
        [b]
    );
    assert_eq!(
        names(JobFilter {
            newest: Some(2),
            ..Default::default()
        }),
        [b, c]
    );
    assert_eq!(
        names(JobFilter {
            ids: vec![c],
            ..Default::default()
        }),
        [c]
    );
    let err = s
        .get(&JobFilter {
            ids: vec![99],
            ..Default::default()
        })
        .expect_err("unknown id");
    assert_eq!(err.kind(), ErrorKind::NoSuchJob);
    assert_eq!(err.to_string(), "no job with id 99");
    let info = s.info(a).expect("info");
    assert_eq!(info.name, "Build-Linux");
    assert_eq!(s.info(c).expect("info").state, JobState::Running);
    s.close_blocking();
    assert_eq!(s.info(c).expect("info").state, JobState::Stopped);
    let default_name = s.start(spec(json!([]))).expect("start");
    assert_eq!(
        s.info(default_name).expect("info").name,
        format!("Job{default_name}")
    );
}

#[test]
fn wait_all_over_several_and_zero_timeout() {
    let s = session();
    let ids: Vec<u64> = (0..5)
        .map(|i| s.start(spec(json!([["sleep", 50 * i]]))).expect("start"))
        .collect();
    wait(&s, &ids);
    let out = s
        .wait_blocking(&ids, WaitMode::All, Some(Duration::ZERO))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(out.done.len(), 5);
    let err = s
        .wait_blocking(&[42], WaitMode::All, None)
        .expect_err("unknown");
    assert_eq!(err.kind(), ErrorKind::NoSuchJob);
}

#[test]
fn a_spec_may_carry_the_instance_id_the_job_takes() {
    let s = session();
    let given = uuid::Uuid::new_v4();
    let a = s.start(spec(json!([])).instance_id(given)).expect("start");
    let b = s.start(spec(json!([]))).expect("start");
    assert_eq!(s.info(a).expect("info").instance_id, given);
    assert_ne!(s.info(b).expect("info").instance_id, given);
    wait(&s, &[a, b]);
}

#[test]
fn an_attempt_the_executor_counts_shows_in_attempts_and_leaves_the_retries() {
    let s = session();
    let mut sp = spec(json!([["attempt"], ["fail", "no luck"]]));
    sp.retries = 1;
    let id = s.start(sp).expect("start");
    s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    // Two runs (the retry was kept), each counting one more attempt.
    assert_eq!(info.attempts, 4);
    let texts: Vec<String> = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive")
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.payload.to_display_bytes()).into_owned())
        .collect();
    assert_eq!(
        texts,
        ["now attempt 2", "attempt 3 of 3", "now attempt 4"],
        "the retry's announcement counts the executor's attempt too"
    );
}
