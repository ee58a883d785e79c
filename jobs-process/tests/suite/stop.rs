//! Stop, session end and job end take the job's whole process tree down.

use std::time::Duration;

use jobs_core::{JobId, JobState, Session, WaitMode};
use jobs_process::{ProcessExecutor, ProcessSpec};

use super::support::{
    finish, first_lines, gone, pids, run, session, session_with, wait_gone, Reaper,
};

#[test]
fn stop_kills_a_tree_that_ignores_sigterm_after_the_grace() {
    let s = session_with(ProcessExecutor::new().grace_period(Duration::from_millis(500)));
    let spec = ProcessSpec::shell(
        "trap '' TERM; sh -c 'trap \"\" TERM; sleep 1000' & sleep 1000 & echo $$ $!; wait",
    );
    let id = s.start(spec.into_job_spec()).expect("start");
    let tree = pids(&first_lines(&s, id, 1)[0]);
    assert_eq!(tree.len(), 2);
    let _reaper = Reaper(tree.clone());
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("killed with SIGKILL"), "{reason}");
    assert_eq!(
        wait_gone(&tree, 0),
        Vec::<u32>::new(),
        "left alive after stop"
    );
}

#[test]
fn stop_kills_background_grandchildren() {
    let s = session();
    let spec = ProcessSpec::shell(
        "sh -c 'sleep 1000 & echo $!'; sleep 1000 & echo $!; sh -c 'sleep 1000' & echo $!; wait",
    );
    let id = s.start(spec.into_job_spec()).expect("start");
    let tree: Vec<u32> = first_lines(&s, id, 3)
        .iter()
        .flat_map(|l| pids(l))
        .collect();
    assert_eq!(tree.len(), 3);
    let _reaper = Reaper(tree.clone());
    assert!(tree.iter().all(|&p| !gone(p)));
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert_eq!(info.reason, None, "SIGTERM was enough");
    assert_eq!(
        wait_gone(&tree, 0),
        Vec::<u32>::new(),
        "left alive after stop"
    );
}

#[test]
fn what_a_finished_job_left_running_ends_with_it() {
    let s = session();
    let (info, recs) = run(&s, ProcessSpec::shell("sleep 1000 & echo $!"));
    let tree = pids(&super::support::text(&recs, jobs_core::Stream::Output));
    let _reaper = Reaper(tree.clone());
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(tree.len(), 1);
    assert_eq!(wait_gone(&tree, 0), Vec::<u32>::new());
}

/// Two running jobs, each a shell with a background `sleep`, with the
/// pids of each one's tree.
fn two_trees(s: &Session) -> [(JobId, Vec<u32>); 2] {
    let spec = || ProcessSpec::shell("sleep 1000 & echo $!; sleep 1000");
    [(), ()].map(|()| {
        let id = s.start(spec().into_job_spec()).expect("start");
        (id, pids(&first_lines(s, id, 1)[0]))
    })
}

#[test]
fn closing_or_dropping_the_session_ends_job_trees() {
    let s = session();
    let [(a, ta), (_, tb)] = two_trees(&s);
    let _reaper = Reaper([ta.clone(), tb.clone()].concat());
    s.stop_blocking(a).expect("stop a");
    assert_eq!(wait_gone(&ta, 0), Vec::<u32>::new());
    // Dropped without close: the watcher or the drop guards end the rest.
    drop(s);
    assert_eq!(
        wait_gone(&tb, 10),
        Vec::<u32>::new(),
        "left alive after the session"
    );
}

#[test]
fn stopping_a_finished_job_changes_nothing() {
    let s = session();
    let id = s
        .start(ProcessSpec::program(["true"]).into_job_spec())
        .expect("start");
    let (info, _) = finish(&s, id);
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(
        s.stop_blocking(id).expect("stop").state,
        JobState::Completed
    );
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::ZERO))
        .expect("wait");
    assert!(!out.timed_out);
}

#[test]
fn a_process_that_left_the_group_does_not_hold_the_job_open() {
    let s = session();
    // `setsid` moves the sleeper out of the job's group and session, with
    // the job's stdout still open: the job ends anyway, output intact.
    let (info, recs) = run(&s, ProcessSpec::shell("setsid sleep 30 & echo $!"));
    let escaped = pids(&super::support::text(&recs, jobs_core::Stream::Output));
    let _reaper = Reaper(escaped.clone());
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(escaped.len(), 1);
}

/// With its I/O on the session's runtime, the executor still stops whole
/// trees, reads a busy writer to the end, and leaves nothing running once
/// the session is dropped (its runtime with it).
#[test]
fn on_the_session_runtime_trees_still_end_and_output_is_whole() {
    let s = session_with(
        ProcessExecutor::new()
            .grace_period(Duration::from_secs(1))
            .on_session_runtime(),
    );
    let (info, recs) = run(
        &s,
        ProcessSpec::shell("head -c 5000000 /dev/zero; echo done >&2"),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(
        super::support::bytes(&recs, jobs_core::Stream::Output).len(),
        5_000_000
    );
    assert_eq!(
        super::support::text(&recs, jobs_core::Stream::Error),
        "done\n"
    );

    let [(a, ta), (_, tb)] = two_trees(&s);
    let _reaper = Reaper([ta.clone(), tb.clone()].concat());
    let info = s.stop_blocking(a).expect("stop a");
    assert_eq!(info.state, JobState::Stopped);
    assert_eq!(
        wait_gone(&ta, 0),
        Vec::<u32>::new(),
        "left alive after stop"
    );
    drop(s);
    assert_eq!(
        wait_gone(&tb, 10),
        Vec::<u32>::new(),
        "left alive after the session"
    );
}
