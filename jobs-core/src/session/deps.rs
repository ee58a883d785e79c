//! Dependencies: a job that waits for other jobs before it queues behind
//! its throttle.
//!
//! A waiting job is NotStarted, holds its spec, and sits in no throttle's
//! queue. Whenever one of the jobs it waits for finishes or is removed, the
//! session decides it again (pushed by the change, never polled): it goes on
//! waiting, it queues as any job (every `after` job Completed and every
//! `after_any` job finished or gone), or it ends Failed without running (an
//! `after` job ended Failed or Stopped, or was removed). Ending Failed is a
//! change its own dependents are decided on in turn, down a chain.
//!
//! Ids must name jobs of the table when the job starts, so the graph is
//! acyclic by construction: an edge always points at an older job.
//!
//! # What a restart keeps
//! A waiting job's row names its dependencies (`JobInfo::after`,
//! `after_any`), and a store that keeps specs
//! ([`Store::keeps_waiting_specs`](crate::Store::keeps_waiting_specs))
//! holds its spec, written in the same transaction as its first row. On
//! [`Session::restore`](crate::Session::restore) such a job waits again and
//! is decided against the restored table, so a dependency that finished
//! while no session ran is seen then. The spec is dropped, at once, before
//! the job's work starts: a crash can make a job that was about to start
//! end as one whose session host ended, never run it twice. A job with an
//! in-process payload (a closure) cannot be kept: it ends with its session.
//! A batch is kept with its parent's spec and made again by its caller
//! (`session/waiting_batch.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Entry, Inner, Table};
use crate::{Error, JobId, JobSpec, JobState};

/// What a waiting job does now.
enum Decision {
    /// A job it waits for is not finished yet.
    Wait,
    /// Everything it waits for is decided in its favour: it queues.
    Run,
    /// It never runs: it ends Failed with this reason.
    Fail(String),
}

/// The reason a dependent gets: `dependency 3 (build) failed`.
pub(crate) fn dependency_reason(dep: JobId, name: Option<&str>, what: &str) -> String {
    match name {
        Some(name) => format!("dependency {dep} ({name}) {what}"),
        None => format!("dependency {dep} {what}"),
    }
}

impl Table {
    /// Checks the dependencies of a job about to start under `parent`:
    /// every id must be a job of the table, and none the job's parent or an
    /// ancestor of it (a parent waits for its children, so that would wait
    /// forever).
    pub(super) fn check_dependencies(
        &self,
        spec: &JobSpec,
        parent: Option<JobId>,
    ) -> Result<(), Error> {
        self.check(&spec.after)?;
        self.check(&spec.after_any)?;
        let mut up = parent;
        while let Some(p) = up {
            if spec.after.contains(&p) || spec.after_any.contains(&p) {
                return Err(Error::invalid_input(format!(
                    "a child job cannot wait for its parent job {p}"
                )));
            }
            up = self.info(p).and_then(|i| i.parent);
        }
        Ok(())
    }

    /// Whether the job waits for others now.
    pub(crate) fn is_waiting(&self, id: JobId) -> bool {
        self.jobs.get(&id).is_some_and(|e| e.waiting)
    }

    /// Notes a waiting job under each job it waits for.
    pub(super) fn index_waiting(&mut self, id: JobId) {
        let Some(info) = self.info(id) else {
            return;
        };
        let deps: Vec<JobId> = info.after.iter().chain(&info.after_any).copied().collect();
        for dep in deps {
            let list = self.dependents.entry(dep).or_default();
            if !list.contains(&id) {
                list.push(id);
            }
        }
    }

    /// Ends a job's wait: it leaves the index of every job it waited for.
    fn unindex_waiting(&mut self, id: JobId) {
        let Some(e) = self.jobs.get_mut(&id) else {
            return;
        };
        e.waiting = false;
        let deps: Vec<JobId> = e
            .info
            .after
            .iter()
            .chain(&e.info.after_any)
            .copied()
            .collect();
        for dep in deps {
            if let Some(list) = self.dependents.get_mut(&dep) {
                list.retain(|d| *d != id);
                if list.is_empty() {
                    self.dependents.remove(&dep);
                }
            }
        }
    }

    /// The jobs that wait for `id`.
    pub(super) fn dependents_of(&self, id: JobId) -> Vec<JobId> {
        self.dependents.get(&id).cloned().unwrap_or_default()
    }

    fn decide(&self, id: JobId) -> Decision {
        let Some(e) = self.jobs.get(&id).filter(|e| e.waiting) else {
            return Decision::Wait;
        };
        let mut wait = false;
        for dep in &e.info.after {
            match self.jobs.get(dep) {
                None => return Decision::Fail(dependency_reason(*dep, None, "was removed")),
                Some(d) => {
                    let what = match d.info.state {
                        _ if d.removing && d.info.state.is_finished() => "was removed",
                        JobState::Completed => continue,
                        JobState::Failed => "failed",
                        JobState::Stopped => "was stopped",
                        _ => {
                            wait = true;
                            continue;
                        }
                    };
                    return Decision::Fail(dependency_reason(*dep, Some(&d.info.name), what));
                }
            }
        }
        let unfinished = |dep: &JobId| {
            self.jobs
                .get(dep)
                .is_some_and(|d| !d.info.state.is_finished())
        };
        if wait || e.info.after_any.iter().any(unfinished) {
            Decision::Wait
        } else {
            Decision::Run
        }
    }
}

impl Entry {
    /// Whether the job waits with a spec its store keeps, so that it goes
    /// on waiting after the session ends.
    pub(super) fn waits_durably(&self, store: &dyn crate::Store) -> bool {
        self.waiting
            && store.keeps_waiting_specs()
            && self.pending.as_ref().is_some_and(|q| !q.has_payload())
            && self.info.parent.is_none()
    }
}

impl Inner {
    /// Decides the jobs that wait for `id`, which just finished or is
    /// being removed.
    pub(super) fn settle_dependents(self: &Arc<Self>, t: &mut Table, id: JobId) {
        if t.dependents.contains_key(&id) {
            let ids = t.dependents_of(id);
            self.settle(t, ids);
        }
    }

    /// Decides waiting jobs: each one queues, ends Failed (and then its own
    /// dependents are decided), or goes on waiting. A worklist rather than
    /// recursion: a chain of ten thousand jobs fails in one loop.
    pub(super) fn settle(self: &Arc<Self>, t: &mut Table, mut todo: Vec<JobId>) {
        while let Some(id) = todo.pop() {
            match t.decide(id) {
                Decision::Wait => {}
                // A closing session starts nothing: the job waits again in
                // the next one.
                Decision::Run if self.closing.load(Ordering::Acquire) => {}
                Decision::Run => {
                    t.unindex_waiting(id);
                    let Some(pool) = t.pool_of(id) else {
                        continue;
                    };
                    if let Some(throttle) = t.throttle(&pool) {
                        throttle.enqueue(id);
                    }
                    self.pump(t, &pool);
                }
                Decision::Fail(reason) => {
                    self.fail_waiting(t, id, reason);
                    todo.extend(t.dependents_of(id));
                }
            }
        }
    }

    /// Ends a waiting job Failed without running it; its children (a
    /// batch's, queued behind it) end Stopped.
    fn fail_waiting(self: &Arc<Self>, t: &mut Table, id: JobId, reason: String) {
        t.unindex_waiting(id);
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        e.pending = None;
        e.info.reason = Some(reason);
        let children = e.info.children.clone();
        let parent = e.info.parent;
        for c in children {
            self.request_stop_locked(t, c);
        }
        let _ = self.transition(t, id, JobState::Failed);
        if let Some(p) = parent {
            self.try_finalize(t, p);
        }
    }

    /// Takes a job out of waiting because it is stopped: it leaves the index.
    pub(super) fn stop_waiting(&self, t: &mut Table, id: JobId) {
        if t.is_waiting(id) {
            t.unindex_waiting(id);
        }
    }
}
