//! What the host does with executables beyond the suite: bytes, a crash,
//! a wrong protocol version, a file others could write.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobSpec, JobState, ReceiveOptions, Session, WaitMode};
use jobs_exec::ExecutableExecutor;

use crate::support::{install, job, py_shell};

mod readme;

fn session(e: Arc<ExecutableExecutor>) -> Session {
    let s = Session::new().expect("session");
    s.register(e);
    s
}

fn finish(s: &Session, id: jobs_core::JobId) -> jobs_core::JobInfo {
    let w = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(120)))
        .expect("wait");
    assert!(!w.timed_out, "job {id} did not end");
    s.info(id).expect("info")
}

#[test]
fn output_arrives_byte_for_byte_with_the_exit_code() {
    let s = session(Arc::clone(py_shell()));
    let id = s
        .start(job(r"printf 'a\377b\000c'; printf 'oops\n' >&2"))
        .expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(info.exit_code, Some(0));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let out: Vec<u8> = recs
        .iter()
        .filter(|r| r.record.stream == jobs_core::Stream::Output)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect();
    assert_eq!(out, b"a\xffb\x00c");
    assert!(recs
        .iter()
        .any(|r| r.record.stream == jobs_core::Stream::Error));
}

#[test]
fn a_program_runs_in_the_given_folder_with_the_given_environment() {
    let s = session(Arc::clone(py_shell()));
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = JobSpec::new("py-shell", "sh -c ...").params(serde_json::json!({
        "work": {"program": {"argv": ["sh", "-c", "pwd; echo \"$ONLY\"; exit 4"]}},
        "cwd": dir.path().to_str().expect("utf-8"),
        "env": [["ONLY", "this"], ["PATH", "/usr/bin:/bin"]],
    }));
    let id = s.start(spec).expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.exit_code, Some(4));
    assert!(info
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("exited with status 4")));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let lines = jobs_core::conformance::output_lines(&recs);
    let canon = dir.path().canonicalize().expect("canon");
    assert_eq!(lines, [canon.to_str().expect("utf-8"), "this"]);
}

/// An executor in sh that says hello and, for each job, starts a `sleep`
/// that inherits its stdout (as a careless executor's job would) and
/// writes its own pid and the sleep's as the job's output; then nothing
/// more: its jobs run until it dies.
const CARELESS: &str = r#"#!/bin/sh
echo '{"msg":"hello","protocol":1}'
while read -r line; do
  case "$line" in
    *'"start"'*)
      job=${line#*\"job\":\"}; job=${job%%\"*}
      sleep 120 &
      printf '{"msg":"record","job":"%s","text":"%s %s"}\n' "$job" "$$" "$!" ;;
  esac
done
"#;

#[test]
fn a_crash_fails_the_running_jobs_and_the_next_job_restarts_it() {
    let file = install("careless", "careless", CARELESS);
    let e = Arc::new(ExecutableExecutor::new("careless", file));
    let s = session(Arc::clone(&e));
    let a = s.start(JobSpec::new("careless", "one")).expect("start");
    let b = s.start(JobSpec::new("careless", "two")).expect("start");
    let (pid, sleep_a) = pids(&s, a);
    let (pid_b, sleep_b) = pids(&s, b);
    assert_eq!(pid_b, pid, "one process serves both jobs");
    // Its stdout stays open (the sleeps hold it): its exit is seen anyway.
    kill9(pid);
    for id in [a, b] {
        let info = finish(&s, id);
        assert_eq!(info.state, JobState::Failed);
        let reason = info.reason.unwrap_or_default();
        assert_eq!(
            reason,
            "executor careless exited: killed by signal 9 (SIGKILL)"
        );
    }
    kill9(sleep_a);
    kill9(sleep_b);
    let c = s.start(JobSpec::new("careless", "three")).expect("start");
    let (again, sleep_c) = pids(&s, c);
    assert_ne!(again, pid, "a new process runs the next job");
    kill9(again);
    kill9(sleep_c);
    assert_eq!(finish(&s, c).state, JobState::Failed);
}

/// The executor's pid and the job's sleep's, as the job wrote them.
fn pids(s: &Session, id: jobs_core::JobId) -> (u32, u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let recs = s
            .receive(
                &[id],
                ReceiveOptions {
                    keep: true,
                    ..Default::default()
                },
            )
            .expect("receive");
        if let Some(line) = jobs_core::conformance::output_lines(&recs).first() {
            let p: Vec<u32> = line
                .split_whitespace()
                .map(|p| p.parse().expect("a pid"))
                .collect();
            return (p[0], p[1]);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "job {id} wrote no pids"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(st.success());
}

#[test]
fn a_wrong_protocol_version_is_refused_naming_both() {
    let file = install(
        "v99",
        "v99",
        "#!/bin/sh\necho '{\"msg\":\"hello\",\"protocol\":99}'\nexec cat >/dev/null\n",
    );
    let s = session(Arc::new(ExecutableExecutor::new("v99", file)));
    let id = s.start(JobSpec::new("v99", "x")).expect("start");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert_eq!(
        reason,
        "executor v99 refused: it speaks executor protocol version 99, this jobctl speaks version 1"
    );
}

#[test]
fn an_executable_others_may_write_is_not_started() {
    use std::os::unix::fs::PermissionsExt;
    let file = install("writable", "open", "#!/bin/sh\nexit 0\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let s = session(Arc::new(ExecutableExecutor::new("open", file)));
    let id = s.start(JobSpec::new("open", "x")).expect("start");
    let info = finish(&s, id);
    let reason = info.reason.unwrap_or_default();
    assert!(
        reason.starts_with("executor open not started:")
            && reason.contains("writable by its group or others (mode 0777)"),
        "{reason}"
    );
}

#[test]
fn a_stopped_job_that_ignores_sigterm_is_killed_after_the_grace() {
    let s = session(Arc::clone(py_shell()));
    let id = s
        .start(job("trap '' TERM; echo ready; sleep 300; echo survived"))
        .expect("start");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let recs = s
            .receive(
                &[id],
                ReceiveOptions {
                    keep: true,
                    ..Default::default()
                },
            )
            .expect("receive");
        if !jobs_core::conformance::output_lines(&recs).is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job never got ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let begin = std::time::Instant::now();
    s.stop_blocking(id).expect("stop");
    let info = finish(&s, id);
    assert_eq!(info.state, JobState::Stopped, "{:?}", info.reason);
    // Long before the sleep ends, and not before the 2 s grace.
    let took = begin.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(120),
        "{took:?}"
    );
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(jobs_core::conformance::output_lines(&recs), ["ready"]);
}
