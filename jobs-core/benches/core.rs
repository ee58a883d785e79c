//! The core's own overhead: start + wait + receive of 10,000 jobs whose
//! executor does nothing, against raw tokio task spawn + join of the same
//! count; and `get` over a 10,000-job table.
//!
//! `cargo bench -p jobs-core --bench core`
//!
//! With `JOBS_BENCH_CPU=1` the figures are the process's CPU time (all its
//! threads) rather than wall time: on a machine shared with other work,
//! the cost of the code itself.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::Arc;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Bencher, Criterion, Throughput};
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

/// The CPU time the process has used so far, every thread's.
fn process_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the call's duration.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Times `f` by the wall clock, or with `JOBS_BENCH_CPU` set by the
/// process's CPU time.
fn measure<O>(b: &mut Bencher<'_>, mut f: impl FnMut() -> O) {
    if std::env::var_os("JOBS_BENCH_CPU").is_some() {
        b.iter_custom(|iters| {
            let start = process_cpu();
            for _ in 0..iters {
                black_box(f());
            }
            process_cpu().saturating_sub(start)
        })
    } else {
        b.iter(f)
    }
}

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
        measure(b, || {
            rt.block_on(async {
                let hs: Vec<_> = (0..N).map(|_| tokio::spawn(async { "done" })).collect();
                for h in hs {
                    let _ = h.await;
                }
            })
        })
    });
    g.bench_function("session_start_wait_receive", |b| {
        measure(b, || {
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
        measure(b, || session.get(&JobFilter::default()).expect("get").len())
    });
    g.bench_function("name_glob", |b| {
        let f = JobFilter {
            name: Some("job-99*".into()),
            ..Default::default()
        };
        measure(b, || session.get(&f).expect("get").len())
    });
    g.bench_function("one_id", |b| {
        measure(b, || session.info(5000).expect("info"))
    });
    g.finish();
}

criterion_group!(benches, lifecycle, get_over_table);
criterion_main!(benches);
