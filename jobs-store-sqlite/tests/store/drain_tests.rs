//! Tests of records taken by a receiver as they come: they wait in memory
//! for it instead of going to disk, the producer waits for room, and the
//! flush interval still holds.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{Record, Store, Stream};

use super::tests::place;
use super::{files, SqliteStore, StoreOptions};

fn chunk(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(13).wrapping_add(seq * 5) % 251) as u8)
        .collect()
}

#[test]
fn a_receiver_that_keeps_up_takes_records_before_they_reach_the_disk() {
    let p = place();
    // Due by size at 64 kB, full at 256 kB; the interval never passes.
    let opts = StoreOptions {
        flush_interval: Duration::from_secs(3600),
        flush_records: 1 << 20,
        flush_bytes: 64 << 10,
    };
    let store = Arc::new(SqliteStore::open_with(&p.path, opts).expect("open"));
    // An acknowledgement (of nothing yet) says a receiver takes job 1.
    store.discard(1, 0).expect("discard");
    const N: u64 = 200;
    let producer = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            for seq in 1..=N {
                let rec = Record::bytes(Stream::Output, chunk(seq, 50_000));
                store.append(1, seq, rec).expect("append");
            }
        })
    };
    let mut got = 0u64;
    while got < N {
        let recs = store.read_bounded(1, got, 64, 200_000).expect("read");
        for (seq, rec) in &recs {
            assert_eq!(*seq, got + 1, "in order, none lost");
            assert_eq!(rec.payload.to_display_bytes(), chunk(*seq, 50_000));
            got = *seq;
        }
        if recs.is_empty() {
            std::thread::yield_now();
        } else {
            store.discard(1, got).expect("discard");
        }
    }
    producer.join().expect("producer");
    // 10 MB went through a buffer of 256 kB without touching the disk.
    // The data file is made by the first write to it (and only emptied
    // once its records are consumed): it was never made.
    let file = files::dir_of(&p.path).join("1.bin");
    assert!(!file.exists(), "records taken in time are never written");
    assert!(!store.has_records(1).expect("has"));
}

#[test]
fn records_a_receiver_leaves_are_written_within_the_interval() {
    let p = place();
    let opts = StoreOptions {
        flush_interval: Duration::from_millis(50),
        flush_records: 1 << 20,
        flush_bytes: 64 << 10,
    };
    {
        let store = SqliteStore::open_with(&p.path, opts).expect("open");
        store.discard(1, 0).expect("discard");
        for seq in 1..=3 {
            let rec = Record::bytes(Stream::Output, chunk(seq, 50_000));
            store.append(1, seq, rec).expect("append");
        }
        // The receiver went away: the writer writes them once they are
        // an interval old, as if nobody had been receiving.
        let file = files::dir_of(&p.path).join("1.bin");
        let written = eventually(Duration::from_secs(20), || {
            std::fs::metadata(&file).is_ok_and(|m| m.len() == 150_000)
        });
        assert!(written, "the records reached the data file");
        // Dropped without a flush: what is on disk is all there is.
        std::mem::forget(store);
    }
    let store = SqliteStore::open(&p.path).expect("reopen");
    let recs = store.read(1, 0, 10).expect("read");
    assert_eq!(recs.len(), 3);
    for (seq, rec) in recs {
        assert_eq!(rec.payload.to_display_bytes(), chunk(seq, 50_000));
    }
}

/// Polls `cond` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < timeout {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}
