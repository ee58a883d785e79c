//! Batches: one parent job of type [`BATCH_TYPE`] with one child per input
//! item, made by the core in one step.
//!
//! The parent does no work of its own: its state follows its children's
//! (the session's rule for every parent), its child throttle is the batch's,
//! and a failed parent's reason counts the failed items and names the first.
//! The parent's run waits until every child exists, so a fast first child
//! cannot end the batch early.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::watch;

use super::{Entry, Inner, Session, Table};
use crate::{Error, JobContext, JobExecutor, JobFailure, JobId, JobSpec, JobState, SpecMaker};

/// The type name of a batch's parent job.
pub const BATCH_TYPE: &str = "BatchJob";

/// A batch to start: the parent's name and command, how many children run
/// at once, and one spec per item, in input order.
#[derive(Debug, Default)]
pub struct BatchSpec {
    /// The parent's name; its children are named `<name>.<index>`.
    pub name: Option<String>,
    /// The command as the user wrote it (the parent's `command`).
    pub command: String,
    /// How many children run at once (default: the number of CPUs).
    pub throttle: Option<usize>,
    /// One spec per item; each names its item in [`JobSpec::item`].
    pub children: Vec<JobSpec>,
    /// When to stop the batch after failures (none: never).
    pub halt: Option<Halt>,
    /// Jobs that must end Completed before the batch starts (see
    /// [`JobSpec::after`]).
    pub after: Vec<JobId>,
    /// Jobs that must be finished before the batch starts, whatever their
    /// outcome (see [`JobSpec::after_any`]).
    pub after_any: Vec<JobId>,
    /// The batch this one restarts (see [`JobSpec::restarted_from`]).
    pub restarted_from: Option<JobId>,
    /// The parent's instance id (default: a fresh one), for children that
    /// name their batch before it starts.
    pub instance_id: Option<uuid::Uuid>,
}

/// When a batch stops after failed items (GNU parallel's `--halt`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halt {
    /// Whether running children are stopped too or may end.
    pub when: HaltWhen,
    /// After how many failed items.
    pub fail: usize,
}

/// What a halt does to children already running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltWhen {
    /// Stops them.
    Now,
    /// Lets them end.
    Soon,
}

impl std::str::FromStr for Halt {
    type Err = String;

    /// `now,fail=N` or `soon,fail=N` (N at least 1).
    fn from_str(s: &str) -> Result<Halt, String> {
        let bad = || format!("--halt '{s}' is not now,fail=N or soon,fail=N");
        let (when, fail) = s.split_once(',').ok_or_else(bad)?;
        let when = match when {
            "now" => HaltWhen::Now,
            "soon" => HaltWhen::Soon,
            _ => return Err(bad()),
        };
        let fail = fail
            .strip_prefix("fail=")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n >= 1)
            .ok_or_else(bad)?;
        Ok(Halt { when, fail })
    }
}

/// The default throttle of a batch: the number of CPUs.
pub fn default_batch_throttle() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The parent's executor: it waits until its children exist (or a stop).
#[derive(Debug)]
struct BatchExecutor;

/// Sent to a batch's parent once its children exist: `Some(true)` when
/// all were made, `Some(false)` when making them failed.
type Sealed = watch::Receiver<Option<bool>>;

#[async_trait]
impl JobExecutor for BatchExecutor {
    fn type_name(&self) -> &str {
        BATCH_TYPE
    }

    async fn run(&self, mut spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let Some(mut sealed) = spec
            .payload
            .take()
            .and_then(|p| p.downcast::<Sealed>().ok())
            .map(|b| *b)
        else {
            // Started by type name rather than as a batch: no children.
            return Ok(());
        };
        tokio::select! {
            made = sealed.wait_for(Option::is_some) => match made.map(|v| *v) {
                Ok(Some(true)) => Ok(()),
                _ => Err(JobFailure::new("the batch's children could not all be made")),
            },
            () = ctx.stopped() => Ok(()),
        }
    }

    fn location(&self, _spec: &JobSpec) -> String {
        "localhost".into()
    }
}

/// Registers the batch parents' executor if the session has none yet.
pub(super) fn register_executor(session: &Session) {
    if session.inner.executor(BATCH_TYPE).is_err() {
        session.register(Arc::new(BatchExecutor));
    }
}

impl Session {
    /// Starts a batch: its parent job and, behind the parent's throttle, one
    /// child per spec. Returns the parent's id. Every child's type must be
    /// registered; otherwise nothing starts.
    pub fn start_batch(&self, batch: BatchSpec) -> Result<JobId, Error> {
        self.start_batch_with(batch, std::iter::empty())
    }

    /// [`start_batch`](Session::start_batch) with more children after
    /// `batch.children`, each spec made as its child is: a batch of many
    /// items then never holds all their specs at once. A child of `more`
    /// whose type is not registered fails the batch once the children
    /// before it exist (they end with it), so make sure of its types first.
    pub fn start_batch_with(
        &self,
        batch: BatchSpec,
        more: impl IntoIterator<Item = JobSpec>,
    ) -> Result<JobId, Error> {
        for child in &batch.children {
            if !child.type_name.is_empty() {
                self.inner.executor(&child.type_name)?;
            }
        }
        register_executor(self);
        let throttle = batch.throttle.unwrap_or_else(default_batch_throttle);
        let (seal, sealed) = watch::channel(None::<bool>);
        let mut parent = JobSpec::new(BATCH_TYPE, batch.command);
        parent.name = batch.name.clone();
        parent.child_throttle = Some(throttle);
        parent.payload = Some(Box::new(sealed));
        parent.after = batch.after;
        parent.after_any = batch.after_any;
        parent.restarted_from = batch.restarted_from;
        parent.instance_id = batch.instance_id;
        // A batch that waits is decided once its children exist: if it
        // fails at once, they end with it rather than never being made.
        let waits = parent.has_dependencies();
        let id = self.inner.start_job_held(parent)?;
        if let Some(e) = self.inner.lock().jobs.get_mut(&id) {
            e.plain_children = true;
        }
        if let Some(halt) = batch.halt {
            self.inner.set_halt(id, halt);
        }
        let base = batch.name.unwrap_or_else(|| format!("Job{id}"));
        for (i, mut child) in batch.children.into_iter().chain(more).enumerate() {
            if child.name.is_none() {
                child.name = Some(format!("{base}.{}", i + 1));
            }
            if let Err(e) = self.inner.start_child_of_batch(child, id) {
                seal.send_replace(Some(false));
                if waits {
                    self.inner.release_waiting(id);
                }
                return Err(e);
            }
        }
        if let Err(e) = self.inner.save_batch(id) {
            seal.send_replace(Some(false));
            if waits {
                self.inner.release_waiting(id);
            }
            return Err(e);
        }
        seal.send_replace(Some(true));
        if waits {
            self.inner.release_waiting(id);
        }
        Ok(id)
    }
}

/// Whether a child in state `s` leaves its batch's parent plain (see
/// `Entry::plain_children`): none of the states that hold a parent Blocked,
/// Disconnected or Suspended.
pub(super) fn plain(s: JobState) -> bool {
    !matches!(
        s,
        JobState::Blocked | JobState::Disconnected | JobState::Suspending | JobState::Suspended
    )
}

/// Whether `parent`'s last child is not finished yet: its parent cannot be
/// either, and a batch's children end about in order, so this one look
/// spares a look at every child each time one ends.
pub(super) fn last_child_runs(t: &Table, parent: &Entry) -> bool {
    parent
        .info
        .children
        .last()
        .and_then(|c| t.state(*c))
        .is_some_and(|s| !s.is_finished())
}

impl Inner {
    /// Whether `parent` is a Running batch none of whose children ever was
    /// Blocked, Disconnected or Suspended: a child's end then changes
    /// neither its running state nor its suspension (the states a child
    /// leaves when it ends only ever made it leave Running).
    pub(super) fn plain_batch(t: &Table, parent: JobId) -> bool {
        t.jobs
            .get(&parent)
            .is_some_and(|pe| pe.plain_children && pe.info.state == JobState::Running)
    }
}

/// What a queued job runs once launched: its spec, or, for a spec made
/// again at launch ([`JobSpec::make`]), only the maker: what else the spec
/// said was taken when the job started, so a queued child of a large batch
/// holds a pointer rather than a spec.
pub(super) enum Queued {
    Spec(Box<JobSpec>),
    Made(SpecMaker),
}

impl Queued {
    pub(super) fn new(spec: JobSpec) -> Queued {
        match &spec.make {
            Some(make) if spec.payload.is_none() => Queued::Made(Arc::clone(make)),
            _ => Queued::Spec(Box::new(spec)),
        }
    }

    /// Whether the spec carries an in-process payload.
    pub(super) fn has_payload(&self) -> bool {
        matches!(self, Queued::Spec(s) if s.payload.is_some())
    }

    /// The spec to launch (for a maker, one with only `make` set).
    pub(super) fn into_spec(self) -> JobSpec {
        match self {
            Queued::Spec(spec) => *spec,
            Queued::Made(make) => {
                let mut spec = JobSpec::new("", "");
                spec.make = Some(make);
                spec
            }
        }
    }
}
