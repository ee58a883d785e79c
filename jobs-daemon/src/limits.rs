//! What the daemon gives each client, so that none can make it hang for
//! the others: how long a connection may sit idle between requests, how
//! many connections are served at once, how many descriptors the process
//! may open, and how often a failing `accept` is logged.
//!
//! An idle connection is closed after [`Limits::idle`]; a request in
//! progress is never cut (`wait` and `receive --wait` watch their client
//! instead). Past [`Limits::max_connections`] a new connection gets an
//! error reply and is closed, so a client is told rather than left
//! waiting, and the daemon keeps descriptors for its jobs. Both can be set
//! for tests through `JOBCTL_IDLE_TIMEOUT_MS` and `JOBCTL_MAX_CONNECTIONS`
//! in the environment the daemon starts with.

use std::time::{Duration, Instant};

use nix::sys::resource::{getrlimit, setrlimit, Resource};
use tracing::warn;

/// How long a connection may sit between requests, by default.
const IDLE: Duration = Duration::from_secs(60);

/// Connections served at once, by default (and at most a quarter of the
/// descriptors the process may open).
const MAX_CONNECTIONS: usize = 1024;

/// How often a failing `accept` is logged at most.
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The daemon's limits on its clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// How long a connection may sit between requests.
    pub(crate) idle: Duration,
    /// How many connections are served at once.
    pub(crate) max_connections: usize,
}

impl Limits {
    /// The defaults, or what the environment sets; `descriptors` is the
    /// process's open-file limit.
    pub(crate) fn from_env(descriptors: u64) -> Limits {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
        };
        let by_fds = usize::try_from(descriptors / 4)
            .unwrap_or(usize::MAX)
            .max(1);
        Limits {
            idle: var("JOBCTL_IDLE_TIMEOUT_MS").map_or(IDLE, Duration::from_millis),
            max_connections: var("JOBCTL_MAX_CONNECTIONS")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(MAX_CONNECTIONS.min(by_fds)),
        }
    }
}

/// Raises the soft limit on open files to the hard one (the default soft
/// limit, often 1024, is far below what a daemon with many jobs and
/// clients needs); returns the limit in force.
pub(crate) fn raise_descriptor_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(e) => {
                warn!("cannot raise the open files limit from {soft} to {hard}: {e}");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            warn!("cannot read the open files limit: {e}");
            1024
        }
    }
}

/// Logs failures of `accept` once per [`ACCEPT_LOG_EVERY`], with how
/// many were not logged: when descriptors run out it fails for every
/// client trying, and the log must not grow by thousands of lines a second.
#[derive(Debug, Default)]
pub(crate) struct AcceptLog {
    last: Option<Instant>,
    unlogged: u64,
}

impl AcceptLog {
    /// Notes a failure; logs it if the last line is old enough.
    pub(crate) fn failed(&mut self, e: &std::io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < ACCEPT_LOG_EVERY)
        {
            self.unlogged += 1;
            return;
        }
        if self.unlogged > 0 {
            warn!(
                "accept failed: {e} ({} more failures since the last message)",
                self.unlogged
            );
        } else {
            warn!("accept failed: {e}");
        }
        self.last = Some(now);
        self.unlogged = 0;
    }
}
