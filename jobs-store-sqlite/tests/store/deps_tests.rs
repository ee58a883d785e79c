//! Jobs that wait for others, over the store: they go on waiting across a
//! close and a crash, are decided at restore against what their
//! dependencies became meanwhile, and never run twice.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobId, JobSpec, JobState, Session, Store,
    WaitMode, SESSION_ENDED_REASON,
};
use serde_json::json;

use super::tests::{place, Place};
use super::SqliteStore;

/// Writes its params' `out` as output; with `"hold": true`, waits for a stop.
struct Step;

#[async_trait]
impl JobExecutor for Step {
    fn type_name(&self) -> &str {
        "Step"
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        if spec.params["hold"].as_bool() == Some(true) {
            ctx.stopped().await;
            return Ok(());
        }
        ctx.output(spec.params["out"].as_str().unwrap_or_default());
        Ok(())
    }
}

fn session_over(p: &Place) -> (Session, Arc<SqliteStore>) {
    let store = Arc::new(SqliteStore::open(&p.path).expect("open store"));
    let session = Session::builder()
        .store(Arc::clone(&store) as Arc<dyn Store>)
        .build()
        .expect("session");
    session.register(Arc::new(Step));
    (session, store)
}

fn hold(name: &str) -> JobSpec {
    JobSpec::new("Step", "hold")
        .name(name)
        .params(json!({ "hold": true }))
}

fn out(name: &str) -> JobSpec {
    JobSpec::new("Step", "out")
        .name(name)
        .params(json!({ "out": name }))
}

fn wait(s: &Session, ids: &[JobId]) {
    let o = s
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!o.timed_out, "{ids:?} did not finish");
}

#[test]
fn a_waiting_job_waits_again_after_a_close_and_runs_once_its_dependency_completed() {
    let p = place();
    let (a, d) = {
        let (s, _) = session_over(&p);
        // A detached job outlives its session, as a detached process does.
        let a = s.start(hold("a").detached(true)).expect("a");
        let d = s.start(out("d").after([a])).expect("d");
        s.close_blocking();
        assert_eq!(s.info(d).expect("d").state, JobState::NotStarted);
        (a, d)
    };
    // While no session ran, a completed (a resumed detached job's report).
    {
        let store = SqliteStore::open(&p.path).expect("open");
        let mut rows = store.load_jobs().expect("load");
        let row = rows.iter_mut().find(|r| r.id == a).expect("a's row");
        row.state = JobState::Completed;
        store.save_job(row).expect("save");
        assert!(store.waiting_spec(d).expect("spec").is_some());
    }
    let (s, store) = session_over(&p);
    s.restore().expect("restore");
    wait(&s, &[d]);
    let di = s.info(d).expect("d");
    assert_eq!(di.state, JobState::Completed, "{di:?}");
    assert_eq!(di.after, vec![a]);
    assert!(
        store.waiting_spec(d).expect("spec").is_none(),
        "forgotten once started"
    );
}

#[test]
fn a_crash_keeps_a_waiting_job_waiting_and_an_ended_dependency_fails_it_at_restore() {
    let p = place();
    let (a, b, d, e) = {
        let (s, store) = session_over(&p);
        let a = s.start(hold("a")).expect("a");
        let b = s.start(out("b")).expect("b");
        wait(&s, &[b]);
        let d = s.start(out("d").after([a, b])).expect("d");
        let e = s.start(out("e").after_any([a])).expect("e");
        store.flush().expect("flush");
        // A crash: nothing closes, the next session reads the file as is.
        std::mem::forget(s);
        (a, b, d, e)
    };
    let (s, _) = session_over(&p);
    s.restore().expect("restore");
    wait(&s, &[d, e]);
    let ai = s.info(a).expect("a");
    assert_eq!(ai.reason.as_deref(), Some(SESSION_ENDED_REASON));
    assert_eq!(s.info(b).expect("b").state, JobState::Completed);
    let di = s.info(d).expect("d");
    assert_eq!(di.state, JobState::Failed);
    assert_eq!(
        di.reason.as_deref(),
        Some(&*format!("dependency {a} (a) failed"))
    );
    assert_eq!(di.attempts, 0);
    assert_eq!(s.info(e).expect("e").state, JobState::Completed);
}

#[test]
fn a_job_that_had_started_is_not_started_again_by_a_restore() {
    let p = place();
    let d = {
        let (s, store) = session_over(&p);
        let a = s.start(out("a")).expect("a");
        let d = s.start(hold("d").after([a])).expect("d");
        wait(&s, &[a]);
        // d runs now (it holds until stopped).
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while s.info(d).expect("d").state != JobState::Running {
            assert!(std::time::Instant::now() < deadline, "d never ran");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(store.waiting_spec(d).expect("spec").is_none());
        // What a crash leaves: a row that says NotStarted or Running.
        store.flush().expect("flush");
        std::mem::forget(s);
        d
    };
    let (s, _) = session_over(&p);
    s.restore().expect("restore");
    let di = s.info(d).expect("d");
    assert_eq!(di.state, JobState::Failed);
    assert_eq!(di.reason.as_deref(), Some(SESSION_ENDED_REASON));
}

#[test]
fn a_version_4_file_keeps_its_waiting_specs_beside_the_start_requests() {
    let p = place();
    {
        let conn = rusqlite::Connection::open(&p.path).expect("raw open");
        conn.execute_batch(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, parent INTEGER, name TEXT NOT NULL,
                 type TEXT NOT NULL, state TEXT NOT NULL, info TEXT NOT NULL);
             CREATE TABLE records (seq INTEGER PRIMARY KEY, job INTEGER NOT NULL,
                 stream TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
                 file_off INTEGER, file_len INTEGER);
             CREATE INDEX records_job_seq ON records (job, seq);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE checkpoints (job INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE waiting (job INTEGER PRIMARY KEY, spec BLOB NOT NULL);
             INSERT INTO waiting VALUES (7, x'7b7d');
             PRAGMA user_version = 4;",
        )
        .expect("version 4 schema");
    }
    let store = SqliteStore::open(&p.path).expect("upgrade");
    assert_eq!(store.waiting_spec(7).expect("spec"), Some(b"{}".to_vec()));
    assert_eq!(store.request(7).expect("request"), None);
    store.save_request(7, b"started so").expect("save request");
    store.forget_waiting_spec(7).expect("forget");
    assert_eq!(store.waiting_spec(7).expect("spec"), None);
    assert_eq!(
        store.request(7).expect("request"),
        Some(b"started so".to_vec()),
        "the request outlives the job's start"
    );
    drop(store);
    let store = SqliteStore::open(&p.path).expect("reopen");
    assert_eq!(
        store.request(7).expect("request"),
        Some(b"started so".to_vec())
    );
    store.delete_job(7).expect("delete");
    assert_eq!(store.request(7).expect("request"), None);
}
