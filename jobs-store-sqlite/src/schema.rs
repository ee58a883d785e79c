//! The database file's set-up: connection pragmas, the schema and its version.
//!
//! Version 2 added `file_off` and `file_len` to `records` (where a bytes
//! record's payload is in its job's data file); a version 1 file is upgraded
//! in place when it is opened, its rows keep their bytes in `data`. Version 3
//! added `checkpoints`, version 4 `waiting` (the specs of jobs that wait for
//! others), version 5 `events` (the session's state changes) and `on_finish`
//! (the daemon's per-job finish hooks); an older file gets the new tables,
//! empty, and its events are numbered from 1. Version 6 replaced `waiting`
//! by `specs`: per job, the spec it waits to run (`waiting`, as before) and
//! the request it was started with (`request`, which `restart` replays); a
//! version 5 file's waiting specs move there.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = 6;

/// How long a statement waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages past which a commit checkpoints by itself. The flusher's own
/// connection checkpoints long before, off the writers' path; this is the
/// safety net for a table that changes with no records being written.
const AUTOCHECKPOINT_PAGES: i64 = 16 * 1024;

/// Opens the database file, never through a symlink planted at its path.
pub(super) fn open(path: &std::path::Path) -> rusqlite::Result<Connection> {
    Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::default() | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
}

/// Another connection to the store, for checkpoints.
pub(super) fn connect(path: &std::path::Path) -> rusqlite::Result<Connection> {
    let conn = open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Why a store could not be opened.
pub(super) enum InitError {
    /// SQLite refused.
    Sql(rusqlite::Error),
    /// The file's schema version is newer than [`SCHEMA_VERSION`].
    Newer(i64),
    /// The file system does not allow WAL mode; this journal mode stayed.
    NotWal(String),
}

impl From<rusqlite::Error> for InitError {
    fn from(e: rusqlite::Error) -> Self {
        InitError::Sql(e)
    }
}

/// Sets the connection up, creates or checks the schema, and returns the
/// highest sequence number ever stored.
pub(super) fn init(conn: &Connection) -> Result<u64, InitError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(InitError::Newer(version));
    }
    if version == 0 {
        // Only takes effect before the first table exists.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(InitError::NotWal(mode));
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "journal_size_limit", 64i64 << 20)?;
    // Room for a whole batch, so that a write does not spill pages early.
    conn.pragma_update(None, "cache_size", -8192i64)?;
    conn.pragma_update(None, "wal_autocheckpoint", AUTOCHECKPOINT_PAGES)?;
    if version == 0 {
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE IF NOT EXISTS jobs (
                 id INTEGER PRIMARY KEY,
                 parent INTEGER,
                 name TEXT NOT NULL,
                 type TEXT NOT NULL,
                 state TEXT NOT NULL,
                 info TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS records (
                 seq INTEGER PRIMARY KEY,
                 job INTEGER NOT NULL,
                 stream TEXT NOT NULL,
                 kind TEXT NOT NULL,
                 data BLOB NOT NULL,
                 file_off INTEGER,
                 file_len INTEGER
             );
             CREATE INDEX IF NOT EXISTS records_job_seq ON records (job, seq);
             CREATE TABLE IF NOT EXISTS meta (
                 key TEXT PRIMARY KEY,
                 value INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS checkpoints (
                 job INTEGER PRIMARY KEY,
                 data BLOB NOT NULL
             );
             CREATE TABLE IF NOT EXISTS specs (
                 job INTEGER PRIMARY KEY,
                 waiting BLOB,
                 request BLOB
             );
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY,
                 job INTEGER NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS on_finish (
                 job INTEGER PRIMARY KEY,
                 line BLOB NOT NULL
             );
             PRAGMA user_version = 6;
             COMMIT;",
        )?;
    } else if version < SCHEMA_VERSION {
        upgrade(conn)?;
    }
    let meta: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'max_seq'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let rows: Option<i64> = conn.query_row("SELECT max(seq) FROM records", [], |r| r.get(0))?;
    let max = meta.unwrap_or(0).max(rows.unwrap_or(0));
    Ok(u64::try_from(max).unwrap_or(0))
}

/// Brings an older file to the current version, once, whoever else opens
/// it: version 2 added where bulk bytes live, version 3 the executors'
/// checkpoints, version 4 the specs of waiting jobs, version 5 the events
/// and the finish hooks, version 6 moved the waiting specs into `specs`,
/// beside the requests jobs were started with.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let done = (|| {
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 1 {
            conn.execute_batch(
                "ALTER TABLE records ADD COLUMN file_off INTEGER;
                 ALTER TABLE records ADD COLUMN file_len INTEGER;
                 PRAGMA user_version = 2;",
            )?;
        }
        if version <= 2 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS checkpoints (
                     job INTEGER PRIMARY KEY,
                     data BLOB NOT NULL
                 );
                 PRAGMA user_version = 3;",
            )?;
        }
        if version <= 3 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS waiting (
                     job INTEGER PRIMARY KEY,
                     spec BLOB NOT NULL
                 );
                 PRAGMA user_version = 4;",
            )?;
        }
        if version <= 4 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS events (
                     seq INTEGER PRIMARY KEY,
                     job INTEGER NOT NULL,
                     data TEXT NOT NULL
                 );
                 CREATE TABLE IF NOT EXISTS on_finish (
                     job INTEGER PRIMARY KEY,
                     line BLOB NOT NULL
                 );
                 PRAGMA user_version = 5;",
            )?;
        }
        if version <= 5 {
            conn.execute_batch(
                "CREATE TABLE IF NOT EXISTS specs (
                     job INTEGER PRIMARY KEY,
                     waiting BLOB,
                     request BLOB
                 );
                 INSERT OR REPLACE INTO specs (job, waiting) SELECT job, spec FROM waiting;
                 DROP TABLE waiting;
                 PRAGMA user_version = 6;",
            )?;
        }
        Ok(())
    })();
    match done {
        Ok(()) => conn.execute_batch("COMMIT"),
        Err(e) => {
            // The error that matters is the first one.
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}
