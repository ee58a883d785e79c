//! A whole session over the SQLite store: start, receive, keep,
//! has_more_data, then a restart that restores the table.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobSpec, JobState, ReceiveOptions, Record,
    Session, Store, Stream, WaitMode, SESSION_ENDED_REASON,
};
use serde_json::json;

use super::tests::{info, place, Place};
use super::SqliteStore;

/// Emits what its params say: `["out", text]` or `["bytes", [..]]`.
struct Emitter;

#[async_trait]
impl JobExecutor for Emitter {
    fn type_name(&self) -> &str {
        "Emitter"
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        for step in spec.params.as_array().cloned().unwrap_or_default() {
            match step[0].as_str() {
                Some("out") => {
                    ctx.output(step[1].as_str().unwrap_or_default());
                }
                Some("bytes") => {
                    let bytes = step[1]
                        .as_array()
                        .map(|a| a.iter().map(|b| b.as_u64().unwrap_or(0) as u8).collect())
                        .unwrap_or_default();
                    ctx.emit(Record::bytes(Stream::Output, bytes));
                }
                _ => return Err(JobFailure::new(format!("bad step {step}"))),
            }
        }
        Ok(())
    }
}

fn session_over(p: &Place) -> Session {
    let store = SqliteStore::open(&p.path).expect("open store");
    let session = Session::builder()
        .store(Arc::new(store))
        .build()
        .expect("session");
    session.register(Arc::new(Emitter));
    session
}

#[test]
fn a_session_over_the_store_receives_keeps_and_restores() {
    let p = place();
    let (done, other) = {
        let session = session_over(&p);
        let steps = json!([["out", "one"], ["bytes", [0, 255, 10]], ["out", "three"]]);
        let done = session
            .start(JobSpec::new("Emitter", "three records").params(steps))
            .expect("start");
        let other = session
            .start(JobSpec::new("Emitter", "one record").params(json!([["out", "x"]])))
            .expect("start");
        session
            .wait_blocking(&[done, other], WaitMode::All, Some(Duration::from_secs(60)))
            .expect("wait");
        let kept = session
            .receive(
                &[done],
                ReceiveOptions {
                    keep: true,
                    ..Default::default()
                },
            )
            .expect("receive keep");
        assert_eq!(kept.len(), 3);
        assert!(session.info(done).expect("info").has_more_data);
        let first = session
            .receive(
                &[done],
                ReceiveOptions {
                    limit: Some(1),
                    ..Default::default()
                },
            )
            .expect("receive one");
        assert_eq!(first[0].record.payload.to_display_bytes(), b"one");
        assert!(session.info(done).expect("info").has_more_data);
        let all_other = session
            .receive(&[other], ReceiveOptions::default())
            .expect("receive other");
        assert_eq!(all_other.len(), 1);
        assert!(!session.info(other).expect("info").has_more_data);
        (done, other)
    };
    // A job that was running when the daemon died.
    {
        let store = SqliteStore::open(&p.path).expect("open");
        store
            .save_job(&info(other + 1, JobState::Running))
            .expect("save running");
    }
    let session = session_over(&p);
    let mut ids = session.restore().expect("restore");
    ids.sort_unstable();
    assert_eq!(ids, vec![done, other, other + 1]);
    let d = session.info(done).expect("info");
    assert_eq!(d.state, JobState::Completed);
    assert!(d.has_more_data, "two records were never received");
    let rest = session
        .receive(&[done], ReceiveOptions::default())
        .expect("receive rest");
    let bytes: Vec<Vec<u8>> = rest
        .iter()
        .map(|r| r.record.payload.to_display_bytes())
        .collect();
    assert_eq!(bytes, vec![vec![0, 255, 10], b"three".to_vec()]);
    assert!(!session.info(done).expect("info").has_more_data);
    assert!(!session.info(other).expect("info").has_more_data);
    let died = session.info(other + 1).expect("info");
    assert_eq!(died.state, JobState::Failed);
    assert_eq!(died.reason.as_deref(), Some(SESSION_ENDED_REASON));
    // New records continue the old sequence.
    let next = session
        .start(JobSpec::new("Emitter", "after").params(json!([["out", "new"]])))
        .expect("start");
    session
        .wait_blocking(&[next], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    let new = session
        .receive(&[next], ReceiveOptions::default())
        .expect("receive new");
    assert!(new[0].seq > rest[1].seq);
    session.remove_blocking(done, false).expect("remove");
    assert!(session.info(done).is_err());
}

/// Takes over detached jobs of an earlier session: a parent waits for its
/// children again, a child says it was resumed.
struct Resumer;

#[async_trait]
impl JobExecutor for Resumer {
    fn type_name(&self) -> &str {
        "Resumer"
    }

    async fn run(&self, _spec: JobSpec, _ctx: JobContext) -> Result<(), JobFailure> {
        Ok(())
    }

    fn resumable(&self, info: &jobs_core::JobInfo) -> bool {
        info.detached
    }

    async fn resume(&self, info: jobs_core::JobInfo, ctx: JobContext) -> Result<(), JobFailure> {
        if info.parent.is_none() {
            ctx.wait_children().await;
        } else {
            ctx.output("resumed");
        }
        Ok(())
    }
}

#[test]
fn a_child_is_resumed_with_its_parent_and_only_then() {
    let p = place();
    {
        let store = SqliteStore::open(&p.path).expect("open");
        let job = |id: u64, parent: Option<u64>, children: Vec<u64>, detached: bool| {
            let mut i = info(id, JobState::Running);
            i.type_name = "Resumer".into();
            i.parent = parent;
            i.children = children;
            i.detached = detached;
            i
        };
        // A detached parent and its child; a parent that cannot be resumed
        // with a child that could.
        store.save_job(&job(1, None, vec![2], true)).expect("save");
        store
            .save_job(&job(2, Some(1), vec![], true))
            .expect("save");
        store.save_job(&job(3, None, vec![4], false)).expect("save");
        store
            .save_job(&job(4, Some(3), vec![], true))
            .expect("save");
    }
    let store = SqliteStore::open(&p.path).expect("open store");
    let session = Session::builder()
        .store(Arc::new(store))
        .build()
        .expect("session");
    session.register(Arc::new(Resumer));
    session.restore().expect("restore");
    session
        .wait_blocking(&[1], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert_eq!(session.info(1).expect("info").state, JobState::Completed);
    let out = session
        .receive(&[2], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(out[0].record.payload.to_display_bytes(), b"resumed");
    for id in [3, 4] {
        let i = session.info(id).expect("info");
        assert_eq!(i.state, JobState::Failed, "job {id}");
        assert_eq!(i.reason.as_deref(), Some(SESSION_ENDED_REASON));
    }
}
