//! The session's state-change events in the `events` table: one row per
//! event (`seq`, `job`, the [`JobEvent`] as JSON in `data`).
//!
//! # What a crash keeps
//! An event is written in the transaction of the job row it describes
//! (buffered with it when the row may wait for the next batch), so the
//! table on disk never holds an event for a state the job table does not
//! have, and a crash keeps both or neither. Numbers are never given twice,
//! even to events a crash lost after a reader saw them live: the store
//! keeps a durable reservation (`meta.event_seq_reserved`) ahead of the
//! numbers in use, moved forward [`RESERVE`] at a time in the transaction of
//! the first event past it, and a restarted session numbers its events
//! after the higher of that reservation and the highest event stored. A
//! reader that resumes with `since` therefore gets exactly what happened
//! after what it saw.
//!
//! # Pruning
//! The table keeps the last [`StoreOptions::keep_events`](crate::StoreOptions)
//! events at least (100,000 by default): once it holds a tenth more, the
//! oldest are deleted in one statement, in the transaction of the write
//! that crossed the line.

use jobs_core::{JobEvent, JobId, StoreError};
use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::row::{from_sql_int, sql_int};
use crate::sql::Sql;

/// How far ahead of the numbers in use the reservation moves.
pub(crate) const RESERVE: u64 = 4096;

/// An event, encoded for its row.
#[derive(Clone, Debug)]
pub(crate) struct EventRow {
    pub(crate) seq: u64,
    job: JobId,
    json: String,
}

impl EventRow {
    pub(crate) fn encode(ev: &JobEvent) -> Result<EventRow, StoreError> {
        let json = serde_json::to_string(ev)
            .map_err(|e| StoreError::new(format!("cannot encode event {}", ev.seq), e))?;
        Ok(EventRow {
            seq: ev.seq,
            job: ev.id,
            json,
        })
    }

    fn decode(&self) -> Result<JobEvent, StoreError> {
        decode(self.seq, &self.json)
    }
}

fn decode(seq: u64, json: &str) -> Result<JobEvent, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::new(format!("cannot read event {seq} from the store"), e))
}

/// What the database holds of the events, as far as this store knows.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The lowest number stored (0: none).
    low: u64,
    /// The reservation on disk.
    pub(crate) reserved: u64,
}

impl Kept {
    /// Reads the lowest stored number and the reservation.
    pub(crate) fn load(conn: &Connection) -> rusqlite::Result<Kept> {
        let low: Option<i64> = conn.query_row("SELECT min(seq) FROM events", [], |r| r.get(0))?;
        let reserved: Option<i64> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'event_seq_reserved'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
        Ok(Kept {
            low: n(low),
            reserved: n(reserved),
        })
    }
}

/// The highest number given: the reservation or the highest stored event.
pub(crate) fn max_seq(conn: &Connection, kept: &Kept) -> Result<u64, StoreError> {
    let high: Option<i64> = conn
        .query_row("SELECT max(seq) FROM events", [], |r| r.get(0))
        .map_err(|e| StoreError::new("cannot read the events", Sql(e)))?;
    let high = high.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    Ok(high.max(kept.reserved))
}

/// Inserts `events`, moves the reservation past them if need be, and
/// prunes the oldest past `keep`. `kept` is updated by the caller once the
/// transaction committed (see [`Kept::after`]).
pub(crate) fn insert(
    tx: &Transaction,
    events: &[EventRow],
    kept: &Kept,
    keep: usize,
) -> rusqlite::Result<Option<Kept>> {
    let Some(high) = events.iter().map(|e| e.seq).max() else {
        return Ok(None);
    };
    let key =
        |v: u64| i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)));
    let mut ins =
        tx.prepare_cached("INSERT OR REPLACE INTO events (seq, job, data) VALUES (?1, ?2, ?3)")?;
    for e in events {
        ins.execute(params![key(e.seq)?, key(e.job)?, e.json])?;
    }
    let mut next = Kept {
        low: if kept.low == 0 {
            events.iter().map(|e| e.seq).min().unwrap_or(high)
        } else {
            kept.low
        },
        reserved: kept.reserved,
    };
    if high > kept.reserved {
        next.reserved = high + RESERVE;
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('event_seq_reserved', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        )?
        .execute([key(next.reserved)?])?;
    }
    let keep = keep.max(1) as u64;
    let slack = (keep / 10).max(1);
    if high.saturating_sub(next.low) + 1 > keep + slack {
        let through = high - keep;
        tx.prepare_cached("DELETE FROM events WHERE seq <= ?1")?
            .execute([key(through)?])?;
        next.low = through + 1;
    }
    Ok(Some(next))
}

impl Kept {
    /// Takes what a committed [`insert`] returned.
    pub(crate) fn after(&mut self, next: Option<Kept>) {
        if let Some(n) = next {
            *self = n;
        }
    }
}

/// Up to `limit` events above `after` from the database, then from
/// `buffered` (which are all newer), oldest first.
pub(crate) fn read(
    conn: &Connection,
    buffered: &[EventRow],
    after: u64,
    limit: usize,
) -> Result<Vec<JobEvent>, StoreError> {
    let fail = |e| StoreError::new("cannot read the events", Sql(e));
    let mut out = Vec::new();
    let mut stmt = conn
        .prepare_cached("SELECT seq, data FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2")
        .map_err(fail)?;
    let lim = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = stmt.query(params![sql_int(after)?, lim]).map_err(fail)?;
    while let Some(r) = rows.next().map_err(fail)? {
        let seq = from_sql_int(r.get(0).map_err(fail)?)?;
        let json: String = r.get(1).map_err(fail)?;
        out.push(decode(seq, &json)?);
    }
    let mut more: Vec<&EventRow> = buffered.iter().filter(|e| e.seq > after).collect();
    more.sort_by_key(|e| e.seq);
    for e in more {
        if out.len() >= limit {
            break;
        }
        if out.last().is_none_or(|l| l.seq < e.seq) {
            out.push(e.decode()?);
        }
    }
    Ok(out)
}

/// Sets a job's finish hook (the daemon's `start --on-finish`).
pub(crate) fn set_on_finish(tx: &Transaction, job: JobId, line: &[u8]) -> rusqlite::Result<()> {
    let key =
        i64::try_from(job).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached("INSERT OR REPLACE INTO on_finish (job, line) VALUES (?1, ?2)")?
        .execute(params![key, line])?;
    Ok(())
}

/// Every job's finish hook.
pub(crate) fn on_finish_all(conn: &Connection) -> Result<Vec<(JobId, Vec<u8>)>, StoreError> {
    let fail = |e| StoreError::new("cannot read the finish hooks", Sql(e));
    let mut stmt = conn
        .prepare_cached("SELECT job, line FROM on_finish ORDER BY job")
        .map_err(fail)?;
    let mut rows = stmt.query([]).map_err(fail)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(fail)? {
        out.push((
            from_sql_int(r.get(0).map_err(fail)?)?,
            r.get(1).map_err(fail)?,
        ));
    }
    Ok(out)
}
