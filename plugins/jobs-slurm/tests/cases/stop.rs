//! Stop cancels the Slurm job: the job ends Stopped and its process is gone.

use jobs_core::{JobState, ReceiveOptions};

use crate::support::{is, plugin_session, process_gone, shared, slurm_id, wait_until};

#[test]
fn stop_cancels_and_the_process_is_gone() {
    let c = shared();
    let s = plugin_session();
    let pid_file = c.dir().join(format!("stop-{}.pid", std::process::id()));
    let line = format!("echo $$ > {}; exec sleep 600", pid_file.display());
    let id = s.start(c.spec(&line).into_job_spec()).expect("start");
    let mut pid = String::new();
    wait_until("the job's pid", 30, || {
        pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_default()
            .trim()
            .to_string();
        !pid.is_empty()
    });
    assert!(
        !process_gone(&pid),
        "the job's process {pid} is not running"
    );
    wait_until("the job to be Running", 30, || {
        is(&s, id, JobState::Running)
    });
    let keep = ReceiveOptions {
        keep: true,
        ..ReceiveOptions::default()
    };
    let slurm = slurm_id(&s.receive(&[id], keep).expect("receive"));
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    wait_until("the job's process to end", 15, || process_gone(&pid));
    let out = c
        .tool("sacct")
        .args(["-c", "-X", "-n", "-P", "-o", "State"])
        .args(["-j", &slurm])
        .output()
        .expect("sacct");
    let state = String::from_utf8_lossy(&out.stdout);
    assert!(state.contains("CANCELLED"), "{state:?}");
}
