//! Exit status, signals, and programs or directories that cannot be used.

use jobs_core::{JobState, Stream};
use jobs_process::ProcessSpec;

use super::support::{run, session, text};

#[test]
fn exit_codes_make_the_state() {
    let s = session();
    let (info, _) = run(&s, ProcessSpec::shell("exit 0"));
    assert_eq!(info.state, JobState::Completed);
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(info.reason, None);

    let (info, recs) = run(&s, ProcessSpec::shell("echo partial; exit 7"));
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("exited with status 7"));
    assert_eq!(info.exit_code, Some(7));
    assert_eq!(text(&recs, Stream::Output), "partial\n");
}

#[test]
fn death_by_signal_names_the_signal() {
    let s = session();
    let (info, _) = run(&s, ProcessSpec::shell("kill -9 $$"));
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.reason.as_deref(), Some("killed by signal 9 (SIGKILL)"));
    let (info, _) = run(&s, ProcessSpec::shell("kill -SEGV $$"));
    assert_eq!(
        info.reason.as_deref(),
        Some("killed by signal 11 (SIGSEGV)")
    );
}

#[test]
fn missing_program_fails_naming_it() {
    let s = session();
    let (info, _) = run(&s, ProcessSpec::program(["no-such-program-7f3a", "arg"]));
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("'no-such-program-7f3a'"), "{reason}");
    assert!(
        reason.contains("No such file or directory (os error 2)"),
        "{reason}"
    );
}

#[test]
fn program_that_is_not_executable_fails_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("script.sh");
    std::fs::write(&file, "#!/bin/sh\necho hi\n").expect("write");
    let s = session();
    let (info, _) = run(&s, ProcessSpec::program([file.display().to_string()]));
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("script.sh"), "{reason}");
    assert!(
        reason.contains("Permission denied (os error 13)"),
        "{reason}"
    );
}

#[test]
fn bad_working_directory_fails_naming_it() {
    let s = session();
    let (info, _) = run(
        &s,
        ProcessSpec::program(["true"]).cwd("/nonexistent/dir-1b2c"),
    );
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("'/nonexistent/dir-1b2c'"), "{reason}");
    assert!(reason.contains("working directory"), "{reason}");
    assert!(reason.contains("os error 2"), "{reason}");
    let (info, _) = run(&s, ProcessSpec::program(["true"]).cwd("/etc/passwd"));
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains("Not a directory (os error 20)"), "{reason}");
}

/// Runs a hand-made spec and checks that it fails with a reason naming `why`.
fn fails_with(job: jobs_core::JobSpec, why: &str) {
    let s = session();
    let id = s.start(job).expect("start");
    let (info, _) = super::support::finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.unwrap_or_default();
    assert!(reason.contains(why), "{reason}");
}

#[test]
fn invalid_params_fail_the_job() {
    fails_with(
        jobs_core::JobSpec::new(jobs_process::TYPE_NAME, "x")
            .params(serde_json::json!({"cwd": "/"})),
        "invalid process job parameters",
    );
}

#[test]
fn a_spec_in_json_params_runs_like_a_typed_one() {
    let s = session();
    let spec = ProcessSpec::shell("echo from params; exit 3");
    let job =
        jobs_core::JobSpec::new(jobs_process::TYPE_NAME, spec.display()).params(spec.to_params());
    assert!(job.payload.is_none());
    let id = s.start(job).expect("start");
    let (info, recs) = super::support::finish(&s, id);
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.exit_code, Some(3));
    assert_eq!(text(&recs, Stream::Output), "from params\n");
}

#[test]
fn a_payload_of_another_type_fails_the_job() {
    fails_with(
        jobs_core::JobSpec::new(jobs_process::TYPE_NAME, "x").payload(Box::new(42u8)),
        "must be a jobs_process::ProcessSpec",
    );
}
