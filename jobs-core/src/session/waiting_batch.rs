//! A batch that waits for other jobs (`start --each --after`) across the
//! end of its session.
//!
//! A waiting job goes on waiting in the next session when the store keeps
//! its spec (see `session/deps.rs`). A batch's spec cannot be kept that
//! way: its children's specs are made by its caller from a template and
//! the items, and only the caller knows how. So the session keeps the
//! parent's own spec (without its in-process payload, which only seals its
//! children) like any waiting job's, and a caller that can make the
//! children again registers a [`BatchRebuild`] with
//! [`Session::rebuild_waiting_batches`]. With one registered:
//! - `close` leaves a waiting batch waiting, as it leaves any job whose
//!   spec the store keeps;
//! - `restore` has a waiting batch wait again with its children as they
//!   were (same ids, names, items; NotStarted), their specs made anew by
//!   the rebuild, and decides it against the restored table.
//!
//! # What a restart keeps
//! The parent's kept spec is dropped, at once, when the parent launches
//! and before any child can (children queue behind a parent that has not
//! launched), so a crash after that restores the batch as ended with its
//! session, never runs an item twice. A batch restores only whole: every
//! child NotStarted and the rebuild making exactly as many specs as the
//! parent's row names children (a crash between the parent's first row and
//! its children's leaves a row naming none); otherwise it ends with its
//! session as before.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use super::{batch, Entry, Halt, Inner, Session, BATCH_TYPE};
use crate::{JobId, JobInfo, JobSpec, JobState};

/// Makes the children of a waiting batch again, from the batch's row (its
/// id, instance id and children's ids): one spec per child in the row's
/// order, and the batch's halt rule. `None` when it cannot (the batch then
/// ends with its session).
pub type BatchRebuild = Arc<dyn Fn(&JobInfo) -> Option<RebuiltBatch> + Send + Sync>;

/// What a [`BatchRebuild`] makes of a waiting batch.
#[derive(Debug, Default)]
pub struct RebuiltBatch {
    /// One spec per child, in the order of the parent's `children`.
    pub children: Vec<JobSpec>,
    /// The batch's rule for stopping after failures.
    pub halt: Option<Halt>,
}

/// The session's [`BatchRebuild`], if one was registered.
#[derive(Default)]
pub(super) struct Rebuild(RwLock<Option<BatchRebuild>>);

impl Rebuild {
    fn get(&self) -> Option<BatchRebuild> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Session {
    /// Lets waiting batches outlive the session: `rebuild` makes a restored
    /// batch's children again (see [`BatchRebuild`]). Call it before
    /// [`Session::restore`].
    pub fn rebuild_waiting_batches(&self, rebuild: BatchRebuild) {
        batch::register_executor(self);
        *self
            .inner
            .batch_rebuild
            .0
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(rebuild);
    }
}

/// The bytes a store keeps for a top-level job that waits: its spec, a
/// batch parent's without the payload that seals its children. `None` for
/// a spec with an in-process payload.
pub(super) fn stored(spec: &JobSpec) -> Option<Vec<u8>> {
    if spec.type_name == BATCH_TYPE && spec.make.is_none() {
        return spec.rerun().to_stored();
    }
    spec.to_stored()
}

/// The children of the batches `restore` has wait again, each with its
/// spec, and the batches' halt rules.
#[derive(Default)]
pub(super) struct Restored {
    pub(super) children: HashMap<JobId, JobSpec>,
    pub(super) halts: Vec<(JobId, Halt)>,
}

impl super::Table {
    /// Gives a restored batch its halt rule.
    pub(super) fn set_halt(&mut self, id: JobId, halt: Halt) {
        if let Some(e) = self.jobs.get_mut(&id) {
            e.halt = Some(halt);
        }
    }
}

impl Inner {
    /// Whether a waiting job stays waiting when the session closes: its
    /// spec is kept, or it is a batch a registered rebuild makes again.
    pub(super) fn keeps_waiting(&self, e: &Entry) -> bool {
        e.waits_durably(self.store.as_ref())
            || (e.waiting
                && e.info.parent.is_none()
                && e.info.type_name == BATCH_TYPE
                && self.store.keeps_waiting_specs()
                && self.batch_rebuild.get().is_some())
    }

    /// For a waiting batch's row `info` being restored: whether it waits
    /// again, having its children's specs made into `restored`. `states`
    /// holds the state of every row being restored.
    pub(super) fn restore_batch(
        &self,
        info: &JobInfo,
        states: &HashMap<JobId, JobState>,
        restored: &mut Restored,
    ) -> bool {
        if info.type_name != BATCH_TYPE || info.parent.is_some() {
            return false;
        }
        let whole = info
            .children
            .iter()
            .all(|c| states.get(c) == Some(&JobState::NotStarted));
        if !whole {
            return false;
        }
        let Some(rebuild) = self.batch_rebuild.get() else {
            return false;
        };
        let Some(made) = rebuild(info) else {
            return false;
        };
        let runnable = made
            .children
            .iter()
            .all(|c| self.executor(&c.type_name).is_ok());
        if made.children.len() != info.children.len() || !runnable {
            return false;
        }
        restored
            .children
            .extend(info.children.iter().copied().zip(made.children));
        if let Some(h) = made.halt {
            restored.halts.push((info.id, h));
        }
        true
    }
}
