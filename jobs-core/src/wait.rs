//! `wait`: until all or any of some jobs are done, or a timeout passes.

use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, JobId, JobInfo, Session};

/// Whether [`Session::wait`] waits for every job or the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// Until every job is done.
    #[default]
    All,
    /// Until at least one job is done.
    Any,
}

/// What [`Session::wait`] found.
#[derive(Clone, Debug)]
pub struct WaitOutcome {
    /// The jobs that are done (finished, Blocked, Suspended or Disconnected).
    pub done: Vec<JobInfo>,
    /// Whether the timeout passed first (the jobs keep running).
    pub timed_out: bool,
}

impl Session {
    /// Waits until all (or any) of `ids` are finished, Blocked, Suspended or
    /// Disconnected; no ids means every top-level job. A timeout leaves the
    /// jobs running; a zero timeout checks once and returns. Event-driven:
    /// nothing polls.
    pub async fn wait(
        &self,
        ids: &[JobId],
        mode: WaitMode,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let ids: Vec<JobId> = {
            let t = self.inner.lock();
            if ids.is_empty() {
                t.jobs
                    .values()
                    .filter(|e| e.info.parent.is_none())
                    .map(|e| e.info.id)
                    .collect()
            } else {
                for id in ids {
                    if !t.jobs.contains_key(id) {
                        return Err(Error::NoSuchJob(*id));
                    }
                }
                ids.to_vec()
            }
        };
        // Jobs not yet done; each wake-up re-checks only these, by state
        // alone, so waiting on N jobs costs O(N) overall, not O(N) per event.
        let mut pending: Vec<JobId> = ids.clone();
        let mut any_done = false;
        loop {
            let mut rx = self.inner.changed.subscribe();
            {
                let t = self.inner.lock();
                pending.retain(|id| match t.jobs.get(id) {
                    Some(e) if e.info.state.is_done_for_wait() => {
                        any_done = true;
                        false
                    }
                    Some(_) => true,
                    // Removed while waited for: nothing left to wait on.
                    None => false,
                });
            }
            let satisfied = match mode {
                WaitMode::All => pending.is_empty(),
                WaitMode::Any => any_done || ids.is_empty(),
            };
            let timed_out = !satisfied && deadline.is_some_and(|d| Instant::now() >= d);
            if satisfied || timed_out {
                let t = self.inner.lock();
                let done = ids
                    .iter()
                    .filter_map(|id| self.inner.snapshot(&t, *id))
                    .filter(|info| info.state.is_done_for_wait())
                    .collect();
                return Ok(WaitOutcome { done, timed_out });
            }
            match deadline {
                Some(d) => {
                    // On timeout the loop re-checks once and reports.
                    let _ = tokio::time::timeout_at(d, rx.changed()).await;
                }
                None => {
                    let _ = rx.changed().await;
                }
            }
        }
    }

    /// Blocking [`wait`](Session::wait), for programs without a runtime.
    pub fn wait_blocking(
        &self,
        ids: &[JobId],
        mode: WaitMode,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        self.block_on(self.wait(ids, mode, timeout))
    }

    /// Waits until one job is finished (not merely Blocked).
    pub async fn wait_finished(&self, id: JobId) -> Result<JobInfo, Error> {
        let cell = {
            let t = self.inner.lock();
            std::sync::Arc::clone(&t.jobs.get(&id).ok_or(Error::NoSuchJob(id))?.cell)
        };
        loop {
            let mut rx = cell.changed.subscribe();
            {
                let t = self.inner.lock();
                match self.inner.snapshot(&t, id) {
                    Some(info) if info.state.is_finished() => return Ok(info),
                    Some(_) => {}
                    None => return Err(Error::NoSuchJob(id)),
                }
            }
            if rx.changed().await.is_err() {
                return self.info(id);
            }
        }
    }
}
