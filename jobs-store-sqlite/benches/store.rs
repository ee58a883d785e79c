//! Append throughput of the daemon's SQLite store, against the in-memory
//! store and a plain buffered file write of the same bytes, in one run; and
//! the cost of a job row's write against a line appended to a file.
//!
//! A round appends a batch of records and, for SQLite, flushes them, so the
//! time covers getting them onto disk (WAL, `synchronous=NORMAL`: no fsync,
//! as for the file). Between rounds the records are discarded, untimed.
//!
//! `cargo bench -p jobs-store-sqlite --bench store -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::fs::File;
use std::io::{BufWriter, Seek, Write};
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use jobs_core::{JobInfo, JobState, MemoryStore, Record, Store, Stream};

use jobs_store_sqlite::SqliteStore;

/// Appends `n` copies of `record` as job 1 and returns the time, including
/// what `finish` does; then discards them (untimed).
fn round(
    store: &dyn Store,
    next: &mut u64,
    n: u64,
    record: &Record,
    finish: impl Fn(),
) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        *next += 1;
        store.append(1, *next, record.clone()).expect("append");
    }
    finish();
    let took = start.elapsed();
    store.discard(1, *next).expect("discard");
    took
}

fn file_round(path: &std::path::Path, n: u64, data: &[u8]) -> Duration {
    let start = Instant::now();
    let mut f = BufWriter::new(File::create(path).expect("create"));
    for _ in 0..n {
        f.write_all(data).expect("write");
    }
    let mut f = f.into_inner().expect("flush");
    let took = start.elapsed();
    f.rewind().expect("rewind");
    took
}

fn bench_case(c: &mut Criterion, name: &str, size: usize, n: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteStore::open(&dir.path().join("store.db")).expect("open");
    let memory = MemoryStore::new();
    let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let record = Record::bytes(Stream::Output, data.clone());
    let file = dir.path().join("raw");

    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Bytes(size as u64 * n));
    g.sample_size(10);
    g.bench_function("file", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| file_round(&file, n, &data)).sum())
    });
    let mut next = 0;
    g.bench_function("memory", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| round(&memory, &mut next, n, &record, || ()))
                .sum()
        })
    });
    let mut next = 0;
    g.bench_function("sqlite", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    round(&sqlite, &mut next, n, &record, || {
                        sqlite.flush().expect("flush")
                    })
                })
                .sum()
        })
    });
    g.finish();
}

/// A job row's write: what every state change costs, against appending the
/// same JSON line to a file.
fn save_jobs(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = SqliteStore::open(&dir.path().join("store.db")).expect("open");
    let row = |id: u64| JobInfo {
        id,
        instance_id: uuid::Uuid::new_v4(),
        name: format!("Job{id}").into(),
        type_name: "BackgroundJob".into(),
        state: JobState::Running,
        reason: None,
        has_more_data: true,
        location: "localhost".into(),
        command: "true".into(),
        begin: Some(SystemTime::now()),
        end: None,
        exit_code: None,
        parent: None,
        children: vec![],
        detached: false,
        item: None,
        attempts: 0,
        after: Vec::new(),
        after_any: Vec::new(),
        restarted_from: None,
    };
    let n = 1000u64;
    let mut g = c.benchmark_group("save_job");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    let path = dir.path().join("rows");
    g.bench_function("file", |b| {
        b.iter_custom(|iters| {
            let mut f = File::create(&path).expect("create");
            let start = Instant::now();
            for i in 0..iters * n {
                let line = serde_json::to_string(&row(i % n + 1)).expect("json");
                f.write_all(line.as_bytes()).expect("write");
                f.write_all(b"\n").expect("write");
            }
            start.elapsed()
        })
    });
    g.bench_function("sqlite", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for i in 0..iters * n {
                sqlite.save_job(&row(i % n + 1)).expect("save");
            }
            start.elapsed()
        })
    });
    g.finish();
}

fn appends(c: &mut Criterion) {
    // A process job's output: 64 KiB chunks, 16 MiB per round.
    bench_case(c, "append_64KiB", 64 << 10, 256);
    // A script's small records: 100 bytes, 10,000 per round.
    bench_case(c, "append_100B", 100, 10_000);
}

criterion_group!(benches, appends, save_jobs);
criterion_main!(benches);
