//! The core's own overhead: start + wait + receive of 10,000 jobs whose
//! executor does nothing, against raw tokio task spawn + join of the same
//! count; and `get` over a 10,000-job table.
//!
//! `cargo bench -p jobs-core --bench core`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jobs_core::{
    async_trait, JobContext, JobExecutor, JobFailure, JobFilter, JobSpec, ReceiveOptions, Session,
    WaitMode,
};

struct Noop;

#[async_trait]
impl JobExecutor for Noop {
    fn type_name(&self) -> &str {
        "Noop"
    }
    async fn run(&self, _spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        ctx.output("done");
        Ok(())
    }
}

const N: usize = 10_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime")
}

fn lifecycle(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("10k_jobs");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(10);
    g.bench_function("raw_tokio_spawn_join", |b| {
        b.iter(|| {
            rt.block_on(async {
                let hs: Vec<_> = (0..N).map(|_| tokio::spawn(async { "done" })).collect();
                for h in hs {
                    let _ = h.await;
                }
            })
        })
    });
    g.bench_function("session_start_wait_receive", |b| {
        b.iter(|| {
            let session = Session::builder()
                .runtime(rt.handle().clone())
                .build()
                .expect("session");
            session.register(Arc::new(Noop));
            let ids: Vec<u64> = (0..N)
                .map(|_| session.start(JobSpec::new("Noop", "noop")).expect("start"))
                .collect();
            let out = session
                .wait_blocking(&ids, WaitMode::All, None)
                .expect("wait");
            assert_eq!(out.done.len(), N);
            let recs = session
                .receive(&ids, ReceiveOptions::default())
                .expect("receive");
            assert_eq!(recs.len(), N);
        })
    });
    g.finish();
}

fn get_over_table(c: &mut Criterion) {
    let rt = runtime();
    let session = Session::builder()
        .runtime(rt.handle().clone())
        .build()
        .expect("session");
    session.register(Arc::new(Noop));
    let ids: Vec<u64> = (0..N)
        .map(|i| {
            session
                .start(JobSpec::new("Noop", format!("noop {i}")).name(format!("job-{i}")))
                .expect("start")
        })
        .collect();
    session
        .wait_blocking(&ids, WaitMode::All, None)
        .expect("wait");
    let mut g = c.benchmark_group("get_10k_table");
    g.bench_function("all", |b| {
        b.iter(|| session.get(&JobFilter::default()).expect("get").len())
    });
    g.bench_function("name_glob", |b| {
        let f = JobFilter {
            name: Some("job-99*".into()),
            ..Default::default()
        };
        b.iter(|| session.get(&f).expect("get").len())
    });
    g.bench_function("one_id", |b| b.iter(|| session.info(5000).expect("info")));
    g.finish();
}

criterion_group!(benches, lifecycle, get_over_table);
criterion_main!(benches);
