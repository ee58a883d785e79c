//! The session: the job table and the operations on it: start, stop,
//! remove, close and restore. How a job goes through its life (the queue
//! behind its throttle, its launch, its state changes, its end) lives in
//! `session/lifecycle.rs`; queries in `query.rs`, receive in `receive.rs`,
//! wait in `wait.rs`.

mod attempts;
mod batch;
mod deps;
mod events;
mod in_place;
mod interned;
mod job_map;
mod lifecycle;
mod restart;
mod siblings;
mod suspend;
mod waiting_batch;

pub use batch::{default_batch_throttle, BatchSpec, Halt, HaltWhen, BATCH_TYPE};
pub use events::{EventStream, Lagged};
pub use waiting_batch::{BatchRebuild, RebuiltBatch};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::time::SystemTime;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

use crate::cell::JobCell;
use crate::store::RowChange;
use crate::throttle::Throttle;
use crate::{
    Error, JobContext, JobExecutor, JobFailure, JobId, JobInfo, JobSpec, JobState, MemoryStore,
    Store,
};

/// The reason given to jobs that were running when a previous session ended.
pub const SESSION_ENDED_REASON: &str = "the session host ended while the job was running";

/// A job table and the executors that run its jobs. Cloning gives another
/// handle on the same session.
///
/// Dropping the last handle requests a stop of every running job;
/// [`Session::close`] does the same and waits for them to end.
#[derive(Clone)]
pub struct Session {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No lock taken: a `Debug` may run while the table is held.
        f.debug_struct("Session").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) table: Mutex<Table>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) seq: Arc<AtomicU64>,
    /// State-change events: their numbering and subscribers.
    pub(crate) events: events::Events,
    executors: RwLock<HashMap<String, Arc<dyn JobExecutor>>>,
    /// Bumped on every state change and every job added or removed.
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) handle: Handle,
    runtime: Mutex<Option<Runtime>>,
    /// Whether the session built its runtime itself, with I/O and time.
    drives_io: bool,
    /// Set once the session is closing: a waiting job whose dependencies
    /// are decided then starts in the next session, not this one.
    closing: AtomicBool,
    /// How waiting batches are made again (`session/waiting_batch.rs`).
    batch_rebuild: waiting_batch::Rebuild,
    /// The session itself, for work handed to the runtime once the table's
    /// lock is released (see [`TableGuard`]).
    me: Weak<Inner>,
}

/// The jobs of a session, by id, and the throttles of their types. Changed
/// only here; other modules read it through the methods below.
pub(crate) struct Table {
    next_id: JobId,
    /// Boxed: an entry is large, and a table of thousands then moves
    /// pointers, not entries, as it grows.
    jobs: job_map::JobMap<Box<Entry>>,
    /// Per type (by [`type_key`], indexed by [`Pool::Type`]): top-level
    /// jobs only; children queue behind their parent's. A handful of types
    /// at most: a search through them costs less than hashing a key.
    throttles: Vec<(String, Throttle)>,
    /// The jobs that wait, by a job they wait for (see `session/deps.rs`).
    dependents: HashMap<JobId, Vec<JobId>>,
    /// Work launched under the lock, handed to the runtime once the lock
    /// is released (see [`TableGuard`]).
    launches: Vec<lifecycle::Launch>,
    /// The type names and locations rows share.
    names: interned::Interned,
}

struct Entry {
    info: JobInfo,
    cell: Arc<JobCell>,
    executor: Arc<dyn JobExecutor>,
    /// What it runs once launched (`session/batch.rs`); none once it was.
    pending: Option<batch::Queued>,
    stop_requested: bool,
    /// What `run` returned, once it did (a parent then waits for children).
    returned: Option<Result<(), JobFailure>>,
    /// How many of this job's children run at once.
    children: Throttle,
    /// What another attempt runs, and how many are left.
    /// Boxed: most jobs have none, and a spec is large.
    retry: Option<Box<Retry>>,
    /// A batch's rule for stopping after failures.
    halt: Option<Halt>,
    /// Once the halt rule fired: the reason its stopped children get.
    halted: Option<String>,
    /// The reason a stop requested by the session (not the user) gives.
    stop_reason: Option<String>,
    /// How long each attempt may run (`JobSpec::timeout`), and how the
    /// reason shows it (`JobSpec::timeout_shown`).
    timeout: Option<(std::time::Duration, Option<String>)>,
    /// Once the attempt's time passed: the reason it fails with.
    timed_out: Option<String>,
    /// The running attempt's clock, cancelled once the job ends.
    timer: Option<tokio::task::AbortHandle>,
    /// Whether the job waits for other jobs to be decided (its spec in
    /// `pending`, in no throttle's queue).
    waiting: bool,
    /// Set while the job is being removed: its dependents learn it `was
    /// removed` rather than stopped.
    removing: bool,
    /// The time limit's clock as a suspend paused it (`session/suspend.rs`).
    clock: suspend::Clock,
    /// Set for a batch's parent while none of its children ever was
    /// Blocked, Disconnected, Suspending or Suspended: a child's end then
    /// changes neither the parent's running state nor its suspension, and
    /// the session skips looking at every child (`session/batch.rs`).
    plain_children: bool,
}

/// Another attempt of a failed job.
struct Retry {
    spec: JobSpec,
    left: u32,
    total: u32,
    /// The wait before each new attempt.
    delay: Option<std::time::Duration>,
}

/// The throttle a job queues behind: its type's (an index into the
/// table's throttles, see [`Table::type_pool`]), or its parent's.
#[derive(Clone, Copy)]
enum Pool {
    Type(usize),
    Children(JobId),
}

impl Table {
    /// A job's row as the table holds it (`has_more_data` not derived).
    pub(crate) fn info(&self, id: JobId) -> Option<&JobInfo> {
        self.jobs.get(&id).map(|e| &e.info)
    }

    /// What the job's running work shares with the session.
    pub(crate) fn cell(&self, id: JobId) -> Option<&Arc<JobCell>> {
        self.jobs.get(&id).map(|e| &e.cell)
    }

    /// A job's state.
    pub(crate) fn state(&self, id: JobId) -> Option<JobState> {
        self.info(id).map(|i| i.state)
    }

    /// `Ok` if every id is a job of the table, else the first that is not.
    pub(crate) fn check(&self, ids: &[JobId]) -> Result<(), Error> {
        match ids.iter().find(|id| !self.jobs.contains_key(id)) {
            Some(&id) => Err(Error::no_such_job(id)),
            None => Ok(()),
        }
    }

    /// How many jobs the table holds (children included).
    pub(crate) fn len(&self) -> usize {
        self.jobs.len()
    }

    /// Every row, in id order.
    pub(crate) fn infos(&self) -> impl Iterator<Item = &JobInfo> {
        self.jobs.values().map(|e| &e.info)
    }

    /// The ids of the jobs that are not children, in id order.
    pub(crate) fn top_level(&self) -> Vec<JobId> {
        self.infos()
            .filter(|i| i.parent.is_none())
            .map(|i| i.id)
            .collect()
    }

    /// The job and, recursively, its children, in pre-order; nothing for
    /// an id that is not in the table.
    pub(crate) fn with_descendants(&self, id: JobId, out: &mut Vec<JobId>) {
        if let Some(e) = self.jobs.get(&id) {
            out.push(id);
            for &c in &e.info.children {
                self.with_descendants(c, out);
            }
        }
    }

    fn throttle(&mut self, pool: &Pool) -> Option<&mut Throttle> {
        match *pool {
            Pool::Type(i) => self.throttles.get_mut(i).map(|(_, t)| t),
            Pool::Children(parent) => self.jobs.get_mut(&parent).map(|e| &mut e.children),
        }
    }

    /// The pool of a job type's throttle (case-insensitive), made on first use.
    fn type_pool(&mut self, type_name: &str) -> Pool {
        let found = self
            .throttles
            .iter()
            .position(|(key, _)| key.eq_ignore_ascii_case(type_name));
        Pool::Type(found.unwrap_or_else(|| {
            self.throttles
                .push((type_key(type_name), Throttle::default()));
            self.throttles.len() - 1
        }))
    }

    /// The pool a job queues behind: its parent's, or its type's.
    fn pool_of(&mut self, id: JobId) -> Option<Pool> {
        let info = &self.jobs.get(&id)?.info;
        match info.parent {
            Some(p) => Some(Pool::Children(p)),
            None => {
                let found = self
                    .throttles
                    .iter()
                    .position(|(key, _)| key.eq_ignore_ascii_case(&info.type_name));
                match found {
                    Some(i) => Some(Pool::Type(i)),
                    None => {
                        let name = info.type_name.clone();
                        Some(self.type_pool(&name))
                    }
                }
            }
        }
    }
}

impl Entry {
    fn new(
        info: JobInfo,
        cell: Arc<JobCell>,
        executor: Arc<dyn JobExecutor>,
        pending: Option<JobSpec>,
        child_limit: Option<usize>,
    ) -> Self {
        Entry {
            info,
            cell,
            executor,
            pending: pending.map(batch::Queued::new),
            stop_requested: false,
            returned: None,
            children: Throttle::new(child_limit),
            retry: None,
            halt: None,
            halted: None,
            stop_reason: None,
            timeout: None,
            timed_out: None,
            timer: None,
            waiting: false,
            removing: false,
            clock: suspend::Clock::default(),
            plain_children: false,
        }
    }
}

/// Builds a [`Session`] with a store, a runtime handle and throttle limits.
#[derive(Default)]
pub struct SessionBuilder {
    store: Option<Arc<dyn Store>>,
    handle: Option<Handle>,
    limits: HashMap<String, usize>,
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("store", &self.store.as_ref().map(|_| "…"))
            .field("handle", &self.handle)
            .field("limits", &self.limits)
            .finish()
    }
}

impl SessionBuilder {
    /// Uses this store (default: [`MemoryStore`]).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// Runs jobs on this runtime (default: the current one, or a runtime of
    /// the session's own if there is none).
    pub fn runtime(mut self, handle: Handle) -> Self {
        self.handle = Some(handle);
        self
    }

    /// Sets the throttle limit of a job type.
    pub fn throttle(mut self, type_name: &str, limit: usize) -> Self {
        self.limits.insert(type_key(type_name), limit.max(1));
        self
    }

    /// Builds the session. Over a store that already holds jobs, call
    /// [`Session::restore`] after registering executors.
    pub fn build(self) -> Result<Session, Error> {
        let (handle, runtime) = match self.handle.or_else(|| Handle::try_current().ok()) {
            Some(h) => (h, None),
            None => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("jobs-session")
                    // Time, and I/O when the build's tokio has it (an
                    // executor may drive its I/O on this runtime).
                    .enable_all()
                    .build()
                    .map_err(Error::runtime)?;
                (rt.handle().clone(), Some(rt))
            }
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let max_seq = store.max_seq()?;
        let events = events::Events::new(store.max_event_seq()?);
        Ok(Session {
            inner: Arc::new_cyclic(|me| Inner {
                table: Mutex::new(Table {
                    next_id: 1,
                    jobs: Default::default(),
                    throttles: self
                        .limits
                        .into_iter()
                        .map(|(key, limit)| (key, Throttle::new(Some(limit))))
                        .collect(),
                    dependents: HashMap::new(),
                    launches: Vec::new(),
                    names: Default::default(),
                }),
                store,
                seq: Arc::new(AtomicU64::new(max_seq)),
                events,
                executors: RwLock::new(HashMap::new()),
                changed: watch::Sender::new(0),
                handle,
                drives_io: runtime.is_some(),
                runtime: Mutex::new(runtime),
                closing: AtomicBool::new(false),
                batch_rebuild: Default::default(),
                me: me.clone(),
            }),
        })
    }
}

pub(crate) fn type_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

impl Session {
    /// A session with an in-memory store on the current (or its own) runtime.
    pub fn new() -> Result<Session, Error> {
        SessionBuilder::default().build()
    }

    /// A builder for a session with other options.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::default()
    }

    /// Registers an executor under its type name (case-insensitive); a
    /// later registration of the same name replaces the earlier one.
    pub fn register(&self, executor: Arc<dyn JobExecutor>) {
        let key = type_key(executor.type_name());
        let mut map = self
            .inner
            .executors
            .write()
            .unwrap_or_else(|p| p.into_inner());
        map.insert(key, executor);
    }

    /// The registered executor type names.
    pub fn executor_types(&self) -> Vec<String> {
        let map = self
            .inner
            .executors
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<String> = map.values().map(|e| e.type_name().to_string()).collect();
        names.sort();
        names
    }

    /// Sets the throttle limit of a job type (at least 1). Queued jobs start
    /// at once if the new limit allows.
    pub fn set_throttle(&self, type_name: &str, limit: usize) {
        let mut t = self.inner.lock();
        let pool = t.type_pool(type_name);
        if let Some(throttle) = t.throttle(&pool) {
            throttle.set_limit(limit.max(1));
        }
        self.inner.pump(&mut t, &pool);
    }

    /// The runtime handle jobs run on.
    pub fn runtime(&self) -> &Handle {
        &self.inner.handle
    }

    /// Starts a job and returns its id at once. The job is Running, or
    /// NotStarted while queued behind its type's throttle.
    pub fn start(&self, spec: JobSpec) -> Result<JobId, Error> {
        self.inner.start_job(spec, None)
    }

    /// Requests a stop and returns at once: a queued job becomes Stopped, a
    /// running one Stopping (its children too). A finished job is left as it is.
    pub fn request_stop(&self, id: JobId) -> Result<(), Error> {
        let mut t = self.inner.lock();
        t.check(&[id])?;
        self.inner.request_stop_locked(&mut t, id);
        Ok(())
    }

    /// [`request_stop`](Session::request_stop), saying how the work should
    /// end (the first signal, the grace before SIGKILL) to the executors of
    /// the job and its children that can signal.
    pub fn request_stop_with(&self, id: JobId, options: crate::StopOptions) -> Result<(), Error> {
        let mut t = self.inner.lock();
        t.check(&[id])?;
        let mut all = Vec::new();
        t.with_descendants(id, &mut all);
        for j in all {
            if let Some(cell) = t.cell(j) {
                cell.stop.set_options(options);
            }
        }
        self.inner.request_stop_locked(&mut t, id);
        Ok(())
    }

    /// Stops a job and waits until it is finished; returns its final row.
    pub async fn stop(&self, id: JobId) -> Result<JobInfo, Error> {
        self.request_stop(id)?;
        self.wait_finished(id).await?;
        self.info(id)
    }

    /// Removes a finished job (and its children) with its records. A job that
    /// is not finished is refused unless `force`, which stops it first. A
    /// job that waits for one of them ends Failed (`dependency 3 (build) was
    /// removed`) if it waits for it to complete; one that waits for any
    /// outcome counts it as finished.
    pub async fn remove(&self, id: JobId, force: bool) -> Result<(), Error> {
        {
            let mut t = self.inner.lock();
            let e = t.jobs.get(&id).ok_or(Error::no_such_job(id))?;
            if let Some(parent) = e.info.parent {
                return Err(Error::child_job(id, parent));
            }
            if !e.info.state.is_finished() && !force {
                return Err(Error::not_finished(id, e.info.state));
            }
            let mut all = Vec::new();
            t.with_descendants(id, &mut all);
            for j in all {
                if let Some(e) = t.jobs.get_mut(&j) {
                    e.removing = true;
                }
            }
        }
        if force {
            self.request_stop(id)?;
            self.wait_finished(id).await?;
        }
        let mut t = self.inner.lock();
        let mut todo = vec![id];
        let mut result = Ok(());
        while let Some(j) = todo.pop() {
            // Decided while the row is still there, so the reason names it.
            self.inner.settle_dependents(&mut t, j);
            if let Some(e) = t.jobs.remove(&j) {
                todo.extend(e.info.children.iter().copied());
                e.cell.bump();
                if let Err(err) = self.inner.record_removal(&e.info) {
                    result = Err(err);
                }
            }
        }
        drop(t);
        self.inner.bump();
        result
    }

    /// Requests a stop of every job that is not finished and waits until
    /// they all are. Detached jobs are left running (they outlive the
    /// session; a suspended one is continued, see `session/suspend.rs`),
    /// and so are jobs that wait for others when the store keeps them
    /// ([`Store::keeps_waiting_specs`]): they wait again once the store is
    /// restored.
    pub async fn close(&self) {
        self.inner.closing.store(true, Ordering::Release);
        let ids: Vec<JobId> = {
            let mut t = self.inner.lock();
            let ids: Vec<JobId> = t
                .jobs
                .values()
                .filter(|e| {
                    e.info.parent.is_none()
                        && !e.info.state.is_finished()
                        && !e.info.detached
                        && !self.inner.keeps_waiting(e)
                })
                .map(|e| e.info.id)
                .collect();
            for &id in &ids {
                self.inner.request_stop_locked(&mut t, id);
            }
            ids
        };
        for id in ids {
            let _ = self.wait_finished(id).await;
        }
        self.continue_detached().await;
    }

    /// Blocking [`close`](Session::close), for programs without a runtime.
    pub fn close_blocking(&self) {
        self.block_on(self.close())
    }

    /// Blocking [`stop`](Session::stop).
    pub fn stop_blocking(&self, id: JobId) -> Result<JobInfo, Error> {
        self.block_on(self.stop(id))
    }

    /// Blocking [`remove`](Session::remove).
    pub fn remove_blocking(&self, id: JobId, force: bool) -> Result<(), Error> {
        self.block_on(self.remove(id, force))
    }

    /// Runs a future to completion on the session's runtime. Must not be
    /// called from inside an async context.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.handle.block_on(f)
    }

    /// Loads the jobs of a store that already holds some (the CLI's daemon
    /// after a restart). Jobs that were running are resumed by their
    /// executor when it can ([`JobExecutor::resumable`]), else marked Failed
    /// with [`SESSION_ENDED_REASON`]. Jobs that waited for others, with the
    /// spec the store kept, wait again and are decided against the restored
    /// table. Returns the ids of the loaded jobs.
    pub fn restore(&self) -> Result<Vec<JobId>, Error> {
        let jobs = self.inner.store.load_jobs()?;
        let states: HashMap<JobId, JobState> = jobs.iter().map(|i| (i.id, i.state)).collect();
        let mut batches = waiting_batch::Restored::default();
        let mut t = self.inner.lock();
        let mut ids = Vec::new();
        let mut resume = Vec::new();
        let mut waiting = Vec::new();
        for mut info in jobs {
            let id = info.id;
            t.next_id = t.next_id.max(id + 1);
            let executor = self.inner.executor(&info.type_name).ok();
            let cell = Arc::new(JobCell::new(id, info.instance_id));
            let kept = match (&executor, info.state) {
                (Some(_), JobState::NotStarted) if info.has_dependencies() => {
                    // A batch restores whole or not at all, even one whose
                    // row names no children yet.
                    self.inner.kept_spec(&info).filter(|_| {
                        if info.type_name == BATCH_TYPE {
                            self.inner.restore_batch(&info, &states, &mut batches)
                        } else {
                            info.children.is_empty()
                        }
                    })
                }
                _ => None,
            };
            if let (Some(spec), Some(ex)) = (batches.children.remove(&id), &executor) {
                // A waiting batch's child: it queues behind its parent again.
                ids.push(id);
                let parent = info.parent;
                let entry = Entry::for_spec(info, cell, Arc::clone(ex), spec);
                t.jobs.insert(id, Box::new(entry));
                if let Some(throttle) = parent.and_then(|p| t.throttle(&Pool::Children(p))) {
                    throttle.enqueue(id);
                }
                continue;
            }
            if let Some(spec) = kept {
                if let Some(ex) = executor {
                    ids.push(id);
                    waiting.push(id);
                    let pool = t.type_pool(&info.type_name);
                    Inner::apply_type_throttle(&mut t, &pool, &spec, ex.as_ref());
                    let mut entry = Entry::for_spec(info, cell, ex, spec);
                    entry.waiting = true;
                    t.jobs.insert(id, Box::new(entry));
                    continue;
                }
            }
            if !info.state.is_finished() {
                let was = info.state;
                // A child is resumed only with its parent (loaded before it).
                let parent_resumed = info.parent.is_none_or(|p| resume.contains(&p));
                match &executor {
                    Some(ex) if parent_resumed && ex.resumable(&info) => {
                        info.state = suspend::restored_state(info.state, &cell);
                        resume.push(id);
                    }
                    _ => {
                        info.state = JobState::Failed;
                        info.reason = Some(SESSION_ENDED_REASON.to_string());
                        info.end = Some(SystemTime::now());
                        cell.closed.store(true, Ordering::Release);
                    }
                }
                if was == info.state {
                    self.inner.store.save_job(&info)?;
                } else {
                    // The end of a job with its session is a state change too.
                    self.inner
                        .record_change(RowChange::Save(&info), &info, Some(was))?;
                }
            } else {
                cell.closed.store(true, Ordering::Release);
            }
            let executor = match executor {
                Some(e) => e,
                None => Arc::new(Unregistered(info.type_name.to_string())),
            };
            ids.push(id);
            t.jobs
                .insert(id, Box::new(Entry::new(info, cell, executor, None, None)));
        }
        for id in resume {
            if let Some(pool) = t.pool_of(id) {
                if let Some(throttle) = t.throttle(&pool) {
                    throttle.occupy();
                }
            }
            self.inner.spawn_resume(&mut t, id);
        }
        for (id, halt) in batches.halts {
            t.set_halt(id, halt);
        }
        for &id in &waiting {
            t.index_waiting(id);
        }
        self.inner.settle(&mut t, waiting);
        drop(t);
        self.inner.bump();
        Ok(ids)
    }
}

impl Inner {
    /// The spec the store kept for a waiting top-level job, if it kept one
    /// that reads back; a child or an unreadable spec cannot wait again
    /// (nor a parent, unless `session/waiting_batch.rs` restores it).
    fn kept_spec(&self, info: &JobInfo) -> Option<JobSpec> {
        if info.parent.is_some() {
            return None;
        }
        let bytes = self.store.waiting_spec(info.id).ok()??;
        JobSpec::from_stored(&bytes).ok()
    }

    /// Takes over a job of another session (a plugin's host's, after a
    /// restart) under a new id of this session: it is Running and its
    /// executor's [`JobExecutor::resume`] drives it, with `info`'s instance id.
    pub(crate) fn adopt(self: &Arc<Self>, mut info: JobInfo) -> Result<JobId, Error> {
        let executor = self.executor(&info.type_name)?;
        let mut t = self.lock();
        let id = t.next_id;
        t.next_id += 1;
        info.id = id;
        info.parent = None;
        info.children = Vec::new();
        info.state = JobState::Running;
        info.reason = None;
        info.end = None;
        info.exit_code = None;
        info.has_more_data = true;
        info.begin.get_or_insert_with(SystemTime::now);
        self.record_change(RowChange::Save(&info), &info, None)?;
        let pool = t.type_pool(&info.type_name);
        let cell = Arc::new(JobCell::new(id, info.instance_id));
        t.jobs
            .insert(id, Box::new(Entry::new(info, cell, executor, None, None)));
        if let Some(throttle) = t.throttle(&pool) {
            throttle.occupy();
        }
        self.spawn_resume(&mut t, id);
        drop(t);
        self.bump();
        Ok(id)
    }
}

/// The table, locked. Jobs launched meanwhile are handed to the runtime as
/// it is released, not under the lock: a task that ends at once then finds
/// the table free, rather than the starter still holding it.
pub(crate) struct TableGuard<'a> {
    guard: Option<MutexGuard<'a, Table>>,
    inner: &'a Inner,
}

impl std::ops::Deref for TableGuard<'_> {
    type Target = Table;
    fn deref(&self) -> &Table {
        self.guard
            .as_deref()
            .expect("held until the guard is dropped")
    }
}

impl std::ops::DerefMut for TableGuard<'_> {
    fn deref_mut(&mut self) -> &mut Table {
        self.guard
            .as_deref_mut()
            .expect("held until the guard is dropped")
    }
}

impl Drop for TableGuard<'_> {
    fn drop(&mut self) {
        let Some(mut t) = self.guard.take() else {
            return;
        };
        // A single launch (a job's start or end) leaves the list's room
        // for the next.
        let (one, many) = match t.launches.len() {
            0 => return,
            1 => (t.launches.pop(), Vec::new()),
            _ => (None, std::mem::take(&mut t.launches)),
        };
        drop(t);
        // Gone only while the session itself is dropped: nothing runs then.
        if let Some(inner) = self.inner.me.upgrade() {
            for launch in one.into_iter().chain(many) {
                inner.spawn_launch(launch);
            }
        }
    }
}

/// Stands in for the executor of a restored job whose type is not registered.
struct Unregistered(String);

#[async_trait::async_trait]
impl JobExecutor for Unregistered {
    fn type_name(&self) -> &str {
        &self.0
    }
    async fn run(&self, _spec: JobSpec, _ctx: JobContext) -> Result<(), JobFailure> {
        Err(JobFailure::new(format!("unknown job type '{}'", self.0)))
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let t = self.table.get_mut().unwrap_or_else(|p| p.into_inner());
        for e in t.jobs.values() {
            if !e.info.state.is_finished() && !e.info.detached {
                e.cell.stop.trigger();
            }
        }
        let rt = self.runtime.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> TableGuard<'_> {
        // Every mutation of the table completes before any call that could
        // panic, so a poisoned lock still guards a consistent table.
        TableGuard {
            guard: Some(self.table.lock().unwrap_or_else(|p| p.into_inner())),
            inner: self,
        }
    }

    pub(crate) fn bump(&self) {
        crate::cell::bump(&self.changed);
    }

    fn executor(&self, type_name: &str) -> Result<Arc<dyn JobExecutor>, Error> {
        let map = self.executors.read().unwrap_or_else(|p| p.into_inner());
        // The key lowered on the stack: no allocation for a usual name.
        let mut buf = [0u8; 64];
        let found = match buf.get_mut(..type_name.len()) {
            Some(key) => {
                key.copy_from_slice(type_name.as_bytes());
                key.make_ascii_lowercase();
                std::str::from_utf8(key).ok().and_then(|k| map.get(k))
            }
            None => map.get(&type_key(type_name)),
        };
        found.cloned().ok_or_else(|| Error::unknown_type(type_name))
    }
}
