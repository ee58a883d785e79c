//! Tests of the SQLite store: payload round trips, paging, discard, the
//! buffer, reopening, the schema version.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use jobs_core::{
    ErrorRecord, JobInfo, JobState, Live, Payload, ProgressRecord, Record, Store, Stream,
};
use serde_json::json;

use super::{SqliteStore, StoreOptions};

/// A temporary directory and the path of a store in it.
pub(super) struct Place {
    _dir: tempfile::TempDir,
    pub(super) path: PathBuf,
}

pub(super) fn place() -> Place {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("store.db");
    Place { _dir: dir, path }
}

/// Records stay buffered until `flush` (or a full buffer).
pub(super) fn held() -> StoreOptions {
    StoreOptions {
        flush_interval: Duration::from_secs(3600),
        flush_records: 1 << 20,
        flush_bytes: 1 << 30,
    }
}

fn open_held(p: &Place) -> SqliteStore {
    SqliteStore::open_with(&p.path, held()).expect("open store")
}

pub(super) fn info(id: u64, state: JobState) -> JobInfo {
    JobInfo {
        id,
        instance_id: uuid::Uuid::new_v4(),
        name: format!("Job{id}").into(),
        type_name: "TestJob".into(),
        state,
        reason: None,
        has_more_data: true,
        location: "localhost".into(),
        command: format!("job {id}").into(),
        begin: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
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
    }
}

/// The ids of the jobs the store holds.
pub(super) fn job_ids(store: &SqliteStore) -> Vec<u64> {
    store
        .load_jobs()
        .expect("load")
        .iter()
        .map(|j| j.id)
        .collect()
}

/// The job rows committed, as (id, state), read through another connection.
pub(super) fn committed(path: &std::path::Path) -> Vec<(i64, String)> {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    let mut stmt = conn
        .prepare("SELECT id, state FROM jobs ORDER BY id")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query");
    rows.map(|r| r.expect("row")).collect()
}

fn json_of(r: &Record) -> serde_json::Value {
    serde_json::to_value(r).expect("record to json")
}

fn every_kind() -> Vec<Record> {
    let mut binary = vec![0u8, 0, 255, 254, 0xC3, 0x28, b'\n', 0];
    binary.extend((0..=255u8).rev());
    vec![
        Record::text(Stream::Output, "plain text ünïcødé"),
        Record::text(Stream::Warning, ""),
        Record::bytes(Stream::Output, binary),
        Record::bytes(Stream::Error, Vec::new()),
        Record::bytes(Stream::Output, b"valid utf-8 bytes stay bytes".to_vec()),
        Record::new(
            Stream::Output,
            Payload::Value(json!({"a": [1, 2.5, null], "b": {"c": "d"}})),
        ),
        Record::new(Stream::Verbose, Payload::Value(json!("a string value"))),
        Record::new(
            Stream::Progress,
            Payload::Progress(ProgressRecord {
                percent: Some(42.5),
                activity: "copy".into(),
                status: "3 of 7".into(),
            }),
        ),
        Record::progress(None, "thinking"),
        Record::new(
            Stream::Error,
            Payload::Error(ErrorRecord {
                message: "boom".into(),
                category: Some("IOError".into()),
                details: Some(json!({"path": "/x"})),
            }),
        ),
        Record::text(Stream::Debug, "d"),
        Record::text(Stream::Information, "i"),
    ]
}

fn assert_same(got: &[(u64, Record)], want: &[(u64, Record)]) {
    assert_eq!(got.len(), want.len(), "record count");
    for ((gs, g), (ws, w)) in got.iter().zip(want) {
        assert_eq!(gs, ws, "sequence number");
        assert_eq!(g.stream, w.stream, "stream of {gs}");
        assert_eq!(json_of(g), json_of(w), "record {gs}");
        assert_eq!(
            std::mem::discriminant(&g.payload),
            std::mem::discriminant(&w.payload),
            "payload kind of {gs}"
        );
        assert_eq!(
            g.payload.to_display_bytes(),
            w.payload.to_display_bytes(),
            "bytes of {gs}"
        );
    }
}

#[test]
fn every_payload_kind_round_trips_buffered_flushed_and_reopened() {
    let p = place();
    let recs: Vec<(u64, Record)> = every_kind()
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i as u64 + 1, r))
        .collect();
    {
        let store = open_held(&p);
        for (seq, r) in &recs {
            store.append(7, *seq, r.clone()).expect("append");
        }
        assert_same(&store.read(7, 0, usize::MAX).expect("buffered"), &recs);
        store.flush().expect("flush");
        assert_same(&store.read(7, 0, usize::MAX).expect("flushed"), &recs);
    }
    let store = open_held(&p);
    assert_same(&store.read(7, 0, usize::MAX).expect("reopened"), &recs);
    assert_eq!(store.max_seq().expect("max"), recs.len() as u64);
}

#[test]
fn bytes_are_stored_as_raw_blobs() {
    let p = place();
    let store = open_held(&p);
    store
        .append(1, 1, Record::bytes(Stream::Output, vec![0, 159, 146, 150]))
        .expect("append");
    store
        .append(1, 2, Record::output_text("t"))
        .expect("append");
    store.flush().expect("flush");
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let (kind, ty, len): (String, String, i64) = conn
        .query_row(
            "SELECT kind, typeof(data), length(data) FROM records WHERE seq = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("row");
    assert_eq!((kind.as_str(), ty.as_str(), len), ("bytes", "blob", 4));
    let ty: String = conn
        .query_row("SELECT typeof(data) FROM records WHERE seq = 2", [], |r| {
            r.get(0)
        })
        .expect("row");
    assert_eq!(ty, "text");
}

#[test]
fn a_live_value_reads_back_as_its_rendering_from_buffer_and_disk() {
    let p = place();
    let store = open_held(&p);
    let live = Live::with_render(Arc::new(5u32), |_| json!({"five": 5}));
    store
        .append(1, 1, Record::new(Stream::Output, Payload::Live(live)))
        .expect("append");
    let want = json!({"stream": "output", "kind": "value", "data": {"five": 5}});
    for _ in 0..2 {
        let got = store.read(1, 0, 10).expect("read");
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0].1.payload, Payload::Value(_)));
        assert_eq!(json_of(&got[0].1), want);
        store.flush().expect("flush");
    }
}

#[test]
fn a_twenty_megabyte_record_round_trips() {
    let p = place();
    let big: Vec<u8> = (0..20 << 20).map(|i: u32| (i % 251) as u8).collect();
    {
        // Default options: the record is over the batch size and is written
        // by the background thread or the next append.
        let store = SqliteStore::open(&p.path).expect("open");
        store
            .append(3, 1, Record::bytes(Stream::Output, big.clone()))
            .expect("append");
        let got = store.read(3, 0, 1).expect("read");
        assert_eq!(got.len(), 1);
        assert!(
            got[0].1.payload.to_display_bytes() == big,
            "20 MB bytes differ"
        );
    }
    let store = SqliteStore::open(&p.path).expect("reopen");
    let got = store.read(3, 0, 1).expect("read");
    assert!(
        got[0].1.payload.to_display_bytes() == big,
        "20 MB bytes differ after reopen"
    );
}

#[test]
fn read_pages_in_order_across_disk_and_buffer() {
    let p = place();
    let store = open_held(&p);
    // Two jobs interleaved; job 1 gets the odd sequence numbers.
    for seq in 1..=400u64 {
        let job = if seq % 2 == 1 { 1 } else { 2 };
        store
            .append(job, seq, Record::output_text(format!("r{seq}")))
            .expect("append");
        if seq == 250 {
            store.flush().expect("flush half");
        }
    }
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.read(1, after, 7).expect("page");
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        for (seq, r) in &page {
            assert_eq!(json_of(r)["data"], format!("r{seq}"));
            seen.push(*seq);
        }
        after = page.last().map(|(s, _)| *s).expect("non-empty");
    }
    let want: Vec<u64> = (1..=400).filter(|s| s % 2 == 1).collect();
    assert_eq!(seen, want);
    assert!(store.read(1, 0, 0).expect("empty").is_empty());
    assert!(store.read(99, 0, 10).expect("none").is_empty());
}

#[test]
fn discard_removes_through_a_seq_on_disk_and_in_the_buffer() {
    let p = place();
    let store = open_held(&p);
    for seq in 1..=10 {
        store
            .append(4, seq, Record::output_text(seq.to_string()))
            .expect("append");
    }
    store.flush().expect("flush");
    for seq in 11..=20 {
        store
            .append(4, seq, Record::output_text(seq.to_string()))
            .expect("append");
    }
    store
        .append(5, 21, Record::output_text("other"))
        .expect("append");
    store.discard(4, 15).expect("discard");
    let left: Vec<u64> = store
        .read(4, 0, 100)
        .expect("read")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, (16..=20).collect::<Vec<_>>());
    store.flush().expect("flush");
    assert_eq!(store.read(4, 0, 100).expect("read").len(), 5);
    store.discard(4, 20).expect("discard all");
    assert!(!store.has_records(4).expect("has"));
    assert!(store.has_records(5).expect("other job keeps its record"));
}

#[test]
fn has_records_sees_buffered_flushed_and_discarded_records() {
    let p = place();
    let store = open_held(&p);
    assert!(!store.has_records(1).expect("empty"));
    store
        .append(1, 1, Record::output_text("a"))
        .expect("append");
    assert!(store.has_records(1).expect("buffered"));
    store.flush().expect("flush");
    assert!(store.has_records(1).expect("flushed"));
    store.discard(1, 1).expect("discard");
    assert!(!store.has_records(1).expect("discarded"));
    // Cached "no records" must not hide a later append, buffered or written.
    store
        .append(1, 2, Record::output_text("b"))
        .expect("append");
    assert!(store.has_records(1).expect("buffered again"));
    store.flush().expect("flush");
    assert!(store.has_records(1).expect("flushed again"));
    assert!(!store.has_records(2).expect("other job"));
}

#[test]
fn the_background_thread_writes_within_the_interval() {
    let p = place();
    let opts = StoreOptions {
        flush_interval: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = SqliteStore::open_with(&p.path, opts).expect("open");
    store
        .append(1, 1, Record::output_text("soon"))
        .expect("append");
    // Another connection sees only committed rows; poll (no timing assert:
    // the deadline is generous, it only bounds a broken flusher).
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n: i64 = conn
            .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
            .expect("count");
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "record never written");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn reopening_keeps_jobs_unreceived_records_and_max_seq() {
    let p = place();
    {
        let store = SqliteStore::open(&p.path).expect("open");
        store.save_job(&info(1, JobState::Running)).expect("save");
        store.save_job(&info(2, JobState::Running)).expect("save");
        for seq in 1..=6 {
            let job = if seq <= 3 { 1 } else { 2 };
            store
                .append(job, seq, Record::output_text(seq.to_string()))
                .expect("append");
        }
        store.discard(1, 2).expect("receive part");
        let mut done = info(1, JobState::Completed);
        done.exit_code = Some(0);
        done.end = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100));
        store.save_job(&done).expect("save finished");
        // Job 2 holds the highest sequence numbers; deleting it must not
        // lower max_seq, or a restored session would reuse them.
        store.delete_job(2).expect("delete");
    }
    let store = SqliteStore::open(&p.path).expect("reopen");
    let jobs = store.load_jobs().expect("load");
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].state, JobState::Completed);
    assert_eq!(jobs[0].exit_code, Some(0));
    assert_eq!(
        jobs[0].end,
        Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_100))
    );
    let left: Vec<u64> = store
        .read(1, 0, 10)
        .expect("read")
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(left, vec![3]);
    assert_eq!(store.max_seq().expect("max"), 6);
    assert!(!store.has_records(2).expect("deleted job"));
}

#[test]
fn save_job_writes_the_buffered_records_with_the_row() {
    let p = place();
    let store = open_held(&p);
    store
        .append(1, 1, Record::output_text("last words"))
        .expect("append");
    store.save_job(&info(1, JobState::Completed)).expect("save");
    // Read through another connection: both the row and the record are
    // committed, although the buffer's interval is an hour.
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let (jobs, recs): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM records)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("counts");
    assert_eq!((jobs, recs), (1, 1));
}

#[test]
fn delete_job_removes_its_row_and_records() {
    let p = place();
    let store = open_held(&p);
    store.save_job(&info(1, JobState::Completed)).expect("save");
    store.save_job(&info(2, JobState::Completed)).expect("save");
    for seq in 1..=10 {
        store
            .append(
                1 + seq % 2,
                seq,
                Record::bytes(Stream::Output, vec![1; 1000]),
            )
            .expect("append");
        if seq == 5 {
            store.flush().expect("flush");
        }
    }
    store.delete_job(1).expect("delete");
    assert!(!store.has_records(1).expect("has"));
    assert!(store.read(1, 0, 100).expect("read").is_empty());
    store.flush().expect("flush");
    assert!(store.read(1, 0, 100).expect("read").is_empty());
    assert_eq!(store.read(2, 0, 100).expect("read").len(), 5);
    assert_eq!(job_ids(&store), vec![2]);
}

#[test]
fn a_newer_schema_is_refused() {
    let p = place();
    drop(SqliteStore::open(&p.path).expect("create"));
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    conn.pragma_update(None, "user_version", super::SCHEMA_VERSION + 1)
        .expect("bump version");
    drop(conn);
    let err = SqliteStore::open(&p.path).expect_err("a newer store is refused");
    let msg = err.to_string();
    let newer = format!("schema version {}", super::SCHEMA_VERSION + 1);
    assert!(msg.contains(&newer), "{msg}");
    assert!(msg.contains("newer"), "{msg}");
}

#[test]
fn a_file_that_is_not_a_database_is_an_error() {
    let p = place();
    std::fs::write(&p.path, vec![b'x'; 4096]).expect("write junk");
    let err = SqliteStore::open(&p.path).expect_err("junk is refused");
    assert!(err.to_string().contains("cannot open the store"), "{err}");
}

#[test]
fn wal_mode_and_synchronous_normal_are_set() {
    let p = place();
    let _store = SqliteStore::open(&p.path).expect("open");
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("mode");
    assert_eq!(mode, "wal");
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("version");
    assert_eq!(version, super::SCHEMA_VERSION);
}

#[test]
fn a_hundred_thousand_small_appends() {
    let p = place();
    let store = SqliteStore::open(&p.path).expect("open");
    let n = 100_000u64;
    let start = Instant::now();
    for seq in 1..=n {
        store
            .append(1, seq, Record::output_text(format!("line {seq:>90}")))
            .expect("append");
    }
    let appended = start.elapsed();
    store.flush().expect("flush");
    let written = start.elapsed();
    eprintln!("100k appends: {appended:?} appending, {written:?} until written");
    let mut count = 0u64;
    let mut after = 0;
    loop {
        let page = store.read(1, after, 4096).expect("page");
        let Some((last, _)) = page.last() else { break };
        after = *last;
        count += page.len() as u64;
    }
    assert_eq!(count, n);
    assert_eq!(after, n);
}

#[test]
fn removing_a_large_job_gives_its_space_back() {
    let p = place();
    let store = SqliteStore::open(&p.path).expect("open");
    // Text: bulk bytes live in the job's data file, text in the database.
    for seq in 1..=3 {
        store
            .append(1, seq, Record::output_text("7".repeat(8 << 20)))
            .expect("append");
    }
    store
        .append(2, 4, Record::output_text("small"))
        .expect("append");
    store.flush().expect("flush");
    let conn = rusqlite::Connection::open(&p.path).expect("raw open");
    let pages = |c: &rusqlite::Connection| -> i64 {
        c.pragma_query_value(None, "page_count", |r| r.get(0))
            .expect("page_count")
    };
    let full = pages(&conn);
    assert!(full > 6000, "24 MiB take {full} pages");
    store.delete_job(1).expect("delete");
    let deadline = Instant::now() + Duration::from_secs(60);
    while pages(&conn) > full / 4 {
        assert!(Instant::now() < deadline, "space never given back");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.read(2, 0, 10).expect("read").len(), 1);
}

#[test]
fn take_moves_the_oldest_records_out_of_disk_and_buffer() {
    let p = place();
    let store = open_held(&p);
    for seq in 1..=10u64 {
        store
            .append(2 - seq % 2, seq, Record::output_text(seq.to_string()))
            .expect("append");
        if seq == 4 {
            store.flush().expect("flush");
        }
    }
    let seqs = |v: Vec<(u64, Record)>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    // Job 1 holds 1, 3 (written) and 5, 7, 9 (buffered).
    assert_eq!(seqs(store.take(1, 3).expect("take")), vec![1, 3, 5]);
    assert_eq!(seqs(store.read(1, 0, 10).expect("read")), vec![7, 9]);
    assert_eq!(seqs(store.take(1, 10).expect("take")), vec![7, 9]);
    assert!(!store.has_records(1).expect("has"));
    assert!(store.take(1, 10).expect("take").is_empty());
    assert!(store.take(2, 0).expect("take").is_empty());
    store.flush().expect("flush");
    assert!(store.read(1, 0, 10).expect("read").is_empty());
    assert_eq!(
        seqs(store.read(2, 0, 10).expect("read")),
        vec![2, 4, 6, 8, 10]
    );
}

#[test]
fn a_checkpoint_is_kept_with_its_records_and_goes_with_its_job() {
    let p = place();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        assert_eq!(store.checkpoint(1).expect("none yet"), None);
        let recs = vec![
            (1, Record::text(Stream::Output, "a")),
            (2, Record::text(Stream::Output, "b")),
        ];
        store
            .append_checkpointed(1, recs, b"2 0 0".to_vec())
            .expect("append");
        // Seen at once, before it is written.
        assert_eq!(
            store.checkpoint(1).expect("buffered"),
            Some(b"2 0 0".to_vec())
        );
    }
    let store = SqliteStore::open_with(&p.path, held()).expect("reopen");
    assert_eq!(
        store.checkpoint(1).expect("written"),
        Some(b"2 0 0".to_vec())
    );
    assert_eq!(store.read(1, 0, 10).expect("read").len(), 2);
    store
        .append_checkpointed(
            1,
            vec![(3, Record::text(Stream::Output, "c"))],
            b"3 0 0".to_vec(),
        )
        .expect("append");
    store.flush().expect("flush");
    assert_eq!(store.checkpoint(1).expect("newer"), Some(b"3 0 0".to_vec()));
    store.delete_job(1).expect("delete");
    assert_eq!(store.checkpoint(1).expect("gone"), None);
}
