//! Tests of bulk bytes in the per-job data files: round trips, discard and
//! delete, a crash between the file write and the commit, the upgrade of a
//! version 1 database.

use std::path::{Path, PathBuf};
use std::time::Duration;

use jobs_core::{JobState, Payload, Record, Store, Stream};

use super::tests::{info, place};
use super::{SqliteStore, StoreOptions};

/// Records stay buffered until `flush`.
fn held() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::from_secs(3600),
        flush_records: 1 << 20,
        flush_bytes: 1 << 30,
    }
}

fn data_file(db: &Path, job: u64) -> PathBuf {
    super::files::dir_of(db).join(format!("{job}.bin"))
}

fn file_len(db: &Path, job: u64) -> u64 {
    std::fs::metadata(data_file(db, job)).map_or(0, |m| m.len())
}

/// Distinct bytes for each record, so that a mix-up shows.
fn chunk(seq: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u64).wrapping_mul(31).wrapping_add(seq * 7) % 256) as u8)
        .collect()
}

fn bytes_of(got: &[(u64, Record)]) -> Vec<(u64, Vec<u8>)> {
    got.iter()
        .map(|(s, r)| (*s, r.payload.to_display_bytes()))
        .collect()
}

#[test]
fn big_chunks_round_trip_byte_exact_through_buffer_disk_and_reopen() {
    let p = place();
    // Big and small, interleaved with another job's records.
    let sizes = [64 << 10, 100, 4096, 4095, 1 << 20, 0, 70_000];
    let mut want = Vec::new();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        for (i, &len) in sizes.iter().enumerate() {
            let seq = 2 * i as u64 + 1;
            let data = chunk(seq, len);
            store
                .append(1, seq, Record::bytes(Stream::Output, data.clone()))
                .expect("append");
            store
                .append(
                    2,
                    seq + 1,
                    Record::bytes(Stream::Error, chunk(seq + 1, 8192)),
                )
                .expect("append");
            want.push((seq, data));
        }
        assert_eq!(bytes_of(&store.read(1, 0, 100).expect("buffered")), want);
        store.flush().expect("flush");
        assert_eq!(bytes_of(&store.read(1, 0, 100).expect("written")), want);
        let third = store.read(1, 3, 2).expect("page");
        assert_eq!(bytes_of(&third), want[2..4].to_vec());
        assert_eq!(third[0].1.stream, Stream::Output);
    }
    // Only the big ones went to the file.
    let big: u64 = sizes
        .iter()
        .filter(|&&l| l >= 4096)
        .map(|&l| l as u64)
        .sum();
    assert_eq!(file_len(&p.path, 1), big);
    let store = SqliteStore::open(&p.path).expect("reopen");
    assert_eq!(bytes_of(&store.read(1, 0, 100).expect("reopened")), want);
    let other = store.read(2, 0, 100).expect("job 2");
    assert_eq!(other.len(), sizes.len());
    assert!(other.iter().all(|(_, r)| r.stream == Stream::Error));
    // Appends after the reopen go after the bytes already there.
    store
        .append(1, 100, Record::bytes(Stream::Output, chunk(100, 9000)))
        .expect("append");
    store.flush().expect("flush");
    want.push((100, chunk(100, 9000)));
    assert_eq!(bytes_of(&store.read(1, 0, 100).expect("read")), want);
    assert_eq!(bytes_of(&store.take(1, 100).expect("take")), want);
}

#[test]
fn rows_of_big_chunks_hold_only_where_the_bytes_are() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store
        .append(1, 1, Record::bytes(Stream::Output, chunk(1, 10_000)))
        .expect("append");
    store.flush().expect("flush");
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let row: (i64, i64, i64) = conn
        .query_row(
            "SELECT length(data), file_off, file_len FROM records WHERE seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!(row, (0, 0, 10_000));
}

#[test]
fn discard_and_take_empty_the_data_file_once_no_rows_are_left() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    for seq in 1..=4 {
        store
            .append(1, seq, Record::bytes(Stream::Output, chunk(seq, 8192)))
            .expect("append");
    }
    store.flush().expect("flush");
    assert_eq!(file_len(&p.path, 1), 4 * 8192);
    store.discard(1, 2).expect("discard");
    // Rows are left: their bytes stay where they are.
    assert_eq!(file_len(&p.path, 1), 4 * 8192);
    let left = bytes_of(&store.read(1, 0, 10).expect("read"));
    assert_eq!(left, vec![(3, chunk(3, 8192)), (4, chunk(4, 8192))]);
    store.discard(1, 4).expect("discard");
    assert_eq!(file_len(&p.path, 1), 0);
    assert!(!store.has_records(1).expect("has"));
    // The emptied file fills again from the start.
    store
        .append(1, 5, Record::bytes(Stream::Output, chunk(5, 5000)))
        .expect("append");
    store.flush().expect("flush");
    assert_eq!(file_len(&p.path, 1), 5000);
    assert_eq!(
        bytes_of(&store.take(1, 10).expect("take")),
        vec![(5, chunk(5, 5000))]
    );
    assert_eq!(file_len(&p.path, 1), 0);
}

#[test]
fn a_large_data_file_is_emptied_and_filled_again_from_the_start() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    // Past the size whose file is removed and closed apart.
    let (n, len) = (66u64, 1 << 20);
    for seq in 1..=n {
        store
            .append(1, seq, Record::bytes(Stream::Output, chunk(seq, len)))
            .expect("append");
    }
    store.flush().expect("flush");
    assert_eq!(file_len(&p.path, 1), n * len as u64);
    store.discard(1, n - 1).expect("discard");
    assert_eq!(
        bytes_of(&store.read(1, 0, 10).expect("read")),
        vec![(n, chunk(n, len))]
    );
    store.discard(1, n).expect("discard");
    assert_eq!(file_len(&p.path, 1), 0);
    assert!(!store.has_records(1).expect("has"));
    store
        .append(1, n + 1, Record::bytes(Stream::Output, chunk(n + 1, 5000)))
        .expect("append");
    store.flush().expect("flush");
    assert_eq!(file_len(&p.path, 1), 5000);
    assert_eq!(
        bytes_of(&store.take(1, 10).expect("take")),
        vec![(n + 1, chunk(n + 1, 5000))]
    );
}

#[test]
fn delete_job_removes_its_data_file() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.save_job(&info(1, JobState::Completed)).expect("save");
    store.save_job(&info(2, JobState::Completed)).expect("save");
    for seq in 1..=6 {
        store
            .append(
                1 + seq % 2,
                seq,
                Record::bytes(Stream::Output, chunk(seq, 6000)),
            )
            .expect("append");
    }
    store.flush().expect("flush");
    assert!(data_file(&p.path, 1).exists());
    store.delete_job(1).expect("delete");
    assert!(!data_file(&p.path, 1).exists(), "job 1's data file is gone");
    let two = bytes_of(&store.read(2, 0, 10).expect("read"));
    let want: Vec<_> = [1, 3, 5].iter().map(|&s| (s, chunk(s, 6000))).collect();
    assert_eq!(two, want);
    // Deleting a job that never had a data file is fine too.
    store.save_job(&info(3, JobState::Completed)).expect("save");
    store.delete_job(3).expect("delete");
}

#[test]
fn a_data_file_longer_than_its_rows_after_a_crash_reads_and_appends_correctly() {
    let p = place();
    let mut want = Vec::new();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        for seq in 1..=3 {
            store
                .append(1, seq, Record::bytes(Stream::Output, chunk(seq, 7000)))
                .expect("append");
            want.push((seq, chunk(seq, 7000)));
        }
    }
    // A batch whose bytes were written but whose rows never committed.
    let path = data_file(&p.path, 1);
    let written = std::fs::metadata(&path).expect("data file").len();
    let mut junk = std::fs::read(&path).expect("read");
    junk.extend(std::iter::repeat_n(0xEE, 12_345));
    std::fs::write(&path, &junk).expect("write tail");

    let store = SqliteStore::open_with(&p.path, held()).expect("reopen");
    assert_eq!(bytes_of(&store.read(1, 0, 10).expect("read")), want);
    store
        .append(1, 4, Record::bytes(Stream::Output, chunk(4, 7000)))
        .expect("append");
    want.push((4, chunk(4, 7000)));
    assert_eq!(bytes_of(&store.read(1, 0, 10).expect("buffered")), want);
    store.flush().expect("flush");
    assert_eq!(bytes_of(&store.read(1, 0, 10).expect("written")), want);
    assert!(std::fs::metadata(&path).expect("len").len() > written + 12_345);
    drop(store);
    let store = SqliteStore::open(&p.path).expect("reopen again");
    assert_eq!(bytes_of(&store.read(1, 0, 10).expect("reopened")), want);
}

#[test]
fn a_record_whose_bytes_are_missing_becomes_an_error_record_and_the_rest_arrive() {
    let p = place();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        store
            .append(1, 1, Record::bytes(Stream::Output, chunk(1, 9000)))
            .expect("append");
        store
            .append(1, 2, Record::bytes(Stream::Output, chunk(2, 9000)))
            .expect("append");
        store
            .append(1, 3, Record::text(Stream::Output, "after"))
            .expect("append");
    }
    let path = data_file(&p.path, 1);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open data file");
    // The first record's bytes stay whole; the second's are cut.
    f.set_len(9000 + 100).expect("cut");
    drop(f);
    let store = SqliteStore::open(&p.path).expect("reopen");
    let got = store
        .read(1, 0, 10)
        .expect("a damaged file fails only its records");
    let seqs: Vec<u64> = got.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(matches!(&got[0].1.payload, Payload::Bytes(b) if *b == chunk(1, 9000)));
    assert_eq!(got[1].1.stream, Stream::Error);
    match &got[1].1.payload {
        Payload::Error(e) => assert!(
            e.message.contains("record 2 of job 1 is lost") && e.message.contains("missing"),
            "{}",
            e.message
        ),
        other => panic!("an error record in place of the lost one, not {other:?}"),
    }
    assert!(matches!(&got[2].1.payload, Payload::Text(t) if t == "after"));
    // A consuming receive takes them the same way.
    let taken = store.take(1, 10).expect("take");
    assert_eq!(taken.len(), 3);
}

#[test]
fn a_version_1_database_is_upgraded_and_keeps_its_records() {
    let p = place();
    {
        let conn = rusqlite::Connection::open(&p.path).expect("raw open");
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL;
             CREATE TABLE jobs (id INTEGER PRIMARY KEY, parent INTEGER, name TEXT NOT NULL,
                 type TEXT NOT NULL, state TEXT NOT NULL, info TEXT NOT NULL);
             CREATE TABLE records (seq INTEGER PRIMARY KEY, job INTEGER NOT NULL,
                 stream TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL);
             CREATE INDEX records_job_seq ON records (job, seq);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO meta VALUES ('max_seq', 2);
             PRAGMA user_version = 1;",
        )
        .expect("version 1 schema");
        conn.execute(
            "INSERT INTO records VALUES (1, 1, 'output', 'bytes', ?1), (2, 1, 'output', 'text', 'hi')",
            [chunk(1, 10_000)],
        )
        .expect("version 1 rows");
    }
    let store = SqliteStore::open_with(&p.path, held()).expect("upgrade");
    assert_eq!(store.max_seq().expect("max"), 2);
    store
        .append(1, 3, Record::bytes(Stream::Output, chunk(3, 10_000)))
        .expect("append");
    store.flush().expect("flush");
    drop(store);
    let store = SqliteStore::open(&p.path).expect("reopen");
    let got = store.read(1, 0, 10).expect("read");
    assert_eq!(
        bytes_of(&got),
        vec![
            (1, chunk(1, 10_000)),
            (2, b"hi".to_vec()),
            (3, chunk(3, 10_000))
        ]
    );
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::SCHEMA_VERSION);
}

#[test]
fn a_bounded_read_stops_past_its_bytes_on_disk_and_in_the_buffer() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    let mut want = Vec::new();
    for seq in 1..=10u64 {
        let data = chunk(seq, 100_000);
        store
            .append(1, seq, Record::bytes(Stream::Output, data.clone()))
            .expect("append");
        want.push((seq, data));
        if seq == 5 {
            // Half on disk, half still buffered.
            store.flush().expect("flush");
        }
    }
    let mut got = Vec::new();
    let mut after = 0;
    loop {
        let page = store.read_bounded(1, after, 100, 250_000).expect("read");
        if page.is_empty() {
            break;
        }
        // The record that crosses the line is the last one returned.
        assert!(page.len() <= 3, "{} records past 250 kB", page.len());
        after = page.last().map_or(after, |(s, _)| *s);
        got.extend(bytes_of(&page));
    }
    assert_eq!(got, want);
    let one = store.read_bounded(1, 0, 100, 1).expect("read");
    assert_eq!(one.len(), 1, "the first record always comes");
    assert_eq!(
        store.read_bounded(1, 0, 2, usize::MAX).expect("read").len(),
        2
    );
}
