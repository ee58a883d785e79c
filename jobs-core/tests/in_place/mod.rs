//! Work begun on the thread that starts the job
//! ([`JobExecutor::starts_in_place`]): where its first step runs, and that
//! it is never lost whatever wakes it, or does not.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobSpec, JobState, Session, WaitMode,
};
use serde_json::json;

const TYPE: &str = "InPlaceJob";

/// Records the thread of its first step and of its end; then does what
/// its spec's `then` says.
#[derive(Default)]
struct InPlace {
    in_place: bool,
    first: Mutex<Vec<ThreadId>>,
    last: Mutex<Vec<ThreadId>>,
    /// Set when a run's future is dropped, finished or not.
    dropped: Arc<AtomicBool>,
}

struct OnDrop(Arc<AtomicBool>);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[async_trait]
impl JobExecutor for InPlace {
    fn type_name(&self) -> &str {
        TYPE
    }

    fn starts_in_place(&self, _spec: &JobSpec) -> bool {
        self.in_place
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let _guard = OnDrop(Arc::clone(&self.dropped));
        let here = std::thread::current().id();
        self.first.lock().expect("first").push(here);
        match spec.params["then"].as_str().unwrap_or("") {
            "sleep" => tokio::time::sleep(Duration::from_millis(20)).await,
            "yield" => tokio::task::yield_now().await,
            "panic" => panic!("first step fell over"),
            "stop" => ctx.stopped().await,
            _ => {}
        }
        ctx.output("done");
        self.last
            .lock()
            .expect("last")
            .push(std::thread::current().id());
        Ok(())
    }
}

fn with(in_place: bool) -> (Session, Arc<InPlace>) {
    let s = Session::new().expect("session");
    let ex = Arc::new(InPlace {
        in_place,
        ..InPlace::default()
    });
    s.register(ex.clone());
    (s, ex)
}

fn job(then: &str) -> JobSpec {
    JobSpec::new(TYPE, then).params(json!({ "then": then }))
}

fn finish(s: &Session, id: u64) -> JobState {
    s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(10)))
        .expect("wait");
    s.info(id).expect("info").state
}

#[test]
fn a_job_started_outside_a_runtime_takes_its_first_step_there() {
    let (s, ex) = with(true);
    let me = std::thread::current().id();
    let id = s.start(job("sleep")).expect("start");
    assert_eq!(ex.first.lock().expect("first")[..], [me]);
    assert_eq!(finish(&s, id), JobState::Completed);
    let last = ex.last.lock().expect("last")[0];
    assert_ne!(last, me, "the rest runs on the session's runtime");
}

#[test]
fn a_job_started_inside_a_runtime_or_by_another_executor_begins_on_the_runtime() {
    let (s, ex) = with(true);
    let me = std::thread::current().id();
    let id = s.block_on(async { s.start(job("sleep")) }).expect("start");
    assert_eq!(finish(&s, id), JobState::Completed);
    assert_ne!(ex.first.lock().expect("first")[0], me);

    let (s, ex) = with(false);
    let id = s.start(job("sleep")).expect("start");
    assert_eq!(finish(&s, id), JobState::Completed);
    assert_ne!(ex.first.lock().expect("first")[0], me);
}

#[test]
fn work_that_ends_or_panics_in_its_first_step_is_finalized_at_once() {
    let (s, ex) = with(true);
    let id = s.start(job("now")).expect("start");
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let me = std::thread::current().id();
    assert_eq!(ex.last.lock().expect("last")[..], [me]);

    let id = s.start(job("panic")).expect("start");
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert!(
        info.reason
            .as_deref()
            .is_some_and(|r| r.contains("first step fell over")),
        "{:?}",
        info.reason
    );
    // The session goes on.
    let id = s.start(job("sleep")).expect("start");
    assert_eq!(finish(&s, id), JobState::Completed);
}

#[test]
fn work_woken_during_its_first_step_goes_on() {
    let (s, _ex) = with(true);
    for _ in 0..50 {
        let id = s.start(job("yield")).expect("start");
        assert_eq!(finish(&s, id), JobState::Completed);
    }
}

#[test]
fn a_stop_wakes_work_parked_after_its_first_step() {
    let (s, ex) = with(true);
    let id = s.start(job("stop")).expect("start");
    assert_eq!(s.info(id).expect("info").state, JobState::Running);
    s.request_stop(id).expect("stop");
    assert_eq!(finish(&s, id), JobState::Stopped);
    assert!(ex.dropped.load(Ordering::SeqCst));
}

#[test]
fn dropping_the_session_drops_work_parked_after_its_first_step() {
    let (s, ex) = with(true);
    s.start(job("stop")).expect("start");
    assert!(!ex.dropped.load(Ordering::SeqCst));
    drop(s);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !ex.dropped.load(Ordering::SeqCst) {
        assert!(std::time::Instant::now() < deadline, "the work was kept");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_session_says_whether_its_runtime_drives_io() {
    struct Says(Mutex<Vec<bool>>);
    #[async_trait]
    impl JobExecutor for Says {
        fn type_name(&self) -> &str {
            "Says"
        }
        async fn run(&self, _spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
            self.0.lock().expect("says").push(ctx.runtime_drives_io());
            Ok(())
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .expect("runtime without I/O");
    let own = Session::new().expect("session");
    let given = Session::builder()
        .runtime(rt.handle().clone())
        .build()
        .expect("session");
    let says = Arc::new(Says(Mutex::new(Vec::new())));
    for s in [&own, &given] {
        s.register(says.clone());
        let id = s.start(JobSpec::new("Says", "")).expect("start");
        assert_eq!(finish(s, id), JobState::Completed);
    }
    assert_eq!(says.0.lock().expect("says")[..], [true, false]);
}
