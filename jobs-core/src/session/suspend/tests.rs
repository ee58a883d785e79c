//! The suspend and resume rules, against executors of this file: one that
//! pauses cooperatively and one that cannot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{
    async_trait, ErrorKind, JobContext, JobExecutor, JobFailure, JobId, JobSpec, JobState,
    ReceiveOptions, Session, SuspendError, WaitMode, WaitUntil,
};

/// Emits `0`, `1`, ... every 20 ms, as many as its command says (none:
/// forever), pausing while suspended.
struct Counter;

#[async_trait]
impl JobExecutor for Counter {
    fn type_name(&self) -> &str {
        "CounterJob"
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let n: u64 = spec.command.parse().unwrap_or(u64::MAX);
        let token = ctx.stop_token();
        for i in 0..n {
            token.unpaused().await;
            if token.is_stopped() {
                return Ok(());
            }
            ctx.output(i.to_string());
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
                () = token.stopped() => return Ok(()),
            }
        }
        Ok(())
    }

    fn can_suspend(&self) -> bool {
        true
    }

    async fn suspend(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Ok(())
    }

    async fn resume_suspended(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Ok(())
    }
}

/// Runs until stopped; cannot suspend.
struct Stubborn;

#[async_trait]
impl JobExecutor for Stubborn {
    fn type_name(&self) -> &str {
        "StubbornJob"
    }

    async fn run(&self, _spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        ctx.stopped().await;
        Ok(())
    }
}

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(Counter));
    s.register(Arc::new(Stubborn));
    s
}

fn wait_for(s: &Session, id: JobId, pred: impl Fn(JobState) -> bool) -> JobState {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = s.info(id).expect("info").state;
        if pred(st) {
            return st;
        }
        assert!(Instant::now() < deadline, "job {id} stuck in {st}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn count(s: &Session, id: JobId) -> usize {
    let opts = ReceiveOptions {
        keep: true,
        ..ReceiveOptions::default()
    };
    s.receive(&[id], opts).expect("receive").len()
}

fn wait_output(s: &Session, id: JobId, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(s, id) < n {
        assert!(Instant::now() < deadline, "job {id} wrote fewer than {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn suspend_pauses_and_resume_goes_on_to_completion() {
    let s = session();
    let id = s.start(JobSpec::new("CounterJob", "30")).expect("start");
    wait_output(&s, id, 2);
    let rows = s.suspend_blocking(&[id]).expect("suspend");
    assert_eq!(rows[0].state, JobState::Suspended);
    let before = count(&s, id);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(&s, id), before, "output moved while suspended");
    // Wait returns on Suspended; waiting for a finished state times out.
    let w = s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(10)));
    assert!(!w.expect("wait").timed_out);
    let forced = s
        .block_on(s.wait_until(
            &[id],
            WaitMode::All,
            WaitUntil::Finished,
            Some(Duration::from_millis(100)),
        ))
        .expect("wait");
    assert!(forced.timed_out);
    // Suspending again changes nothing.
    assert_eq!(
        s.suspend_blocking(&[id]).expect("again")[0].state,
        JobState::Suspended
    );
    let rows = s.resume_blocking(&[id]).expect("resume");
    assert_eq!(rows[0].state, JobState::Running);
    wait_for(&s, id, JobState::is_finished);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    assert_eq!(count(&s, id), 30);
}

#[test]
fn a_type_that_cannot_suspend_is_refused_and_nothing_changes() {
    let s = session();
    let ok = s.start(JobSpec::new("CounterJob", "")).expect("start");
    let no = s.start(JobSpec::new("StubbornJob", "")).expect("start");
    wait_for(&s, ok, |st| st == JobState::Running);
    wait_for(&s, no, |st| st == JobState::Running);
    let e = s.suspend_blocking(&[ok, no]).expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::CannotSuspend);
    assert_eq!(e.job(), Some(no));
    let line = crate::error::chain(&e);
    assert!(line.contains("StubbornJob"), "{line}");
    assert_eq!(s.info(ok).expect("info").state, JobState::Running);
    assert_eq!(s.info(no).expect("info").state, JobState::Running);
    s.close_blocking();
}

#[test]
fn wrong_states_are_refused_and_nothing_changes() {
    let s = session();
    let done = s.start(JobSpec::new("CounterJob", "1")).expect("start");
    wait_for(&s, done, JobState::is_finished);
    let running = s.start(JobSpec::new("CounterJob", "")).expect("start");
    wait_for(&s, running, |st| st == JobState::Running);

    let e = s.suspend_blocking(&[running, done]).expect_err("finished");
    assert_eq!(e.kind(), ErrorKind::WrongState);
    assert_eq!(
        (e.job(), e.state()),
        (Some(done), Some(JobState::Completed))
    );
    assert_eq!(s.info(running).expect("info").state, JobState::Running);

    let e = s.resume_blocking(&[running]).expect_err("running");
    assert_eq!(e.kind(), ErrorKind::WrongState);
    assert_eq!(e.state(), Some(JobState::Running));
    assert_eq!(s.info(running).expect("info").state, JobState::Running);

    let e = s.suspend_blocking(&[99]).expect_err("no such job");
    assert_eq!(e.kind(), ErrorKind::NoSuchJob);
    s.close_blocking();
}

#[test]
fn a_suspended_job_can_be_stopped() {
    let s = session();
    let id = s.start(JobSpec::new("CounterJob", "")).expect("start");
    wait_output(&s, id, 1);
    s.suspend_blocking(&[id]).expect("suspend");
    let row = s.stop_blocking(id).expect("stop");
    assert_eq!(row.state, JobState::Stopped);
}

#[test]
fn the_time_limit_does_not_run_while_suspended() {
    let s = session();
    let mut spec = JobSpec::new("CounterJob", "");
    spec.timeout = Some(Duration::from_secs(1));
    let id = s.start(spec).expect("start");
    s.suspend_blocking(&[id]).expect("suspend");
    // Twice the limit, suspended: the job has not timed out.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(s.info(id).expect("info").state, JobState::Suspended);
    s.resume_blocking(&[id]).expect("resume");
    let st = wait_for(&s, id, JobState::is_finished);
    let info = s.info(id).expect("info");
    assert_eq!(st, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("timed out after 1s"));
}

#[test]
fn clock_keeps_what_was_left() {
    let mut c = super::Clock::default();
    assert_eq!(c.start(Duration::from_secs(10)), Duration::from_secs(10));
    c.pause();
    let left = c.start(Duration::from_secs(10));
    assert!(left <= Duration::from_secs(10) && left > Duration::from_secs(5));
    c.pause();
    c.pause();
    assert!(c.start(Duration::from_secs(10)) <= left);
}

fn batch(s: &Session, items: usize, throttle: usize) -> JobId {
    let children = (0..items)
        .map(|i| {
            let mut c = JobSpec::new("CounterJob", "15");
            c.item = Some(i.to_string());
            c
        })
        .collect();
    s.start_batch(crate::BatchSpec {
        command: "count".into(),
        throttle: Some(throttle),
        children,
        ..crate::BatchSpec::default()
    })
    .expect("batch")
}

#[test]
fn a_suspended_batch_starts_no_child_until_resumed() {
    let s = session();
    let id = batch(&s, 3, 1);
    let kids = s.info(id).expect("info").children;
    wait_output(&s, kids[0], 1);
    let rows = s.suspend_blocking(&[id]).expect("suspend");
    assert_eq!(rows[0].state, JobState::Suspended);
    assert_eq!(s.info(kids[0]).expect("info").state, JobState::Suspended);
    std::thread::sleep(Duration::from_millis(500));
    for &k in &kids[1..] {
        assert_eq!(s.info(k).expect("info").state, JobState::NotStarted);
    }
    s.resume_blocking(&[id]).expect("resume");
    wait_for(&s, id, JobState::is_finished);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    for &k in &kids {
        assert_eq!(s.info(k).expect("info").state, JobState::Completed);
    }
}

#[test]
fn a_parent_is_suspended_when_its_children_are() {
    let s = session();
    let id = batch(&s, 2, 2);
    let kids = s.info(id).expect("info").children;
    for &k in &kids {
        wait_output(&s, k, 1);
    }
    s.suspend_blocking(&kids[..1]).expect("suspend one");
    assert_eq!(s.info(id).expect("info").state, JobState::Running);
    s.suspend_blocking(&kids[1..]).expect("suspend the other");
    assert_eq!(s.info(id).expect("info").state, JobState::Suspended);
    s.resume_blocking(&kids[..1]).expect("resume one");
    assert_eq!(s.info(id).expect("info").state, JobState::Running);
    // Stopping the parent reaches the child still suspended.
    let row = s.stop_blocking(id).expect("stop");
    assert_eq!(row.state, JobState::Stopped);
    assert!(s.info(kids[1]).expect("info").state.is_finished());
}

/// Once paused, says it connected again and then that it lost its
/// connection (as a remote job's thread re-attaching does), noting what
/// each call returned; ends once resumed.
struct Reattaching(std::sync::Mutex<Vec<bool>>);

#[async_trait]
impl JobExecutor for Reattaching {
    fn type_name(&self) -> &str {
        "ReattachingJob"
    }

    async fn run(&self, _spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let token = ctx.stop_token();
        while !token.is_paused() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let again = ctx.set_disconnected(false).is_ok();
        let lost = ctx.set_disconnected(true).is_ok();
        self.0.lock().expect("calls").extend([again, lost]);
        token.unpaused().await;
        Ok(())
    }

    fn can_suspend(&self) -> bool {
        true
    }

    async fn suspend(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Ok(())
    }

    async fn resume_suspended(&self, _ctx: &JobContext) -> Result<(), SuspendError> {
        Ok(())
    }
}

#[test]
fn a_suspended_job_that_connects_again_or_loses_its_connection_stays_suspended() {
    let s = session();
    let ex = Arc::new(Reattaching(std::sync::Mutex::new(Vec::new())));
    s.register(ex.clone());
    let id = s.start(JobSpec::new("ReattachingJob", "")).expect("start");
    wait_for(&s, id, |st| st == JobState::Running);
    s.suspend_blocking(&[id]).expect("suspend");
    let deadline = Instant::now() + Duration::from_secs(20);
    while ex.0.lock().expect("calls").len() < 2 {
        assert!(Instant::now() < deadline, "the job made no calls");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Connected again: nothing changes; lost: refused, nothing changes.
    assert_eq!(ex.0.lock().expect("calls")[..], [true, false]);
    assert_eq!(s.info(id).expect("info").state, JobState::Suspended);
    s.resume_blocking(&[id]).expect("resume");
    assert_eq!(wait_for(&s, id, JobState::is_finished), JobState::Completed);
}
