//! Per-job cost of the executors that run outside the daemon's code, each
//! running the same shell line, in the same run: py-shell (the Python
//! executable of plugins/py-example, through `ExecutableExecutor`),
//! CShellJob (the C plugin of plugins/c-example, through the plugin
//! loader), and the built-in BackgroundJob (jobs-process), the baseline.
//! One iteration: start, wait, receive, remove of a job that runs `echo x`.
//!
//! `cargo bench -p jobs-exec --bench overhead -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use jobs_core::{JobExecutor, JobSpec, ReceiveOptions, Session, WaitMode};
use jobs_process::{ProcessExecutor, ProcessSpec};

fn session(executor: Arc<dyn JobExecutor>) -> Session {
    let s = Session::new().expect("session");
    s.register(executor);
    s
}

/// Runs one job to its end and takes its records; returns how many.
fn one_job(s: &Session, spec: JobSpec) -> usize {
    let id = s.start(spec).expect("start");
    s.wait_blocking(&[id], WaitMode::All, None).expect("wait");
    let n = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive")
        .len();
    s.remove_blocking(id, false).expect("remove");
    n
}

/// A private folder (mode 0700) for the executable and the library.
fn private_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("exec-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    dir
}

fn overhead(c: &mut Criterion) {
    let dir = private_dir();
    let py = dir.join("py-shell");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/py-example/py-shell"
    );
    std::fs::copy(src, &py).expect("copy py-shell");
    std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let lib = jobs_plugin_c_example::build(&dir, "libc_example.so", &[]).expect("build");
    let loaded = jobs_core::plugin::load(lib).expect("load the C plugin");

    let builtin = session(Arc::new(ProcessExecutor::new()));
    let plugged = session(Arc::clone(&loaded.executor));
    let python = session(Arc::new(jobs_exec::ExecutableExecutor::new("py-shell", py)));

    let line = "echo x";
    // Starts the Python process before measuring: its start-up is paid once.
    assert_eq!(one_job(&python, JobSpec::new("py-shell", line)), 1);

    let mut g = c.benchmark_group("echo_job");
    g.bench_function("builtin_process", |b| {
        b.iter(|| one_job(&builtin, ProcessSpec::shell(line).into_job_spec()))
    });
    g.bench_function("c_plugin", |b| {
        b.iter(|| one_job(&plugged, JobSpec::new(jobs_plugin_c_example::TYPE, line)))
    });
    g.bench_function("py_executable", |b| {
        b.iter(|| one_job(&python, JobSpec::new("py-shell", line)))
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
