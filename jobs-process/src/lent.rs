//! What the executor lends each job it runs: the grace period of a stop,
//! the process watcher and the I/O runtime. The job's code (attached and
//! detached) sees these and nothing else of the executor.

use std::sync::Arc;
use std::time::Duration;

use tokio::runtime::Handle;

use crate::pause::Groups;
use crate::watcher::Watcher;

/// The executor's settings and shared parts, as one job's run sees them.
pub(crate) struct Lent {
    /// How long a stop waits between SIGTERM and SIGKILL.
    pub(crate) grace: Duration,
    /// Kills the process groups of jobs whose host died.
    pub(crate) watcher: Arc<Watcher>,
    /// The runtime the job's pipes and timers run on.
    pub(crate) io: Handle,
    /// Where the job registers its process group, for suspend and resume.
    pub(crate) groups: Arc<Groups>,
}
