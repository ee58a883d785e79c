//! The session: the job table, scheduling (throttles), state changes, stop,
//! remove and close. Queries live in `query.rs`, receive in `receive.rs`,
//! wait in `wait.rs`.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::Poll;
use std::time::SystemTime;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;
use uuid::Uuid;

use crate::context::JobCell;
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
    executors: RwLock<HashMap<String, Arc<dyn JobExecutor>>>,
    /// Bumped on every state change and every job added or removed.
    pub(crate) changed: watch::Sender<u64>,
    pub(crate) handle: Handle,
    runtime: Mutex<Option<Runtime>>,
}

/// The jobs of a session, by id, and the throttles of their types. Changed
/// only here; other modules read it through the methods below.
pub(crate) struct Table {
    next_id: JobId,
    jobs: BTreeMap<JobId, Entry>,
    /// Per type (by [`type_key`]): top-level jobs only; children queue
    /// behind their parent's.
    throttles: HashMap<String, Throttle>,
}

struct Entry {
    info: JobInfo,
    cell: Arc<JobCell>,
    executor: Arc<dyn JobExecutor>,
    pending: Option<JobSpec>,
    stop_requested: bool,
    /// What `run` returned, once it did (a parent then waits for children).
    returned: Option<Result<(), JobFailure>>,
    /// How many of this job's children run at once.
    children: Throttle,
}

/// The throttle a job queues behind: its type's, or its parent's.
enum Pool {
    Type(String),
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
        match pool {
            Pool::Type(key) => Some(self.throttles.entry(key.clone()).or_default()),
            Pool::Children(parent) => self.jobs.get_mut(parent).map(|e| &mut e.children),
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
            pending,
            stop_requested: false,
            returned: None,
            children: Throttle::new(child_limit),
        }
    }

    fn pool(&self) -> Pool {
        match self.info.parent {
            Some(p) => Pool::Children(p),
            None => Pool::Type(type_key(&self.info.type_name)),
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
                    .enable_time()
                    .build()
                    .map_err(Error::runtime)?;
                (rt.handle().clone(), Some(rt))
            }
        };
        let store = self.store.unwrap_or_else(|| Arc::new(MemoryStore::new()));
        let max_seq = store.max_seq()?;
        Ok(Session {
            inner: Arc::new(Inner {
                table: Mutex::new(Table {
                    next_id: 1,
                    jobs: BTreeMap::new(),
                    throttles: self
                        .limits
                        .into_iter()
                        .map(|(key, limit)| (key, Throttle::new(Some(limit))))
                        .collect(),
                }),
                store,
                seq: Arc::new(AtomicU64::new(max_seq)),
                executors: RwLock::new(HashMap::new()),
                changed: watch::Sender::new(0),
                handle,
                runtime: Mutex::new(runtime),
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
        let pool = Pool::Type(type_key(type_name));
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

    /// Stops a job and waits until it is finished; returns its final row.
    pub async fn stop(&self, id: JobId) -> Result<JobInfo, Error> {
        self.request_stop(id)?;
        self.wait_finished(id).await?;
        self.info(id)
    }

    /// Removes a finished job (and its children) with its records. A job that
    /// is not finished is refused unless `force`, which stops it first.
    pub async fn remove(&self, id: JobId, force: bool) -> Result<(), Error> {
        {
            let t = self.inner.lock();
            let e = t.jobs.get(&id).ok_or(Error::no_such_job(id))?;
            if let Some(parent) = e.info.parent {
                return Err(Error::child_job(id, parent));
            }
            if !e.info.state.is_finished() && !force {
                return Err(Error::not_finished(id, e.info.state));
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
            if let Some(e) = t.jobs.remove(&j) {
                todo.extend(e.info.children.iter().copied());
                e.cell.bump();
                if let Err(err) = self.inner.store.delete_job(j) {
                    result = Err(Error::from(err));
                }
            }
        }
        drop(t);
        self.inner.bump();
        result
    }

    /// Requests a stop of every job that is not finished and waits until
    /// they all are. Detached jobs are left running (they outlive the session).
    pub async fn close(&self) {
        let ids: Vec<JobId> = {
            let mut t = self.inner.lock();
            let ids: Vec<JobId> = t
                .jobs
                .values()
                .filter(|e| {
                    e.info.parent.is_none() && !e.info.state.is_finished() && !e.info.detached
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
    /// with [`SESSION_ENDED_REASON`]. Returns the ids of the loaded jobs.
    pub fn restore(&self) -> Result<Vec<JobId>, Error> {
        let jobs = self.inner.store.load_jobs()?;
        let mut t = self.inner.lock();
        let mut ids = Vec::new();
        let mut resume = Vec::new();
        for mut info in jobs {
            let id = info.id;
            t.next_id = t.next_id.max(id + 1);
            let executor = self.inner.executor(&info.type_name).ok();
            let cell = Arc::new(JobCell::new(id, info.instance_id));
            if !info.state.is_finished() {
                match &executor {
                    Some(ex) if info.parent.is_none() && ex.resumable(&info) => {
                        info.state = JobState::Running;
                        resume.push(id);
                    }
                    _ => {
                        info.state = JobState::Failed;
                        info.reason = Some(SESSION_ENDED_REASON.to_string());
                        info.end = Some(SystemTime::now());
                        cell.closed.store(true, Ordering::Release);
                    }
                }
                self.inner.store.save_job(&info)?;
            } else {
                cell.closed.store(true, Ordering::Release);
            }
            let executor = match executor {
                Some(e) => e,
                None => Arc::new(Unregistered(info.type_name.clone())),
            };
            ids.push(id);
            t.jobs
                .insert(id, Entry::new(info, cell, executor, None, None));
        }
        for id in resume {
            if let Some(pool) = t.jobs.get(&id).map(Entry::pool) {
                if let Some(throttle) = t.throttle(&pool) {
                    throttle.occupy();
                }
            }
            self.inner.spawn_resume(&mut t, id);
        }
        drop(t);
        self.inner.bump();
        Ok(ids)
    }
}

impl Inner {
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
        self.store.save_job(&info)?;
        let pool = Pool::Type(type_key(&info.type_name));
        let cell = Arc::new(JobCell::new(id, info.instance_id));
        t.jobs
            .insert(id, Entry::new(info, cell, executor, None, None));
        if let Some(throttle) = t.throttle(&pool) {
            throttle.occupy();
        }
        self.spawn_resume(&mut t, id);
        drop(t);
        self.bump();
        Ok(id)
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
    pub(crate) fn lock(&self) -> MutexGuard<'_, Table> {
        // Every mutation of the table completes before any call that could
        // panic, so a poisoned lock still guards a consistent table.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn executor(&self, type_name: &str) -> Result<Arc<dyn JobExecutor>, Error> {
        let map = self.executors.read().unwrap_or_else(|p| p.into_inner());
        map.get(&type_key(type_name))
            .cloned()
            .ok_or_else(|| Error::unknown_type(type_name))
    }

    pub(crate) fn start_job(
        self: &Arc<Self>,
        spec: JobSpec,
        parent: Option<JobId>,
    ) -> Result<JobId, Error> {
        if spec.throttle == Some(0) || spec.child_throttle == Some(0) {
            return Err(Error::invalid_input("a throttle limit must be at least 1"));
        }
        let mut t = self.lock();
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
        let type_name = executor.type_name().to_string();
        let info = JobInfo {
            id,
            instance_id: spec.instance_id.unwrap_or_else(Uuid::new_v4),
            name: spec.name.clone().unwrap_or_else(|| format!("Job{id}")),
            type_name: type_name.clone(),
            state: JobState::NotStarted,
            reason: None,
            has_more_data: true,
            location: spec
                .location
                .clone()
                .unwrap_or_else(|| executor.location(&spec)),
            command: spec.command.clone(),
            begin: None,
            end: None,
            exit_code: None,
            parent,
            children: Vec::new(),
            detached: spec.detached,
        };
        // Written at once: the caller gets the id next, and a job it was
        // told about must be there after a crash (as ended with its host).
        self.store.save_job(&info)?;
        let pool = match parent {
            Some(p) => Pool::Children(p),
            None => Pool::Type(type_key(&type_name)),
        };
        if let (None, Some(throttle)) = (parent, t.throttle(&pool)) {
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
        let child_limit = spec.child_throttle;
        let cell = Arc::new(JobCell::new(id, info.instance_id));
        t.jobs.insert(
            id,
            Entry::new(info, cell, executor, Some(spec), child_limit),
        );
        if let Some(pe) = parent.and_then(|p| t.jobs.get_mut(&p)) {
            pe.info.children.push(id);
            let _ = self.store.save_job(&pe.info);
            pe.cell.bump();
        }
        if let Some(throttle) = t.throttle(&pool) {
            throttle.enqueue(id);
        }
        self.pump(&mut t, &pool);
        drop(t);
        self.bump();
        Ok(id)
    }

    /// Launches the jobs queued behind a throttle while it allows.
    fn pump(self: &Arc<Self>, t: &mut Table, pool: &Pool) {
        while let Some(id) = t.throttle(pool).and_then(Throttle::next) {
            self.launch(t, id);
        }
    }

    fn context(self: &Arc<Self>, cell: &Arc<JobCell>) -> JobContext {
        JobContext {
            cell: Arc::clone(cell),
            inner: Arc::downgrade(self),
            store: Arc::clone(&self.store),
            seq: Arc::clone(&self.seq),
        }
    }

    fn launch(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get_mut(&id) else {
            return;
        };
        let Some(spec) = e.pending.take() else {
            return;
        };
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        if !executor.reports_start() && self.transition(t, id, JobState::Running).is_err() {
            return;
        }
        self.spawn_job(id, async move { executor.run(spec, ctx).await });
    }

    /// Runs a job's work as a task, so that a panic fails that job only,
    /// and reports the outcome to the session. The work is polled in place,
    /// with each poll (and its drop) guarded against a panic, rather than
    /// in a second task: one task and no hand-off per job.
    fn spawn_job<F>(self: &Arc<Self>, id: JobId, work: F)
    where
        F: std::future::Future<Output = Result<(), JobFailure>> + Send + 'static,
    {
        let weak = Arc::downgrade(self);
        self.handle.spawn(async move {
            let mut work = Box::pin(work);
            let outcome = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            })
            .await;
            // A future that panicked may panic again as it is dropped.
            let dropped = std::panic::catch_unwind(AssertUnwindSafe(move || drop(work)));
            let result = match (outcome, dropped) {
                (Ok(r), Ok(())) => r,
                (Err(panic), _) | (Ok(_), Err(panic)) => Err(JobFailure::panicked(panic.as_ref())),
            };
            if let Some(inner) = weak.upgrade() {
                inner.run_returned(id, result);
            }
        });
    }

    fn spawn_resume(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get(&id) else {
            return;
        };
        let executor = Arc::clone(&e.executor);
        let ctx = self.context(&e.cell);
        let info = e.info.clone();
        self.spawn_job(id, async move { executor.resume(info, ctx).await });
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
        let save = if to.is_finished() {
            self.store.save_job(&e.info)
        } else {
            self.store.save_job_soon(&e.info)
        };
        e.cell.bump();
        let parent = e.info.parent;
        if let Some(p) = parent.and_then(|p| t.jobs.get(&p)) {
            p.cell.bump();
        }
        self.bump();
        save.map_err(Error::from)
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
        e.info.location = location;
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

    /// A running parent is Blocked while any child is Blocked.
    fn derive_running_state(&self, t: &mut Table, parent: JobId) {
        let Some(pe) = t.jobs.get(&parent) else {
            return;
        };
        let any_blocked = pe
            .info
            .children
            .iter()
            .any(|c| t.jobs.get(c).map(|e| e.info.state) == Some(JobState::Blocked));
        let to = match (pe.info.state, any_blocked) {
            (JobState::Running, true) => JobState::Blocked,
            (JobState::Blocked, false) => JobState::Running,
            _ => return,
        };
        let _ = self.transition(t, parent, to);
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
        let failed = matches!(e.returned, Some(Err(_))) && !e.stop_requested;
        let children: Vec<JobId> = e.info.children.clone();
        if failed {
            // A parent whose own work failed takes its children down with it.
            for c in children {
                self.request_stop_locked(&mut t, c);
            }
        }
        self.try_finalize(&mut t, id);
    }

    /// Gives a job its final state once `run` returned and all its children
    /// finished; then frees its throttle slot and lets the next one start.
    fn try_finalize(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(e) = t.jobs.get(&id) else {
            return;
        };
        let Some(returned) = e.returned.clone() else {
            return;
        };
        if e.info.state.is_finished() {
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
            _ if e.stop_requested => {
                let reason = returned.err().map(|f| f.reason);
                (JobState::Stopped, reason, exit_code)
            }
            Err(f) => (JobState::Failed, Some(f.reason), f.exit_code.or(exit_code)),
            Ok(()) => match child_failed {
                Some((c, r)) => {
                    let total = e.info.children.len();
                    let detail = r.unwrap_or_else(|| "failed".into());
                    let reason = if n_failed == 1 {
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
        if self.transition(t, id, state).is_err() {
            return;
        }
        self.release_slot(t, id);
    }

    fn release_slot(self: &Arc<Self>, t: &mut Table, id: JobId) {
        let Some(pool) = t.jobs.get(&id).map(Entry::pool) else {
            return;
        };
        if let Some(throttle) = t.throttle(&pool) {
            throttle.release();
        }
        self.pump(t, &pool);
        if let Pool::Children(p) = pool {
            self.derive_running_state(t, p);
            self.try_finalize(t, p);
        }
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
        let pool = e.pool();
        if e.info.state == JobState::NotStarted && e.pending.is_some() {
            // Still queued: never ran, leaves the queue Stopped.
            e.pending = None;
            if let Some(throttle) = t.throttle(&pool) {
                throttle.dequeue(id);
            }
            let _ = self.transition(t, id, JobState::Stopped);
            if let Some(p) = parent {
                self.try_finalize(t, p);
            }
            return;
        }
        let _ = self.transition(t, id, JobState::Stopping);
        if let Some(e) = t.jobs.get(&id) {
            e.cell.stop.trigger();
        }
        for c in children {
            self.request_stop_locked(t, c);
        }
        // A parent whose run already returned finalizes when children end.
        self.try_finalize(t, id);
    }
}
