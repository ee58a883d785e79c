//! Suspend and resume (PowerShell's `Suspend-Job` / `Resume-Job`): the
//! session owns the states, the executor pauses the work.
//!
//! A suspend moves a Running job to Suspending, sets its pause (seen by
//! cooperative work through [`StopToken::is_paused`](crate::StopToken::is_paused)),
//! asks its executor to [`suspend`](crate::JobExecutor::suspend), and once
//! that returned marks it Suspended. Resume lifts the pause, asks the
//! executor to [`resume_suspended`](crate::JobExecutor::resume_suspended)
//! and marks the job Running again. Every job of a request is checked
//! before any is changed: a job in another state, or of a type that cannot
//! suspend, refuses the whole request and changes nothing.
//!
//! **Parents.** A parent (a batch, a fan-out over hosts) is suspended by
//! suspending its running children and starting no queued ones while it
//! is Suspending or Suspended; resume undoes both. The other way round, a
//! Running parent whose unfinished children are all Suspended (or still
//! queued, with at least one Suspended) is Suspended itself, and goes back
//! to Running as soon as one of them runs again.
//!
//! **Time limits.** A suspended job's `--timeout` clock pauses: the time
//! it spent Suspending or Suspended does not count, and resume gives the
//! attempt what was left of its limit. (The job's wall-clock `begin` and
//! `end` are unchanged.)
//!
//! **Stop.** A stop of a suspended job lifts the pause, triggers the stop,
//! and asks the executor to resume the work, so that a stopped process
//! group gets its SIGTERM rather than staying stopped forever.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Inner, Pool, Session, Table};
use crate::{Error, JobContext, JobExecutor, JobId, JobInfo, JobState, SuspendError};

/// A job's time-limit clock across suspends: when the running stretch
/// began and how much of the limit it had, and what is left while it is
/// paused.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    /// When the armed timer started, and the time it was armed for.
    armed: Option<(Instant, Duration)>,
    /// While suspended: what is left of the attempt's limit.
    left: Option<Duration>,
}

impl Clock {
    /// The time to arm the timer for: what a suspend left, else the whole
    /// limit. Marks the clock as running from now.
    pub(crate) fn start(&mut self, limit: Duration) -> Duration {
        let d = self.left.take().unwrap_or(limit);
        self.armed = Some((Instant::now(), d));
        d
    }

    /// Stops the clock, keeping what is left.
    fn pause(&mut self) {
        if let Some((began, d)) = self.armed.take() {
            self.left = Some(d.saturating_sub(began.elapsed()));
        }
    }
}

/// A job whose executor is called, with the context it is called with.
struct Call {
    id: JobId,
    executor: Arc<dyn JobExecutor>,
    ctx: JobContext,
}

impl Session {
    /// Suspends jobs: each becomes Suspending, then Suspended once its
    /// executor paused it; a parent's running children are suspended and
    /// its queued ones wait. Jobs already Suspending or Suspended are left
    /// as they are. Refused, changing no job, if any job is not Running
    /// ([`ErrorKind::WrongState`](crate::ErrorKind::WrongState)) or cannot be
    /// suspended ([`ErrorKind::CannotSuspend`](crate::ErrorKind::CannotSuspend),
    /// naming the type). Returns the rows afterwards, in the order asked.
    pub async fn suspend(&self, ids: &[JobId]) -> Result<Vec<JobInfo>, Error> {
        let (calls, parents) = {
            let mut t = self.inner.lock();
            let mut plan = Plan::default();
            for &id in ids {
                plan_suspend(&t, id, &mut plan)?;
            }
            let calls = self.inner.begin_suspend(&mut t, &plan);
            (calls, plan.parents)
        };
        let mut results = Vec::with_capacity(calls.len());
        for call in &calls {
            results.push(call.executor.suspend(&call.ctx).await);
        }
        let mut t = self.inner.lock();
        let mut first_err = None;
        for (call, result) in calls.iter().zip(results) {
            match result {
                Ok(()) => self.inner.settle_suspended(&mut t, call.id),
                Err(e) => {
                    self.inner.undo_suspend(&mut t, call.id);
                    first_err.get_or_insert(Error::cannot_suspend(call.id, e));
                }
            }
        }
        for p in parents {
            let _ = self.inner.transition(&mut t, p, JobState::Suspended);
        }
        for call in &calls {
            self.inner.derive_parent(&mut t, call.id);
        }
        drop(t);
        match first_err {
            Some(e) => Err(e),
            None => self.rows(ids),
        }
    }

    /// Resumes suspended jobs: each goes Running again, and a parent
    /// resumes its suspended children and starts its queued ones. Refused,
    /// changing no job, if any job is not Suspended
    /// ([`ErrorKind::WrongState`](crate::ErrorKind::WrongState)). Returns the
    /// rows afterwards, in the order asked.
    pub async fn resume(&self, ids: &[JobId]) -> Result<Vec<JobInfo>, Error> {
        let (calls, parents) = {
            let t = self.inner.lock();
            let mut plan = Plan::default();
            for &id in ids {
                plan_resume(&t, id, &mut plan)?;
            }
            let calls: Vec<Call> = plan
                .leaves
                .iter()
                .filter_map(|&id| {
                    let e = t.jobs.get(&id)?;
                    e.cell.stop.set_paused(false);
                    Some(Call {
                        id,
                        executor: Arc::clone(&e.executor),
                        ctx: self.inner.context(&e.cell),
                    })
                })
                .collect();
            (calls, plan.parents)
        };
        let mut results = Vec::with_capacity(calls.len());
        for call in &calls {
            results.push(call.executor.resume_suspended(&call.ctx).await);
        }
        let mut t = self.inner.lock();
        let mut first_err = None;
        for (call, result) in calls.iter().zip(results) {
            self.inner.run_again(&mut t, call.id);
            if let Err(e) = result {
                first_err.get_or_insert(Error::cannot_suspend(call.id, e));
            }
        }
        for p in parents {
            self.inner.run_again(&mut t, p);
        }
        for call in &calls {
            self.inner.derive_parent(&mut t, call.id);
        }
        drop(t);
        match first_err {
            Some(e) => Err(e),
            None => self.rows(ids),
        }
    }

    /// At the session's close: lets the work of suspended detached jobs go
    /// on, their rows still Suspended. A process group left stopped by a
    /// host that exits would be an orphaned stopped group, which the
    /// kernel sends SIGHUP (ending a job that does not catch it) and then
    /// SIGCONT; continued first, the job lives on, and the next session
    /// suspends it again as it takes it over.
    pub(super) async fn continue_detached(&self) {
        let calls: Vec<Call> = {
            let t = self.inner.lock();
            t.jobs
                .values()
                .filter(|e| e.info.detached && is_paused(e.info.state))
                .filter(|e| e.info.children.is_empty() && e.executor.can_suspend())
                .map(|e| Call {
                    id: e.info.id,
                    executor: Arc::clone(&e.executor),
                    ctx: self.inner.context(&e.cell),
                })
                .collect()
        };
        for call in calls {
            let _ = call.executor.resume_suspended(&call.ctx).await;
        }
    }

    /// Blocking [`suspend`](Session::suspend).
    pub fn suspend_blocking(&self, ids: &[JobId]) -> Result<Vec<JobInfo>, Error> {
        self.block_on(self.suspend(ids))
    }

    /// Blocking [`resume`](Session::resume).
    pub fn resume_blocking(&self, ids: &[JobId]) -> Result<Vec<JobInfo>, Error> {
        self.block_on(self.resume(ids))
    }

    fn rows(&self, ids: &[JobId]) -> Result<Vec<JobInfo>, Error> {
        ids.iter().map(|&id| self.info(id)).collect()
    }
}

/// What a request changes: the jobs whose executor is called, and the
/// parents whose state follows.
#[derive(Default)]
struct Plan {
    leaves: Vec<JobId>,
    parents: Vec<JobId>,
}

impl Plan {
    fn add_leaf(&mut self, id: JobId) {
        if !self.leaves.contains(&id) {
            self.leaves.push(id);
        }
    }

    fn add_parent(&mut self, id: JobId) {
        if !self.parents.contains(&id) {
            self.parents.push(id);
        }
    }
}

/// Checks that `id` may be suspended and adds what that changes to `plan`.
fn plan_suspend(t: &Table, id: JobId, plan: &mut Plan) -> Result<(), Error> {
    let e = t.jobs.get(&id).ok_or(Error::no_such_job(id))?;
    match e.info.state {
        JobState::Suspending | JobState::Suspended => return Ok(()),
        JobState::Running => {}
        s => {
            return Err(Error::wrong_state(
                id,
                s,
                "only a Running job can be suspended",
            ))
        }
    }
    if e.info.children.is_empty() {
        if !e.executor.can_suspend() {
            return Err(Error::cannot_suspend(
                id,
                SuspendError::unsupported(e.executor.type_name()),
            ));
        }
        plan.add_leaf(id);
        return Ok(());
    }
    plan.add_parent(id);
    for &c in &e.info.children {
        // Children in other states (queued, Disconnected, finished) are
        // left as they are; a queued one waits for the parent's resume.
        if t.state(c) == Some(JobState::Running) {
            plan_suspend(t, c, plan)?;
        }
    }
    Ok(())
}

/// Checks that `id` may be resumed and adds what that changes to `plan`.
fn plan_resume(t: &Table, id: JobId, plan: &mut Plan) -> Result<(), Error> {
    let e = t.jobs.get(&id).ok_or(Error::no_such_job(id))?;
    if e.info.state != JobState::Suspended {
        return Err(Error::wrong_state(
            id,
            e.info.state,
            "only a Suspended job can be resumed",
        ));
    }
    if e.info.children.is_empty() {
        plan.add_leaf(id);
        return Ok(());
    }
    plan.add_parent(id);
    for &c in &e.info.children {
        if t.state(c) == Some(JobState::Suspended) {
            plan_resume(t, c, plan)?;
        }
    }
    Ok(())
}

impl Inner {
    /// Moves the planned jobs to Suspending, pauses their work and their
    /// clocks; returns the executor calls to make.
    fn begin_suspend(self: &Arc<Self>, t: &mut Table, plan: &Plan) -> Vec<Call> {
        for &p in &plan.parents {
            self.pause(t, p);
        }
        plan.leaves
            .iter()
            .filter_map(|&id| {
                self.pause(t, id);
                let e = t.jobs.get(&id)?;
                e.cell.stop.set_paused(true);
                Some(Call {
                    id,
                    executor: Arc::clone(&e.executor),
                    ctx: self.context(&e.cell),
                })
            })
            .collect()
    }

    /// Running to Suspending, with the time-limit clock stopped.
    fn pause(&self, t: &mut Table, id: JobId) {
        if self.transition(t, id, JobState::Suspending).is_err() {
            return;
        }
        if let Some(e) = t.jobs.get_mut(&id) {
            if let Some(timer) = e.timer.take() {
                timer.abort();
            }
            e.clock.pause();
        }
    }

    /// The executor paused the job: Suspended, unless it moved on meanwhile
    /// (stopped, or ended).
    fn settle_suspended(&self, t: &mut Table, id: JobId) {
        if t.state(id) == Some(JobState::Suspending) {
            let _ = self.transition(t, id, JobState::Suspended);
        }
    }

    /// The executor could not pause the job: Running again, as if nothing
    /// was asked.
    fn undo_suspend(self: &Arc<Self>, t: &mut Table, id: JobId) {
        if let Some(e) = t.jobs.get(&id) {
            e.cell.stop.set_paused(false);
        }
        self.run_again(t, id);
    }

    /// Suspending or Suspended to Running, with the clock going on from
    /// where it stopped and, for a parent, its queued children started.
    fn run_again(self: &Arc<Self>, t: &mut Table, id: JobId) {
        if !matches!(
            t.state(id),
            Some(JobState::Suspending | JobState::Suspended)
        ) {
            return;
        }
        if self.transition(t, id, JobState::Running).is_err() {
            return;
        }
        if let Some(e) = t.jobs.get(&id) {
            // A parent paused as a leaf (before it opened children).
            e.cell.stop.set_paused(false);
        }
        self.arm_timeout(t, id);
        self.pump(t, &Pool::Children(id));
    }

    /// A parent's state follows its children's suspends: Running with
    /// every unfinished child Suspended (or queued, one at least
    /// Suspended) makes it Suspended; Suspended with a child running again
    /// makes it Running. Called with the id of a child that changed.
    fn derive_parent(self: &Arc<Self>, t: &mut Table, child: JobId) {
        if let Some(parent) = t.info(child).and_then(|i| i.parent) {
            self.derive_suspension(t, parent);
        }
    }

    /// The rule of [`derive_parent`](Self::derive_parent), for a parent
    /// whose children changed.
    pub(super) fn derive_suspension(self: &Arc<Self>, t: &mut Table, parent: JobId) {
        let Some(pe) = t.jobs.get(&parent) else {
            return;
        };
        let states: Vec<JobState> = pe
            .info
            .children
            .iter()
            .filter_map(|c| t.state(*c))
            .filter(|s| !s.is_finished())
            .collect();
        let any_suspended = states.contains(&JobState::Suspended);
        let all_paused = states
            .iter()
            .all(|s| matches!(s, JobState::Suspended | JobState::NotStarted));
        let any_running = states.iter().any(|s| {
            matches!(
                s,
                JobState::Running | JobState::Blocked | JobState::Disconnected
            )
        });
        match pe.info.state {
            JobState::Running if any_suspended && all_paused => {
                self.pause(t, parent);
                let _ = self.transition(t, parent, JobState::Suspended);
            }
            JobState::Suspended if any_running => self.run_again(t, parent),
            _ => return,
        }
        self.derive_parent(t, parent);
    }

    /// After a stop of a job that was Suspending or Suspended: the stop
    /// already lifted the pause; the executor lets the work go on so it
    /// can end (a stopped process group gets its SIGTERM).
    pub(super) fn continue_stopped(self: &Arc<Self>, t: &Table, id: JobId) {
        let Some(e) = t.jobs.get(&id) else {
            return;
        };
        if !e.info.children.is_empty() || !e.executor.can_suspend() {
            return;
        }
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        self.handle.spawn(async move {
            let _ = executor.resume_suspended(&ctx).await;
        });
    }
}

/// The state a running job of a previous session is taken over in: a
/// suspended one stays Suspended, its pause set again (a detached process
/// group is still stopped; its executor stops it again as it takes over),
/// any other is Running.
pub(super) fn restored_state(was: JobState, cell: &crate::cell::JobCell) -> JobState {
    if is_paused(was) {
        cell.stop.set_paused(true);
        JobState::Suspended
    } else {
        JobState::Running
    }
}

/// Suspending or Suspended: the work is paused, and a parent starts no
/// queued children.
pub(super) fn is_paused(state: JobState) -> bool {
    matches!(state, JobState::Suspending | JobState::Suspended)
}

#[cfg(test)]
mod tests;
