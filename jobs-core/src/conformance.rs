//! The executor conformance suite: the lifecycle cases every executor must
//! pass, run against any [`JobExecutor`] through a [`Subject`].
//!
//! An executor crate (or plugin) implements [`Subject`] in its tests and
//! invokes [`conformance_tests!`](crate::conformance_tests):
//!
//! ```text
//! struct MySubject;
//! impl jobs_core::conformance::Subject for MySubject { /* ... */ }
//! jobs_core::conformance_tests!(MySubject);
//! ```
//!
//! Each case builds its own session (with its own runtime), registers the
//! subject's executor and checks one rule: output and completion, consuming
//! vs keeping receive, `has_more_data`, ordering, failure reasons, wait
//! all/any/timeout, stop, remove refused and forced, throttle queueing,
//! close, dependencies, and suspend/resume (or its refusal).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    ErrorKind, JobExecutor, JobId, JobSpec, JobState, ReceiveOptions, Session, Stream, WaitMode,
};

/// What the suite needs from an executor: the executor, and specs that make
/// it emit, sleep and fail.
pub trait Subject {
    /// The executor under test (a fresh one or a shared one).
    fn executor(&self) -> Arc<dyn JobExecutor>;
    /// A job that writes `lines` to its output stream in order (as one
    /// record per line or as byte chunks with `\n` endings), then completes.
    fn emit(&self, lines: &[&str]) -> JobSpec;
    /// A job that runs for `secs` seconds unless stopped, emitting nothing.
    fn sleep(&self, secs: u64) -> JobSpec;
    /// A job that fails; its reason must contain `marker`.
    fn fail(&self, marker: &str) -> JobSpec;
}

/// A session with the subject's executor registered.
pub fn session(subject: &dyn Subject) -> Session {
    let session = Session::new().expect("session");
    session.register(subject.executor());
    session
}

/// The output of received records as lines: each record's bytes, with a
/// newline added where a record does not end in one.
pub fn output_lines(records: &[crate::Received]) -> Vec<String> {
    let mut buf = Vec::new();
    for r in records.iter().filter(|r| r.record.stream == Stream::Output) {
        let b = r.record.payload.to_display_bytes();
        let ends_nl = b.last() == Some(&b'\n');
        buf.extend_from_slice(&b);
        if !ends_nl {
            buf.push(b'\n');
        }
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_all(s: &Session, ids: &[JobId], secs: u64) {
    let out = s
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(secs)))
        .expect("wait");
    assert!(!out.timed_out, "jobs {ids:?} did not finish within {secs}s");
}

fn wait_state(s: &Session, id: JobId, want: JobState, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let st = s.info(id).expect("info").state;
        if st == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} is {st}, expected {want}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A job that emits completes with its output, in order.
pub fn completes_with_output(subject: &dyn Subject) {
    let s = session(subject);
    let id = s
        .start(subject.emit(&["alpha", "beta", "gamma"]))
        .expect("start");
    wait_all(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Completed, "reason: {:?}", info.reason);
    assert!(info.begin.is_some() && info.end.is_some());
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(output_lines(&recs), ["alpha", "beta", "gamma"]);
}

/// Where a job is started does not change what it does: from a thread
/// outside any runtime (where an executor that
/// [starts in place](JobExecutor::starts_in_place) takes the first step) and
/// from inside the session's runtime, the same spec completes with the same
/// output; and stopped there, it ends Stopped.
pub fn starts_alike_outside_and_inside_the_runtime(subject: &dyn Subject) {
    let s = session(subject);
    let spec = || subject.emit(&["one", "two"]);
    let outside = s.start(spec()).expect("start outside");
    let inside = s.block_on(async { s.start(spec()) }).expect("start inside");
    for id in [outside, inside] {
        wait_all(&s, &[id], 60);
        let info = s.info(id).expect("info");
        assert_eq!(info.state, JobState::Completed, "reason: {:?}", info.reason);
        let recs = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        assert_eq!(output_lines(&recs), ["one", "two"]);
    }
    let outside = s.start(subject.sleep(60)).expect("start outside");
    let inside = s
        .block_on(async { s.start(subject.sleep(60)) })
        .expect("start inside");
    for id in [outside, inside] {
        wait_state(&s, id, JobState::Running, 30);
        assert_eq!(s.stop_blocking(id).expect("stop").state, JobState::Stopped);
    }
}

/// Receive consumes by default; `keep` leaves the records; `has_more_data`
/// turns false only when a finished job is drained.
pub fn receive_keep_and_consume(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.emit(&["one", "two"])).expect("start");
    wait_all(&s, &[id], 60);
    assert!(s.info(id).expect("info").has_more_data);
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let first = s.receive(&[id], keep).expect("receive keep");
    assert_eq!(output_lines(&first), ["one", "two"]);
    assert!(s.info(id).expect("info").has_more_data);
    let second = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(output_lines(&second), ["one", "two"]);
    assert!(!s.info(id).expect("info").has_more_data);
    let third = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert!(third.is_empty());
}

/// Many records come back complete and in order.
pub fn ordering_of_many_records(subject: &dyn Subject) {
    let s = session(subject);
    let lines: Vec<String> = (0..2000).map(|i| format!("line {i}")).collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let id = s.start(subject.emit(&refs)).expect("start");
    let mut follow = s.follow(&[id], ReceiveOptions::default()).expect("follow");
    let mut got = Vec::new();
    while let Some(r) = follow.next_blocking().expect("next") {
        got.push(r);
    }
    assert_eq!(output_lines(&got), lines);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
}

/// A failing job ends Failed with a reason.
pub fn failure_has_reason(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.fail("conformance-marker")).expect("start");
    wait_all(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(
        reason.contains("conformance-marker"),
        "reason {reason:?} lacks the marker"
    );
}

/// Wait: a timeout leaves the job running; a zero timeout returns at once;
/// `any` returns when the first job is done.
pub fn wait_any_and_timeout(subject: &dyn Subject) {
    let s = session(subject);
    let long = s.start(subject.sleep(30)).expect("start");
    let short = s.start(subject.emit(&["x"])).expect("start");
    let out = s
        .wait_blocking(&[long], WaitMode::All, Some(Duration::ZERO))
        .expect("wait");
    assert!(out.timed_out);
    let out = s
        .wait_blocking(&[long], WaitMode::All, Some(Duration::from_millis(200)))
        .expect("wait");
    assert!(out.timed_out);
    assert!(!s.info(long).expect("info").state.is_finished());
    let out = s
        .wait_blocking(&[long, short], WaitMode::Any, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(out.done.len(), 1);
    assert_eq!(out.done[0].id, short);
    s.stop_blocking(long).expect("stop");
}

/// Stop ends a running job Stopped, promptly; stopping it again is a no-op.
pub fn stop_running_job(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.sleep(60)).expect("start");
    wait_state(&s, id, JobState::Running, 30);
    let t0 = Instant::now();
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stop took {:?}",
        t0.elapsed()
    );
    let again = s.stop_blocking(id).expect("stop again");
    assert_eq!(again.state, JobState::Stopped);
}

/// A job that outlives its time limit is stopped and ends Failed with the
/// reason `timed out after …`, promptly; its work does not go on.
pub fn timeout_fails_the_job(subject: &dyn Subject) {
    let s = session(subject);
    let id = s
        .start(subject.sleep(60).timeout(Duration::from_millis(500)))
        .expect("start");
    let t0 = Instant::now();
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out, "the time limit did not end the job");
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed, "{info:?}");
    assert_eq!(info.reason.as_deref(), Some("timed out after 500ms"));
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "took {:?}",
        t0.elapsed()
    );
}

/// A stop with a first signal and a grace ends a running job promptly,
/// Stopped (an executor that cannot signal stops as it always does).
pub fn stop_with_a_signal_and_a_grace(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.sleep(60)).expect("start");
    wait_state(&s, id, JobState::Running, 30);
    let t0 = Instant::now();
    s.request_stop_with(
        id,
        crate::StopOptions {
            signal: Some(2),
            grace: Some(Duration::from_millis(500)),
        },
    )
    .expect("stop");
    wait_all(&s, &[id], 30);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Stopped, "{info:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(25),
        "took {:?}",
        t0.elapsed()
    );
}

/// Remove refuses a running job, forced remove stops it, a removed job is gone.
pub fn remove_refused_then_forced(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.sleep(60)).expect("start");
    let err = s
        .remove_blocking(id, false)
        .expect_err("remove must refuse");
    assert_eq!(err.kind(), ErrorKind::NotFinished);
    s.remove_blocking(id, true).expect("forced remove");
    assert_eq!(s.info(id).expect_err("gone").kind(), ErrorKind::NoSuchJob);
    let done = s.start(subject.emit(&["z"])).expect("start");
    wait_all(&s, &[done], 60);
    s.remove_blocking(done, false).expect("remove finished");
}

/// With a throttle of 1, a second job waits NotStarted until the first ends.
pub fn throttle_queues(subject: &dyn Subject) {
    let s = session(subject);
    let spec = subject.sleep(60);
    s.set_throttle(subject.executor().type_name(), 1);
    let a = s.start(spec).expect("start");
    let b = s.start(subject.emit(&["queued"])).expect("start");
    wait_state(&s, a, JobState::Running, 30);
    assert_eq!(s.info(b).expect("info").state, JobState::NotStarted);
    s.stop_blocking(a).expect("stop");
    wait_all(&s, &[b], 60);
    assert_eq!(s.info(b).expect("info").state, JobState::Completed);
}

/// Closing the session stops its running jobs.
pub fn close_stops_running(subject: &dyn Subject) {
    let s = session(subject);
    let id = s.start(subject.sleep(60)).expect("start");
    wait_state(&s, id, JobState::Running, 30);
    s.close_blocking();
    assert_eq!(s.info(id).expect("info").state, JobState::Stopped);
}

/// Dependencies: a job after a failed one ends Failed without running, one
/// after any outcome runs, one after a completed one runs, and one after a
/// running job waits NotStarted until that job ends (here: stopped).
pub fn dependencies_wait_and_decide(subject: &dyn Subject) {
    let s = session(subject);
    let a = s.start(subject.fail("dep")).expect("start");
    let b = s.start(subject.emit(&["never"]).after([a])).expect("after");
    let c = s
        .start(subject.emit(&["any"]).after_any([a]))
        .expect("after any");
    let d = s.start(subject.emit(&["first"])).expect("start");
    let e = s.start(subject.emit(&["then"]).after([d])).expect("after");
    wait_all(&s, &[b, c, e], 60);
    let name = s.info(a).expect("info").name;
    let bi = s.info(b).expect("info");
    assert_eq!(bi.state, JobState::Failed);
    assert_eq!(
        bi.reason.as_deref(),
        Some(&*format!("dependency {a} ({name}) failed"))
    );
    let never = s.receive(&[b], ReceiveOptions::default()).expect("receive");
    assert!(
        output_lines(&never).is_empty(),
        "a failed dependency's job ran"
    );
    for (id, line) in [(c, "any"), (e, "then")] {
        assert_eq!(s.info(id).expect("info").state, JobState::Completed);
        let got = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        assert_eq!(output_lines(&got), [line]);
    }
    let long = s.start(subject.sleep(60)).expect("start");
    let f = s.start(subject.emit(&["no"]).after([long])).expect("after");
    wait_state(&s, long, JobState::Running, 30);
    assert_eq!(s.info(f).expect("info").state, JobState::NotStarted);
    s.stop_blocking(long).expect("stop");
    wait_all(&s, &[f], 60);
    let fi = s.info(f).expect("info");
    assert_eq!(fi.state, JobState::Failed);
    assert!(
        fi.reason
            .as_deref()
            .is_some_and(|r| r.ends_with("was stopped")),
        "{fi:?}"
    );
}

/// Suspend and resume, for an executor that
/// [can suspend](JobExecutor::can_suspend): a suspended job is Suspended
/// and stays so past the end its work would have reached (wait returns on
/// it; waiting for a finished state does not), completes once resumed,
/// and a suspended job can be stopped. For one that cannot: the suspend
/// is refused naming the type, and the job runs on unchanged.
pub fn suspend_and_resume(subject: &dyn Subject) {
    let s = session(subject);
    let ex = subject.executor();
    if !ex.can_suspend() {
        let id = s.start(subject.sleep(60)).expect("start");
        wait_state(&s, id, JobState::Running, 30);
        let err = s.suspend_blocking(&[id]).expect_err("suspend must refuse");
        assert_eq!(err.kind(), ErrorKind::CannotSuspend);
        let line = crate::error::chain(&err);
        assert!(line.contains(ex.type_name()), "{line}");
        assert_eq!(s.info(id).expect("info").state, JobState::Running);
        s.stop_blocking(id).expect("stop");
        return;
    }
    let id = s.start(subject.sleep(1)).expect("start");
    wait_state(&s, id, JobState::Running, 30);
    let rows = s.suspend_blocking(&[id]).expect("suspend");
    assert_eq!(rows[0].state, JobState::Suspended);
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(10)))
        .expect("wait");
    assert!(!out.timed_out, "wait did not return on Suspended");
    let forced = s
        .block_on(s.wait_until(
            &[id],
            WaitMode::All,
            crate::WaitUntil::Finished,
            Some(Duration::from_secs(2)),
        ))
        .expect("wait --force");
    assert!(forced.timed_out, "a suspended job finished: {forced:?}");
    assert_eq!(s.info(id).expect("info").state, JobState::Suspended);
    let err = s.suspend_blocking(&[id]).map(|r| r[0].state);
    assert_eq!(err.expect("suspend again"), JobState::Suspended);
    let rows = s.resume_blocking(&[id]).expect("resume");
    assert!(matches!(
        rows[0].state,
        JobState::Running | JobState::Completed
    ));
    wait_all(&s, &[id], 60);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let err = s
        .resume_blocking(&[id])
        .expect_err("resume of a finished job");
    assert_eq!(err.kind(), ErrorKind::WrongState);

    let id = s.start(subject.sleep(60)).expect("start");
    wait_state(&s, id, JobState::Running, 30);
    s.suspend_blocking(&[id]).expect("suspend");
    let t0 = Instant::now();
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "stop of a suspended job took {:?}",
        t0.elapsed()
    );
}

/// Generates one `#[test]` per conformance case for a [`Subject`] value.
#[macro_export]
macro_rules! conformance_tests {
    ($subject:expr) => {
        $crate::conformance_tests!(@cases $subject;
            completes_with_output,
            starts_alike_outside_and_inside_the_runtime,
            receive_keep_and_consume,
            ordering_of_many_records,
            failure_has_reason,
            wait_any_and_timeout,
            stop_running_job,
            remove_refused_then_forced,
            throttle_queues,
            close_stops_running,
            dependencies_wait_and_decide,
            timeout_fails_the_job,
            stop_with_a_signal_and_a_grace,
            suspend_and_resume
        );
    };
    (@cases $subject:expr; $($case:ident),*) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::$case(&$subject);
            }
        )*
    };
}
