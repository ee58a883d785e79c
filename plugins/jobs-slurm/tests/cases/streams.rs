//! Output and error streams: byte-exact, read while the job runs, and
//! nothing left behind once read.

use std::path::Path;

use jobs_core::{JobState, ReceiveOptions, Stream};

use crate::support::{self, bytes_of, plugin_session, shared, slurm_id, text_of, wait, wait_until};

/// Whether any job folder under `root` still names Slurm job `id`.
fn folder_left_for(root: &Path, id: &str) -> bool {
    let Ok(dirs) = std::fs::read_dir(root) else {
        return false;
    };
    dirs.flatten().any(|d| {
        std::fs::read_to_string(d.path().join("job.json"))
            .map(|s| s.contains(&format!("\"slurm_id\":\"{id}\"")))
            .unwrap_or(false)
    })
}

#[test]
fn output_and_error_are_byte_exact_and_files_are_removed() {
    let c = shared();
    let s = plugin_session();
    let line = r"printf 'out1\n'; printf 'err1\n' >&2; printf '\000\377tail'; printf 'e2' >&2";
    let id = s.start(c.spec(line).into_job_spec()).expect("start");
    wait(&s, &[id], 60);
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Completed, "reason {:?}", info.reason);
    assert_eq!(info.exit_code, Some(0));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(bytes_of(&recs, Stream::Output), b"out1\n\0\xfftail");
    assert_eq!(bytes_of(&recs, Stream::Error), b"err1\ne2");
    let verbose = text_of(&recs, Stream::Verbose);
    assert!(verbose.contains("COMPLETED"), "{verbose}");
    // The location is the node list Slurm reported.
    assert!(
        verbose.contains(&format!(" on {}", info.location)),
        "{}: {verbose}",
        info.location
    );
    let jobs = support::plugin_state_dir().join("jobs");
    assert!(!folder_left_for(&jobs, &slurm_id(&recs)));
}

#[test]
fn output_arrives_while_the_job_runs() {
    let c = shared();
    let s = plugin_session();
    let id = s
        .start(c.spec("echo first; sleep 4; echo second").into_job_spec())
        .expect("start");
    let mut got = Vec::new();
    wait_until("the first line while running", 30, || {
        got.extend(
            s.receive(&[id], ReceiveOptions::default())
                .expect("receive"),
        );
        bytes_of(&got, Stream::Output) == b"first\n"
    });
    assert_eq!(s.info(id).expect("info").state, JobState::Running);
    wait(&s, &[id], 60);
    got.extend(
        s.receive(&[id], ReceiveOptions::default())
            .expect("receive"),
    );
    assert_eq!(bytes_of(&got, Stream::Output), b"first\nsecond\n");
}

#[test]
fn megabytes_of_output_come_back_whole() {
    let c = shared();
    let s = plugin_session();
    let id = s
        .start(c.spec("seq 1 400000").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let want: String = (1..=400000).map(|i| format!("{i}\n")).collect();
    let got = bytes_of(&recs, Stream::Output);
    assert_eq!(got.len(), want.len());
    assert!(got == want.as_bytes());
}
