//! Remote jobs over SSH: PowerShell's `Invoke-Command -AsJob`, as the
//! `RemoteJob` executor of jobctl.
//!
//! One start is one parent job; it opens one child job per host, each with
//! the host (as the user wrote it) as its location, and the session runs at
//! most the spec's throttle of them at once (default 32). A child reads the
//! host string (`host`, `user@host`, `user@host:port`, `[v6]:port`) and the
//! user's `~/.ssh/config` (HostName, User, Port, IdentityFile, timeouts,
//! UserKnownHostsFile, StrictHostKeyChecking=accept-new), connects with a
//! timeout, checks the host key against known_hosts (an unknown or changed
//! key fails that child, unless new keys are accepted; a key marked
//! `@revoked` always does; host certificates are not supported), authenticates with
//! the agent's keys then the identity files, and runs the shell line.
//! Stdout becomes Output and stderr Error records, byte-exact; the exit
//! status makes the child Completed or Failed (`exited with status N`, or
//! the signal that killed it). A host that cannot be reached, refuses the
//! login or goes silent mid-job fails only its own child, with a reason
//! naming the host and the cause, and exit code 255 when the host could not
//! be reached or stopped answering ([`UNREACHABLE_EXIT_CODE`], as ssh(1)
//! exits); the parent ends Failed if any child did. Host strings are
//! single hosts: patterns such as `web[01-20]` are expanded before they
//! get here (crate jobs-hostlist, in the `jobctl` command).
//!
//! ssh2 is blocking, so each host's session lives on a thread of its own,
//! never on the async workers. Stop ends the remote process tree, not just
//! the channel: the command reports its process group first (sshd makes
//! every session command a session leader) and a stop sends SIGTERM, then
//! SIGKILL, to that group over a second channel. The line runs as
//! `printf <marker>$$; eval '<line>'` in the remote user's login shell,
//! which must therefore be a POSIX-style shell (sh, bash, dash, ksh, zsh);
//! lines too long for one SSH packet travel on the command's stdin.
//!
//! Connections are pooled per executor, as OpenSSH's ControlMaster keeps
//! them: when a command ends on its own and its channel closes cleanly,
//! the authenticated connection stays open, idle, and the next command for
//! the same resolved host name, port, user, identities, agent and host key
//! policy runs on it (a new channel) without a new TCP connect, handshake,
//! host key check or login. A connection serves one command at a time;
//! one found closed by the server, or on which no channel opens, is
//! dropped and a fresh one made, so a stale connection never fails a job.
//! A stopped command's connection is never reused. Idle connections close
//! after [`SshOptions::pool_idle_timeout`] (30 s; zero turns pooling off),
//! beyond 4 per host and 128 in all, and when the executor is dropped.
//!
//! # Items spread over hosts
//! A job whose params are a [`SpreadSpec`] is one item of a batch spread
//! over hosts (GNU parallel's `-S`): it runs once, on the least busy host
//! of its list with a free slot (at most `slots` items of the batch at
//! once per host), waiting while all are busy. A host that cannot be used
//! before the command starts takes no more items of the batch, and the item
//! moves to another one, counting an attempt and setting its location to
//! the host it runs on; with no host left it fails naming each host's
//! error. The batch's items keep one connection per slot while they run.
//!
//! # Detached jobs
//! A [`RemoteSpec::detached`] job runs each host's command under a small
//! supervisor written in POSIX sh and sent with the command (nothing to
//! install on the host): in its own session and process group (`setsid`),
//! with its stdout, stderr, process group and exit status in files under
//! `~/.cache/jobctl/jobs/<child's instance id>/` on the host (mode 0700).
//! The command outlives the connection and the session. A child streams
//! the files as they grow; when its connection is lost (keepalive every
//! [`SshOptions::detached_keepalive_interval`], 2 s by default, or an
//! error), the child turns Disconnected (its parent too, unless a child
//! Failed) and re-attaches by itself, after 1 s and then doubling waits up
//! to 60 s, or at once on [`SshExecutor::connect_now`]. A session restored
//! from a durable store resumes the children that were running
//! ([`JobExecutor::resume`](jobs_core::JobExecutor::resume)). Each file
//! resumes at the offset stored with the records read up to it (the job's
//! checkpoint), so every byte reaches the job exactly once. A stop, even of
//! a Disconnected child, reaches the host over a new connection, ends the
//! remote group (SIGTERM, SIGKILL after the grace) and removes the folder;
//! the folder also goes once the end was read in full. A host whose folder
//! is gone at re-attach fails its child with a reason naming the host.
//! Where neither happened (a stop that could not reach the host, an exit
//! status that could not be read), the folder stays until the job is
//! removed: [`SshExecutor::forget_detached`] then ends what still runs of
//! it and deletes the folder.
//!
//! # Scale: one thread per host holds at 1,000 hosts
//! Measured with `bench/remote-many` (one job, `--throttle 1000`, `sleep 5`
//! on 1,000 aliases of one loopback sshd, 2 cores at load 6 to 49): the
//! daemon peaked at 1,003 threads, 2,024 open descriptors (two per host;
//! the daemon raises its soft open-files limit to the hard one at start)
//! and 147 MiB resident (VmHWM), 999 of 1,000 children Completed (one
//! `Failed getting banner` from the overloaded sshd). A thread's 2 MiB
//! stack is virtual: resident stacks came to 5 MiB for 346 threads, about
//! 15 KiB each; the rest per host is the connection itself (libssh2 and
//! OpenSSL state, a 64 KiB read buffer), which tasks on an async runtime
//! would hold as well. So hosts keep their own threads. Before, each
//! host's thread parsed `~/.ssh/config` itself: with a block per host that
//! is memory and CPU in the square of the hosts (640 MiB to 1.1 GiB
//! resident at 1,000); the config is now parsed once and shared. What does
//! not hold at 1,000 at once is the handshakes' CPU: one sshd on 2 busy
//! cores did not finish 300 of 1,000 simultaneous handshakes within the
//! 10 s connect timeout (with `ConnectTimeout 120` all did). That is the
//! servers' (here one machine's) limit, not the client's; the default
//! throttle of 32 stays (with it the 1,000 hosts all completed `true` in
//! 14 s, at 36 threads, 339 descriptors and 41 MiB), and `--throttle`
//! raises it where servers cope.
//!
//! # Example
//! ```no_run
//! use std::sync::Arc;
//! use jobs_core::{JobState, ReceiveOptions, Session, WaitMode};
//! use jobs_remote::{RemoteSpec, SshExecutor, SshOptions};
//!
//! let session = Session::new()?;
//! let options = SshOptions::default().accept_new_host_keys(true);
//! session.register(Arc::new(SshExecutor::with_options(options)));
//! let spec = RemoteSpec::new(["web1", "deploy@web2:2222"], "uptime").throttle(8);
//! let id = session.start(spec.into_job_spec())?;
//! session.wait_blocking(&[id], WaitMode::All, None)?;
//! for r in session.receive(&[id], ReceiveOptions::default())? {
//!     let host = session.info(r.job)?.location;
//!     print!("{host}: {}", String::from_utf8_lossy(&r.record.payload.to_display_bytes()));
//! }
//! if session.info(id)?.state == JobState::Failed {
//!     eprintln!("{}", session.info(id)?.reason.unwrap_or_default());
//! }
//! # Ok::<(), jobs_core::Error>(())
//! ```

mod attach;
mod auth;
mod base64;
mod config;
mod connect;
mod detached;
mod error;
mod exec;
mod executor;
mod forget;
mod hostkey;
mod known_hosts;
mod options;
mod pool;
mod spec;
mod spread;

pub use error::{ErrorKind, RemoteError, UNREACHABLE_EXIT_CODE};
pub use executor::SshExecutor;
pub use options::{
    SshOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_DETACHED_KEEPALIVE_COUNT,
    DEFAULT_DETACHED_KEEPALIVE_INTERVAL, DEFAULT_KEEPALIVE_COUNT, DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_POOL_IDLE_TIMEOUT, DEFAULT_POOL_MAX_IDLE, DEFAULT_POOL_MAX_IDLE_PER_HOST,
    DEFAULT_STOP_GRACE,
};
pub use spec::{Caller, RemoteSpec, DEFAULT_THROTTLE, TYPE_NAME};
pub use spread::{SpreadSpec, DEFAULT_SLOTS};
