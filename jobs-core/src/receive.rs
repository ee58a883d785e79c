//! `receive`: hand back what jobs produced, consuming it or keeping it, once
//! or following the jobs until they finish.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;

use std::task::Poll;

use crate::cell::CellWatch;
use crate::session::Table;
use crate::{Error, JobId, JobState, Received, Session};

/// Records a follower reads from the store at a time...
const FOLLOW_RECORDS: usize = 1024;
/// ...and the payload bytes past which it reads no more (plus one record):
/// following a multi-gigabyte output holds a few megabytes of it.
const FOLLOW_BYTES: usize = 4 << 20;

/// How [`Session::receive`] and [`Session::follow`] hand records out.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReceiveOptions {
    /// Leave the records in the cache (PowerShell's `-Keep`).
    pub keep: bool,
    /// Only the named jobs' own records, not their children's.
    pub no_recurse: bool,
    /// At most this many records per call (none: all there are).
    pub limit: Option<usize>,
}

impl Session {
    fn sources(&self, ids: &[JobId], no_recurse: bool) -> Result<Vec<JobId>, Error> {
        let t = self.inner.lock();
        t.check(ids)?;
        Ok(sources(&t, ids, no_recurse))
    }

    /// Reads up to `limit` records of `sources` after the cursors, merged
    /// in production order, stopping past `max_bytes` of payload.
    fn read_merged(
        &self,
        sources: &[JobId],
        cursors: &HashMap<JobId, u64>,
        limit: usize,
        max_bytes: Option<usize>,
    ) -> Result<Vec<Received>, Error> {
        let mut all = Vec::new();
        for &src in sources {
            let after = cursors.get(&src).copied().unwrap_or(0);
            let recs = match max_bytes {
                Some(max) => self.inner.store.read_bounded(src, after, limit, max)?,
                None => self.inner.store.read(src, after, limit)?,
            };
            for (seq, record) in recs {
                all.push(Received {
                    job: src,
                    seq,
                    record,
                });
            }
        }
        all.sort_by_key(|r| r.seq);
        all.truncate(limit);
        if let Some(max) = max_bytes {
            // Records past the budget are read again by the next call: the
            // cursors only move over what is returned.
            let mut bytes = 0usize;
            let keep = all
                .iter()
                .take_while(|r| {
                    let more = bytes < max;
                    bytes = bytes.saturating_add(r.record.approx_size());
                    more
                })
                .count();
            all.truncate(keep);
        }
        Ok(all)
    }

    /// Hands back what the jobs (and, unless `no_recurse`, their children)
    /// have produced so far, in production order; a child's records carry
    /// the child's id. Without `keep`, what is returned leaves the cache.
    pub fn receive(&self, ids: &[JobId], opts: ReceiveOptions) -> Result<Vec<Received>, Error> {
        let sources = self.sources(ids, opts.no_recurse)?;
        if let [only] = sources[..] {
            if !opts.keep {
                return self.take(only, opts.limit.unwrap_or(usize::MAX));
            }
        }
        if !opts.keep && opts.limit.is_none() {
            return self.take_all(&sources);
        }
        let limit = opts.limit.unwrap_or(usize::MAX);
        let recs = self.read_merged(&sources, &HashMap::new(), limit, None)?;
        if !opts.keep {
            self.consume(&recs)?;
        }
        Ok(recs)
    }

    /// A consuming read of one job: records are moved out of the store.
    fn take(&self, job: JobId, limit: usize) -> Result<Vec<Received>, Error> {
        let recs: Vec<Received> = self
            .inner
            .store
            .take(job, limit)?
            .into_iter()
            .map(|(seq, record)| Received { job, seq, record })
            .collect();
        if !recs.is_empty() {
            self.notify_consumed(&[job]);
        }
        Ok(recs)
    }

    /// A consuming read of every record of many jobs, merged in production
    /// order: each job's records are moved out of the store in one call
    /// (what a read then a discard of all of them would do, in half the
    /// calls). If the store fails after some were taken, those are handed
    /// back (the others stay for the next receive, which meets the error
    /// again): what was moved out is never lost.
    fn take_all(&self, sources: &[JobId]) -> Result<Vec<Received>, Error> {
        let mut all = Vec::new();
        let mut taken = Vec::new();
        for &job in sources {
            let recs = match self.inner.store.take(job, usize::MAX) {
                Ok(recs) => recs,
                Err(e) if taken.is_empty() => return Err(e.into()),
                Err(_) => break,
            };
            if !recs.is_empty() {
                taken.push(job);
            }
            all.extend(
                recs.into_iter()
                    .map(|(seq, record)| Received { job, seq, record }),
            );
        }
        all.sort_unstable_by_key(|r| r.seq);
        if !taken.is_empty() {
            self.notify_consumed(&taken);
        }
        Ok(all)
    }

    fn notify_consumed(&self, jobs: &[JobId]) {
        {
            let t = self.inner.lock();
            for cell in jobs.iter().filter_map(|&job| t.cell(job)) {
                cell.bump();
            }
        }
        self.inner.bump();
    }

    /// Removes records from their jobs' caches: for each job, every record up
    /// to the highest sequence number among `records`. For consumers that
    /// receive with `keep` and acknowledge once the records are written out.
    pub fn consume(&self, records: &[Received]) -> Result<(), Error> {
        let mut through: HashMap<JobId, u64> = HashMap::new();
        for r in records {
            let e = through.entry(r.job).or_insert(0);
            *e = (*e).max(r.seq);
        }
        for (&job, &seq) in &through {
            self.inner.store.discard(job, seq)?;
        }
        let jobs: Vec<JobId> = through.into_keys().collect();
        self.notify_consumed(&jobs);
        Ok(())
    }

    /// Follows jobs: records as they come, ending once every job (and child)
    /// is finished and everything was handed out.
    pub fn follow(&self, ids: &[JobId], opts: ReceiveOptions) -> Result<Follow, Error> {
        self.sources(ids, opts.no_recurse)?;
        Ok(Follow {
            session: self.clone(),
            ids: ids.to_vec(),
            opts,
            cursors: HashMap::new(),
            buf: VecDeque::new(),
        })
    }
}

/// The jobs whose records a receive of `ids` reads, each once, in the
/// order first named: a job named twice, or named with its parent (unless
/// `no_recurse`), is read once. Ids not in the table are left out.
fn sources(t: &Table, ids: &[JobId], no_recurse: bool) -> Vec<JobId> {
    let mut all = Vec::new();
    for &id in ids {
        if no_recurse {
            if t.info(id).is_some() {
                all.push(id);
            }
        } else {
            t.with_descendants(id, &mut all);
        }
    }
    // Ids in increasing order (the usual case) cannot repeat.
    if all.windows(2).any(|w| w[0] >= w[1]) {
        let mut seen = HashSet::new();
        all.retain(|&id| seen.insert(id));
    }
    all
}

/// A stream of records from jobs being followed; see [`Session::follow`].
#[derive(Debug)]
pub struct Follow {
    session: Session,
    ids: Vec<JobId>,
    opts: ReceiveOptions,
    cursors: HashMap<JobId, u64>,
    buf: VecDeque<Received>,
}

type Changed<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

impl Follow {
    /// The next record, waiting for one if need be; `None` once the jobs are
    /// finished and drained.
    pub async fn next(&mut self) -> Result<Option<Received>, Error> {
        self.next_batch_inner(1).await.map(|mut v| v.pop())
    }

    /// Up to `max` records, waiting for at least one; empty once the jobs
    /// are finished and drained.
    pub async fn next_batch(&mut self, max: usize) -> Result<Vec<Received>, Error> {
        self.next_batch_inner(max.max(1)).await
    }

    /// Blocking [`next`](Follow::next).
    pub fn next_blocking(&mut self) -> Result<Option<Received>, Error> {
        let session = self.session.clone();
        session.block_on(self.next())
    }

    async fn next_batch_inner(&mut self, max: usize) -> Result<Vec<Received>, Error> {
        loop {
            if !self.buf.is_empty() {
                let n = max.min(self.buf.len());
                return Ok(self.buf.drain(..n).collect());
            }
            // Subscribe and note who is finished before reading: a record
            // emitted before a job finished is then always seen by the read.
            let (sources, mut rxs, all_finished) = {
                let t = self.session.inner.lock();
                let sources = sources(&t, &self.ids, self.opts.no_recurse);
                let rxs: Vec<CellWatch> = sources
                    .iter()
                    .filter_map(|&s| t.cell(s).map(|c| c.watch()))
                    .collect();
                let all_finished = sources
                    .iter()
                    .all(|&s| t.state(s).is_none_or(JobState::is_finished));
                (sources, rxs, all_finished)
            };
            let recs = match sources[..] {
                [only] if !self.opts.keep => self.session.take(only, FOLLOW_RECORDS)?,
                _ => self.session.read_merged(
                    &sources,
                    &self.cursors,
                    FOLLOW_RECORDS,
                    Some(FOLLOW_BYTES),
                )?,
            };
            if !recs.is_empty() {
                for r in &recs {
                    let c = self.cursors.entry(r.job).or_insert(0);
                    *c = (*c).max(r.seq);
                }
                if !self.opts.keep && sources.len() > 1 {
                    self.session.consume(&recs)?;
                }
                self.buf.extend(recs);
                continue;
            }
            if all_finished {
                return Ok(Vec::new());
            }
            wait_any(&mut rxs).await;
        }
    }
}

async fn wait_any(rxs: &mut [CellWatch]) {
    if rxs.is_empty() {
        return;
    }
    let mut futs: Vec<Changed<'_>> = rxs
        .iter_mut()
        .map(|rx| {
            Box::pin(async move {
                // A job removed meanwhile bumps too: wake up and re-check.
                rx.changed().await;
            }) as Changed<'_>
        })
        .collect();
    std::future::poll_fn(|cx| {
        for f in futs.iter_mut() {
            if f.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
        }
        Poll::Pending
    })
    .await
}
