//! A job the controller has forgotten is still followed to its end through
//! accounting (`sacct -c`, the job completion file).

use std::sync::Arc;

use jobs_core::{JobState, ReceiveOptions, Session, Store, Stream};

use crate::support::{text_of, wait, wait_until, Cluster};

#[test]
fn a_forgotten_job_ends_from_accounting() {
    let c = Cluster::start(2);
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = tmp.path().join("state");
    let store: Arc<dyn Store> = Arc::new(crate::support::KeepingStore::default());
    let first = Session::builder()
        .store(Arc::clone(&store))
        .build()
        .expect("session");
    first.register(Arc::new(c.executor(&state)));
    let spec = c.spec("echo done; exit 4").into_job_spec().detached(true);
    let id = first.start(spec).expect("start");
    wait_until("the job to be submitted", 30, || {
        let keep = ReceiveOptions {
            keep: true,
            ..ReceiveOptions::default()
        };
        text_of(
            &first.receive(&[id], keep).expect("receive"),
            Stream::Verbose,
        )
        .contains("submitted")
    });
    first.close_blocking();
    drop(first);
    // Let it end while nobody follows it, then make the controller forget it.
    wait_until("the job to end", 30, || {
        std::fs::read_to_string(c.dir().join("log/jobcomp.txt"))
            .map(|s| s.contains("JobState=FAILED"))
            .unwrap_or(false)
    });
    c.restart_controller_forgetting_jobs();

    let second = Session::builder()
        .store(Arc::clone(&store))
        .build()
        .expect("session");
    second.register(Arc::new(c.executor(&state)));
    second.restore().expect("restore");
    wait(&second, &[id], 60);
    let info = second.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.exit_code, Some(4));
    assert!(info
        .reason
        .unwrap_or_default()
        .contains("FAILED, exit code 4"));
    let recs = second
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(text_of(&recs, Stream::Output), "done\n");
}
