//! A job Slurm keeps pending (the node is full) stays NotStarted, is told
//! as PENDING with Slurm's reason, emits nothing, and runs once the node
//! frees up; a running job's location is its node list. Through the loaded
//! plugin library.

use jobs_core::{JobState, ReceiveOptions, Session, Stream};

use crate::support::{is, plugin_session, text_of, wait, wait_until, Cluster};

fn verbose(s: &Session, id: u64) -> String {
    let keep = ReceiveOptions {
        keep: true,
        ..ReceiveOptions::default()
    };
    text_of(&s.receive(&[id], keep).expect("receive"), Stream::Verbose)
}

#[test]
fn a_job_waits_pending_while_the_node_is_full() {
    // A cluster of its own, with one CPU, that this test fills.
    let c = Cluster::start(1);
    let s = plugin_session();
    let blocker = s.start(c.spec("sleep 600").into_job_spec()).expect("start");
    wait_until("the blocker to run", 30, || {
        verbose(&s, blocker).contains("is RUNNING")
    });
    wait_until("the blocker to be Running", 30, || {
        is(&s, blocker, JobState::Running)
    });
    // Its location is the node list Slurm gave it, as told in the Verbose.
    let mut location = String::new();
    wait_until("the blocker's node list", 30, || {
        location = s.info(blocker).expect("info").location.into();
        location != "slurm"
    });
    assert!(
        verbose(&s, blocker).contains(&format!("is RUNNING on {location}")),
        "{location}: {}",
        verbose(&s, blocker)
    );
    let queued = s.start(c.spec("echo ran").into_job_spec()).expect("start");
    wait_until("the second job to be pending", 30, || {
        verbose(&s, queued).contains("is PENDING (Resources)")
    });
    // Queued in Slurm: NotStarted, not begun, still at no node; no output.
    let info = s.info(queued).expect("info");
    assert_eq!(info.state, JobState::NotStarted);
    assert!(info.begin.is_none());
    assert_eq!(info.location, "slurm");
    let keep = ReceiveOptions {
        keep: true,
        ..ReceiveOptions::default()
    };
    let recs = s.receive(&[queued], keep).expect("receive");
    assert!(text_of(&recs, Stream::Output).is_empty());
    s.stop_blocking(blocker).expect("stop");
    wait(&s, &[queued], 60);
    let info = s.info(queued).expect("info");
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert!(info.begin.is_some());
    assert_eq!(info.location, location);
    let recs = s
        .receive(&[queued], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(text_of(&recs, Stream::Output), "ran\n");
    assert!(text_of(&recs, Stream::Verbose).contains("is COMPLETED"));
}
