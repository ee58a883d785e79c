//! Detached jobs outlive their session; a later session re-adopts them.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobState, ReceiveOptions, Session, Stream, WaitMode};
use jobs_process::{ProcessExecutor, ProcessSpec};

use super::support::{finish, first_lines, gone, pids, text, Reaper, SharedStore};

fn session_over(store: &Arc<SharedStore>, dir: &std::path::Path) -> Session {
    let s = Session::builder()
        .store(Arc::clone(store) as Arc<dyn jobs_core::Store>)
        .build()
        .expect("session");
    s.register(Arc::new(ProcessExecutor::new().detached_dir(dir)));
    s
}

#[test]
fn detached_job_survives_its_session_and_is_readopted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SharedStore::default());
    let s1 = session_over(&store, dir.path());
    let script = r#"echo $$; echo started; sleep 2
printf '%s\n' '{"stream":"warning","kind":"text","data":"late"}' >>/dev/fd/$JOBCTL_RECORDS_FD
echo finished; echo oops >&2; exit 4"#;
    let id = s1
        .start(ProcessSpec::shell(script).detached(true).into_job_spec())
        .expect("start");
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let mut follow = s1.follow(&[id], keep).expect("follow");
    let mut seen = Vec::new();
    while seen.iter().filter(|&&b| b == b'\n').count() < 2 {
        let r = follow.next_blocking().expect("next").expect("record");
        seen.extend(r.record.payload.to_display_bytes());
    }
    let pid = pids(&String::from_utf8_lossy(&seen))[0];
    let _reaper = Reaper(vec![pid]);
    let instance = s1.info(id).expect("info").instance_id;
    assert!(dir.path().join(instance.to_string()).join("pid").is_file());
    drop(follow);
    drop(s1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!gone(pid), "the detached job died with its session");

    let s2 = session_over(&store, dir.path());
    let ids = s2.restore().expect("restore");
    assert_eq!(ids, [id]);
    let info = s2.info(id).expect("info");
    assert_eq!(info.state, JobState::Running);
    let (info, recs) = finish(&s2, id);
    assert_eq!(info.state, JobState::Failed, "{:?}", info.reason);
    assert_eq!(info.reason.as_deref(), Some("exited with status 4"));
    assert_eq!(info.exit_code, Some(4));
    assert_eq!(
        text(&recs, Stream::Output),
        format!("{pid}\nstarted\nfinished\n")
    );
    assert_eq!(text(&recs, Stream::Error), "oops\n");
    assert_eq!(text(&recs, Stream::Warning), "late");
    assert!(
        !dir.path().join(instance.to_string()).exists(),
        "files left behind"
    );
}

#[test]
fn detached_job_completes_and_stops_in_its_own_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SharedStore::default());
    let s = session_over(&store, dir.path());
    let spec = ProcessSpec::program(["printf", "a\\0b"]).detached(true);
    let (info, recs) = {
        let id = s.start(spec.into_job_spec()).expect("start");
        finish(&s, id)
    };
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(super::support::bytes(&recs, Stream::Output), b"a\0b");

    let id = s
        .start(
            ProcessSpec::shell("echo $$; exec sleep 1000")
                .detached(true)
                .into_job_spec(),
        )
        .expect("start");
    let pid = pids(&first_lines(&s, id, 1)[0])[0];
    let _reaper = Reaper(vec![pid]);
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert!(super::support::wait_gone(&[pid], 5).is_empty());

    let id = s
        .start(
            ProcessSpec::program(["no-such-program-7f3a"])
                .detached(true)
                .into_job_spec(),
        )
        .expect("start");
    let (info, _) = finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    assert!(info
        .reason
        .unwrap_or_default()
        .contains("'no-such-program-7f3a'"));
    // Closing the session leaves a running detached job alone.
    let id = s
        .start(
            ProcessSpec::shell("echo $$; exec sleep 1000")
                .detached(true)
                .into_job_spec(),
        )
        .expect("start");
    let pid = pids(&first_lines(&s, id, 1)[0])[0];
    let _reaper2 = Reaper(vec![pid]);
    s.close_blocking();
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::ZERO))
        .expect("wait");
    assert!(out.timed_out, "close must not end a detached job");
    assert!(!gone(pid));
}

#[test]
fn a_detached_job_reads_its_stdin_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(SharedStore::default());
    let s = session_over(&store, dir.path());
    let data = "line\n".repeat(40_000);
    let spec = ProcessSpec::program(["cat"])
        .stdin(data.clone())
        .detached(true);
    let id = s.start(spec.into_job_spec()).expect("start");
    let (info, recs) = finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert!(text(&recs, Stream::Output) == data);
}
