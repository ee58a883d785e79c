//! `start --each ITEMS --host PATTERN [--slots N]`: the items are spread
//! over the hosts, each run once on one host, at most N (default 1) at a
//! time per host, as GNU parallel's `-S` does. It is what `--each` with
//! `--host` means; `--onall` keeps the other reading (every item on every
//! host, each item a remote job with a child per host).
//!
//! The batch's items share one group of host slots in the RemoteJob
//! executor, named by the batch parent's instance id; the batch's throttle
//! is hosts × slots unless `--throttle` says otherwise.

use std::ffi::OsString;

use jobs_core::JobSpec;
use jobs_protocol::{Each, ErrorCode, StartRequest};
use uuid::Uuid;

use crate::executors;
use crate::fail::Fail;

/// A batch spread over hosts: its group and the slots per host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Spread {
    /// The batch parent's instance id, naming the items' group.
    pub(crate) group: Uuid,
    /// Items at once per host.
    pub(crate) slots: usize,
}

impl Spread {
    /// Whether the batch `req` with `each` spreads its items over hosts;
    /// `--slots` or `--onall` without hosts is a usage error.
    pub(crate) fn of(req: &StartRequest, each: &Each) -> Result<Option<Spread>, Fail> {
        if req.hosts.is_empty() {
            if each.slots.is_some() || each.on_all {
                return Err(Fail::new(
                    ErrorCode::Usage,
                    "--slots and --onall spread a batch's items over hosts: they need --host",
                ));
            }
            return Ok(None);
        }
        if each.on_all {
            if each.slots.is_some() {
                return Err(Fail::new(
                    ErrorCode::Usage,
                    "--onall runs every item on every host: it does not go with --slots",
                ));
            }
            return Ok(None);
        }
        Ok(Some(Spread {
            group: Uuid::new_v4(),
            slots: each
                .slots
                .map_or(jobs_remote::DEFAULT_SLOTS, |n| usize::from(n.get())),
        }))
    }

    /// The batch's throttle when `--throttle` is not given: every slot of
    /// every host busy.
    pub(crate) fn throttle(&self, hosts: usize) -> usize {
        hosts.saturating_mul(self.slots).max(1)
    }

    /// The spec of one item's job (`req` is the item's own request, its
    /// command expanded): a RemoteJob that takes a slot of one host.
    pub(crate) fn child(&self, req: &StartRequest, env: &[u8]) -> Result<JobSpec, Fail> {
        let vars: Vec<(OsString, OsString)> = executors::environment(env, &req.env);
        let line = executors::remote_command_line(&req.work)?;
        let item = jobs_remote::SpreadSpec::new(req.hosts.clone(), line, self.group.to_string())
            .slots(self.slots)
            .caller(executors::caller(&vars));
        item.check().map_err(|e| {
            Fail::new(
                ErrorCode::Usage,
                format!("--host '{}': {}", e.host(), e.message()),
            )
        })?;
        let mut spec = item.into_job_spec();
        spec.timeout = req.timeout;
        Ok(spec)
    }
}
