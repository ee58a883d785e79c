//! A host process killed with SIGKILL leaves no job process behind.
//!
//! The host is this test binary, run again with `JOBS_PROCESS_TEST_HOST`
//! set so that only `host_process` runs, and acts as a session host.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jobs_process::{ProcessExecutor, ProcessSpec};

use super::support::{first_lines, pids, session_with, wait_gone, Reaper};

const HOST_ENV: &str = "JOBS_PROCESS_TEST_HOST";

/// The host's body when this binary runs as the host (does nothing in a
/// normal run): starts jobs with grandchildren, one of them deaf to
/// SIGTERM, writes their pids to `$JOBS_PROCESS_TEST_HOST/pids`, then
/// waits to be killed.
#[test]
fn host_process() {
    let Some(dir) = std::env::var_os(HOST_ENV) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let s = session_with(ProcessExecutor::new().grace_period(Duration::from_millis(500)));
    let specs = [
        "sleep 1000 & echo $$ $!; sh -c 'sleep 1000 & echo $!'; sleep 1000",
        "trap '' TERM; sleep 1000 & echo $$ $!; wait",
    ];
    let mut all = Vec::new();
    for (i, line) in specs.iter().enumerate() {
        let id = s
            .start(ProcessSpec::shell(*line).into_job_spec())
            .expect("start");
        let lines = first_lines(&s, id, if i == 0 { 2 } else { 1 });
        all.extend(lines.iter().flat_map(|l| pids(l)));
    }
    let text: Vec<String> = all.iter().map(u32::to_string).collect();
    std::fs::write(dir.join("pids.tmp"), text.join(" ")).expect("write pids");
    std::fs::rename(dir.join("pids.tmp"), dir.join("pids")).expect("rename pids");
    loop {
        std::thread::sleep(Duration::from_secs(1000));
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkilled_host_leaves_no_job_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary");
    let child = Command::new(exe)
        .args(["--exact", "suite::host::host_process", "--test-threads=1"])
        .env(HOST_ENV, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .expect("start host");
    let mut host = KillOnDrop(child);
    let pids_file = dir.path().join("pids");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !pids_file.exists() {
        assert!(Instant::now() < deadline, "the host never started its jobs");
        if let Some(st) = host.0.try_wait().expect("try_wait") {
            panic!("the host ended early: {st}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let tree = pids(&std::fs::read_to_string(&pids_file).expect("read pids"));
    let _reaper = Reaper(tree.clone());
    assert_eq!(tree.len(), 5, "{tree:?}");
    assert_eq!(
        wait_gone(&tree, 0).len(),
        5,
        "jobs must run while the host lives"
    );
    host.0.kill().expect("SIGKILL the host");
    host.0.wait().expect("reap the host");
    let alive = wait_gone(&tree, 20);
    assert!(
        alive.is_empty(),
        "alive after the host was SIGKILLed: {alive:?}"
    );
}
