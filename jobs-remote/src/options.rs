//! The executor's settings: timeouts, keepalives, host key policy and where
//! the user's SSH files are.

use std::path::PathBuf;
use std::time::Duration;

/// The connect timeout when neither the options nor the ssh config set one.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The keepalive interval when neither the options nor the ssh config set one.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);
/// Unanswered keepalive intervals after which a peer counts as gone.
pub const DEFAULT_KEEPALIVE_COUNT: u32 = 3;
/// The keepalive interval of detached jobs' connections: short, so that a
/// dead link shows Disconnected within seconds.
pub const DEFAULT_DETACHED_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(2);
/// Unanswered keepalive intervals after which a detached job's connection
/// counts as lost.
pub const DEFAULT_DETACHED_KEEPALIVE_COUNT: u32 = 2;
/// How long a stopped command gets between SIGTERM and SIGKILL.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a connection stays open, idle, for the next command to the
/// same host (the pool's idle timeout).
pub const DEFAULT_POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per host (per user, port, keys and host key policy).
pub const DEFAULT_POOL_MAX_IDLE_PER_HOST: usize = 4;
/// Idle connections kept in all.
pub const DEFAULT_POOL_MAX_IDLE: usize = 128;

/// Settings of an [`SshExecutor`](crate::SshExecutor).
///
/// Values left `None` come from the host's `~/.ssh/config` entry, then from
/// the defaults; a value set here wins over the config (as `ssh -o` does).
#[derive(Clone, Debug)]
pub struct SshOptions {
    /// TCP connect timeout (config `ConnectTimeout`; default 10 s). Also
    /// bounds the handshake and authentication.
    pub connect_timeout: Option<Duration>,
    /// How often a keepalive is sent on a silent connection (config
    /// `ServerAliveInterval`; default 15 s).
    pub keepalive_interval: Option<Duration>,
    /// After this many keepalive intervals without a word from the server,
    /// the connection counts as lost (config `ServerAliveCountMax`; default 3).
    pub keepalive_count: Option<u32>,
    /// Accept and record the key of a host not in known_hosts, as
    /// `StrictHostKeyChecking=accept-new` (also taken from the config). A
    /// changed key is refused regardless.
    pub accept_new_host_keys: bool,
    /// The known_hosts file (default: config `UserKnownHostsFile`, else
    /// `$HOME/.ssh/known_hosts`). `/etc/ssh/ssh_known_hosts` is read too.
    pub known_hosts: Option<PathBuf>,
    /// The ssh config file (default `$HOME/.ssh/config`, if it exists).
    pub ssh_config: Option<PathBuf>,
    /// Identity files tried before the config's and the default ones.
    pub identity_files: Vec<PathBuf>,
    /// The home directory for `~`, the config, known_hosts and default
    /// identities (default `$HOME`, not the password database).
    pub home: Option<PathBuf>,
    /// Try the keys of a running ssh-agent first.
    pub use_agent: bool,
    /// The agent's socket (default `$SSH_AUTH_SOCK`).
    pub agent_socket: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL to the remote process group on stop.
    pub stop_grace: Duration,
    /// The keepalive interval of a detached job's connection (default
    /// 2 s); it wins over the ssh config's.
    pub detached_keepalive_interval: Duration,
    /// Silent keepalive intervals after which a detached job's connection
    /// counts as lost and the job Disconnected (default 2).
    pub detached_keepalive_count: u32,
    /// How long an authenticated connection whose command ended cleanly
    /// is kept, idle, for the next command with the same host, port, user,
    /// keys and host key policy (default 30 s). Zero turns pooling off:
    /// one connection per command.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per host, port, user, keys and host key
    /// policy (default 4; 0 turns pooling off).
    pub pool_max_idle_per_host: usize,
    /// Idle connections kept in all; the longest idle goes first (default
    /// 128; 0 turns pooling off).
    pub pool_max_idle: usize,
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            connect_timeout: None,
            keepalive_interval: None,
            keepalive_count: None,
            accept_new_host_keys: false,
            known_hosts: None,
            ssh_config: None,
            identity_files: Vec::new(),
            home: None,
            use_agent: true,
            agent_socket: None,
            stop_grace: DEFAULT_STOP_GRACE,
            detached_keepalive_interval: DEFAULT_DETACHED_KEEPALIVE_INTERVAL,
            detached_keepalive_count: DEFAULT_DETACHED_KEEPALIVE_COUNT,
            pool_idle_timeout: DEFAULT_POOL_IDLE_TIMEOUT,
            pool_max_idle_per_host: DEFAULT_POOL_MAX_IDLE_PER_HOST,
            pool_max_idle: DEFAULT_POOL_MAX_IDLE,
        }
    }
}

impl SshOptions {
    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Sets the keepalive interval and how many silent intervals end the
    /// connection.
    pub fn keepalive(mut self, interval: Duration, count: u32) -> Self {
        self.keepalive_interval = Some(interval);
        self.keepalive_count = Some(count);
        self
    }

    /// Accepts and records keys of hosts not yet in known_hosts.
    pub fn accept_new_host_keys(mut self, accept: bool) -> Self {
        self.accept_new_host_keys = accept;
        self
    }

    /// Sets the known_hosts file.
    pub fn known_hosts(mut self, path: impl Into<PathBuf>) -> Self {
        self.known_hosts = Some(path.into());
        self
    }

    /// Sets the ssh config file.
    pub fn ssh_config(mut self, path: impl Into<PathBuf>) -> Self {
        self.ssh_config = Some(path.into());
        self
    }

    /// Adds an identity file, tried before the config's and the defaults.
    pub fn identity_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.identity_files.push(path.into());
        self
    }

    /// Sets the home directory used instead of `$HOME`.
    pub fn home(mut self, home: impl Into<PathBuf>) -> Self {
        self.home = Some(home.into());
        self
    }

    /// Whether to try ssh-agent keys.
    pub fn use_agent(mut self, use_agent: bool) -> Self {
        self.use_agent = use_agent;
        self
    }

    /// Uses the ssh-agent listening on `socket` (and turns agent use on).
    pub fn agent_socket(mut self, socket: impl Into<PathBuf>) -> Self {
        self.agent_socket = Some(socket.into());
        self.use_agent = true;
        self
    }

    /// Sets the keepalive of detached jobs' connections: the interval
    /// (at least 1 s) and how many silent intervals make a job Disconnected.
    pub fn detached_keepalive(mut self, interval: Duration, count: u32) -> Self {
        self.detached_keepalive_interval = interval.max(Duration::from_secs(1));
        self.detached_keepalive_count = count.max(1);
        self
    }

    /// Sets the time between SIGTERM and SIGKILL on stop.
    pub fn stop_grace(mut self, grace: Duration) -> Self {
        self.stop_grace = grace;
        self
    }

    /// Sets how long idle connections are kept for reuse; zero turns
    /// pooling off.
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Sets how many idle connections are kept per host, port, user, keys
    /// and host key policy; zero turns pooling off.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Sets how many idle connections are kept in all; zero turns pooling
    /// off.
    pub fn pool_max_idle(mut self, max: usize) -> Self {
        self.pool_max_idle = max;
        self
    }
}
