//! Start + wait + receive of 1,000 trivial scripts as thread jobs, against
//! the same scripts run directly on the calling thread (the engine's own
//! cost) and raw `std::thread::spawn` + join of them.

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use jobs_core::{Record, Session, StopToken, WaitMode};
use jobs_script::{run_script, start_script, Dynamic, Limits, ScriptExecutor, Sink};

const SCRIPTS: u64 = 1_000;
const SCRIPT: &str = "40 + 2";

struct Discard;

impl Sink for Discard {
    fn output(&self, value: Dynamic) {
        let _ = std::hint::black_box(value);
    }
    fn record(&self, record: Record) {
        let _ = std::hint::black_box(record);
    }
}

fn direct() {
    let stop = StopToken::new();
    for _ in 0..SCRIPTS {
        run_script(SCRIPT, &Limits::default(), Arc::new(Discard), &stop).expect("script");
    }
}

fn raw_threads() {
    for _ in 0..SCRIPTS {
        std::thread::spawn(|| {
            run_script(
                SCRIPT,
                &Limits::default(),
                Arc::new(Discard),
                &StopToken::new(),
            )
        })
        .join()
        .expect("join")
        .expect("script");
    }
}

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(ScriptExecutor::new()));
    s
}

fn thread_jobs(s: Session) -> Session {
    let jobs: Vec<_> = (0..SCRIPTS)
        .map(|_| start_script(&s, SCRIPT, &Limits::default()).expect("start"))
        .collect();
    let ids: Vec<_> = jobs.iter().map(|j| j.id()).collect();
    s.wait_blocking(&ids, WaitMode::All, None).expect("wait");
    for j in &jobs {
        assert_eq!(j.receive().expect("receive").len(), 1);
    }
    s
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("1k_trivial_scripts");
    g.throughput(Throughput::Elements(SCRIPTS));
    g.sample_size(10);
    g.bench_function("run_script_inline", |b| b.iter(direct));
    g.bench_function("raw_thread_spawn_join", |b| b.iter(raw_threads));
    g.bench_function("thread_jobs_throttle_5", |b| {
        b.iter_batched(session, thread_jobs, BatchSize::PerIteration)
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
