//! The in-memory batch of appended records and when it is due to be written.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use jobs_core::JobId;

use crate::events::EventRow;
use crate::row::{JobRow, Row};

/// How long an appended record may wait in memory before it is written.
pub(crate) const FLUSH_INTERVAL: Duration = Duration::from_millis(25);

/// When buffered records are written.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// The longest a record waits in memory.
    pub flush_interval: Duration,
    /// Write as soon as this many records are buffered...
    pub flush_records: usize,
    /// ...or this many bytes.
    pub flush_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            flush_interval: FLUSH_INTERVAL,
            flush_records: 4096,
            flush_bytes: 2 << 20,
        }
    }
}

impl StoreOptions {
    /// Past four batches, `append` writes itself instead of waiting for the
    /// background thread: memory stays bounded (about twice that, with the
    /// batch being written) when the disk or the writer is slower than the
    /// producers.
    pub(super) fn full(&self, p: &Pending) -> bool {
        p.rows.len() >= self.flush_records.saturating_mul(4)
            || p.bytes >= self.flush_bytes.saturating_mul(4)
    }

    /// While a receiver takes a job's records as they come, its producer
    /// waits past one batch's bytes rather than four: records then reach
    /// the receiver before the flush interval has passed even when it is
    /// slowed down (a record waits behind the buffer's bytes), and never
    /// touch the disk.
    pub(super) fn full_for_receiver(&self, p: &Pending) -> bool {
        p.bytes >= self.flush_bytes || self.full(p)
    }

    /// A batch is due by its size. While a receiver takes records as they
    /// come, their bytes do not count: only the flush interval, or many
    /// small records (cheap to write, costly to keep scanning), and a full
    /// buffer makes the producers wait for the receiver (see `append`). What
    /// it takes in time never touches the disk.
    pub(super) fn due(&self, p: &Pending) -> bool {
        p.rows.len() >= self.flush_records
            || (p.bytes >= self.flush_bytes && !p.drained_lately(self.flush_interval))
    }
}

#[derive(Default)]
pub(super) struct Pending {
    pub(super) rows: Vec<Row>,
    /// Rows of live jobs waiting for the next batch (the newest per job).
    pub(super) jobs: BTreeMap<JobId, JobRow>,
    /// Executors' checkpoints, written with the rows buffered before them.
    pub(super) checkpoints: BTreeMap<JobId, Vec<u8>>,
    /// Jobs' start requests, written with the next batch.
    pub(super) requests: BTreeMap<JobId, Vec<u8>>,
    /// State-change events, written with the job rows buffered with them.
    pub(super) events: Vec<EventRow>,
    pub(super) bytes: usize,
    pub(super) per_job: HashMap<JobId, usize>,
    /// When the oldest buffered row arrived.
    pub(super) since: Option<Instant>,
    pub(super) closing: bool,
    /// Freed pages to give back to the file system, a chunk at a time.
    pub(super) vacuum: bool,
    /// The write-ahead log has grown enough to be checkpointed.
    pub(super) checkpoint: bool,
    /// When a receiver last consumed rows, per job.
    pub(super) drained: HashMap<JobId, Instant>,
}

impl Pending {
    pub(super) fn push(&mut self, row: Row) {
        self.since.get_or_insert_with(Instant::now);
        self.bytes += row.size();
        *self.per_job.entry(row.job).or_default() += 1;
        self.rows.push(row);
    }

    pub(super) fn take(&mut self) -> Vec<Row> {
        self.bytes = 0;
        self.per_job.clear();
        self.since = None;
        std::mem::take(&mut self.rows)
    }

    /// Buffers a live job's row in place of an older one; whether the
    /// buffer was empty (the writer must be woken).
    pub(super) fn push_job(&mut self, row: JobRow) -> bool {
        let was_empty = self.is_empty();
        self.since.get_or_insert_with(Instant::now);
        self.jobs.insert(row.id, row);
        was_empty
    }

    /// Moves out the buffered job rows.
    pub(super) fn take_jobs(&mut self) -> BTreeMap<JobId, JobRow> {
        std::mem::take(&mut self.jobs)
    }

    /// Puts back job rows whose write failed, unless a newer one came since.
    pub(super) fn restore_jobs(&mut self, jobs: BTreeMap<JobId, JobRow>) {
        for (id, row) in jobs {
            self.jobs.entry(id).or_insert(row);
        }
        if !self.jobs.is_empty() {
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Nothing buffered: no records and no job rows.
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.jobs.is_empty()
            && self.checkpoints.is_empty()
            && self.events.is_empty()
            && self.requests.is_empty()
    }

    /// Keeps a job's start request, to be written with the next batch;
    /// whether the buffer was empty (the flusher then needs a wake-up).
    pub(super) fn push_request(&mut self, job: JobId, data: Vec<u8>) -> bool {
        let was_empty = self.is_empty();
        self.since.get_or_insert_with(Instant::now);
        self.requests.insert(job, data);
        was_empty
    }

    /// Puts back requests a failed write took, unless newer ones came.
    pub(super) fn restore_requests(&mut self, taken: BTreeMap<JobId, Vec<u8>>) {
        for (id, data) in taken {
            self.requests.entry(id).or_insert(data);
        }
        if !self.requests.is_empty() {
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Buffers events, to be written with the next batch.
    pub(super) fn push_events(&mut self, events: Vec<EventRow>) {
        if !events.is_empty() {
            self.since.get_or_insert_with(Instant::now);
            self.events.extend(events);
        }
    }

    /// Puts back events a failed write took, ahead of those buffered since.
    pub(super) fn restore_events(&mut self, mut taken: Vec<EventRow>) {
        if !taken.is_empty() {
            taken.append(&mut self.events);
            self.events = taken;
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Sets a job's checkpoint, to be written with the next batch.
    pub(super) fn push_checkpoint(&mut self, job: JobId, data: Vec<u8>) {
        self.since.get_or_insert_with(Instant::now);
        self.checkpoints.insert(job, data);
    }

    /// Puts back checkpoints a failed write took, unless newer ones came.
    pub(super) fn restore_checkpoints(&mut self, taken: BTreeMap<JobId, Vec<u8>>) {
        for (id, data) in taken {
            self.checkpoints.entry(id).or_insert(data);
        }
        if !self.checkpoints.is_empty() {
            self.since.get_or_insert_with(Instant::now);
        }
    }

    /// Puts back rows whose write failed, ahead of those appended since.
    pub(super) fn restore(&mut self, mut rows: Vec<Row>) {
        rows.append(&mut self.rows);
        self.rows = rows;
        self.recount();
        self.since = Some(Instant::now());
    }

    /// Drops the rows `keep` refuses; how many.
    pub(super) fn retain(&mut self, keep: impl Fn(&Row) -> bool) -> usize {
        let before = self.rows.len();
        self.rows.retain(keep);
        let dropped = before - self.rows.len();
        if dropped > 0 {
            self.recount();
            self.since_oldest();
        }
        dropped
    }

    /// After rows left: the interval runs from the oldest row left (job
    /// rows keep the time they set).
    fn since_oldest(&mut self) {
        if self.jobs.is_empty()
            && self.checkpoints.is_empty()
            && self.events.is_empty()
            && self.requests.is_empty()
        {
            self.since = self.rows.first().map(|r| r.at);
        }
    }

    /// Notes that a receiver consumed rows of `job`.
    pub(super) fn drain(&mut self, job: JobId) {
        let now = Instant::now();
        if self.drained.len() >= 64 {
            self.drained
                .retain(|_, t| now.duration_since(*t) < Duration::from_secs(1));
        }
        self.drained.insert(job, now);
    }

    /// Whether a receiver consumed rows of `job` within `window`.
    pub(super) fn draining(&self, job: JobId, window: Duration) -> bool {
        self.drained.get(&job).is_some_and(|t| t.elapsed() < window)
    }

    /// Whether a receiver consumed rows of any job within `window`.
    pub(super) fn drained_lately(&self, window: Duration) -> bool {
        self.drained.values().any(|t| t.elapsed() < window)
    }

    /// Moves out the first `n` buffered rows of a job.
    pub(super) fn take_job(&mut self, job: JobId, n: usize) -> Vec<Row> {
        let mut out = Vec::new();
        let mut kept = Vec::with_capacity(self.rows.len());
        for r in self.rows.drain(..) {
            if r.job == job && out.len() < n {
                out.push(r);
            } else {
                kept.push(r);
            }
        }
        self.rows = kept;
        self.recount();
        self.since_oldest();
        out
    }

    pub(super) fn recount(&mut self) {
        self.bytes = self.rows.iter().map(Row::size).sum();
        self.per_job.clear();
        for r in &self.rows {
            *self.per_job.entry(r.job).or_default() += 1;
        }
    }

    pub(super) fn holds(&self, job: JobId) -> bool {
        self.per_job.get(&job).is_some_and(|&n| n > 0)
    }
}
