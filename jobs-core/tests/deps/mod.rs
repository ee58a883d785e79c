//! Dependencies: jobs that wait for others (`JobSpec::after`, `after_any`).

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{BatchSpec, ErrorKind, JobId, JobSpec, JobState, Session, WaitMode};
use serde_json::json;

use crate::support::{order_log, spec, TestExecutor};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    s
}

fn wait(s: &Session, ids: &[JobId]) {
    let out = s
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out, "jobs {ids:?} did not finish");
}

/// A job that appends `name` to the shared log, after sleeping `ms`.
fn logs(name: &str, ms: u64) -> JobSpec {
    spec(json!([["sleep", ms], ["log", name]])).name(name)
}

/// The entries of the shared log that start with `prefix`, in order.
fn logged(prefix: &str) -> Vec<String> {
    order_log()
        .lock()
        .expect("log")
        .iter()
        .filter(|l| l.starts_with(prefix))
        .cloned()
        .collect()
}

fn state(s: &Session, id: JobId) -> JobState {
    s.info(id).expect("info").state
}

#[test]
fn a_job_after_another_waits_not_started_then_runs_once_it_completed() {
    let s = session();
    let a = s.start(logs("w1.a", 300)).expect("a");
    let b = s.start(logs("w1.b", 0).after([a])).expect("b");
    let info = s.info(b).expect("b");
    assert_eq!(info.state, JobState::NotStarted);
    assert_eq!(info.after, vec![a]);
    assert!(info.after_any.is_empty());
    wait(&s, &[b]);
    assert_eq!(state(&s, b), JobState::Completed);
    assert_eq!(logged("w1."), ["w1.a", "w1.b"]);
}

#[test]
fn a_failed_dependency_fails_the_job_without_running_it_and_after_any_runs() {
    let s = session();
    let a = s
        .start(spec(json!([["sleep", 100], ["fail", "boom"]])).name("build"))
        .expect("a");
    let b = s.start(logs("w2.b", 0).after([a])).expect("b");
    let c = s.start(logs("w2.c", 0).after_any([a])).expect("c");
    wait(&s, &[a, b, c]);
    let bi = s.info(b).expect("b");
    assert_eq!(bi.state, JobState::Failed);
    assert_eq!(
        bi.reason.as_deref(),
        Some(&*format!("dependency {a} (build) failed"))
    );
    assert_eq!(bi.attempts, 0, "b never ran");
    assert_eq!(state(&s, c), JobState::Completed);
    assert_eq!(logged("w2."), ["w2.c"]);
}

#[test]
fn a_dependency_that_already_failed_fails_the_job_at_once() {
    let s = session();
    let a = s.start(spec(json!([["fail", "x"]])).name("a")).expect("a");
    wait(&s, &[a]);
    let b = s.start(logs("w3.b", 0).after([a])).expect("b");
    let bi = s.info(b).expect("b");
    assert_eq!(bi.state, JobState::Failed);
    assert_eq!(
        bi.reason.as_deref(),
        Some(&*format!("dependency {a} (a) failed"))
    );
}

#[test]
fn a_failure_propagates_down_a_chain_naming_each_link() {
    let s = session();
    let a = s
        .start(spec(json!([["sleep", 100], ["fail", "x"]])).name("a"))
        .expect("a");
    let b = s.start(logs("w4.b", 0).after([a])).expect("b");
    let c = s.start(logs("w4.c", 0).after([b])).expect("c");
    let d = s.start(logs("w4.d", 0).after_any([c])).expect("d");
    wait(&s, &[d]);
    assert_eq!(
        s.info(c).expect("c").reason.as_deref(),
        Some(&*format!("dependency {b} (w4.b) failed"))
    );
    assert_eq!(state(&s, d), JobState::Completed);
    assert_eq!(logged("w4."), ["w4.d"]);
}

#[test]
fn a_chain_runs_strictly_in_order() {
    let s = session();
    let mut prev = s.start(logs("w5.000", 0)).expect("first");
    for i in 1..50 {
        prev = s
            .start(logs(&format!("w5.{i:03}"), 0).after([prev]))
            .expect("link");
    }
    wait(&s, &[prev]);
    let want: Vec<String> = (0..50).map(|i| format!("w5.{i:03}")).collect();
    assert_eq!(logged("w5."), want);
}

#[test]
fn a_diamond_runs_the_last_job_once_after_both_branches() {
    let s = session();
    let a = s.start(logs("w6.a", 50)).expect("a");
    let b = s.start(logs("w6.b", 200).after([a])).expect("b");
    let c = s.start(logs("w6.c", 0).after([a])).expect("c");
    let d = s.start(logs("w6.d", 0).after([b, c])).expect("d");
    wait(&s, &[d]);
    assert_eq!(state(&s, d), JobState::Completed);
    let log = logged("w6.");
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0], "w6.a");
    assert_eq!(log[3], "w6.d");
}

#[test]
fn stopping_a_waiting_job_ends_it_stopped_and_fails_its_dependents() {
    let s = session();
    let a = s.start(spec(json!([["sleep", 30_000]]))).expect("a");
    let b = s.start(logs("w7.b", 0).name("b").after([a])).expect("b");
    let c = s.start(logs("w7.c", 0).after([b])).expect("c");
    let stopped = s.stop_blocking(b).expect("stop");
    assert_eq!(stopped.state, JobState::Stopped);
    let ci = s.info(c).expect("c");
    assert_eq!(ci.state, JobState::Failed);
    assert_eq!(
        ci.reason.as_deref(),
        Some(&*format!("dependency {b} (b) was stopped"))
    );
    assert_eq!(
        state(&s, a),
        JobState::Running,
        "a dependency is not stopped"
    );
    s.stop_blocking(a).expect("stop a");
    assert!(logged("w7.").is_empty());
}

#[test]
fn removing_a_dependency_fails_its_dependents_and_counts_as_finished_for_after_any() {
    let s = session();
    let a = s
        .start(spec(json!([["out", "x"]])).name("done"))
        .expect("a");
    wait(&s, &[a]);
    let long = s.start(spec(json!([["sleep", 30_000]]))).expect("long");
    let b = s.start(logs("w8.b", 0).after([a, long])).expect("b");
    let c = s.start(logs("w8.c", 0).after_any([a])).expect("c");
    wait(&s, &[c]);
    s.remove_blocking(a, false).expect("remove");
    let bi = s.info(b).expect("b");
    assert_eq!(bi.state, JobState::Failed);
    assert_eq!(
        bi.reason.as_deref(),
        Some(&*format!("dependency {a} (done) was removed"))
    );
    s.stop_blocking(long).expect("stop");
}

#[test]
fn force_removing_a_running_dependency_fails_its_dependents_as_removed() {
    let s = session();
    let a = s
        .start(spec(json!([["sleep", 30_000]])).name("a"))
        .expect("a");
    let b = s.start(logs("w9.b", 0).after([a])).expect("b");
    s.remove_blocking(a, true).expect("remove");
    let bi = s.info(b).expect("b");
    assert_eq!(bi.state, JobState::Failed);
    assert_eq!(
        bi.reason.as_deref(),
        Some(&*format!("dependency {a} (a) was removed"))
    );
}

#[test]
fn unknown_ids_are_refused_and_nothing_starts() {
    let s = session();
    let a = s.start(spec(json!([]))).expect("a");
    let err = s.start(logs("w10", 0).after([a, 99])).expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::NoSuchJob);
    assert_eq!(err.job(), Some(99));
    let err = s
        .start(logs("w10", 0).after_any([a + 1]))
        .expect_err("itself");
    assert_eq!(err.kind(), ErrorKind::NoSuchJob);
    assert_eq!(s.get(&Default::default()).expect("get").len(), 1);
    // Named twice, waited for once.
    let b = s.start(logs("w10.b", 0).after([a, a])).expect("b");
    assert_eq!(s.info(b).expect("b").after, vec![a]);
}

#[test]
fn a_job_that_waited_still_goes_through_its_throttle() {
    let s = session();
    s.set_throttle(crate::support::TYPE, 1);
    let a = s.start(logs("w11.a", 0)).expect("a");
    let busy = s.start(spec(json!([["sleep", 30_000]]))).expect("busy");
    let b = s.start(logs("w11.b", 0).after([a])).expect("b");
    wait(&s, &[a]);
    // a completed, but the one slot is busy: b is queued, not running.
    assert_eq!(state(&s, b), JobState::NotStarted);
    s.stop_blocking(busy).expect("stop");
    wait(&s, &[b]);
    assert_eq!(state(&s, b), JobState::Completed);
}

#[test]
fn a_batch_can_wait_and_be_waited_for() {
    let s = session();
    let a = s.start(logs("w12.a", 200)).expect("a");
    let children = ["x", "y"]
        .iter()
        .map(|i| {
            let mut c = logs(&format!("w12.item.{i}"), 0);
            c.name = None;
            c.item = Some(i.to_string());
            c
        })
        .collect();
    let batch = s
        .start_batch(BatchSpec {
            name: Some("batch".into()),
            command: "log".into(),
            children,
            after: vec![a],
            ..BatchSpec::default()
        })
        .expect("batch");
    let info = s.info(batch).expect("batch");
    assert_eq!(info.state, JobState::NotStarted);
    for c in &info.children {
        assert_eq!(
            state(&s, *c),
            JobState::NotStarted,
            "a child runs before its batch"
        );
    }
    let z = s.start(logs("w12.z", 0).after([batch])).expect("z");
    wait(&s, &[z]);
    assert_eq!(state(&s, batch), JobState::Completed);
    let log = logged("w12.");
    assert_eq!(log.len(), 4, "{log:?}");
    assert_eq!(log[0], "w12.a");
    assert_eq!(log[3], "w12.z");
}

#[test]
fn a_batch_whose_dependency_failed_fails_and_its_children_never_run() {
    let s = session();
    let a = s.start(spec(json!([["fail", "x"]])).name("a")).expect("a");
    wait(&s, &[a]);
    let mut c = logs("w13.item", 0);
    c.name = None;
    c.item = Some("i".into());
    let batch = s
        .start_batch(BatchSpec {
            command: "log".into(),
            children: vec![c],
            after: vec![a],
            ..BatchSpec::default()
        })
        .expect("batch");
    wait(&s, &[batch]);
    let info = s.info(batch).expect("batch");
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(
        info.reason.as_deref(),
        Some(&*format!("dependency {a} (a) failed"))
    );
    assert_eq!(state(&s, info.children[0]), JobState::Stopped);
    assert!(logged("w13.").is_empty());
}

#[test]
fn a_child_of_a_batch_can_be_a_dependency() {
    let s = session();
    let mut c = logs("w14.item", 100);
    c.name = None;
    c.item = Some("i".into());
    let batch = s
        .start_batch(BatchSpec {
            command: "log".into(),
            children: vec![c],
            ..BatchSpec::default()
        })
        .expect("batch");
    let child = s.info(batch).expect("batch").children[0];
    let d = s.start(logs("w14.d", 0).after([child])).expect("d");
    wait(&s, &[d]);
    assert_eq!(logged("w14."), ["w14.item", "w14.d"]);
}

#[test]
fn closing_a_session_with_a_store_that_keeps_no_specs_stops_waiting_jobs() {
    let s = session();
    let a = s.start(spec(json!([["sleep", 30_000]]))).expect("a");
    let b = s.start(logs("w15.b", 0).after_any([a])).expect("b");
    s.close_blocking();
    assert_eq!(state(&s, a), JobState::Stopped);
    // Stopped by the close, not started by a's end: the session was closing.
    assert_eq!(state(&s, b), JobState::Stopped);
    assert!(logged("w15.").is_empty());
}
