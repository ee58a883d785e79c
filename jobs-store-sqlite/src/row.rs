//! Records as rows: how a [`Record`] is encoded into the `records` table's
//! columns and decoded back, and how a batch of rows is written.

use std::time::Instant;

use jobs_core::{
    ErrorRecord, JobId, JobInfo, Payload, PayloadKind as Kind, Record, StoreError, Stream,
};
use rusqlite::{params, Connection, Transaction};

use crate::sql::Sql;

/// Where a record's bytes are in its job's data file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) off: u64,
    pub(crate) len: u64,
}

/// Writes `rows` in one transaction with whatever `extra` writes; a row with
/// a span in `spans` (one per row) has its bytes in its job's data file
/// already and keeps only where they are.
pub(super) fn write_rows(
    conn: &mut Connection,
    rows: &[Row],
    spans: &[Option<Span>],
    extra: impl FnOnce(&Transaction) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let fail = |e| StoreError::new("cannot write to the store", Sql(e));
    let tx = conn.transaction().map_err(fail)?;
    if let Some(max) = rows.iter().map(|r| r.seq).max() {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO records (seq, job, stream, kind, data, file_off, file_len)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(fail)?;
        let none: &[u8] = &[];
        for (i, r) in rows.iter().enumerate() {
            let span = spans.get(i).copied().flatten();
            let data: &dyn rusqlite::ToSql = match (&r.data, span) {
                (_, Some(_)) => &none,
                (Data::Text(s), None) => s,
                (Data::Blob(b), None) => b,
            };
            let off = span.map(|s| sql_int(s.off)).transpose()?;
            let len = span.map(|s| sql_int(s.len)).transpose()?;
            ins.execute(params![
                sql_int(r.seq)?,
                sql_int(r.job)?,
                r.stream.as_str(),
                r.kind.as_str(),
                data,
                off,
                len
            ])
            .map_err(fail)?;
        }
        drop(ins);
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('max_seq', ?1)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            [sql_int(max)?],
        )
        .map_err(fail)?;
    }
    extra(&tx).map_err(fail)?;
    tx.commit().map_err(fail)
}

/// A job's row, encoded: what `save_job` writes and `save_job_soon` buffers.
#[derive(Clone, Debug)]
pub(super) struct JobRow {
    pub(super) id: JobId,
    pub(super) id_key: i64,
    parent: Option<i64>,
    name: jobs_core::SharedStr,
    type_name: jobs_core::SharedStr,
    state: String,
    json: String,
}

impl JobRow {
    /// The job of a row read by `SELECT id, parent, name, type, info`, or
    /// why it cannot be read.
    pub(super) fn info_from_sql(r: &rusqlite::Row<'_>) -> Result<JobInfo, String> {
        let text = match r.get_ref(4) {
            Ok(rusqlite::types::ValueRef::Text(t)) => t,
            Ok(rusqlite::types::ValueRef::Blob(b)) => b,
            Ok(other) => return Err(format!("its info is {:?}", other.data_type())),
            Err(e) => return Err(e.to_string()),
        };
        let info: JobInfo = serde_json::from_slice(text).map_err(|e| e.to_string())?;
        match r.get::<_, i64>(0) {
            Ok(id) if u64::try_from(id).ok() == Some(info.id) => Ok(info),
            _ => Err(format!("its info names job {}", info.id)),
        }
    }

    /// A Failed job in place of row `id`, which cannot be read: what the
    /// row's plain columns still say (parent, name, type), the reason
    /// [`crate::UNREADABLE_REASON`].
    pub(super) fn set_aside(id: JobId, r: &rusqlite::Row<'_>) -> JobInfo {
        let parent = r
            .get::<_, Option<i64>>(1)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok());
        let name = r.get::<_, String>(2).unwrap_or_else(|_| format!("Job{id}"));
        let type_name = r.get::<_, String>(3).unwrap_or_default();
        JobInfo {
            id,
            instance_id: uuid::Uuid::nil(),
            name: name.into(),
            type_name: type_name.into(),
            state: jobs_core::JobState::Failed,
            reason: Some(crate::UNREADABLE_REASON.into()),
            has_more_data: false,
            location: Default::default(),
            command: Default::default(),
            begin: None,
            end: None,
            exit_code: None,
            parent,
            children: Vec::new(),
            detached: false,
            item: None,
            attempts: 0,
            after: Vec::new(),
            after_any: Vec::new(),
            restarted_from: None,
        }
    }

    pub(super) fn encode(info: &JobInfo) -> Result<JobRow, StoreError> {
        let json = serde_json::to_string(info)
            .map_err(|e| StoreError::new(format!("cannot encode job {}", info.id), e))?;
        Ok(JobRow {
            id: info.id,
            id_key: sql_int(info.id)?,
            parent: info.parent.map(sql_int).transpose()?,
            name: info.name.clone(),
            type_name: info.type_name.clone(),
            state: info.state.to_string(),
            json,
        })
    }

    /// Inserts or replaces the row within `tx`.
    pub(super) fn write(&self, tx: &Transaction) -> rusqlite::Result<()> {
        tx.prepare_cached(
            "INSERT OR REPLACE INTO jobs (id, parent, name, type, state, info)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            self.id_key,
            self.parent,
            self.name.as_str(),
            self.type_name.as_str(),
            self.state,
            self.json
        ])?;
        Ok(())
    }
}

pub(super) fn sql_int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|e| StoreError::new(format!("{v} is too large for the store"), e))
}

pub(super) fn from_sql_int(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v)
        .map_err(|e| StoreError::new(format!("the store holds a negative number {v}"), e))
}

/// A record as it is stored.
#[derive(Clone)]
pub(super) struct Row {
    pub(super) job: JobId,
    pub(super) seq: u64,
    pub(super) stream: Stream,
    pub(super) kind: Kind,
    pub(super) data: Data,
    /// When it was appended (or read).
    pub(super) at: Instant,
}

#[derive(Clone)]
pub(super) enum Data {
    Text(String),
    Blob(Vec<u8>),
}

impl Row {
    pub(super) fn encode(job: JobId, seq: u64, record: Record) -> Result<Row, StoreError> {
        // A live value cannot leave the process: it is kept as its
        // rendering, whether it is read back from the buffer or the disk.
        // Bytes are a BLOB; text and JSON are TEXT, for `sqlite3` to read.
        let (kind, bytes) = record.payload.encode();
        let data =
            match kind {
                Kind::Bytes => Data::Blob(bytes),
                _ => Data::Text(String::from_utf8(bytes).map_err(|e| {
                    StoreError::new(format!("cannot encode a record of job {job}"), e)
                })?),
            };
        Ok(Row {
            job,
            seq,
            stream: record.stream,
            kind,
            data,
            at: Instant::now(),
        })
    }

    /// The row read from `SELECT seq, stream, kind, data, file_off,
    /// file_len`, and where its bytes are if they are in the data file (its
    /// `data` is empty then).
    pub(super) fn from_sql(
        job: JobId,
        r: &rusqlite::Row<'_>,
    ) -> Result<(Row, Option<Span>), StoreError> {
        let bad = |what: String| StoreError::msg(format!("job {job}'s records: {what}"));
        let fail = |e| StoreError::new(format!("cannot read job {job}'s records"), Sql(e));
        let seq = from_sql_int(r.get(0).map_err(fail)?)?;
        let stream: String = r.get(1).map_err(fail)?;
        let stream = stream
            .parse()
            .map_err(|e| StoreError::new(format!("record {seq} of job {job}"), e))?;
        let kind: String = r.get(2).map_err(fail)?;
        let kind = Kind::from_name(&kind)
            .ok_or_else(|| bad(format!("record {seq} has an unknown kind '{kind}'")))?;
        let data = match r.get_ref(3).map_err(fail)? {
            rusqlite::types::ValueRef::Blob(b) => Data::Blob(b.to_vec()),
            rusqlite::types::ValueRef::Text(t) => Data::Text(
                String::from_utf8(t.to_vec())
                    .map_err(|e| StoreError::new(format!("record {seq} of job {job}"), e))?,
            ),
            other => return Err(bad(format!("record {seq} holds {:?}", other.data_type()))),
        };
        let off: Option<i64> = r.get(4).map_err(fail)?;
        let len: Option<i64> = r.get(5).map_err(fail)?;
        let span = match (off, len) {
            (None, None) => None,
            (Some(off), Some(len)) => Some(Span {
                off: from_sql_int(off)?,
                len: from_sql_int(len)?,
            }),
            _ => return Err(bad(format!("record {seq} has half a file location"))),
        };
        let row = Row {
            job,
            seq,
            stream,
            kind,
            data,
            at: Instant::now(),
        };
        Ok((row, span))
    }

    /// A row in place of one that cannot be read back (its bytes are
    /// missing from the data file, its columns are damaged): an error
    /// record saying what was lost, so the records after it still arrive.
    pub(super) fn damaged(job: JobId, seq: u64, err: &StoreError) -> Row {
        let mut message = format!("record {seq} of job {job} is lost: {err}");
        let mut src = std::error::Error::source(err);
        while let Some(e) = src {
            message.push_str(": ");
            message.push_str(&e.to_string());
            src = e.source();
        }
        let record = ErrorRecord {
            message,
            category: Some("StoreDamaged".into()),
            details: None,
        };
        let data = serde_json::to_string(&record)
            .unwrap_or_else(|_| String::from(r#"{"message":"a record is lost"}"#));
        Row {
            job,
            seq,
            stream: Stream::Error,
            kind: Kind::Error,
            data: Data::Text(data),
            at: Instant::now(),
        }
    }

    /// The record; a row that does not decode gives the error record of
    /// [`Row::damaged`] in its place.
    pub(super) fn decode(self) -> Record {
        let (job, seq) = (self.job, self.seq);
        match self.try_decode() {
            Ok(r) => r,
            Err(e) => Row::damaged(job, seq, &e)
                .try_decode()
                .unwrap_or_else(|_| Record::text(Stream::Error, "a record is lost")),
        }
    }

    fn try_decode(self) -> Result<Record, StoreError> {
        let (job, seq) = (self.job, self.seq);
        let bytes = match self.data {
            Data::Blob(b) => b,
            Data::Text(t) => t.into_bytes(),
        };
        let payload = Payload::decode(self.kind, bytes)
            .map_err(|e| StoreError::new(format!("record {seq} of job {job} is unreadable"), e))?;
        Ok(Record::new(self.stream, payload))
    }

    /// A copy, its bytes in a buffer from the pool.
    pub(super) fn copy(&self) -> Row {
        let data = match &self.data {
            Data::Text(t) => Data::Text(t.clone()),
            Data::Blob(b) => {
                let mut copy = crate::pool::take(b.len());
                copy.extend_from_slice(b);
                Data::Blob(copy)
            }
        };
        Row { data, ..*self }
    }

    pub(super) fn size(&self) -> usize {
        let data = match &self.data {
            Data::Text(t) => t.len(),
            Data::Blob(b) => b.len(),
        };
        data + 48
    }
}
