//! The storage behind a session: the job table's rows and the record caches.
//!
//! The session keeps its table in memory and writes every change through to
//! a [`Store`]; records live only in the store. Receive, keep and
//! `has_more_data` are written once, in the session, over this trait, so a
//! durable store (the CLI's SQLite one) or a store that spills to disk plugs
//! in without re-implementing them.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::{JobEvent, JobId, JobInfo, Record, StoreError};

/// Where a session keeps job rows and records.
///
/// Sequence numbers are session-wide and increase in production order; for
/// one job, `append` is always called with increasing numbers.
pub trait Store: Send + Sync + 'static {
    /// Inserts or replaces a job's row.
    fn save_job(&self, info: &JobInfo) -> Result<(), StoreError>;
    /// Inserts or replaces many jobs' rows (a batch's); a durable store
    /// writes them in one transaction. By default one `save_job` each.
    fn save_jobs(&self, infos: &[JobInfo]) -> Result<(), StoreError> {
        infos.iter().try_for_each(|i| self.save_job(i))
    }
    /// Inserts or replaces the row of a job that is not finished; the store
    /// may write it with its next batch instead of at once, as long as a
    /// later `save_job` of the same job supersedes it. A crash in between
    /// loses only a state the restart reports anyway (the job was running
    /// when its host ended). A store that waits writes what it holds of
    /// other jobs with the next `save_job` at the latest: a batch's
    /// children are saved soon, and are all on disk once their parent's
    /// row is. By default the same as `save_job`.
    fn save_job_soon(&self, info: &JobInfo) -> Result<(), StoreError> {
        self.save_job(info)
    }
    /// Deletes a job's row and all its records.
    fn delete_job(&self, id: JobId) -> Result<(), StoreError>;
    /// Every job row, for a session that starts over an existing store.
    fn load_jobs(&self) -> Result<Vec<JobInfo>, StoreError>;
    /// The highest sequence number ever stored (0 if none).
    fn max_seq(&self) -> Result<u64, StoreError>;
    /// Appends one record of a job.
    fn append(&self, job: JobId, seq: u64, record: Record) -> Result<(), StoreError>;
    /// Up to `limit` records of a job with sequence number above `after`, in order.
    fn read(&self, job: JobId, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError>;
    /// Like [`read`](Store::read), but stops once the records read hold
    /// `max_bytes` payload bytes or more (the first record is always
    /// returned): a follower of a large output holds a bounded part of it.
    /// The default reads `limit` records; a store whose records can be
    /// large overrides it.
    fn read_bounded(
        &self,
        job: JobId,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        let _ = max_bytes;
        self.read(job, after, limit)
    }
    /// Removes a job's records up to and including `through`.
    fn discard(&self, job: JobId, through: u64) -> Result<(), StoreError>;
    /// Whether the job has any record left.
    fn has_records(&self, job: JobId) -> Result<bool, StoreError>;

    /// Appends a job's records together with the job's checkpoint: what
    /// the executor must know to go on after them if the session is
    /// restored (a resumed detached job: how far it has read its files).
    ///
    /// A durable store writes both in one transaction, so whatever a crash
    /// keeps, the checkpoint it kept names exactly the records it kept:
    /// resuming from it loses nothing and repeats nothing. The default
    /// appends the records and keeps no checkpoint (a store that is not
    /// restored has nothing to resume).
    fn append_checkpointed(
        &self,
        job: JobId,
        records: Vec<(u64, Record)>,
        checkpoint: Vec<u8>,
    ) -> Result<(), StoreError> {
        let _ = checkpoint;
        for (seq, record) in records {
            self.append(job, seq, record)?;
        }
        Ok(())
    }

    /// Whether this store keeps checkpoints (see
    /// [`append_checkpointed`](Store::append_checkpointed)). An executor
    /// that resumes jobs then trusts [`checkpoint`](Store::checkpoint)
    /// alone: no checkpoint means nothing was kept yet.
    fn keeps_checkpoints(&self) -> bool {
        false
    }

    /// The job's last checkpoint (see
    /// [`append_checkpointed`](Store::append_checkpointed)), if the store
    /// keeps one.
    fn checkpoint(&self, job: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = job;
        Ok(None)
    }

    /// Inserts a job's first row together with the spec it waits to run
    /// (bytes the session made, read back with
    /// [`waiting_spec`](Store::waiting_spec)): a job that waits for others
    /// and must still start after the session is restored. A durable store
    /// writes both in one transaction. The spec is kept until
    /// [`forget_waiting_spec`](Store::forget_waiting_spec), a finished row
    /// of the job, or its deletion. The default saves the row alone.
    fn save_waiting_job(&self, info: &JobInfo, spec: &[u8]) -> Result<(), StoreError> {
        let _ = spec;
        self.save_job(info)
    }

    /// Whether this store keeps the specs of waiting jobs (see
    /// [`save_waiting_job`](Store::save_waiting_job)), so that they go on
    /// waiting across a restore rather than end with the session.
    fn keeps_waiting_specs(&self) -> bool {
        false
    }

    /// The spec a waiting job was saved with, if the store keeps it.
    fn waiting_spec(&self, job: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        let _ = job;
        Ok(None)
    }

    /// Drops a waiting job's spec: the job starts now, and a restore after
    /// this must not start it a second time. Written at once.
    fn forget_waiting_spec(&self, job: JobId) -> Result<(), StoreError> {
        let _ = job;
        Ok(())
    }

    /// Makes a change of the job table and appends the events that
    /// describe it (numbered by the session, increasing across calls).
    ///
    /// A durable store writes both in one transaction, so a reader never
    /// sees an event for a state the table does not have, and a crash keeps
    /// both or neither. A change that may wait for the next batch
    /// ([`RowChange::SaveSoon`]) takes its events with it. Events are kept
    /// after their job's deletion; a store may drop the oldest once it holds
    /// many (the SQLite store keeps the last 100,000 at least). The default
    /// makes the change and keeps no events.
    fn write_events(&self, change: RowChange<'_>, events: &[JobEvent]) -> Result<(), StoreError> {
        let _ = events;
        change.apply(self)
    }

    /// Whether the store keeps the events it is given by
    /// [`write_events`](Store::write_events). One that does not (and does
    /// not need them to write the change) says so, and the session builds
    /// no event while nobody subscribes. By default `true`.
    fn keeps_events(&self) -> bool {
        true
    }

    /// The highest event number the store ever held (0 if none): the
    /// session numbers its events after it.
    fn max_event_seq(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Up to `limit` stored events numbered above `after`, oldest first,
    /// including those not yet on disk.
    fn read_events(&self, after: u64, limit: usize) -> Result<Vec<JobEvent>, StoreError> {
        let _ = (after, limit);
        Ok(Vec::new())
    }

    /// Removes and returns up to `limit` of the job's oldest records: a
    /// consuming receive. The default reads, then discards what it read; a
    /// store that can hand records over without copying them overrides it.
    fn take(&self, job: JobId, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        let recs = self.read(job, 0, limit)?;
        if let Some((last, _)) = recs.last() {
            self.discard(job, *last)?;
        }
        Ok(recs)
    }
}

/// A change of the job table that state-change events describe: what
/// [`Store::write_events`] writes together with them.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum RowChange<'a> {
    /// [`Store::save_job`].
    Save(&'a JobInfo),
    /// [`Store::save_job_soon`].
    SaveSoon(&'a JobInfo),
    /// [`Store::save_waiting_job`], with the spec.
    SaveWaiting(&'a JobInfo, &'a [u8]),
    /// [`Store::delete_job`].
    Delete(JobId),
}

impl RowChange<'_> {
    /// Makes the change alone, through the store's plain methods.
    pub fn apply<S: Store + ?Sized>(self, store: &S) -> Result<(), StoreError> {
        match self {
            RowChange::Save(info) => store.save_job(info),
            RowChange::SaveSoon(info) => store.save_job_soon(info),
            RowChange::SaveWaiting(info, spec) => store.save_waiting_job(info, spec),
            RowChange::Delete(id) => store.delete_job(id),
        }
    }
}

/// The default store: records in memory, rows not persisted (the session's
/// own table is the only copy, so there is nothing to save).
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<HashMap<JobId, VecDeque<(u64, Record)>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, VecDeque<(u64, Record)>>> {
        // A panic while holding this lock leaves the map consistent (every
        // operation is a single insert or drain), so poisoning is ignored.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemoryStore {
    fn save_job(&self, _info: &JobInfo) -> Result<(), StoreError> {
        Ok(())
    }

    fn delete_job(&self, id: JobId) -> Result<(), StoreError> {
        self.lock().remove(&id);
        Ok(())
    }

    fn load_jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        Ok(Vec::new())
    }

    fn max_seq(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn append(&self, job: JobId, seq: u64, record: Record) -> Result<(), StoreError> {
        self.lock().entry(job).or_default().push_back((seq, record));
        Ok(())
    }

    fn read(&self, job: JobId, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        let map = self.lock();
        let Some(q) = map.get(&job) else {
            return Ok(Vec::new());
        };
        let start = q.partition_point(|(s, _)| *s <= after);
        Ok(q.range(start..).take(limit).cloned().collect())
    }

    fn read_bounded(
        &self,
        job: JobId,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Record)>, StoreError> {
        let map = self.lock();
        let Some(q) = map.get(&job) else {
            return Ok(Vec::new());
        };
        let start = q.partition_point(|(s, _)| *s <= after);
        let mut bytes = 0usize;
        Ok(q.range(start..)
            .take(limit)
            .take_while(|(_, r)| {
                let more = bytes < max_bytes;
                bytes = bytes.saturating_add(r.approx_size());
                more
            })
            .cloned()
            .collect())
    }

    fn discard(&self, job: JobId, through: u64) -> Result<(), StoreError> {
        let mut map = self.lock();
        if let Some(q) = map.get_mut(&job) {
            let n = q.partition_point(|(s, _)| *s <= through);
            q.drain(..n);
            if q.is_empty() {
                map.remove(&job);
            }
        }
        Ok(())
    }

    fn has_records(&self, job: JobId) -> Result<bool, StoreError> {
        Ok(self.lock().get(&job).is_some_and(|q| !q.is_empty()))
    }

    fn keeps_events(&self) -> bool {
        false
    }

    fn take(&self, job: JobId, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        let mut map = self.lock();
        let Some(q) = map.get_mut(&job) else {
            return Ok(Vec::new());
        };
        let n = limit.min(q.len());
        let out: Vec<(u64, Record)> = q.drain(..n).collect();
        if q.is_empty() {
            map.remove(&job);
        }
        Ok(out)
    }
}
