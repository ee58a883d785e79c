//! Per-job cost of CShellJob, the executor written in C and loaded as a
//! plugin, against the built-in BackgroundJob (jobs-process) running the
//! same shell line, in the same run: start, wait, receive, remove of a job
//! that runs `echo x`, and of one that writes 1000 lines.
//!
//! `cargo bench -p jobs-plugin-c-example --bench overhead -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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

fn overhead(c: &mut Criterion) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c-example-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("folder");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let lib = jobs_plugin_c_example::build(&dir, "libc_example.so", &[]).expect("build");
    let loaded = jobs_core::plugin::load(lib).expect("load the C plugin");
    let builtin = session(Arc::new(ProcessExecutor::new()));
    let plugged = session(Arc::clone(&loaded.executor));
    let c_job = |line: &str| JobSpec::new(jobs_plugin_c_example::TYPE, line);
    let process_job = |line: &str| ProcessSpec::shell(line).into_job_spec();

    let mut g = c.benchmark_group("echo_job");
    g.bench_function("builtin_process", |b| {
        b.iter(|| one_job(&builtin, process_job("echo x")))
    });
    g.bench_function("c_plugin", |b| {
        b.iter(|| one_job(&plugged, c_job("echo x")))
    });
    g.finish();

    let many = "seq 1000";
    let mut g = c.benchmark_group("thousand_line_job");
    g.sample_size(20);
    g.bench_function("builtin_process", |b| {
        b.iter(|| assert!(one_job(&builtin, process_job(many)) >= 1))
    });
    g.bench_function("c_plugin", |b| {
        b.iter(|| assert!(one_job(&plugged, c_job(many)) >= 1))
    });
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
