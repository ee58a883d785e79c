//! A job submitted by a session that ended without stopping it is
//! re-adopted by a new session over the same store, by its Slurm job id.
//! In-process here; through the loaded plugin after a daemon restart in
//! `cli.rs`.

use std::sync::Arc;

use jobs_core::{JobState, ReceiveOptions, Session, Store, Stream};

use crate::support::{empty_dir, shared, text_of, wait, wait_until};

#[test]
fn a_new_session_re_adopts_a_running_job() {
    let c = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let store: Arc<dyn Store> = Arc::new(crate::support::KeepingStore::default());

    let first = Session::builder()
        .store(Arc::clone(&store))
        .build()
        .expect("session");
    first.register(Arc::new(c.executor(&state)));
    let spec = c
        .spec("echo before; sleep 3; echo after; echo late >&2")
        .into_job_spec()
        .detached(true);
    let id = first.start(spec).expect("start");
    let mut got = Vec::new();
    wait_until("the first line", 30, || {
        got.extend(
            first
                .receive(&[id], ReceiveOptions::default())
                .expect("receive"),
        );
        text_of(&got, Stream::Output) == "before\n"
    });
    first.close_blocking();
    drop(first);
    assert!(
        !empty_dir(&state.join("jobs")),
        "the job's folder must stay"
    );

    let second = Session::builder()
        .store(Arc::clone(&store))
        .build()
        .expect("session");
    second.register(Arc::new(c.executor(&state)));
    second.restore().expect("restore");
    wait(&second, &[id], 60);
    let info = second.info(id).expect("info");
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let recs = second
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    // What the first session received is not repeated.
    assert_eq!(text_of(&recs, Stream::Output), "after\n");
    assert_eq!(text_of(&recs, Stream::Error), "late\n");
    assert!(text_of(&recs, Stream::Verbose).contains("re-adopted Slurm job"));
    assert!(empty_dir(&state.join("jobs")));
}
