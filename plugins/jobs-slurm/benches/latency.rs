//! Submit → Completed latency of one job, against a real single-node Slurm
//! (scripts/slurm-up), measured against `sbatch --wait` on the same
//! command in the same run: the baseline is what a user gets from Slurm's
//! own tool, the executor adds its polling (default 1 s, and 250 ms).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use jobs_core::{JobState, Session, WaitMode};
use jobs_slurm::{SlurmExecutor, SlurmSpec};

/// The command every job runs.
const COMMAND: &str = "true";

/// A private cluster, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
}

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts")
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = Command::new(scripts().join("slurm-up"))
            .arg(dir.path())
            .args(["--watch", &std::process::id().to_string()])
            .output()
            .expect("slurm-up");
        assert!(out.status.success(), "slurm-up failed");
        let conf = dir.path().join("etc/slurm.conf");
        Cluster { dir, conf }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(scripts().join("slurm-down"))
            .arg(self.dir.path())
            .output();
    }
}

fn session(cluster: &Cluster, interval: Duration, state: &Path) -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(
        SlurmExecutor::new()
            .state_dir(state)
            .slurm_conf(&cluster.conf)
            .poll_interval(interval),
    ));
    s
}

fn run_job(s: &Session, cluster: &Cluster) {
    let spec = SlurmSpec::new(COMMAND).cwd(cluster.dir.path());
    let id = s.start(spec.into_job_spec()).expect("start");
    s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(120)))
        .expect("wait");
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    s.remove_blocking(id, false).expect("remove");
}

fn latency(c: &mut Criterion) {
    let cluster = Cluster::start();
    let state = cluster.dir.path().join("jobctl");
    let out = cluster.dir.path().join("sbatch.out");
    let mut g = c.benchmark_group("submit_to_completed");
    g.sample_size(10);
    g.bench_function("sbatch_wait", |b| {
        b.iter(|| {
            let st = Command::new("sbatch")
                .env("SLURM_CONF", &cluster.conf)
                .arg("--wait")
                .arg(format!("--output={}", out.display()))
                .arg(format!("--chdir={}", cluster.dir.path().display()))
                .arg(format!("--wrap={COMMAND}"))
                .stdout(std::process::Stdio::null())
                .status()
                .expect("sbatch");
            assert!(st.success());
        })
    });
    for (name, interval) in [
        ("slurm_job_poll_1s", Duration::from_secs(1)),
        ("slurm_job_poll_250ms", Duration::from_millis(250)),
    ] {
        let s = session(&cluster, interval, &state);
        g.bench_function(name, |b| b.iter(|| run_job(&s, &cluster)));
    }
    g.finish();
}

criterion_group!(benches, latency);
criterion_main!(benches);
