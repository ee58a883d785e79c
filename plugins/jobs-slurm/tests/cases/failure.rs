//! A failing job's reason names the Slurm state, the exit code and Slurm's
//! reason; the exit code is kept; a refused submission fails with sbatch's
//! words.

use jobs_core::{JobState, ReceiveOptions, Stream};

use crate::support::{plugin_session, shared, text_of, wait};

#[test]
fn a_nonzero_exit_fails_with_state_code_and_reason() {
    let c = shared();
    let s = plugin_session();
    let id = s
        .start(
            c.spec("echo partial; echo oops >&2; exit 3")
                .into_job_spec(),
        )
        .expect("start");
    wait(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(info.exit_code, Some(3));
    let reason = info.reason.expect("a reason");
    for part in ["Slurm job", "FAILED", "exit code 3", "NonZeroExitCode"] {
        assert!(reason.contains(part), "{reason:?} lacks {part:?}");
    }
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(text_of(&recs, Stream::Output), "partial\n");
    assert_eq!(text_of(&recs, Stream::Error), "oops\n");
}

#[test]
fn a_killed_job_names_the_signal() {
    let c = shared();
    let s = plugin_session();
    let id = s
        .start(c.spec("kill -9 $$").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.expect("a reason");
    assert!(reason.contains("signal 9"), "{reason:?}");
}

#[test]
fn a_refused_submission_fails_with_sbatch_words() {
    let c = shared();
    let s = plugin_session();
    let id = s
        .start(c.spec("true").partition("nosuchpartition").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    let reason = info.reason.expect("a reason");
    assert!(reason.contains("sbatch failed"), "{reason:?}");
    assert!(reason.to_lowercase().contains("partition"), "{reason:?}");
}

#[test]
fn malformed_params_fail_the_job() {
    let s = plugin_session();
    let spec = jobs_core::JobSpec::new("SlurmJob", "x")
        .params(serde_json::json!({"command": "true", "partiton": "typo"}));
    let id = s.start(spec).expect("start");
    wait(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert!(info.reason.unwrap_or_default().contains("partiton"));
}
