//! `JobSpec::timeout`: a job running too long is stopped and ends Failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{BatchSpec, JobSpec, JobState, Session, WaitMode};
use serde_json::json;

use crate::support::{spec, TestExecutor};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    s
}

fn wait_all(s: &Session, id: u64) {
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out, "job {id} did not finish");
}

fn sleeping(ms: u64) -> JobSpec {
    spec(json!([["sleep", ms]]))
}

#[test]
fn a_job_past_its_timeout_is_stopped_and_fails_with_the_reason() {
    let s = session();
    let began = Instant::now();
    let id = s
        .start(sleeping(30_000).timeout(Duration::from_millis(200)))
        .expect("start");
    wait_all(&s, id);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed, "{info:?}");
    assert_eq!(info.reason.as_deref(), Some("timed out after 200ms"));
    assert!(began.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_job_done_in_time_completes() {
    let s = session();
    let id = s
        .start(sleeping(50).timeout(Duration::from_secs(5)))
        .expect("start");
    wait_all(&s, id);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
}

#[test]
fn a_batch_times_out_per_item() {
    let s = session();
    let mut fast = sleeping(10);
    fast.item = Some("fast".into());
    fast.timeout = Some(Duration::from_millis(300));
    let mut slow = sleeping(30_000);
    slow.item = Some("slow".into());
    slow.timeout = Some(Duration::from_millis(300));
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            children: vec![fast, slow],
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    let kids: Vec<_> = parent
        .children
        .iter()
        .map(|c| s.info(*c).expect("child"))
        .collect();
    assert_eq!(kids[0].state, JobState::Completed);
    assert_eq!(kids[1].state, JobState::Failed);
    assert_eq!(kids[1].reason.as_deref(), Some("timed out after 300ms"));
    assert_eq!(parent.state, JobState::Failed);
    assert!(
        parent
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("timed out")),
        "{parent:?}"
    );
}

#[test]
fn a_timeout_is_a_failure_that_retries_run_again() {
    let s = session();
    let mut c = sleeping(30_000).timeout(Duration::from_millis(150));
    c.item = Some("slow".into());
    c.retries = 1;
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            children: vec![c],
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let child = s.info(id).expect("info").children[0];
    let info = s.info(child).expect("child");
    assert_eq!(info.state, JobState::Failed, "{info:?}");
    assert_eq!(info.attempts, 2);
    assert_eq!(info.reason.as_deref(), Some("timed out after 150ms"));
}

#[test]
fn the_clock_starts_when_the_job_runs_not_while_it_waits() {
    let s = session();
    let first = s.start(sleeping(500)).expect("first");
    let second = s
        .start(
            sleeping(100)
                .after([first])
                .timeout(Duration::from_millis(300)),
        )
        .expect("second");
    wait_all(&s, second);
    assert_eq!(s.info(second).expect("info").state, JobState::Completed);
}

#[test]
fn a_stop_before_the_timeout_ends_stopped() {
    let s = session();
    let id = s
        .start(sleeping(30_000).timeout(Duration::from_secs(30)))
        .expect("start");
    std::thread::sleep(Duration::from_millis(50));
    s.stop_blocking(id).expect("stop");
    wait_all(&s, id);
    assert_eq!(s.info(id).expect("info").state, JobState::Stopped);
}
