//! Warm connections: authenticated sessions kept after a command ended
//! cleanly, so the next command to the same host, as the same user, with
//! the same keys and host key policy, skips the TCP connect, handshake,
//! host key check and authentication.
//!
//! A session is out of the pool while a task uses it (one task at a time),
//! goes back only after its command's channel closed cleanly, is checked
//! for a closed socket when taken, and is closed after the idle timeout,
//! when a bound is exceeded, or when the pool is dropped. The reaper
//! thread exists only while something is idle and ends with the pool.

use std::collections::HashMap;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::config::Resolved;
use crate::connect::{close, Connected};
use crate::options::SshOptions;

/// Everything that decides which server a connection reaches and how it
/// was checked and authenticated: two tasks with equal keys may share one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    hostname: String,
    port: u16,
    user: String,
    identity_files: Vec<PathBuf>,
    agent_socket: Option<PathBuf>,
    known_hosts: PathBuf,
    global_known_hosts: Vec<PathBuf>,
    accept_new: bool,
}

impl PoolKey {
    /// The key of a resolved host.
    pub(crate) fn of(r: &Resolved) -> PoolKey {
        PoolKey {
            hostname: r.hostname.clone(),
            port: r.port,
            user: r.user.clone(),
            identity_files: r.identity_files.clone(),
            agent_socket: r.agent_socket.clone(),
            known_hosts: r.known_hosts.clone(),
            global_known_hosts: r.global_known_hosts.clone(),
            accept_new: r.accept_new,
        }
    }
}

/// The pool's bounds, from the executor's options.
#[derive(Clone, Copy, Debug)]
struct Limits {
    idle_timeout: Duration,
    per_key: usize,
    total: usize,
}

impl Limits {
    fn enabled(&self) -> bool {
        !self.idle_timeout.is_zero() && self.per_key > 0 && self.total > 0
    }
}

struct Idle {
    conn: Connected,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Per key, oldest first.
    idle: HashMap<PoolKey, Vec<Idle>>,
    total: usize,
    reaper: Option<JoinHandle<()>>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    limits: Limits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation completes before anything that could panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The idle connections of one executor, shared by all its jobs.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("limits", &self.shared.limits)
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Pool {
    /// A pool with the options' bounds (disabled by a zero bound).
    pub(crate) fn new(options: &SshOptions) -> Pool {
        Pool {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                wake: Condvar::new(),
                limits: Limits {
                    idle_timeout: options.pool_idle_timeout,
                    per_key: options.pool_max_idle_per_host,
                    total: options.pool_max_idle,
                },
            }),
        }
    }

    /// Whether connections are kept at all.
    pub(crate) fn enabled(&self) -> bool {
        self.shared.limits.enabled()
    }

    /// How many connections are idle now.
    pub(crate) fn idle_count(&self) -> usize {
        self.shared.lock().total
    }

    /// Takes the most recently used live connection for `key`, closing
    /// expired and dead ones on the way.
    pub(crate) fn take(&self, key: &PoolKey) -> Option<Connected> {
        loop {
            let idle = {
                let mut st = self.shared.lock();
                let list = st.idle.get_mut(key)?;
                let idle = list.pop();
                if list.is_empty() {
                    st.idle.remove(key);
                }
                let idle = idle?;
                st.total -= 1;
                idle
            };
            if idle.since.elapsed() < self.shared.limits.idle_timeout && looks_alive(&idle.conn) {
                return Some(idle.conn);
            }
            close(idle.conn, false);
        }
    }

    /// Keeps a connection whose command ended cleanly, or closes it when
    /// pooling is off, the pool is closed, or it exceeds a bound (then the
    /// oldest idle connection goes instead).
    pub(crate) fn put(&self, key: PoolKey, conn: Connected) {
        let limits = self.shared.limits;
        if !self.enabled() {
            close(conn, true);
            return;
        }
        let mut evicted = Vec::new();
        {
            let mut st = self.shared.lock();
            if st.closed {
                drop(st);
                close(conn, true);
                return;
            }
            let list = st.idle.entry(key).or_default();
            list.push(Idle {
                conn,
                since: Instant::now(),
            });
            if list.len() > limits.per_key {
                evicted.push(list.remove(0));
            } else {
                st.total += 1;
            }
            if st.total > limits.total {
                if let Some(oldest) = pop_oldest(&mut st) {
                    evicted.push(oldest);
                }
            }
            if st.reaper.as_ref().is_none_or(|h| h.is_finished()) {
                let shared = Arc::clone(&self.shared);
                // Without a reaper, idle connections would outlive their
                // timeout; they still close when taken or on drop.
                st.reaper = std::thread::Builder::new()
                    .name("ssh pool reaper".into())
                    .spawn(move || reap(&shared))
                    .ok();
            }
            self.shared.wake.notify_all();
        }
        for idle in evicted {
            close(idle.conn, true);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let (idle, reaper) = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.total = 0;
            let idle: Vec<Idle> = st.idle.drain().flat_map(|(_, v)| v).collect();
            (idle, st.reaper.take())
        };
        self.shared.wake.notify_all();
        for i in idle {
            close(i.conn, true);
        }
        if let Some(h) = reaper {
            let _ = h.join();
        }
    }
}

/// Removes the idle connection that waited longest, across all keys.
fn pop_oldest(st: &mut State) -> Option<Idle> {
    let key = st
        .idle
        .iter()
        .filter_map(|(k, v)| v.first().map(|i| (k, i.since)))
        .min_by_key(|(_, since)| *since)
        .map(|(k, _)| k.clone())?;
    let list = st.idle.get_mut(&key)?;
    let oldest = list.remove(0);
    if list.is_empty() {
        st.idle.remove(&key);
    }
    st.total -= 1;
    Some(oldest)
}

/// The reaper: closes connections idle past the timeout; ends when nothing
/// is idle (the next `put` starts another) or the pool is closed.
fn reap(shared: &Shared) {
    let timeout = shared.limits.idle_timeout;
    let mut st = shared.lock();
    loop {
        if st.closed {
            return;
        }
        let now = Instant::now();
        let mut expired = Vec::new();
        for list in st.idle.values_mut() {
            while list.first().is_some_and(|i| now >= i.since + timeout) {
                expired.push(list.remove(0));
            }
        }
        st.idle.retain(|_, v| !v.is_empty());
        st.total -= expired.len();
        if !expired.is_empty() {
            drop(st);
            for i in expired {
                close(i.conn, true);
            }
            st = shared.lock();
            continue;
        }
        let next = st
            .idle
            .values()
            .filter_map(|v| v.first())
            .map(|i| i.since + timeout)
            .min();
        let Some(next) = next else {
            return;
        };
        let wait = next.saturating_duration_since(now);
        st = shared
            .wake
            .wait_timeout(st, wait)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
}

/// A cheap check that the server has not closed the connection: a hang-up
/// or an end of stream waiting on the socket. Data waiting (say a
/// disconnect message) passes; opening the channel then tells.
fn looks_alive(conn: &Connected) -> bool {
    let mut fds = [PollFd::new(conn.socket.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => true,
        Ok(_) => {
            let revents = fds[0].revents().unwrap_or(PollFlags::empty());
            if revents.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) {
                return false;
            }
            // Readable: an end of stream peeks as zero bytes. The socket is
            // non-blocking under libssh2, and readable anyway.
            let mut byte = [0u8; 1];
            matches!(conn.socket.peek(&mut byte), Ok(n) if n > 0)
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_tells_apart_what_changes_the_connection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir");
        std::fs::write(ssh.join("id_ed25519"), "key").expect("write");
        std::fs::write(ssh.join("id_other"), "key").expect("write");
        let options = SshOptions::default().home(dir.path()).use_agent(false);
        let key = |host: &str, o: &SshOptions| {
            PoolKey::of(&crate::config::resolve(host, o).expect("resolve"))
        };
        let base = key("alice@h:22", &options);
        assert_eq!(base, key("alice@h", &options));
        assert_ne!(base, key("bob@h:22", &options));
        assert_ne!(base, key("alice@h:2222", &options));
        assert_ne!(base, key("alice@g:22", &options));
        let other_key = options.clone().identity_file(ssh.join("id_other"));
        assert_ne!(base, key("alice@h:22", &other_key));
        let other_kh = options.clone().known_hosts(dir.path().join("kh"));
        assert_ne!(base, key("alice@h:22", &other_kh));
        let accept = options.clone().accept_new_host_keys(true);
        assert_ne!(base, key("alice@h:22", &accept));
        // Timeouts do not change the connection.
        let slow = options.clone().connect_timeout(Duration::from_secs(99));
        assert_eq!(base, key("alice@h:22", &slow));
    }

    #[test]
    fn zero_bounds_disable_the_pool() {
        assert!(Pool::new(&SshOptions::default()).enabled());
        let off = SshOptions::default().pool_idle_timeout(Duration::ZERO);
        assert!(!Pool::new(&off).enabled());
        let off = SshOptions::default().pool_max_idle_per_host(0);
        assert!(!Pool::new(&off).enabled());
    }
}
