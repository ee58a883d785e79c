//! Events in the store: written with their row, read back in order with the
//! buffered ones, pruned in batches, numbered on after a reopen.

use std::time::SystemTime;

use jobs_core::{JobEvent, JobState, RowChange, Store};

use super::tests::{held, info, place};
use super::SqliteStore;

fn event(seq: u64, id: u64, from: Option<JobState>, to: Option<JobState>) -> JobEvent {
    JobEvent {
        seq,
        time: SystemTime::now(),
        id,
        name: format!("Job{id}"),
        type_name: "TestJob".into(),
        from,
        to,
        reason: None,
        exit_code: None,
    }
}

fn seqs(events: &[JobEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// The events a fresh connection to the file sees: what a crash keeps.
fn on_disk(path: &std::path::Path) -> Vec<(u64, u64)> {
    let conn = rusqlite::Connection::open(path).expect("open");
    let mut stmt = conn
        .prepare("SELECT seq, job FROM events ORDER BY seq")
        .expect("prepare");
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .expect("query");
    rows.map(|r| {
        let (s, j) = r.expect("row");
        (s as u64, j as u64)
    })
    .collect()
}

#[test]
fn an_event_is_written_with_its_row_and_a_buffered_one_reads_back_at_once() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    let created = info(1, JobState::NotStarted);
    store
        .write_events(
            RowChange::Save(&created),
            &[event(1, 1, None, Some(JobState::NotStarted))],
        )
        .expect("save");
    assert_eq!(on_disk(&p.path), vec![(1, 1)]);
    let running = info(1, JobState::Running);
    store
        .write_events(
            RowChange::SaveSoon(&running),
            &[event(
                2,
                1,
                Some(JobState::NotStarted),
                Some(JobState::Running),
            )],
        )
        .expect("save soon");
    // Buffered with its row: not on disk yet, but a reader sees it.
    assert_eq!(on_disk(&p.path), vec![(1, 1)]);
    assert_eq!(seqs(&store.read_events(0, 10).expect("read")), vec![1, 2]);
    assert_eq!(seqs(&store.read_events(1, 10).expect("read")), vec![2]);
    // The next immediate write takes it along, in order.
    let done = info(1, JobState::Completed);
    store
        .write_events(
            RowChange::Save(&done),
            &[event(
                3,
                1,
                Some(JobState::Running),
                Some(JobState::Completed),
            )],
        )
        .expect("save");
    assert_eq!(on_disk(&p.path), vec![(1, 1), (2, 1), (3, 1)]);
    store
        .write_events(
            RowChange::Delete(1),
            &[event(4, 1, Some(JobState::Completed), None)],
        )
        .expect("delete");
    let all = store.read_events(0, 10).expect("read");
    assert_eq!(seqs(&all), vec![1, 2, 3, 4]);
    assert_eq!(all[3].to, None);
    assert_eq!(all[2].to, Some(JobState::Completed));
    assert!(store.load_jobs().expect("load").is_empty());
}

#[test]
fn numbering_goes_on_after_a_reopen_past_anything_handed_out() {
    let p = place();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        assert_eq!(store.max_event_seq().expect("max"), 0);
        let row = info(1, JobState::NotStarted);
        store
            .write_events(
                RowChange::Save(&row),
                &[event(1, 1, None, Some(JobState::NotStarted))],
            )
            .expect("save");
        // A buffered event a crash would lose: the numbers it took are
        // reserved on disk all the same.
        let running = info(1, JobState::Running);
        store
            .write_events(
                RowChange::SaveSoon(&running),
                &[event(
                    2,
                    1,
                    Some(JobState::NotStarted),
                    Some(JobState::Running),
                )],
            )
            .expect("soon");
        std::mem::forget(store);
    }
    let store = SqliteStore::open_with(&p.path, held()).expect("reopen");
    let next = store.max_event_seq().expect("max") + 1;
    assert!(next > 2, "a number handed out is never given again: {next}");
    assert_eq!(seqs(&store.read_events(0, 10).expect("read")), vec![1]);
    // Numbered on from there, and read after what was there.
    let row = info(2, JobState::NotStarted);
    store
        .write_events(
            RowChange::Save(&row),
            &[event(next, 2, None, Some(JobState::NotStarted))],
        )
        .expect("save");
    assert_eq!(seqs(&store.read_events(1, 10).expect("read")), vec![next]);
    drop(store);
    let store = SqliteStore::open_with(&p.path, held()).expect("reopen");
    assert!(store.max_event_seq().expect("max") >= next);
}

#[test]
fn the_oldest_events_are_pruned_in_batches_keeping_the_latest() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.keep_events(100);
    let mut seq = 0;
    for id in 1..=60u64 {
        let row = info(id, JobState::Completed);
        let evs = [
            event(seq + 1, id, None, Some(JobState::NotStarted)),
            event(
                seq + 2,
                id,
                Some(JobState::NotStarted),
                Some(JobState::Completed),
            ),
        ];
        seq += 2;
        store
            .write_events(RowChange::Save(&row), &evs)
            .expect("save");
        let kept = on_disk(&p.path);
        // Never fewer than the last 100 (or all there are), never more
        // than a batch over.
        assert!(kept.len() as u64 >= seq.min(100), "{} at {seq}", kept.len());
        assert!(kept.len() <= 100 + 10 + 2, "{} at {seq}", kept.len());
        assert_eq!(kept.last().map(|k| k.0), Some(seq));
    }
    // Pruned a batch at a time, not one by one.
    let kept = seqs(&store.read_events(0, 1000).expect("read"));
    assert!(kept.len() >= 100 && kept.len() < 112, "{}", kept.len());
    assert_eq!(kept.windows(2).filter(|w| w[1] != w[0] + 1).count(), 0);
    drop(store);
    let store = SqliteStore::open_with(&p.path, held()).expect("reopen");
    assert!(store.max_event_seq().expect("max") >= 120);
}

#[test]
fn a_store_of_the_previous_schema_gets_an_empty_events_table() {
    let p = place();
    {
        let conn = rusqlite::Connection::open(&p.path).expect("open");
        conn.execute_batch(
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY, parent INTEGER, name TEXT NOT NULL,
                 type TEXT NOT NULL, state TEXT NOT NULL, info TEXT NOT NULL);
             CREATE TABLE records (seq INTEGER PRIMARY KEY, job INTEGER NOT NULL,
                 stream TEXT NOT NULL, kind TEXT NOT NULL, data BLOB NOT NULL,
                 file_off INTEGER, file_len INTEGER);
             CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
             CREATE TABLE checkpoints (job INTEGER PRIMARY KEY, data BLOB NOT NULL);
             CREATE TABLE waiting (job INTEGER PRIMARY KEY, spec BLOB NOT NULL);
             PRAGMA user_version = 4;",
        )
        .expect("old schema");
    }
    let store = SqliteStore::open(&p.path).expect("upgrade");
    assert_eq!(store.max_event_seq().expect("max"), 0);
    assert!(store.read_events(0, 10).expect("read").is_empty());
    store.set_on_finish(3, b"echo done").expect("hook");
    assert_eq!(
        store.on_finish_hooks().expect("hooks"),
        vec![(3, b"echo done".to_vec())]
    );
    store.delete_job(3).expect("delete");
    assert!(store.on_finish_hooks().expect("hooks").is_empty());
}
