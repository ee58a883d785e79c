//! `wait`: until all or any of some jobs are done, or a timeout passes.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::{Error, JobId, JobInfo, JobState, Session};

/// Whether [`Session::wait`] waits for every job or the first one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitMode {
    /// Until every job is done.
    #[default]
    All,
    /// Until at least one job is done.
    Any,
}

/// What counts as done for [`Session::wait_until`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WaitUntil {
    /// Finished, or Blocked, Suspended or Disconnected (as `Wait-Job`).
    #[default]
    Done,
    /// Finished only: Completed, Failed or Stopped (`Wait-Job -Force`).
    Finished,
}

impl WaitUntil {
    fn done(self, state: JobState) -> bool {
        match self {
            WaitUntil::Done => state.is_done_for_wait(),
            WaitUntil::Finished => state.is_finished(),
        }
    }
}

/// What [`Session::wait`] found.
#[derive(Clone, Debug)]
pub struct WaitOutcome {
    /// The jobs that are done (finished, Blocked, Suspended or
    /// Disconnected; finished only with [`WaitUntil::Finished`]).
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
        self.wait_until(ids, mode, WaitUntil::Done, timeout).await
    }

    /// [`wait`](Session::wait), with what counts as done: with
    /// [`WaitUntil::Finished`] a Blocked, Suspended or Disconnected job is
    /// waited for until it finishes.
    pub async fn wait_until(
        &self,
        ids: &[JobId],
        mode: WaitMode,
        until: WaitUntil,
        timeout: Option<Duration>,
    ) -> Result<WaitOutcome, Error> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let ids: Vec<JobId> = {
            let t = self.inner.lock();
            if ids.is_empty() {
                t.top_level()
            } else {
                t.check(ids)?;
                ids.to_vec()
            }
        };
        if mode == WaitMode::All {
            // One job at a time, each on its own change channel: waiting on
            // N jobs costs O(N) overall, whatever else the session does. The
            // jobs already done are passed over under one lock.
            let mut next = 0;
            loop {
                let waiting_on = {
                    let t = self.inner.lock();
                    while ids
                        .get(next)
                        .is_some_and(|&id| t.state(id).is_none_or(|s| until.done(s)))
                    {
                        next += 1;
                    }
                    match ids.get(next).and_then(|&id| t.cell(id)) {
                        // Subscribed under the lock: a change after the
                        // look above wakes it.
                        Some(cell) => cell.watch(),
                        None => break,
                    }
                };
                let mut rx = waiting_on;
                if !changed_before(rx.changed(), deadline).await {
                    return Ok(self.outcome(&ids, until, true));
                }
            }
            return Ok(self.outcome(&ids, until, false));
        }
        loop {
            let mut rx = crate::cell::subscribe(&self.inner.changed);
            let any_done = ids.is_empty() || {
                let t = self.inner.lock();
                ids.iter()
                    .any(|&id| t.state(id).is_some_and(|s| until.done(s)))
            };
            if any_done {
                return Ok(self.outcome(&ids, until, false));
            }
            let changed = async {
                // The sender lives as long as the session.
                let _ = rx.changed().await;
            };
            if !changed_before(changed, deadline).await {
                return Ok(self.outcome(&ids, until, true));
            }
        }
    }

    fn outcome(&self, ids: &[JobId], until: WaitUntil, timed_out: bool) -> WaitOutcome {
        let t = self.inner.lock();
        let mut done = Vec::with_capacity(ids.len());
        done.extend(
            ids.iter()
                .filter_map(|&id| t.info(id))
                .filter(|info| until.done(info.state))
                .map(|info| self.inner.snapshot_of(&t, info)),
        );
        WaitOutcome { done, timed_out }
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
            Arc::clone(t.cell(id).ok_or(Error::no_such_job(id))?)
        };
        loop {
            let mut rx = cell.watch();
            {
                let t = self.inner.lock();
                match self.inner.snapshot(&t, id) {
                    Some(info) if info.state.is_finished() => return Ok(info),
                    Some(_) => {}
                    None => return Err(Error::no_such_job(id)),
                }
            }
            rx.changed().await;
        }
    }
}

/// Waits for a change; `false` if the deadline passed first.
async fn changed_before(
    changed: impl std::future::Future<Output = ()>,
    deadline: Option<Instant>,
) -> bool {
    match deadline {
        Some(d) => {
            if Instant::now() >= d {
                return false;
            }
            tokio::time::timeout_at(d, changed).await.is_ok()
        }
        None => {
            changed.await;
            true
        }
    }
}
