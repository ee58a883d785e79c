//! Tests of live job rows that ride with the next batch (`save_job_soon`).

use std::time::{Duration, Instant};

use jobs_core::{JobState, Record, Store};

use super::tests::{committed, held, info, job_ids, place};
use super::{SqliteStore, StoreOptions};

#[test]
fn a_live_row_waits_for_the_batch_and_the_newest_one_is_written() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store
        .save_job_soon(&info(1, JobState::NotStarted))
        .expect("soon");
    store
        .save_job_soon(&info(1, JobState::Running))
        .expect("soon");
    assert!(committed(&p.path).is_empty(), "written before its batch");
    store.flush().expect("flush");
    assert_eq!(committed(&p.path), vec![(1, "Running".to_string())]);
}

#[test]
fn a_finished_row_supersedes_the_buffered_live_one() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store
        .save_job_soon(&info(1, JobState::Running))
        .expect("soon");
    store
        .save_job_soon(&info(2, JobState::Running))
        .expect("soon");
    store
        .append(1, 1, Record::output_text("done"))
        .expect("append");
    store.save_job(&info(1, JobState::Completed)).expect("save");
    // One transaction: the record, the other job's live row, and job 1's
    // finished row over its live one.
    assert_eq!(
        committed(&p.path),
        vec![(1, "Completed".to_string()), (2, "Running".to_string())]
    );
    store.flush().expect("flush");
    assert_eq!(committed(&p.path)[0], (1, "Completed".to_string()));
}

#[test]
fn a_deleted_job_is_not_brought_back_by_its_buffered_row() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    store.save_job(&info(1, JobState::Completed)).expect("save");
    store
        .save_job_soon(&info(2, JobState::Running))
        .expect("soon");
    store.delete_job(2).expect("delete");
    store.flush().expect("flush");
    assert_eq!(committed(&p.path), vec![(1, "Completed".to_string())]);
    assert_eq!(job_ids(&store), vec![1]);
}

#[test]
fn buffered_rows_are_written_when_the_store_closes_and_by_the_background_thread() {
    let p = place();
    {
        let store = SqliteStore::open_with(&p.path, held()).expect("open");
        store
            .save_job_soon(&info(1, JobState::Running))
            .expect("soon");
    }
    assert_eq!(committed(&p.path), vec![(1, "Running".to_string())]);
    let opts = StoreOptions {
        flush_interval: Duration::from_millis(20),
        ..StoreOptions::default()
    };
    let store = SqliteStore::open_with(&p.path, opts).expect("reopen");
    store
        .save_job_soon(&info(2, JobState::Running))
        .expect("soon");
    // No timing assertion: the deadline only bounds a broken writer.
    let deadline = Instant::now() + Duration::from_secs(30);
    while committed(&p.path).len() < 2 {
        assert!(Instant::now() < deadline, "the live row was never written");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs until stopped.
struct Waiter;

#[jobs_core::async_trait]
impl jobs_core::JobExecutor for Waiter {
    fn type_name(&self) -> &str {
        "Waiter"
    }

    async fn run(
        &self,
        _spec: jobs_core::JobSpec,
        ctx: jobs_core::JobContext,
    ) -> Result<(), jobs_core::JobFailure> {
        ctx.stopped().await;
        Ok(())
    }
}

#[test]
fn a_started_job_is_on_disk_before_start_returns_and_its_running_state_follows() {
    let p = place();
    let store = SqliteStore::open_with(&p.path, held()).expect("open");
    let session = jobs_core::Session::builder()
        .store(std::sync::Arc::new(store))
        .build()
        .expect("session");
    session.register(std::sync::Arc::new(Waiter));
    let spec = jobs_core::JobSpec::new("Waiter", "wait");
    let id = session.start(spec).expect("start");
    // The id is the caller's: a crash from here on must leave the job in
    // the table (the restart then reports it ended with its host).
    let rows = committed(&p.path);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, i64::try_from(id).expect("small id"));
    let info = session.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert_eq!(committed(&p.path)[0].1, "Stopped");
}
