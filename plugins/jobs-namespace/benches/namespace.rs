//! Per-job cost of the namespace executor loaded as a plugin against the
//! same executor built in, in the same run, with the raw cost of the
//! `unshare` command line (spawn and wait, no session) as the baseline.
//!
//! `cargo bench -p jobs-namespace --bench namespace -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use jobs_core::plugin::{self, testing};
use jobs_core::{JobExecutor, JobSpec, JobState, Session, WaitMode};
use jobs_namespace::{NamespaceExecutor, NamespaceJob};

fn run_one(s: &Session) {
    let id = s
        .start(JobSpec::new("NamespaceJob", "true"))
        .expect("start");
    let out = s.wait_blocking(&[id], WaitMode::All, None).expect("wait");
    assert_eq!(out.done[0].state, JobState::Completed);
    s.remove_blocking(id, false).expect("remove");
}

fn overhead(c: &mut Criterion) {
    let file = testing::build_plugin("jobs-namespace").expect("build the plugin");
    let loaded = plugin::load(file).expect("load the plugin");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let session = |e: Arc<dyn JobExecutor>| {
        let s = Session::builder()
            .runtime(rt.handle().clone())
            .build()
            .expect("session");
        s.register(e);
        s
    };
    let builtin = session(Arc::new(NamespaceExecutor));
    let plugged = session(Arc::clone(&loaded.executor));
    let argv = NamespaceJob::from_spec(&JobSpec::new("NamespaceJob", "true"))
        .expect("params")
        .argv();

    let mut g = c.benchmark_group("namespace_true_job");
    g.sample_size(20);
    g.bench_function("raw_unshare", |b| {
        b.iter(|| {
            let st = std::process::Command::new(&argv[0])
                .args(&argv[1..])
                .status()
                .expect("spawn");
            assert!(st.success());
        })
    });
    g.bench_function("builtin", |b| b.iter(|| run_one(&builtin)));
    g.bench_function("plugin", |b| b.iter(|| run_one(&plugged)));
    g.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
