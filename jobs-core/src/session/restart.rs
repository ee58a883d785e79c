//! Running a finished parent's failed children again, in place
//! (`jobctl restart --failed`).
//!
//! A rerun is a new life of the same rows: the children keep their ids,
//! names, items and records, go back to NotStarted and queue behind their
//! parent's throttle again; their `attempts` go on counting. The parent is
//! Running again until they end, and its state is derived from its children
//! once more. The lifecycle's transitions never lead out of a finished
//! state, so these resets are made here, on purpose, and nowhere else.
//!
//! Restarting a job as a new job needs nothing of its own here: it is a
//! [`Session::start`] of the stored spec with [`JobSpec::restarted_from`].

use std::sync::atomic::Ordering;

use super::{Halt, Pool, Retry, Session};
use crate::{Error, JobId, JobInfo, JobSpec, JobState};

impl Session {
    /// Runs again, in place, children of the finished parent `parent`: each
    /// of `children` (a child id with the spec it runs) must be one of its
    /// children and be Failed or Stopped. `throttle`, if given, sets how many
    /// of the parent's children run at once (a parent restored from a store
    /// has lost the limit it started with), and `halt`, if given, its halt
    /// rule (likewise). Returns the rows as they are once the children are
    /// queued.
    pub fn rerun_children(
        &self,
        parent: JobId,
        children: Vec<(JobId, JobSpec)>,
        throttle: Option<usize>,
        halt: Option<Halt>,
    ) -> Result<Vec<JobInfo>, Error> {
        let inner = &self.inner;
        let mut t = inner.lock();
        let pe = t.jobs.get(&parent).ok_or(Error::no_such_job(parent))?;
        if let Some(p) = pe.info.parent {
            return Err(Error::child_job(parent, p));
        }
        if !pe.info.state.is_finished() {
            return Err(Error::not_finished(parent, pe.info.state));
        }
        for (c, _) in &children {
            if !pe.info.children.contains(c) {
                return Err(Error::invalid_input(format!(
                    "job {c} is not a child of job {parent}"
                )));
            }
            match t.state(*c) {
                Some(JobState::Failed | JobState::Stopped) => {}
                Some(s) => {
                    return Err(Error::invalid_input(format!(
                        "job {c} is {s}: only Failed and Stopped children run again"
                    )))
                }
                None => return Err(Error::no_such_job(*c)),
            }
        }
        if children.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(pe) = t.jobs.get_mut(&parent) {
            pe.info.state = JobState::Running;
            pe.info.reason = None;
            pe.info.exit_code = None;
            pe.info.end = None;
            pe.info.has_more_data = true;
            pe.stop_requested = false;
            pe.stop_reason = None;
            pe.halted = None;
            pe.timed_out = None;
            // Its own work is over (a restored parent never ran here): it
            // ends again as soon as its children have.
            pe.returned = Some(Ok(()));
            pe.cell.stop.reset();
            pe.cell.closed.store(false, Ordering::Release);
            if let Some(limit) = throttle {
                pe.children.set_limit(limit.max(1));
            }
            if halt.is_some() {
                pe.halt = halt;
            }
        }
        // It holds a slot of its type's throttle again, which its end frees.
        let type_name = t
            .info(parent)
            .map(|i| i.type_name.clone())
            .unwrap_or_default();
        let pool = t.type_pool(&type_name);
        if let Some(th) = t.throttle(&pool) {
            th.occupy();
        }
        let ids: Vec<JobId> = children.iter().map(|(c, _)| *c).collect();
        for (c, spec) in children {
            let Some(e) = t.jobs.get_mut(&c) else {
                continue;
            };
            e.info.state = JobState::NotStarted;
            e.info.reason = None;
            e.info.exit_code = None;
            e.info.begin = None;
            e.info.end = None;
            e.info.has_more_data = true;
            e.stop_requested = false;
            e.stop_reason = None;
            e.returned = None;
            e.timed_out = None;
            if let Some(timer) = e.timer.take() {
                timer.abort();
            }
            e.timeout = spec.timeout.map(|t| (t, spec.timeout_shown.clone()));
            // "attempt K of M" counts on from the attempts made so far.
            e.retry = (spec.retries > 0 && spec.payload.is_none()).then(|| {
                Box::new(Retry {
                    spec: spec.rerun(),
                    left: spec.retries,
                    total: e.info.attempts + spec.retries + 1,
                    delay: spec.retry_delay,
                })
            });
            e.pending = Some(super::batch::Queued::new(spec));
            *e.cell.exit_code.lock().unwrap_or_else(|p| p.into_inner()) = None;
            e.cell.stop.reset();
            e.cell.closed.store(false, Ordering::Release);
            e.cell.bump();
            if let Some(th) = t.throttle(&Pool::Children(parent)) {
                th.enqueue(c);
            }
        }
        let rows: Vec<JobInfo> = ids
            .iter()
            .chain(std::iter::once(&parent))
            .filter_map(|j| t.info(*j).cloned())
            .collect();
        // The children first, the parent last, as a batch is first written.
        let saved = inner.store.save_jobs(&rows);
        if let Some(pe) = t.jobs.get(&parent) {
            pe.cell.bump();
        }
        inner.pump(&mut t, &Pool::Children(parent));
        let rows = ids
            .iter()
            .chain(std::iter::once(&parent))
            .filter_map(|j| t.info(*j).cloned())
            .collect();
        drop(t);
        inner.bump();
        saved?;
        Ok(rows)
    }
}
