//! A job's life in the session: it is queued behind its throttle, launched
//! as a task that catches panics, moves through the lifecycle's states, and
//! ends once its `run` returned and its children finished, freeing its
//! throttle slot for the next.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::Poll;
use std::time::SystemTime;

use tokio::runtime::Handle;
use uuid::Uuid;

use super::{Entry, Halt, HaltWhen, Inner, Pool, Retry, Table};
use crate::cell::JobCell;
use crate::context::JobHost;
use crate::store::RowChange;
use crate::throttle::Throttle;
use crate::{Error, JobContext, JobFailure, JobId, JobInfo, JobSpec, JobState, SharedStr};

impl Inner {
    pub(crate) fn start_job(
        self: &Arc<Self>,
        spec: JobSpec,
        parent: Option<JobId>,
    ) -> Result<JobId, Error> {
        self.start_job_saving(spec, parent, true, true)
    }

    /// Starts a job that waits for others without deciding it yet: a
    /// batch's parent, which must not end before its children exist.
    /// [`release_waiting`](Inner::release_waiting) decides it.
    pub(crate) fn start_job_held(self: &Arc<Self>, spec: JobSpec) -> Result<JobId, Error> {
        self.start_job_saving(spec, None, true, false)
    }

    /// Decides a job started by [`start_job_held`](Inner::start_job_held).
    pub(crate) fn release_waiting(self: &Arc<Self>, id: JobId) {
        let mut t = self.lock();
        if t.is_waiting(id) {
            t.index_waiting(id);
            self.settle(&mut t, vec![id]);
        }
        drop(t);
        self.bump();
    }

    /// A batch's child: neither its row nor its parent's is written here;
    /// [`save_batch`](Self::save_batch) writes them all in one go.
    pub(crate) fn start_child_of_batch(
        self: &Arc<Self>,
        spec: JobSpec,
        parent: JobId,
    ) -> Result<JobId, Error> {
        self.start_job_saving(spec, Some(parent), false, true)
    }

    /// Writes the rows of a batch's parent and children. Each child's row
    /// was saved soon as it was made (with its event): the store writes
    /// those with its next batches, and at the latest with the parent's row
    /// (see [`Store::save_job_soon`](crate::Store::save_job_soon)), so
    /// that no child row is encoded or written twice.
    pub(crate) fn save_batch(&self, id: JobId) -> Result<(), Error> {
        // The parent last: a crash before it keeps children no parent names
        // (the restore fails them as ended with the session), never the
        // other way round.
        let parent = self.lock().jobs.get(&id).map(|e| e.info.clone());
        if let Some(p) = parent {
            self.store.save_job(&p)?;
        }
        Ok(())
    }

    /// Gives a batch's parent its halt rule.
    pub(crate) fn set_halt(&self, id: JobId, halt: Halt) {
        if let Some(e) = self.lock().jobs.get_mut(&id) {
            e.halt = Some(halt);
        }
    }

    /// Stops what a batch's halt rule says once enough children failed:
    /// the queued children (Stopped, never run) and with `now` the running
    /// ones too, with the reason `halted after N failures`.
    fn check_halt(self: &Arc<Self>, t: &mut Table, parent: JobId) {
        let Some(pe) = t.jobs.get(&parent) else {
            return;
        };
        let Some(halt) = pe.halt.filter(|_| pe.halted.is_none()) else {
            return;
        };
        let failed = pe
            .info
            .children
            .iter()
            .filter(|c| t.state(**c) == Some(JobState::Failed))
            .count();
        if failed < halt.fail {
            return;
        }
        let children = pe.info.children.clone();
        let reason = format!("halted after {failed} failures");
        if let Some(pe) = t.jobs.get_mut(&parent) {
            pe.halted = Some(reason.clone());
        }
        for c in children {
            let Some(ce) = t.jobs.get_mut(&c) else {
                continue;
            };
            let queued = ce.info.state == JobState::NotStarted && ce.pending.is_some();
            if queued {
                ce.info.reason = Some(reason.clone());
            } else if halt.when == HaltWhen::Now && !ce.info.state.is_finished() {
                ce.stop_reason = Some(reason.clone());
            } else {
                continue;
            }
            self.request_stop_locked(t, c);
        }
    }

    fn start_job_saving(
        self: &Arc<Self>,
        spec: JobSpec,
        parent: Option<JobId>,
        save_rows: bool,
        decide: bool,
    ) -> Result<JobId, Error> {
        if spec.throttle == Some(0) || spec.child_throttle == Some(0) {
            return Err(Error::invalid_input("a throttle limit must be at least 1"));
        }
        let mut spec = spec;
        unique(&mut spec.after);
        unique(&mut spec.after_any);
        let waits = spec.has_dependencies();
        let mut t = self.lock();
        if waits {
            t.check_dependencies(&spec, parent)?;
        }
        let executor = match (spec.type_name.is_empty(), parent) {
            (true, Some(p)) => Arc::clone(&t.jobs.get(&p).ok_or(Error::no_such_job(p))?.executor),
            _ => self.executor(&spec.type_name)?,
        };
        if let Some(p) = parent {
            let pe = t.jobs.get(&p).ok_or(Error::no_such_job(p))?;
            if pe.info.state.is_finished() || pe.stop_requested {
                return Err(Error::not_finished(p, pe.info.state));
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let info = JobInfo {
            id,
            instance_id: spec.instance_id.unwrap_or_else(new_instance_id),
            name: spec
                .name
                .as_deref()
                .map_or_else(|| super::interned::default_name(id), SharedStr::from),
            type_name: t.names.get(executor.type_name()),
            state: JobState::NotStarted,
            reason: None,
            has_more_data: true,
            location: match &spec.location {
                Some(l) => t.names.get(l),
                None => t.names.get_owned(executor.location(&spec)),
            },
            command: SharedStr::from(spec.command.as_str()),
            begin: None,
            end: None,
            exit_code: None,
            parent,
            children: Vec::new(),
            detached: spec.detached,
            // A spec made again at launch (`JobSpec::make`) gives the row
            // what it shows rather than a copy: a queued child of a large
            // batch then holds it once.
            item: match spec.make {
                Some(_) => spec.item.take(),
                None => spec.item.clone(),
            },
            attempts: 0,
            after: spec.after.clone(),
            after_any: spec.after_any.clone(),
            restarted_from: spec.restarted_from,
        };
        if spec.make.is_some() {
            spec.name = None;
            spec.location = None;
            spec.command = String::new();
        }
        // Written at once: the caller gets the id next, and a job it was
        // told about must be there after a crash (as ended with its host,
        // or, waiting with a spec the store keeps, still waiting).
        // Its creation is an event, written with the row. A batch's child
        // rides with the store's next batch instead, which writes it by the
        // time its parent's row is, before the caller hears of the batch
        // (see `save_batch`).
        let kept = if waits && parent.is_none() {
            super::waiting_batch::stored(&spec)
        } else {
            None
        };
        let change = match (&kept, save_rows) {
            (Some(kept), true) => RowChange::SaveWaiting(&info, kept),
            (None, true) => RowChange::Save(&info),
            (_, false) => RowChange::SaveSoon(&info),
        };
        self.record_change(change, &info, None)?;
        let pool = match parent {
            Some(p) => Pool::Children(p),
            None => t.type_pool(executor.type_name()),
        };
        if parent.is_none() {
            Self::apply_type_throttle(&mut t, &pool, &spec, executor.as_ref());
        }
        let cell = Arc::new(JobCell::new(id, info.instance_id));
        let mut entry = Entry::for_spec(info, cell, executor, spec);
        entry.waiting = waits;
        t.jobs.insert(id, Box::new(entry));
        if let Some(pe) = parent.and_then(|p| t.jobs.get_mut(&p)) {
            pe.info.children.push(id);
            if save_rows {
                let _ = self.store.save_job(&pe.info);
            }
            pe.cell.bump();
        }
        if waits {
            if decide {
                t.index_waiting(id);
                self.settle(&mut t, vec![id]);
            }
        } else if let Some(reason) = parent
            .and_then(|p| t.jobs.get(&p))
            .and_then(|pe| pe.halted.clone())
        {
            // A child made after its batch halted never runs.
            if let Some(e) = t.jobs.get_mut(&id) {
                e.info.reason = Some(reason);
            }
            self.request_stop_locked(&mut t, id);
        } else {
            if let Some(throttle) = t.throttle(&pool) {
                throttle.enqueue(id);
            }
            self.pump(&mut t, &pool);
        }
        drop(t);
        self.bump();
        Ok(id)
    }

    /// Sets the type's throttle limit from a top-level job's spec (as
    /// PowerShell's `-ThrottleLimit`), or from the executor's default the
    /// first time the type is used.
    pub(super) fn apply_type_throttle(
        t: &mut Table,
        pool: &Pool,
        spec: &JobSpec,
        executor: &dyn crate::JobExecutor,
    ) {
        let Some(throttle) = t.throttle(pool) else {
            return;
        };
        match (spec.throttle, throttle.limit()) {
            (Some(limit), _) => throttle.set_limit(limit),
            (None, None) => {
                if let Some(limit) = executor.default_throttle() {
                    throttle.set_limit(limit.max(1));
                }
            }
            (None, Some(_)) => {}
        }
    }

    /// Launches the jobs queued behind a throttle while it allows. A
    /// parent's children wait until the parent itself was launched (it may
    /// be waiting for other jobs, or queued behind its own throttle).
    pub(super) fn pump(self: &Arc<Self>, t: &mut Table, pool: &Pool) {
        if let Pool::Children(p) = pool {
            if t.jobs
                .get(p)
                .is_some_and(|pe| pe.pending.is_some() || super::suspend::is_paused(pe.info.state))
            {
                return;
            }
        }
        while let Some(id) = t.throttle(pool).and_then(Throttle::next) {
            self.launch(t, id);
        }
    }

    pub(super) fn context(self: &Arc<Self>, cell: &Arc<JobCell>) -> JobContext {
        JobContext {
            cell: Arc::clone(cell),
            host: Arc::downgrade(self) as Weak<dyn JobHost>,
            store: Arc::clone(&self.store),
            seq: Arc::clone(&self.seq),
        }
    }

    fn launch(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        let Some(spec) = e.pending.take().map(super::batch::Queued::into_spec) else {
            return;
        };
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        // More than 1 for a child run again in place (`restart --failed`).
        e.info.attempts += 1;
        if e.info.has_dependencies() && e.info.parent.is_none() {
            // Before the work starts: a restore must not run it again.
            if let Err(err) = self.store.forget_waiting_spec(id) {
                e.info.reason = Some(format!("cannot start the job: {err}"));
                let _ = self.transition(t, id, JobState::Failed);
                self.settle_dependents(t, id);
                self.release_slot(t, id);
                return;
            }
        }
        if !executor.reports_start() && self.transition(t, id, JobState::Running).is_err() {
            return;
        }
        self.launch_run(t, id, executor, ctx, spec);
        // Its children may have queued while it waited.
        self.pump(t, &Pool::Children(id));
    }

    pub(super) fn spawn_resume(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get(&id) else {
            return;
        };
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        let info = e.info.clone();
        t.launches.push(Launch {
            id,
            executor,
            ctx,
            work: Work::Resume(info),
        });
    }

    /// Hands a launched job's work to the runtime (the table unlocked), as
    /// a task that reports the outcome to the session. The work is polled
    /// in place, each poll (and its making, and its drop) guarded against a
    /// panic so that a panic fails that job only: one task per job, no
    /// hand-off. The task holds what the work is made of and polls the
    /// work through the executor's box: no future is held twice, and the
    /// task stays small, quick to allocate and to move.
    pub(super) fn spawn_launch(self: &Arc<Self>, launch: Launch) {
        let Launch {
            id,
            executor,
            ctx,
            work,
        } = launch;
        let weak = Arc::downgrade(self);
        // In place only on a thread outside any runtime (asked first: the
        // daemon's starts never ask the executor): a runtime's own thread
        // hands the task to itself without waking another.
        let in_place = Handle::try_current().is_err()
            && matches!(&work, Work::Run(spec)
                if spec.make.is_none() && executor.starts_in_place(spec));
        let task = async move {
            let made = std::panic::catch_unwind(AssertUnwindSafe(|| match work {
                Work::Run(spec) => spec.made().map(|spec| executor.run(spec, ctx)),
                Work::Resume(info) => Ok(executor.resume(info, ctx)),
            }));
            let outcome = match made {
                Ok(Ok(mut run)) => {
                    let polled = std::future::poll_fn(|cx| {
                        match std::panic::catch_unwind(AssertUnwindSafe(|| run.as_mut().poll(cx))) {
                            Ok(Poll::Pending) => Poll::Pending,
                            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
                            Err(panic) => Poll::Ready(Err(panic)),
                        }
                    })
                    .await;
                    // A future that panicked may panic again as it is dropped.
                    let dropped = std::panic::catch_unwind(AssertUnwindSafe(|| drop(run)));
                    match (polled, dropped) {
                        (Ok(r), Ok(())) => Ok(r),
                        (Err(panic), _) | (Ok(_), Err(panic)) => Err(panic),
                    }
                }
                Ok(Err(failure)) => Ok(Err(failure)),
                Err(panic) => Err(panic),
            };
            let result = outcome.unwrap_or_else(|panic| Err(JobFailure::panicked(panic.as_ref())));
            if let Some(inner) = weak.upgrade() {
                inner.run_returned(id, result);
            }
        };
        if !in_place {
            self.handle.spawn(task);
            return;
        }
        // The first step here, in the runtime's context; the rest goes to
        // the runtime when something wakes it.
        let _entered = self.handle.enter();
        super::in_place::start(self.handle.clone(), Box::pin(task));
    }

    /// Moves a job to a new state if the lifecycle allows, stamping times,
    /// saving the row and waking waiters.
    pub(crate) fn transition(&self, t: &mut Table, id: JobId, to: JobState) -> Result<(), Error> {
        let e = t.jobs.get_mut(&id).ok_or(Error::no_such_job(id))?;
        let from = e.info.state;
        if from == to {
            return Ok(());
        }
        if !from.can_transition_to(to) {
            return Err(Error::illegal_transition(id, from, to));
        }
        e.info.state = to;
        let now = SystemTime::now();
        if to == JobState::Running && e.info.begin.is_none() {
            e.info.begin = Some(now);
        }
        if to.is_finished() {
            e.info.end = Some(now);
            if e.info.begin.is_none() {
                e.info.begin = Some(now);
            }
            e.cell.closed.store(true, Ordering::Release);
        }
        // A finished row is written at once; a live state may ride with the
        // store's next batch.
        let change = if to.is_finished() {
            RowChange::Save(&e.info)
        } else {
            RowChange::SaveSoon(&e.info)
        };
        let save = self.record_change(change, &e.info, Some(from));
        e.cell.bump();
        let parent = e.info.parent;
        if let Some(p) = parent.and_then(|p| t.jobs.get_mut(&p)) {
            p.plain_children &= super::batch::plain(to);
            p.cell.bump();
        }
        self.bump();
        save
    }

    pub(crate) fn set_running(&self, id: JobId) -> Result<(), Error> {
        let mut t = self.lock();
        match t.jobs.get(&id).map(|e| (e.info.state, e.stop_requested)) {
            None => Err(Error::no_such_job(id)),
            Some((JobState::NotStarted, false)) => self.transition(&mut t, id, JobState::Running),
            Some(_) => Ok(()),
        }
    }

    pub(crate) fn set_location(&self, id: JobId, location: String) -> Result<(), Error> {
        let mut t = self.lock();
        let e = t.jobs.get_mut(&id).ok_or(Error::no_such_job(id))?;
        if e.info.location == location {
            return Ok(());
        }
        e.info.location = location.into();
        let saved = self.store.save_job_soon(&e.info);
        e.cell.bump();
        drop(t);
        self.bump();
        saved.map_err(Error::from)
    }

    pub(crate) fn set_blocked(&self, id: JobId, blocked: bool) -> Result<(), Error> {
        let mut t = self.lock();
        let to = if blocked {
            JobState::Blocked
        } else {
            JobState::Running
        };
        self.transition(&mut t, id, to)?;
        if let Some(p) = t.jobs.get(&id).and_then(|e| e.info.parent) {
            self.derive_running_state(&mut t, p);
        }
        Ok(())
    }

    pub(crate) fn set_disconnected(&self, id: JobId, disconnected: bool) -> Result<(), Error> {
        let mut t = self.lock();
        // A suspended job that connects again stays suspended: its work is
        // still paused there.
        if !disconnected && t.state(id).is_some_and(super::suspend::is_paused) {
            return Ok(());
        }
        let to = if disconnected {
            JobState::Disconnected
        } else {
            JobState::Running
        };
        self.transition(&mut t, id, to)?;
        if let Some(p) = t.jobs.get(&id).and_then(|e| e.info.parent) {
            self.derive_running_state(&mut t, p);
        }
        Ok(())
    }

    /// A running parent is Blocked while any child is Blocked, else
    /// Disconnected while any child is Disconnected and none Failed.
    fn derive_running_state(&self, t: &mut Table, parent: JobId) {
        let Some(pe) = t.jobs.get(&parent) else {
            return;
        };
        let has = |s: JobState| {
            pe.info
                .children
                .iter()
                .any(|c| t.jobs.get(c).map(|e| e.info.state) == Some(s))
        };
        let want = if has(JobState::Blocked) {
            JobState::Blocked
        } else if has(JobState::Disconnected) && !has(JobState::Failed) {
            JobState::Disconnected
        } else {
            JobState::Running
        };
        let from = pe.info.state;
        if from == want
            || !matches!(
                from,
                JobState::Running | JobState::Blocked | JobState::Disconnected
            )
        {
            return;
        }
        // Blocked and Disconnected pass through Running.
        if from != JobState::Running {
            let _ = self.transition(t, parent, JobState::Running);
        }
        if want != JobState::Running {
            let _ = self.transition(t, parent, want);
        }
    }

    pub(crate) fn children_finished(&self, id: JobId) -> bool {
        let t = self.lock();
        t.jobs.get(&id).is_none_or(|e| {
            e.info
                .children
                .iter()
                .all(|c| t.jobs.get(c).is_none_or(|ce| ce.info.state.is_finished()))
        })
    }

    fn run_returned(self: &Arc<Self>, id: JobId, result: Result<(), JobFailure>) {
        let mut t = self.lock();
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        let timed_out = e.timed_out.is_some();
        // A timed-out attempt is a failure; a user's stop is not.
        if (timed_out || (result.is_err() && !e.stop_requested))
            && e.info.state != JobState::Stopping
            && e.info.children.is_empty()
        {
            if let Some(retry) = e.retry.as_mut().filter(|r| r.left > 0) {
                retry.left -= 1;
                let spec = retry.spec.rerun();
                let (total, delay) = (retry.total, retry.delay);
                *e.cell.exit_code.lock().unwrap_or_else(|p| p.into_inner()) = None;
                e.timed_out = None;
                e.stop_requested = false;
                e.cell.stop.reset();
                if let Some(timer) = e.timer.take() {
                    timer.abort();
                }
                match delay {
                    None => self.start_attempt(&mut t, id, spec, total),
                    Some(delay) => self.start_attempt_after(&t, id, spec, total, delay),
                }
                return;
            }
        }
        // Whatever the outcome, no record is accepted once `run` is over.
        e.cell.closed.store(true, Ordering::Release);
        if let Some(msg) = e
            .cell
            .store_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            e.returned = Some(Err(JobFailure::new(msg)));
        } else {
            e.returned = Some(result);
        }
        let failed = matches!(e.returned, Some(Err(_))) && !e.stop_requested && !timed_out;
        let children: Vec<JobId> = e.info.children.clone();
        if failed {
            // A parent whose own work failed takes its children down with it.
            for c in children {
                self.request_stop_locked(&mut t, c);
            }
        }
        self.try_finalize(&mut t, id);
    }

    /// Starts another attempt of a job whose last one failed, announcing it
    /// with an information record `attempt K of M`.
    fn start_attempt(self: &Arc<Self>, t: &mut Table, id: JobId, spec: JobSpec, total: u32) {
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        e.info.attempts += 1;
        let attempt = e.info.attempts;
        let _ = self.store.save_job_soon(&e.info);
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        ctx.information(format!("attempt {attempt} of {total}"));
        self.launch_run(t, id, executor, ctx, spec);
    }

    /// [`start_attempt`](Self::start_attempt) once `delay` passed. The job
    /// stays Running meanwhile; a stop during the wait ends the retries at
    /// once (the job then ends Stopped, as its `run` had returned). The task
    /// holds the session weakly, as a timeout's does.
    fn start_attempt_after(
        self: &Arc<Self>,
        t: &Table,
        id: JobId,
        spec: JobSpec,
        total: u32,
        delay: std::time::Duration,
    ) {
        let Some(stop) = t.cell(id).map(|c| c.stop.clone()) else {
            return;
        };
        let weak = Arc::downgrade(self);
        self.handle.spawn(async move {
            let stopped = tokio::select! {
                () = tokio::time::sleep(delay) => false,
                () = stop.stopped() => true,
            };
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let mut t = inner.lock();
            let stop_requested = t.jobs.get(&id).map(|e| e.stop_requested);
            match stop_requested {
                None => {}
                Some(false) if !stopped => inner.start_attempt(&mut t, id, spec, total),
                Some(_) => {
                    drop(t);
                    inner.run_returned(id, Ok(()));
                }
            }
        });
    }

    /// Gives a job its final state once `run` returned and all its children
    /// finished; then frees its throttle slot and lets the next one start.
    pub(super) fn try_finalize(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get(&id) else {
            return;
        };
        let Some(returned) = e.returned.clone() else {
            return;
        };
        if e.info.state.is_finished() || super::batch::last_child_runs(t, e) {
            return;
        }
        let mut child_failed: Option<(JobId, Option<String>)> = None;
        let mut child_stopped = false;
        for c in &e.info.children {
            match t
                .jobs
                .get(c)
                .map(|ce| (ce.info.state, ce.info.reason.clone()))
            {
                Some((s, _)) if !s.is_finished() => return,
                Some((JobState::Failed, reason)) => {
                    child_failed.get_or_insert((*c, reason));
                }
                Some((JobState::Stopped, _)) => child_stopped = true,
                _ => {}
            }
        }
        let n_failed = e
            .info
            .children
            .iter()
            .filter(|c| t.jobs.get(c).map(|ce| ce.info.state) == Some(JobState::Failed))
            .count();
        let exit_code = *e.cell.exit_code.lock().unwrap_or_else(|p| p.into_inner());
        let (state, reason, code) = match returned {
            _ if e.timed_out.is_some() => (JobState::Failed, e.timed_out.clone(), exit_code),
            _ if e.stop_requested => {
                let reason = e.stop_reason.clone().or(returned.err().map(|f| f.reason));
                (JobState::Stopped, reason, exit_code)
            }
            Err(f) => (JobState::Failed, Some(f.reason), f.exit_code.or(exit_code)),
            Ok(()) => match child_failed {
                Some((c, r)) => {
                    let total = e.info.children.len();
                    let detail = r.unwrap_or_else(|| "failed".into());
                    let item = t.jobs.get(&c).and_then(|ce| ce.info.item.as_deref());
                    let index = e
                        .info
                        .children
                        .iter()
                        .position(|x| *x == c)
                        .map_or(0, |i| i + 1);
                    let reason = if let Some(item) = item {
                        format!(
                            "{n_failed} of {total} items failed; first: item {index} ({item}): {detail}"
                        )
                    } else if n_failed == 1 {
                        format!("child job {c} failed: {detail}")
                    } else {
                        format!("{n_failed} of {total} child jobs failed; job {c}: {detail}")
                    };
                    (JobState::Failed, Some(reason), exit_code)
                }
                None if child_stopped => (JobState::Stopped, None, exit_code),
                None => (JobState::Completed, None, exit_code),
            },
        };
        if let Some(e) = t.jobs.get_mut(&id) {
            e.info.reason = reason;
            e.info.exit_code = code;
        }
        let from = t.jobs.get(&id).map(|e| e.info.state);
        if state == JobState::Completed && from == Some(JobState::Stopping) {
            // Unreachable by construction (stop_requested => Stopped).
            return;
        }
        if from == Some(JobState::NotStarted) && state == JobState::Completed {
            // An executor that reports its start ended without saying so:
            // the work did run.
            let _ = self.transition(t, id, JobState::Running);
        }
        if matches!(from, Some(JobState::Suspending | JobState::Suspended))
            && state == JobState::Completed
        {
            // A suspended parent whose last children ended: it ran.
            let _ = self.transition(t, id, JobState::Running);
        }
        if self.transition(t, id, state).is_err() {
            return;
        }
        if let Some(p) = t.info(id).and_then(|i| i.parent) {
            // A finished child may have been what held its parent
            // Blocked or Disconnected.
            if !Self::plain_batch(t, p) {
                self.derive_running_state(t, p);
            }
        }
        if let Some(timer) = t.jobs.get_mut(&id).and_then(|e| e.timer.take()) {
            timer.abort();
        }
        if state == JobState::Failed {
            if let Some(p) = t.info(id).and_then(|i| i.parent) {
                // Before the slot frees: a halted batch starts no one else.
                self.check_halt(t, p);
            }
        }
        self.release_slot(t, id);
        self.settle_dependents(t, id);
    }

    fn release_slot(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(pool) = t.pool_of(id) else {
            return;
        };
        if let Some(throttle) = t.throttle(&pool) {
            throttle.release();
        }
        self.pump(t, &pool);
        if let Pool::Children(p) = pool {
            if !Self::plain_batch(t, p) {
                self.derive_running_state(t, p);
                self.derive_suspension(t, p);
            }
            self.try_finalize(t, p);
        }
    }

    /// Queues the run of `spec` as job `id`'s work, launched once the
    /// table's lock is released, and starts its timeout's clock.
    fn launch_run(
        self: &Arc<Self>,
        t: &mut Table,
        id: JobId,
        executor: Arc<dyn crate::JobExecutor>,
        ctx: JobContext,
        spec: JobSpec,
    ) {
        t.launches.push(Launch {
            id,
            executor,
            ctx,
            work: Work::Run(spec),
        });
        self.arm_timeout(t, id);
    }

    /// Starts the clock of a job's attempt that has a timeout: when it
    /// passes and the same attempt still runs, the job is stopped and will
    /// end Failed. The timer holds the session weakly: a session dropped
    /// meanwhile is not kept alive by it.
    pub(super) fn arm_timeout(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        let Some((limit, shown)) = e.timeout.clone() else {
            return;
        };
        let attempt = e.info.attempts;
        // What a suspend left of the limit, else all of it.
        let left = e.clock.start(limit);
        let weak = Arc::downgrade(self);
        let timer = self.handle.spawn(async move {
            tokio::time::sleep(left).await;
            if let Some(inner) = weak.upgrade() {
                let shown = shown.unwrap_or_else(|| crate::format_duration(limit));
                inner.time_out(id, attempt, &shown);
            }
        });
        if let Some(old) = e.timer.replace(timer.abort_handle()) {
            old.abort();
        }
    }

    /// The clock of attempt `attempt` of job `id` ran out.
    fn time_out(self: &Arc<Self>, id: JobId, attempt: u32, limit: &str) {
        let mut t = self.lock();
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        if e.info.state.is_finished()
            || e.info.attempts != attempt
            || e.returned.is_some()
            || e.stop_requested
        {
            return;
        }
        e.timed_out = Some(format!("timed out after {limit}"));
        e.stop_requested = true;
        e.cell.stop.trigger();
        let children = e.info.children.clone();
        for c in children {
            self.request_stop_locked(&mut t, c);
        }
        drop(t);
        self.bump();
    }

    pub(crate) fn request_stop_locked(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        if e.info.state.is_finished() {
            return;
        }
        e.stop_requested = true;
        let children = e.info.children.clone();
        let parent = e.info.parent;
        if e.info.state == JobState::NotStarted && e.pending.is_some() {
            // Still queued or waiting: never ran, ends Stopped, and so do
            // the children queued behind it.
            e.pending = None;
            self.stop_waiting(t, id);
            if let Some(throttle) = t.pool_of(id).and_then(|pool| t.throttle(&pool)) {
                throttle.dequeue(id);
            }
            for c in children {
                self.request_stop_locked(t, c);
            }
            let _ = self.transition(t, id, JobState::Stopped);
            self.settle_dependents(t, id);
            if let Some(p) = parent {
                self.try_finalize(t, p);
            }
            return;
        }
        let paused = super::suspend::is_paused(e.info.state);
        let _ = self.transition(t, id, JobState::Stopping);
        if let Some(e) = t.jobs.get(&id) {
            e.cell.stop.trigger();
        }
        if paused {
            self.continue_stopped(t, id);
        }
        for c in children {
            self.request_stop_locked(t, c);
        }
        // A parent whose run already returned finalizes when children end.
        self.try_finalize(t, id);
    }
}

/// A job's work, launched under the table's lock and spawned once it is
/// released (see `TableGuard`).
pub(crate) struct Launch {
    id: JobId,
    executor: Arc<dyn crate::JobExecutor>,
    ctx: JobContext,
    work: Work,
}

/// What a launch runs: the job's work, or the resumption of a job of an
/// earlier session.
enum Work {
    Run(JobSpec),
    Resume(JobInfo),
}

/// A new random (version 4) instance id. The random bytes come from the
/// OS a few kilobytes at a time, rather than one system call per job.
fn new_instance_id() -> Uuid {
    use std::cell::RefCell;
    use std::io::Read;

    const POOL: usize = 4096;
    thread_local! {
        static RANDOM: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
    }
    let drawn = RANDOM.with(|r| {
        let (buf, used) = &mut *r.borrow_mut();
        if *used + 16 > buf.len() {
            buf.resize(POOL, 0);
            let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(buf));
            if filled.is_err() {
                buf.clear();
                return None;
            }
            *used = 0;
        }
        let bytes: [u8; 16] = buf.get(*used..*used + 16)?.try_into().ok()?;
        *used += 16;
        Some(uuid::Builder::from_random_bytes(bytes).into_uuid())
    });
    drawn.unwrap_or_else(Uuid::new_v4)
}

/// Drops the repeated ids of a list, keeping the first of each in place.
fn unique(ids: &mut Vec<JobId>) {
    if ids.len() < 2 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(*id));
}

impl Entry {
    /// The entry of a job about to wait or queue with `spec`: its children's
    /// throttle and its retries come from the spec.
    pub(super) fn for_spec(
        info: JobInfo,
        cell: Arc<JobCell>,
        executor: Arc<dyn crate::JobExecutor>,
        spec: JobSpec,
    ) -> Entry {
        let retry = (spec.retries > 0 && spec.payload.is_none()).then(|| {
            Box::new(Retry {
                spec: spec.rerun(),
                left: spec.retries,
                total: spec.retries + 1,
                delay: spec.retry_delay,
            })
        });
        let child_limit = spec.child_throttle;
        let timeout = spec.timeout.map(|t| (t, spec.timeout_shown.clone()));
        let mut entry = Entry::new(info, cell, executor, Some(spec), child_limit);
        entry.retry = retry;
        entry.timeout = timeout;
        entry
    }
}

impl JobHost for Inner {
    fn set_running(&self, id: JobId) -> Result<(), Error> {
        Inner::set_running(self, id)
    }

    fn set_location(&self, id: JobId, location: String) -> Result<(), Error> {
        Inner::set_location(self, id, location)
    }

    fn set_blocked(&self, id: JobId, blocked: bool) -> Result<(), Error> {
        Inner::set_blocked(self, id, blocked)
    }

    fn set_disconnected(&self, id: JobId, disconnected: bool) -> Result<(), Error> {
        Inner::set_disconnected(self, id, disconnected)
    }

    fn start_child(self: Arc<Self>, spec: JobSpec, parent: JobId) -> Result<JobId, Error> {
        self.start_job(spec, Some(parent))
    }

    fn children_finished(&self, id: JobId) -> bool {
        Inner::children_finished(self, id)
    }

    fn count_attempt(&self, id: JobId) -> Result<u32, Error> {
        Inner::count_attempt(self, id)
    }

    fn drives_io(&self) -> bool {
        self.drives_io
    }

    fn limit_siblings(&self, id: JobId, limit: usize) -> Result<(), Error> {
        Inner::limit_siblings(self, id, limit)
    }
}
