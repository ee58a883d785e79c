//! What CShellJob does beyond the conformance suite: byte-exact output on
//! two streams, exit codes and reasons, the job's folder, stopping the
//! whole process group.

use std::time::{Duration, Instant};

use jobs_core::{JobState, Payload, ReceiveOptions, Session, Stream, WaitMode};
use serde_json::json;

use crate::support::{job, loaded};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(std::sync::Arc::clone(&loaded().executor));
    s
}

fn finish(s: &Session, id: u64) -> jobs_core::JobInfo {
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!out.timed_out, "job {id} did not finish");
    s.info(id).expect("info")
}

/// Every byte of a stream, in order.
fn stream_bytes(s: &Session, id: u64, stream: Stream) -> Vec<u8> {
    s.receive(
        &[id],
        ReceiveOptions {
            keep: true,
            ..Default::default()
        },
    )
    .expect("receive")
    .iter()
    .filter(|r| r.record.stream == stream)
    .flat_map(|r| match &r.record.payload {
        Payload::Bytes(b) => b.clone(),
        other => panic!("expected bytes, got {other:?}"),
    })
    .collect()
}

#[test]
fn output_and_errors_come_back_byte_exact() {
    let s = session();
    let id = s
        .start(job(
            r"printf 'a\000b\377'; printf 'warn' >&2; printf 'no newline'",
        ))
        .expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(info.location, "localhost");
    assert_eq!(stream_bytes(&s, id, Stream::Output), b"a\0b\xffno newline");
    assert_eq!(stream_bytes(&s, id, Stream::Error), b"warn");
}

#[test]
fn a_failure_names_the_status_and_the_last_error_line() {
    let s = session();
    let id = s
        .start(job("echo first >&2; echo 'disk \"full\"' >&2; exit 4"))
        .expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.exit_code, Some(4));
    assert_eq!(
        info.reason.as_deref(),
        Some("exited with status 4: disk \"full\"")
    );
}

#[test]
fn a_signal_fails_the_job_naming_it() {
    let s = session();
    let id = s.start(job("kill -KILL $$")).expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("killed by signal 9"));
}

#[test]
fn the_job_runs_in_the_folder_of_its_params() {
    let s = session();
    let dir = tempfile::tempdir().expect("tempdir");
    let canon = dir.path().canonicalize().expect("canonical");
    let id = s
        .start(job("pwd").params(json!({"cwd": canon, "env": []})))
        .expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let out = stream_bytes(&s, id, Stream::Output);
    assert_eq!(
        String::from_utf8_lossy(&out).trim_end(),
        canon.to_string_lossy()
    );
}

#[test]
fn a_command_with_escapes_and_unicode_arrives_intact() {
    let s = session();
    let id = s
        .start(job("printf '%s\\n' \"tab\there\" 'é ✓ 𝄞'"))
        .expect("start");
    finish(&s, id);
    let out = stream_bytes(&s, id, Stream::Output);
    assert_eq!(String::from_utf8_lossy(&out), "tab\there\né ✓ 𝄞\n");
}

#[test]
fn stop_ends_the_whole_process_group() {
    let s = session();
    let dir = tempfile::tempdir().expect("tempdir");
    let pidfile = dir.path().join("pid");
    let line = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let id = s.start(job(&line)).expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the job never wrote its child's pid"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    let gone = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // A zombie counts as gone: PID 1 reaps it when it gets to it.
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next());
        if stat.is_empty() || state == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < gone,
            "the job's child {pid} outlived the stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_empty_command_completes() {
    let s = session();
    let id = s.start(job("")).expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
}
