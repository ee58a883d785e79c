//! Suspend and resume of process jobs: SIGSTOP and SIGCONT to the job's
//! whole process group. The groups of running jobs are kept here by the
//! job's instance id, for the executor's `suspend` and `resume_suspended`,
//! which get the job's context and nothing else.
//!
//! A job suspended before its process exists (between the session's
//! Running and the spawn) is stopped as soon as its group is registered.
//! Registering and signalling hold one lock, so a resume that comes
//! meanwhile is never overtaken by that late SIGSTOP.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jobs_core::JobContext;
use nix::sys::signal::Signal;

use crate::group::signal_group;

/// The process groups of running jobs, by instance id.
#[derive(Debug, Default)]
pub(crate) struct Groups {
    by_job: Mutex<HashMap<u128, i32>>,
}

/// A registered group, unregistered when dropped (the job's run ended).
pub(crate) struct Registered {
    groups: Arc<Groups>,
    key: u128,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.groups.lock().remove(&self.key);
    }
}

impl Groups {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u128, i32>> {
        self.by_job.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers the group of the job of `ctx`; stops it at once if the
    /// job is already suspended.
    pub(crate) fn register(self: &Arc<Self>, ctx: &JobContext, pgid: i32) -> Registered {
        let key = ctx.instance_id().as_u128();
        let mut map = self.lock();
        map.insert(key, pgid);
        if ctx.stop_token().is_paused() {
            signal_group(pgid, Signal::SIGSTOP);
        }
        drop(map);
        Registered {
            groups: Arc::clone(self),
            key,
        }
    }

    /// Sends `signal` to the group of the job of `ctx`, if it has one yet.
    pub(crate) fn signal(&self, ctx: &JobContext, signal: Signal) {
        let map = self.lock();
        if let Some(&pgid) = map.get(&ctx.instance_id().as_u128()) {
            signal_group(pgid, signal);
        }
    }
}
