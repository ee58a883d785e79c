//! A durable [`Store`] for jobs-core sessions: the job table and the records
//! in SQLite, bulk output in append-only files beside it. The jobctl session
//! daemon keeps its session here, so that jobs and their unreceived output
//! outlive the daemon, a restart and a SIGKILL. It depends on jobs-core (the
//! `Store` trait and the model's types) and on rusqlite with a bundled
//! SQLite, nothing else.
//!
//! # Example
//! ```
//! use jobs_core::{Record, Store, Stream};
//! use jobs_store_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir()?;
//! let store = SqliteStore::open(&dir.path().join("jobs.db"))?;
//! store.append(1, 1, Record::text(Stream::Output, "hello"))?;
//! store.flush()?;
//! let page = store.read(1, 0, 10)?;
//! assert_eq!(page.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One database file per session home, in WAL mode with `synchronous=NORMAL`:
//! a commit appends to the write-ahead log without waiting for the disk, so a
//! crash of the daemon loses nothing that was committed, and only a power
//! failure can lose the last commits. Everything is written per job and per
//! batch; nothing ever rewrites the whole state, so the cost of a change stays
//! flat however many jobs the table holds.
//!
//! Schema (version [`SCHEMA_VERSION`], kept in `PRAGMA user_version`; a store
//! written by a newer jobctl is refused, never guessed at):
//! - `jobs`: one row per job, the [`JobInfo`] as JSON in `info`, with `parent`,
//!   `name`, `type` and `state` beside it for inspection with `sqlite3`.
//! - `records`: one row per record: `seq` (the row id: sequence numbers are
//!   session-wide), `job`, `stream`, `kind`, `data`, `file_off` and
//!   `file_len`. Bytes are stored raw as a BLOB, text as TEXT, values,
//!   progress and error records as JSON; a live value is stored as its
//!   rendering. Bytes records of 4 KiB or more keep their payload in the
//!   job's data file instead (see below), the row says where. Indexed on
//!   `(job, seq)`, so reading pages through one job's records and never
//!   loads them all.
//! - `meta`: the highest sequence number ever stored, which outlives the
//!   deletion of the records that carried it.
//! - `checkpoints`: per job, what a resumable executor needs to go on.
//! - `events`: the session's state changes, numbered, each written with
//!   the job row it describes; the last 100,000 at least are kept (see the
//!   `events` module for what a crash keeps).
//! - `on_finish`: per job, the shell line the daemon runs when it finishes.
//! - `specs`: per job, what it was started from. `waiting`: for a job that
//!   waits for others, the spec it will run (jobs-core's bytes), written in
//!   the same transaction as the job's first row and cleared at once when
//!   the job starts, so a restore starts a waiting job, and never one that
//!   had started already (a finished row clears it too). `request`: the
//!   start request as its caller made it (the daemon's bytes: work, options,
//!   directory, environment, items), which `restart` replays; written with
//!   the batch after the job's first row (see [`SqliteStore::save_request`])
//!   and kept until the job is deleted.
//!
//! Bulk output goes beside the database, in `<database>-records/<job>.bin`,
//! one append-only file per job: a plain file write instead of a trip
//! through the B-tree and the write-ahead log. A batch writes those bytes
//! before it commits the rows that point at them, so a row never points at
//! bytes that were not written; a crash in between leaves unreferenced bytes
//! at the end of the file, which are never read.
//!
//! # Durability
//! Appends are hot (a process writes 64 KiB chunks, a script may emit a
//! hundred thousand small records), so appended records wait in memory and a
//! background thread writes them in one transaction once the flush interval
//! (25 ms by default) has passed since the oldest of them, or sooner when
//! enough have gathered. Reads, `has_records`, `discard` and `delete_job` see
//! buffered records as if they were written. The contract: **records are on
//! disk within the flush interval; a SIGKILL of the daemon loses at most that
//! window. A job's first row and its finished row are written at once**,
//! together with every record appended before them, so a finished job's row
//! on disk implies that all its records are there too. The rows between
//! (Running, a new location) ride with the next batch (`save_job_soon`): a
//! crash loses at most that the job was running, which the restart reports
//! anyway (the job ended with its session host).
//! With [`SqliteStore::defer_finished_items`] (the daemon's choice), a batch
//! item's finished row rides with the next batch too; its caller writes it
//! before reporting it (see the `items` module).
//! Dropping the store (or [`SqliteStore::flush`]) writes what is buffered.
//! Data files, like the log, are not synced at each commit: a power failure
//! can lose the last records' bytes, which then read as an error.
//!
//! # A receiver that keeps up
//! While a receiver consumes a job's records (`discard` after each page it
//! wrote out), buffered records are not written by size: they wait for the
//! receiver, which usually consumes them from memory before the flush
//! interval passes, so they never touch the disk. A full buffer then makes
//! the producer's `append` wait for the receiver to make room, as a pipe
//! would, but never longer than the flush interval; after that, and for
//! records the receiver does not take in time, the contract above holds
//! unchanged. Memory stays bounded by the buffer either way.
//!
//! One `SqliteStore` per database file: it caches what it wrote (which jobs
//! hold records) and assumes no other process writes records meanwhile.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use events::{EventRow, Kept};
use jobs_core::{JobEvent, JobId, JobInfo, Record, RowChange, Store, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use files::DataFiles;
use pending::Pending;
pub use pending::StoreOptions;
use row::{from_sql_int, sql_int, write_rows, Data, JobRow, Row};
pub use schema::SCHEMA_VERSION;
use schema::{connect, init, InitError};
use sql::Sql;

/// Free pages past which removing a job gives space back to the file system.
const VACUUM_PAGES: i64 = 4096;

/// Pages given back per step, so that the database lock is held briefly.
const VACUUM_STEP: i64 = 2048;

/// Bytes written to the write-ahead log after which the flusher copies it
/// into the database file (a passive checkpoint, on its own connection, so
/// that neither appends nor job rows wait for it).
const CHECKPOINT_BYTES: usize = 16 << 20;

/// How many of the latest events the store keeps at least.
pub const KEEP_EVENTS: usize = 100_000;

/// A [`Store`] in an SQLite database file.
pub struct SqliteStore {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

struct Shared {
    /// Lock order: `db` before `pending`, never the other way round. Rows
    /// move from `pending` to the database only under `db`, so whoever holds
    /// `db` sees every record exactly once, in one place or the other.
    db: Mutex<Db>,
    pending: Mutex<Pending>,
    /// Wakes the flusher: first record buffered, batch due, or closing.
    wake: Condvar,
    /// Wakes appends waiting for room: buffered rows were consumed or taken
    /// for writing.
    room: Condvar,
    max_seq: AtomicU64,
    /// About how much was written since the last checkpoint.
    wal_bytes: AtomicUsize,
    /// How many of the latest events are kept at least.
    keep_events: AtomicUsize,
    opts: StoreOptions,
    /// Finished batch items' rows that ride with the next batch.
    items: items::Items,
}

struct Db {
    conn: Connection,
    files: DataFiles,
    /// What `has_records` found in the table, per job, until a change.
    has: HashMap<JobId, bool>,
    /// The jobs the last `load_jobs` could not read, and why.
    unreadable: Vec<(JobId, String)>,
    /// What the `events` table holds.
    events: Kept,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("max_seq", &self.shared.max_seq.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Runs `wait`, which blocks: on a worker of a multi-thread tokio
/// runtime, the worker's other tasks move to another thread meanwhile
/// (a current-thread runtime cannot lend its thread: there it just blocks).
fn off_the_worker<T>(wait: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(wait)
        }
        _ => wait(),
    }
}

impl SqliteStore {
    /// Keeps the request job `job` was started with (bytes its caller made:
    /// `restart` replays them) until the job is deleted. It rides with the
    /// next batch, as records do: on disk within the flush interval, so a
    /// SIGKILL in that window leaves a job without a request, which then
    /// cannot be restarted (and says so).
    pub fn save_request(&self, job: JobId, request: &[u8]) -> Result<(), StoreError> {
        sql_int(job)?;
        if self.shared.pending().push_request(job, request.to_vec()) {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// The request job `job` was started with, if the store keeps one
    /// (see [`save_request`](Self::save_request)).
    pub fn request(&self, job: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(data) = self.shared.pending().requests.get(&job) {
            return Ok(Some(data.clone()));
        }
        let key = sql_int(job)?;
        let db = self.shared.db();
        db.conn
            .prepare_cached("SELECT request FROM specs WHERE job = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map(Option::flatten)
            .map_err(|e| StoreError::new(format!("cannot read job {job}'s start request"), Sql(e)))
    }

    /// Opens (creating if need be) the store at `path` with default options.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, StoreOptions::default())
    }

    /// Opens the store at `path`, writing buffered records as `opts` say.
    pub fn open_with(path: &Path, opts: StoreOptions) -> Result<SqliteStore, StoreError> {
        let shown = path.display();
        let conn = schema::open(path)
            .map_err(|e| StoreError::new(format!("cannot open the store {shown}"), Sql(e)))?;
        let max_seq = init(&conn).map_err(|e| match e {
            InitError::Sql(e) => StoreError::new(format!("cannot open the store {shown}"), Sql(e)),
            InitError::Newer(v) => StoreError::msg(format!(
                "the store {shown} has schema version {v}, newer than this jobctl \
                 understands ({SCHEMA_VERSION}); use a newer jobctl or another JOBCTL_HOME"
            )),
            InitError::NotWal(mode) => StoreError::msg(format!(
                "the store {shown} cannot use a write-ahead log (journal mode stays \
                 '{mode}'); put JOBCTL_HOME on a local file system"
            )),
        })?;
        let kept = Kept::load(&conn)
            .map_err(|e| StoreError::new(format!("cannot open the store {shown}"), Sql(e)))?;
        let shared = Arc::new(Shared {
            db: Mutex::new(Db {
                conn,
                files: DataFiles::new(files::dir_of(path)),
                has: HashMap::new(),
                unreadable: Vec::new(),
                events: kept,
            }),
            pending: Mutex::new(Pending::default()),
            wake: Condvar::new(),
            room: Condvar::new(),
            max_seq: AtomicU64::new(max_seq),
            wal_bytes: AtomicUsize::new(0),
            keep_events: AtomicUsize::new(KEEP_EVENTS),
            opts,
            items: items::Items::default(),
        });
        let checkpointer = connect(path)
            .map_err(|e| StoreError::new(format!("cannot open the store {shown}"), Sql(e)))?;
        let bg = Arc::clone(&shared);
        let flusher = std::thread::Builder::new()
            .name("jobs-store-flush".into())
            .spawn(move || bg.run_flusher(checkpointer))
            .map_err(|e| StoreError::new("cannot start the store's writer thread", e))?;
        Ok(SqliteStore {
            shared,
            flusher: Some(flusher),
        })
    }

    /// The jobs whose rows the last [`Store::load_jobs`] could not read,
    /// with why. Each was loaded as a Failed job with the reason
    /// [`UNREADABLE_REASON`] (its id, name, type and parent kept where the
    /// row still has them), so one damaged row never stops a session from
    /// restoring the others.
    pub fn unreadable_jobs(&self) -> Vec<(JobId, String)> {
        self.shared.db().unreadable.clone()
    }

    /// Buffers a job's rows, and with them its checkpoint: under one hold
    /// of the buffer's lock, so a batch takes all of them or none.
    fn push_rows(
        &self,
        job: JobId,
        rows: Vec<Row>,
        checkpoint: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let opts = &self.shared.opts;
        let full = {
            let mut p = self.shared.pending();
            // A receiver takes this job's records from the buffer as they
            // come: wait for it to make room (the producer slows to its
            // pace, as with a pipe) rather than write what it is about to
            // take. Never past the flush interval, then write as usual.
            let until = Instant::now() + opts.flush_interval;
            if opts.full_for_receiver(&p) && p.draining(job, opts.flush_interval) {
                // The receiver may run on this very thread, as a task of
                // the same runtime: let it run elsewhere meanwhile.
                p = off_the_worker(|| {
                    while opts.full_for_receiver(&p) && p.draining(job, opts.flush_interval) {
                        let left = until.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        p = self
                            .shared
                            .room
                            .wait_timeout(p, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                    p
                });
            }
            opts.full(&p)
        };
        if full {
            self.shared.write(&mut self.shared.db(), |_| Ok(()))?;
        }
        let max = rows.iter().map(|r| r.seq).max();
        let wake = {
            let mut p = self.shared.pending();
            let was_due = opts.due(&p);
            let was_empty = p.rows.is_empty();
            for row in rows {
                p.push(row);
            }
            if let Some(data) = checkpoint {
                p.push_checkpoint(job, data);
            }
            was_empty || (!was_due && opts.due(&p))
        };
        if let Some(max) = max {
            self.shared.max_seq.fetch_max(max, Ordering::SeqCst);
        }
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Writes every buffered record now.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.shared.write(&mut self.shared.db(), |_| Ok(()))
    }

    /// Buffers `info`'s row for the writer's next batch, counting it as a
    /// finished item's row (see the `items` module) if `finished`.
    fn buffer_row(&self, info: &JobInfo, finished: bool) -> Result<(), StoreError> {
        let row = JobRow::encode(info)?;
        let mut p = self.shared.pending();
        let wake = p.push_job(row);
        if finished {
            self.shared.items.buffered();
        }
        drop(p);
        if wake {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Lets the finished rows of batch items ride with the next batch
    /// instead of a transaction each (see the `items` module): whoever
    /// reports such an item finished calls
    /// [`sync_finished_items`](Self::sync_finished_items) first. Off by
    /// default: every finished row is then written at once.
    pub fn defer_finished_items(&self) {
        self.shared.items.enable();
    }

    /// Writes the buffered finished rows of batch items, with everything
    /// buffered before them, if any is not on disk yet; otherwise returns
    /// at once without taking a lock. Call before telling anyone that a
    /// batch item finished (see
    /// [`defer_finished_items`](Self::defer_finished_items)).
    pub fn sync_finished_items(&self) -> Result<(), StoreError> {
        if !self.shared.items.unsynced() {
            return Ok(());
        }
        let mut db = self.shared.db();
        if !self.shared.items.unsynced() {
            return Ok(());
        }
        self.shared.write(&mut db, |_| Ok(()))
    }

    /// Keeps at least the last `n` events (default [`KEEP_EVENTS`]); once
    /// a tenth more are stored, the oldest go.
    pub fn keep_events(&self, n: usize) {
        self.shared.keep_events.store(n.max(1), Ordering::Relaxed);
    }

    /// Keeps a job's finish hook (the shell line of the daemon's `start
    /// --on-finish`), written at once; it goes with the job's deletion.
    pub fn set_on_finish(&self, job: JobId, line: &[u8]) -> Result<(), StoreError> {
        self.shared.write(&mut self.shared.db(), |tx| {
            events::set_on_finish(tx, job, line)
        })
    }

    /// Every job's finish hook, by job.
    pub fn on_finish_hooks(&self) -> Result<Vec<(JobId, Vec<u8>)>, StoreError> {
        events::on_finish_all(&self.shared.db().conn)
    }

    /// Makes a change of the job table with its events (see
    /// [`Store::write_events`]): at once, in one transaction with whatever
    /// is buffered, or buffered together for a row that may wait. A
    /// buffered change whose events pass the numbers reserved on disk is
    /// written at once instead (see the `events` module).
    fn change_with_events(
        &self,
        change: RowChange<'_>,
        evs: Vec<EventRow>,
    ) -> Result<(), StoreError> {
        let mut db = self.shared.db();
        let past_reserve = evs.iter().any(|e| e.seq > db.events.reserved);
        let soon = match change {
            RowChange::SaveSoon(info) => Some((info, false)),
            RowChange::Save(info) if self.shared.items.defers(info) => Some((info, true)),
            _ => None,
        };
        if let Some((info, finished)) = soon {
            let row = JobRow::encode(info)?;
            let mut p = self.shared.pending();
            let wake = p.push_job(row);
            if finished {
                self.shared.items.buffered();
            }
            p.push_events(evs);
            drop(p);
            if past_reserve {
                return self.shared.write(&mut db, |_| Ok(()));
            }
            if wake {
                self.shared.wake.notify_one();
            }
            return Ok(());
        }
        let ours: Vec<u64> = evs.iter().map(|e| e.seq).collect();
        self.shared.pending().push_events(evs);
        let written = match change {
            RowChange::Save(info) => {
                let row = JobRow::encode(info)?;
                let done = info.state.is_finished() && info.has_dependencies();
                // Records appended before the row go in the same transaction:
                // a finished row on disk means all the job's records are there too.
                self.shared.write(&mut db, |tx| {
                    row.write(tx)?;
                    if done {
                        forget_waiting(tx, row.id_key)?;
                    }
                    Ok(())
                })
            }
            RowChange::SaveWaiting(info, spec) => {
                let row = JobRow::encode(info)?;
                self.shared.write(&mut db, |tx| {
                    row.write(tx)?;
                    tx.prepare_cached(
                        "INSERT INTO specs (job, waiting) VALUES (?1, ?2)
                         ON CONFLICT (job) DO UPDATE SET waiting = excluded.waiting",
                    )?
                    .execute(params![row.id_key, spec])?;
                    Ok(())
                })
            }
            RowChange::Delete(id) => self.delete_locked(&mut db, id),
            _ => Err(StoreError::msg("a change this store does not know")),
        };
        if written.is_err() {
            // Not written with their row: not written at all.
            self.shared
                .pending()
                .events
                .retain(|e| !ours.contains(&e.seq));
        }
        written
    }

    /// Deletes a job's row, records, checkpoint, specs and finish
    /// hook, with whatever is buffered of other jobs, in one transaction.
    fn delete_locked(&self, db: &mut Db, id: JobId) -> Result<(), StoreError> {
        let key = sql_int(id)?;
        let fail = |e| StoreError::new(format!("cannot delete job {id} from the store"), Sql(e));
        {
            // Its buffered rows would only be written to be deleted.
            let mut p = self.shared.pending();
            p.jobs.remove(&id);
            p.checkpoints.remove(&id);
            p.requests.remove(&id);
            p.retain(|r| r.job != id);
        }
        self.shared.write(db, |tx| {
            tx.execute("DELETE FROM records WHERE job = ?1", [key])?;
            tx.execute("DELETE FROM jobs WHERE id = ?1", [key])?;
            tx.execute("DELETE FROM checkpoints WHERE job = ?1", [key])?;
            tx.execute("DELETE FROM on_finish WHERE job = ?1", [key])?;
            tx.execute("DELETE FROM specs WHERE job = ?1", [key])?;
            Ok(())
        })?;
        db.has.remove(&id);
        {
            // Appended while the transaction ran: gone with the job too.
            let mut p = self.shared.pending();
            p.jobs.remove(&id);
            p.checkpoints.remove(&id);
            p.requests.remove(&id);
            p.retain(|r| r.job != id);
        }
        db.files.remove(id)?;
        // Give a large output's space back once its job is gone, in the
        // background: the caller may hold the session's table.
        let free: i64 = db
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))
            .map_err(fail)?;
        if free > VACUUM_PAGES {
            self.shared.pending().vacuum = true;
            self.shared.wake.notify_one();
        }
        Ok(())
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.shared.pending().closing = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.flusher.take() {
            // The flusher writes what is left before it ends; a panic there
            // has nothing left to report to.
            let _ = t.join();
        }
    }
}

impl Shared {
    fn db(&self) -> MutexGuard<'_, Db> {
        // Every change to the database is a transaction and the cache is
        // cleared before it could be wrong, so a poisoned lock is still sound.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // Each operation on the buffer leaves it consistent before it could panic.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the buffered rows and whatever `extra` writes in one
    /// transaction. On failure the rows go back into the buffer.
    fn write(
        &self,
        db: &mut Db,
        extra: impl FnOnce(&Transaction) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let (rows, jobs, checkpoints, events, requests, taken) = {
            let mut p = self.pending();
            let taken = self.items.taking();
            let events = std::mem::take(&mut p.events);
            let requests = std::mem::take(&mut p.requests);
            (
                p.take(),
                p.take_jobs(),
                std::mem::take(&mut p.checkpoints),
                events,
                requests,
                taken,
            )
        };
        let keep = self.keep_events.load(Ordering::Relaxed);
        let mut kept_next = None;
        self.room.notify_all();
        // The bytes first, then the rows that point at them; the buffered
        // job rows before `extra`, which may write a newer one.
        let Db {
            conn,
            files,
            events: kept,
            ..
        } = db;
        let placed = files.place(&rows).and_then(|spans| {
            write_rows(conn, &rows, &spans, |tx| {
                for job in jobs.values() {
                    job.write(tx)?;
                }
                upsert_blobs(
                    tx,
                    "INSERT INTO checkpoints (job, data) VALUES (?1, ?2)
                     ON CONFLICT (job) DO UPDATE SET data = excluded.data",
                    &checkpoints,
                )?;
                upsert_blobs(
                    tx,
                    "INSERT INTO specs (job, request) VALUES (?1, ?2)
                     ON CONFLICT (job) DO UPDATE SET request = excluded.request",
                    &requests,
                )?;
                kept_next = events::insert(tx, &events, kept, keep)?;
                extra(tx)
            })
        });
        match placed {
            Ok(()) => {
                self.items.committed(taken);
                db.events.after(kept_next);
                for r in &rows {
                    db.has.insert(r.job, true);
                }
                // Rows plus the pages of the job row and the index.
                let logged = rows.iter().filter(|r| !files::goes_to_file(r));
                let bytes = logged.map(Row::size).sum::<usize>() + rows.len() * 48 + 8192;
                for r in rows {
                    if let Data::Blob(b) = r.data {
                        pool::give(b);
                    }
                }
                let before = self.wal_bytes.fetch_add(bytes, Ordering::Relaxed);
                if before < CHECKPOINT_BYTES && before + bytes >= CHECKPOINT_BYTES {
                    self.pending().checkpoint = true;
                    self.wake.notify_one();
                }
                Ok(())
            }
            Err(e) => {
                let mut p = self.pending();
                if !rows.is_empty() {
                    p.restore(rows);
                }
                p.restore_jobs(jobs);
                p.restore_checkpoints(checkpoints);
                p.restore_events(events);
                p.restore_requests(requests);
                Err(e)
            }
        }
    }

    fn run_flusher(&self, checkpointer: Connection) {
        loop {
            let wanted = {
                let mut p = self.pending();
                loop {
                    if p.closing || p.vacuum || p.checkpoint {
                        break;
                    }
                    match p.since {
                        None => p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner()),
                        Some(t) => {
                            let age = t.elapsed();
                            if age >= self.opts.flush_interval || self.opts.due(&p) {
                                break;
                            }
                            let left = self.opts.flush_interval - age;
                            p = self
                                .wake
                                .wait_timeout(p, left)
                                .unwrap_or_else(|e| e.into_inner())
                                .0;
                        }
                    }
                }
                let checkpoint = std::mem::take(&mut p.checkpoint);
                (p.closing, p.vacuum, checkpoint)
            };
            let (closing, vacuum, checkpoint) = wanted;
            // A failed write keeps its rows buffered and is retried after
            // another interval; `append` reports it once the buffer is full.
            if !self.pending().is_empty() {
                let _ = self.write(&mut self.db(), |_| Ok(()));
            }
            if closing {
                return;
            }
            if vacuum {
                let more = self.vacuum_step().unwrap_or(false);
                self.pending().vacuum = more;
            }
            if checkpoint {
                self.wal_bytes.store(0, Ordering::Relaxed);
                // Passive: copies what no reader needs and never waits. A
                // failure leaves the log longer until the next one.
                let _ = checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            }
        }
    }

    /// Gives up to [`VACUUM_STEP`] free pages back; whether any are left.
    fn vacuum_step(&self) -> rusqlite::Result<bool> {
        let db = self.db();
        db.conn
            .execute_batch(&format!("PRAGMA incremental_vacuum({VACUUM_STEP})"))?;
        let free: i64 = db
            .conn
            .pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        Ok(free > 0)
    }
}

impl Store for SqliteStore {
    fn save_job(&self, info: &JobInfo) -> Result<(), StoreError> {
        if self.shared.items.defers(info) {
            return self.buffer_row(info, true);
        }
        let row = JobRow::encode(info)?;
        let done = info.state.is_finished() && info.has_dependencies();
        // Records appended before the row go in the same transaction: a
        // finished row on disk means all the job's records are there too.
        self.shared.write(&mut self.shared.db(), |tx| {
            row.write(tx)?;
            if done {
                forget_waiting(tx, row.id_key)?;
            }
            Ok(())
        })
    }

    fn save_jobs(&self, infos: &[JobInfo]) -> Result<(), StoreError> {
        let rows = infos
            .iter()
            .map(JobRow::encode)
            .collect::<Result<Vec<_>, _>>()?;
        self.shared.write(&mut self.shared.db(), |tx| {
            for row in &rows {
                row.write(tx)?;
            }
            Ok(())
        })
    }

    fn save_waiting_job(&self, info: &JobInfo, spec: &[u8]) -> Result<(), StoreError> {
        let row = JobRow::encode(info)?;
        self.shared.write(&mut self.shared.db(), |tx| {
            row.write(tx)?;
            tx.prepare_cached(
                "INSERT INTO specs (job, waiting) VALUES (?1, ?2)
                 ON CONFLICT (job) DO UPDATE SET waiting = excluded.waiting",
            )?
            .execute(params![row.id_key, spec])?;
            Ok(())
        })
    }

    fn keeps_waiting_specs(&self) -> bool {
        true
    }

    fn waiting_spec(&self, job: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        let key = sql_int(job)?;
        let db = self.shared.db();
        db.conn
            .prepare_cached("SELECT waiting FROM specs WHERE job = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map(Option::flatten)
            .map_err(|e| StoreError::new(format!("cannot read job {job}'s waiting spec"), Sql(e)))
    }

    fn forget_waiting_spec(&self, job: JobId) -> Result<(), StoreError> {
        let key = sql_int(job)?;
        // At once, with whatever is buffered: the job's work starts next.
        self.shared
            .write(&mut self.shared.db(), |tx| forget_waiting(tx, key))
    }

    fn save_job_soon(&self, info: &JobInfo) -> Result<(), StoreError> {
        // A live job's row rides with the next batch (at most the flush
        // interval away): starting a job costs no transaction of its own.
        self.buffer_row(info, false)
    }

    fn delete_job(&self, id: JobId) -> Result<(), StoreError> {
        self.write_events(RowChange::Delete(id), &[])
    }

    fn load_jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        let fail = |e| StoreError::new("cannot read the job table", Sql(e));
        if !self.shared.pending().jobs.is_empty() {
            self.flush()?;
        }
        let mut db = self.shared.db();
        let mut jobs = Vec::new();
        let mut aside = Vec::new();
        {
            let mut stmt = db
                .conn
                .prepare_cached("SELECT id, parent, name, type, info FROM jobs ORDER BY id")
                .map_err(fail)?;
            let mut rows = stmt.query([]).map_err(fail)?;
            while let Some(r) = rows.next().map_err(fail)? {
                let id: i64 = r.get(0).map_err(fail)?;
                let id = from_sql_int(id)?;
                match JobRow::info_from_sql(r) {
                    Ok(info) => jobs.push(info),
                    Err(why) => {
                        aside.push((id, why.clone()));
                        jobs.push(JobRow::set_aside(id, r));
                    }
                }
            }
        }
        // A job set aside keeps its children: the rows that name it.
        for &(id, _) in &aside {
            let children: Vec<JobId> = jobs
                .iter()
                .filter(|j| j.parent == Some(id))
                .map(|j| j.id)
                .collect();
            if let Some(j) = jobs.iter_mut().find(|j| j.id == id) {
                j.children = children;
            }
        }
        db.unreadable = aside;
        Ok(jobs)
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        Ok(self.shared.max_seq.load(Ordering::SeqCst))
    }

    fn write_events(&self, change: RowChange<'_>, events: &[JobEvent]) -> Result<(), StoreError> {
        let rows = events
            .iter()
            .map(EventRow::encode)
            .collect::<Result<Vec<_>, _>>()?;
        self.change_with_events(change, rows)
    }

    fn max_event_seq(&self) -> Result<u64, StoreError> {
        let db = self.shared.db();
        let stored = events::max_seq(&db.conn, &db.events)?;
        let buffered = self.shared.pending().events.iter().map(|e| e.seq).max();
        Ok(stored.max(buffered.unwrap_or(0)))
    }

    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<JobEvent>, StoreError> {
        let db = self.shared.db();
        let buffered = self.shared.pending().events.clone();
        events::read(&db.conn, &buffered, after, limit)
    }

    fn append(&self, job: JobId, seq: u64, record: Record) -> Result<(), StoreError> {
        let row = Row::encode(job, seq, record)?;
        self.push_rows(job, vec![row], None)
    }

    fn append_checkpointed(
        &self,
        job: JobId,
        records: Vec<(u64, Record)>,
        checkpoint: Vec<u8>,
    ) -> Result<(), StoreError> {
        let rows = records
            .into_iter()
            .map(|(seq, record)| Row::encode(job, seq, record))
            .collect::<Result<Vec<_>, _>>()?;
        self.push_rows(job, rows, Some(checkpoint))
    }

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(&self, job: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(data) = self.shared.pending().checkpoints.get(&job) {
            return Ok(Some(data.clone()));
        }
        let key = sql_int(job)?;
        let db = self.shared.db();
        db.conn
            .prepare_cached("SELECT data FROM checkpoints WHERE job = ?1")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
            .map_err(|e| StoreError::new(format!("cannot read job {job}'s checkpoint"), Sql(e)))
    }

    fn read(&self, job: JobId, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        self.read_bounded(job, after, limit, usize::MAX)
    }

    fn read_bounded(
        &self,
        job: JobId,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut rows;
        {
            let mut db = self.shared.db();
            let mut budget = Budget::new(limit, max_bytes);
            rows = written(&mut db, job, after, &mut budget)?;
            if !budget.spent() {
                // Buffered rows of a job all come after its written ones.
                let last = rows.last().map_or(after, |r| r.seq);
                let p = self.shared.pending();
                if p.holds(job) {
                    let more = p.rows.iter().filter(|r| r.job == job && r.seq > last);
                    for r in more {
                        if budget.spent() {
                            break;
                        }
                        budget.add(r.size());
                        rows.push(r.copy());
                    }
                }
            }
        }
        Ok(rows.into_iter().map(|r| (r.seq, r.decode())).collect())
    }

    fn take(&self, job: JobId, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut rows;
        {
            let mut db = self.shared.db();
            rows = written(&mut db, job, 0, &mut Budget::new(limit, usize::MAX))?;
            if let Some(last) = rows.last().map(|r| r.seq) {
                delete_through(&mut db, job, last)?;
            }
            if rows.len() < limit {
                // Records taken before they were written never touch the disk.
                let mut p = self.shared.pending();
                if p.holds(job) {
                    rows.extend(p.take_job(job, limit - rows.len()));
                }
            }
        }
        Ok(rows.into_iter().map(|r| (r.seq, r.decode())).collect())
    }

    fn discard(&self, job: JobId, through: u64) -> Result<(), StoreError> {
        let mut db = self.shared.db();
        delete_through(&mut db, job, through)?;
        let mut p = self.shared.pending();
        // A receiver is taking the job's records: its buffered records
        // wait for it rather than for the disk (see `append`).
        p.drain(job);
        if p.retain(|r| r.job != job || r.seq > through) > 0 {
            drop(p);
            self.shared.room.notify_all();
        }
        Ok(())
    }

    fn has_records(&self, job: JobId) -> Result<bool, StoreError> {
        if self.shared.pending().holds(job) {
            return Ok(true);
        }
        let key = sql_int(job)?;
        // Rows that leave the buffer after this check are written under the
        // database lock, which also marks them in the cache.
        let mut db = self.shared.db();
        if let Some(&has) = db.has.get(&job) {
            return Ok(has);
        }
        let has: bool = db
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE job = ?1)")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(|e| StoreError::new(format!("cannot look up job {job}'s records"), Sql(e)))?;
        db.has.insert(job, has);
        Ok(has || self.shared.pending().holds(job))
    }
}

/// How many more rows a read may return: a count, and payload bytes past
/// which it stops (the row that crosses the line is still returned).
struct Budget {
    rows: usize,
    bytes: usize,
}

impl Budget {
    fn new(rows: usize, bytes: usize) -> Budget {
        Budget { rows, bytes }
    }

    fn spent(&self) -> bool {
        self.rows == 0 || self.bytes == 0
    }

    fn add(&mut self, size: usize) {
        self.rows = self.rows.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
    }
}

/// Written rows of a job after `after`, in order, as many as `budget`
/// allows.
fn written(
    db: &mut Db,
    job: JobId,
    after: u64,
    budget: &mut Budget,
) -> Result<Vec<Row>, StoreError> {
    let fail = |e| StoreError::new(format!("cannot read job {job}'s records"), Sql(e));
    let Db { conn, files, .. } = db;
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, stream, kind, data, file_off, file_len FROM records
             WHERE job = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )
        .map_err(fail)?;
    let lim = i64::try_from(budget.rows).unwrap_or(i64::MAX);
    let mut q = stmt
        .query(params![sql_int(job)?, sql_int(after)?, lim])
        .map_err(fail)?;
    let mut rows = Vec::new();
    while !budget.spent() {
        let Some(r) = q.next().map_err(fail)? else {
            break;
        };
        // A row that cannot be read back becomes an error record in its
        // place: it fails only the record it held, and the later ones still
        // arrive. Only a row without even a sequence number is an error.
        let row = match Row::from_sql(job, r) {
            Ok((mut row, Some(span))) => match files.read(job, row.seq, span) {
                Ok(bytes) => {
                    row.data = Data::Blob(bytes);
                    row
                }
                Err(e) => Row::damaged(job, row.seq, &e),
            },
            Ok((row, None)) => row,
            Err(e) => match r.get::<_, i64>(0).ok().and_then(|s| u64::try_from(s).ok()) {
                Some(seq) => Row::damaged(job, seq, &e),
                None => return Err(e),
            },
        };
        budget.add(row.size());
        rows.push(row);
    }
    Ok(rows)
}

/// Deletes a job's written rows up to and including `through`, and empties
/// its data file once no rows are left.
fn delete_through(db: &mut Db, job: JobId, through: u64) -> Result<(), StoreError> {
    let (key, through_key) = (sql_int(job)?, sql_int(through)?);
    let fail = |e| StoreError::new(format!("cannot discard job {job}'s records"), Sql(e));
    let deleted = db
        .conn
        .prepare_cached("DELETE FROM records WHERE job = ?1 AND seq <= ?2")
        .and_then(|mut s| s.execute(params![key, through_key]))
        .map_err(fail)?;
    db.has.remove(&job);
    if deleted > 0 {
        let left: bool = db
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM records WHERE job = ?1)")
            .and_then(|mut s| s.query_row([key], |r| r.get(0)))
            .map_err(fail)?;
        db.has.insert(job, left);
        if !left {
            db.files.empty(job)?;
        }
    }
    Ok(())
}

mod events;
mod files;
mod items;
mod pending;
pub mod pool;
mod row;
mod schema;
mod sql;

/// The reason of a job whose row in the store could not be read.
pub const UNREADABLE_REASON: &str = "unreadable in the store";

/// Clears a job's waiting spec, if it has one.
/// Writes one blob per job with `sql` (`?1` the job, `?2` the blob).
fn upsert_blobs<'a>(
    tx: &Transaction,
    sql: &str,
    blobs: impl IntoIterator<Item = (&'a JobId, &'a Vec<u8>)>,
) -> rusqlite::Result<()> {
    let mut blobs = blobs.into_iter().peekable();
    if blobs.peek().is_none() {
        return Ok(());
    }
    let mut put = tx.prepare_cached(sql)?;
    for (job, data) in blobs {
        let key = i64::try_from(*job)
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        put.execute(params![key, data])?;
    }
    Ok(())
}

fn forget_waiting(tx: &Transaction, key: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("UPDATE specs SET waiting = NULL WHERE job = ?1")?
        .execute([key])?;
    Ok(())
}

/// Where the store at `db` keeps its bulk data files:
/// `<database>-records/`, one `<job>.bin` per job.
pub fn data_dir(db: &Path) -> std::path::PathBuf {
    files::dir_of(db)
}
