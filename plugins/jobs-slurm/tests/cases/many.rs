//! Twenty jobs at once all complete, and one `squeue` call serves them all.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use jobs_core::{JobState, ReceiveOptions, Stream};

use crate::support::{session_with, shared, text_of, wait, wait_until};

#[test]
fn twenty_jobs_at_once_complete_polled_together() {
    let c = shared();
    let tmp = tempfile::tempdir().expect("tempdir");
    // The tools, through wrappers that log each call's arguments.
    let bin = tmp.path().join("bin");
    fs::create_dir(&bin).expect("bin");
    let log = tmp.path().join("calls.log");
    for tool in ["sbatch", "squeue", "sacct", "scancel"] {
        let real = which(tool);
        let script = format!(
            "#!/bin/sh\necho \"{tool} $*\" >> '{}'\nexec '{real}' \"$@\"\n",
            log.display()
        );
        let path = bin.join(tool);
        fs::write(&path, script).expect("wrapper");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let s = session_with(c.executor(&tmp.path().join("state")).bin_dir(&bin));
    // Every job waits for the go file, so all twenty are followed at once.
    let go = tmp.path().join("go");
    let line = |i: usize| {
        format!(
            "while [ ! -e '{}' ]; do sleep 0.1; done; echo job {i}",
            go.display()
        )
    };
    let ids: Vec<u64> = (0..20)
        .map(|i| s.start(c.spec(&line(i)).into_job_spec()).expect("start"))
        .collect();
    let keep = ReceiveOptions {
        keep: true,
        ..ReceiveOptions::default()
    };
    wait_until("all twenty to run", 60, || {
        ids.iter().all(|&id| {
            let recs = s.receive(&[id], keep).expect("receive");
            text_of(&recs, Stream::Verbose).contains("is RUNNING")
        })
    });
    fs::write(&go, b"").expect("go");
    wait(&s, &ids, 120);
    for (i, &id) in ids.iter().enumerate() {
        let info = s.info(id).expect("info");
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        let recs = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        assert_eq!(text_of(&recs, Stream::Output), format!("job {i}\n"));
    }
    let calls = fs::read_to_string(&log).expect("log");
    let squeues: Vec<&str> = calls.lines().filter(|l| l.starts_with("squeue")).collect();
    let widest = squeues
        .iter()
        .filter_map(|l| l.split("--jobs=").nth(1))
        .map(|ids| ids.split(',').count())
        .max()
        .unwrap_or(0);
    assert_eq!(
        widest, 20,
        "no squeue call asked about all jobs: {squeues:?}"
    );
    assert_eq!(
        calls.lines().filter(|l| l.starts_with("sbatch")).count(),
        20
    );
    assert!(crate::support::empty_dir(&tmp.path().join("state/jobs")));
}

fn which(tool: &str) -> String {
    std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(tool))
                .find(|f| f.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| panic!("{tool} is not on PATH"))
}
