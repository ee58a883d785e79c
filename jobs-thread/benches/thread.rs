//! Start + wait + receive of 10,000 trivial thread jobs, against raw
//! `std::thread::spawn` + join of the same closures in the same run.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jobs_core::{Session, WaitMode};
use jobs_thread::{SessionThreadExt, ThreadExecutor, ThreadJob};

const JOBS: u64 = 10_000;

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(ThreadExecutor::new()));
    s
}

fn thread_jobs(s: Session) -> Session {
    let jobs: Vec<ThreadJob<u64>> = (0..JOBS)
        .map(|i| {
            s.start_thread(move |ctx| {
                ctx.output(black_box(i));
                Ok(())
            })
            .expect("start")
        })
        .collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id()).collect();
    s.wait_blocking(&ids, WaitMode::All, None).expect("wait");
    let mut sum = 0;
    for j in &jobs {
        for v in j.receive().expect("receive") {
            sum += *v;
        }
    }
    assert_eq!(sum, JOBS * (JOBS - 1) / 2);
    s
}

fn raw_sequential() {
    let mut sum = 0;
    for i in 0..JOBS {
        sum += std::thread::spawn(move || black_box(i))
            .join()
            .expect("join");
    }
    assert_eq!(sum, JOBS * (JOBS - 1) / 2);
}

fn raw_batched(width: u64) {
    let mut sum = 0;
    let mut i = 0;
    while i < JOBS {
        let hs: Vec<_> = (i..(i + width).min(JOBS))
            .map(|k| std::thread::spawn(move || black_box(k)))
            .collect();
        for h in hs {
            sum += h.join().expect("join");
        }
        i += width;
    }
    assert_eq!(sum, JOBS * (JOBS - 1) / 2);
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("10k_trivial_jobs");
    g.throughput(Throughput::Elements(JOBS));
    g.sample_size(10);
    g.bench_function("raw_spawn_join", |b| b.iter(raw_sequential));
    g.bench_function("raw_spawn_join_5_at_a_time", |b| b.iter(|| raw_batched(5)));
    g.bench_function("thread_jobs_throttle_5", |b| {
        b.iter_batched(session, thread_jobs, BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
