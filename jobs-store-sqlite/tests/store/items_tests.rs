//! Tests of batch items' finished rows that ride with the next batch
//! (`defer_finished_items`), written before they are reported
//! (`sync_finished_items`).

use jobs_core::{JobEvent, JobInfo, JobState, Record, RowChange, Store};

use super::tests::{committed, held, info, place};
use super::SqliteStore;

/// How many records of `job` are committed.
fn committed_records(path: &std::path::Path, job: u64) -> i64 {
    let conn = rusqlite::Connection::open(path).expect("raw open");
    conn.query_row(
        "SELECT count(*) FROM records WHERE job = ?1",
        [i64::try_from(job).expect("id")],
        |r| r.get(0),
    )
    .expect("count")
}

/// Job `id`, item `item` of batch 1, in `state`.
fn item(id: u64, state: JobState) -> JobInfo {
    let mut i = info(id, state);
    i.parent = Some(1);
    i.item = Some(format!("item {id}"));
    i
}

fn event(seq: u64, i: &JobInfo, from: JobState) -> JobEvent {
    JobEvent {
        seq,
        id: i.id,
        name: format!("Job{}", i.id),
        type_name: "TestJob".into(),
        from: Some(from),
        to: Some(i.state),
        reason: None,
        exit_code: None,
        time: std::time::SystemTime::now(),
    }
}

#[test]
fn without_deferral_an_items_finished_row_is_written_at_once() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.save_job(&item(2, JobState::Completed)).expect("save");
    assert_eq!(committed(&p.path), vec![(2, "Completed".to_string())]);
    // Nothing to sync: returns without writing.
    store.sync_finished_items().expect("sync");
}

#[test]
fn a_deferred_items_finished_row_and_its_records_are_written_by_the_sync() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.defer_finished_items();
    // The first event moves the reservation of event numbers, at once.
    let parent = info(1, JobState::Running);
    store
        .write_events(
            RowChange::SaveSoon(&parent),
            &[event(1, &parent, JobState::NotStarted)],
        )
        .expect("first event");
    store.flush().expect("flush");
    store
        .append(2, 1, Record::output_text("out"))
        .expect("append");
    let done = item(2, JobState::Completed);
    store
        .write_events(
            RowChange::Save(&done),
            &[event(2, &done, JobState::Running)],
        )
        .expect("save");
    store.save_job(&item(3, JobState::Failed)).expect("save");
    assert_eq!(
        committed(&p.path),
        vec![(1, "Running".to_string())],
        "written before its batch"
    );
    // Read back from the buffer meanwhile.
    assert_eq!(store.read_events(1, 10).expect("events").len(), 1);
    store.sync_finished_items().expect("sync");
    assert_eq!(
        committed(&p.path),
        vec![
            (1, "Running".to_string()),
            (2, "Completed".to_string()),
            (3, "Failed".to_string())
        ]
    );
    assert_eq!(committed_records(&p.path, 2), 1);
}

#[test]
fn only_finished_items_are_deferred() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.defer_finished_items();
    // A top-level job, an item that waited for another job, and a child
    // that is no batch item: written at once.
    store.save_job(&info(4, JobState::Completed)).expect("save");
    let mut waited = item(5, JobState::Completed);
    waited.after = vec![4];
    store.save_job(&waited).expect("save");
    let mut child = item(6, JobState::Stopped);
    child.item = None;
    store.save_job(&child).expect("save");
    assert_eq!(
        committed(&p.path),
        vec![
            (4, "Completed".to_string()),
            (5, "Completed".to_string()),
            (6, "Stopped".to_string())
        ]
    );
}

#[test]
fn the_parents_finished_row_takes_its_items_rows_with_it() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.defer_finished_items();
    store.save_job(&item(2, JobState::Completed)).expect("save");
    store.save_job(&item(3, JobState::Completed)).expect("save");
    assert!(committed(&p.path).is_empty());
    store.save_job(&info(1, JobState::Completed)).expect("save");
    assert_eq!(committed(&p.path).len(), 3);
}

#[test]
fn deferred_rows_reach_the_disk_with_the_flush_interval_unsynced() {
    let p = place();
    let store = SqliteStore::open(&p.path).expect("open");
    store.defer_finished_items();
    store.save_job(&item(2, JobState::Completed)).expect("save");
    let start = std::time::Instant::now();
    while committed(&p.path).is_empty() {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "the writer thread never wrote the row"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(committed(&p.path), vec![(2, "Completed".to_string())]);
}
