//! A job's process as this crate's own child, reaped through a pidfd of
//! its own: the process's exit is one readiness on the runtime that drives
//! the job, and nothing else (no SIGCHLD handler, no other reaper) waits
//! for it. Its stdout and stderr stay plain pipes until the job decides to
//! watch them.
//!
//! Only this child's owner reaps it, by its pid, which cannot be reused
//! before it is reaped; the status is kept, so the pid is never waited for
//! (nor signalled through this child) again. A child dropped unreaped is
//! reaped by a task on its runtime once it exits.

use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{pidfd_open, Pid, PidfdFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::process::{ChildStdin, Command};
use tokio::runtime::Handle;
use tokio::time::Sleep;

use crate::group::sleep;
use crate::spawned::Spawned;

/// How often the exit of a child without a pidfd (one could not be
/// opened) is looked for.
const POLL: Duration = Duration::from_millis(5);

/// Whether this kernel gives out pidfds (Linux 5.3 and later, where no
/// seccomp filter forbids them). Asked once.
pub(crate) fn supported() -> bool {
    static SUPPORTED: OnceLock<bool> = OnceLock::new();
    *SUPPORTED.get_or_init(
        || match pidfd_open(rustix::process::getpid(), PidfdFlags::empty()) {
            Ok(_) => true,
            Err(e) => e != Errno::NOSYS && e != Errno::PERM,
        },
    )
}

/// A spawned child and how its exit is awaited.
struct Reap {
    child: std::process::Child,
    /// The runtime the child's pidfd (and poll timer) is registered with.
    io: Handle,
    /// Readable once the process has exited.
    pidfd: Option<AsyncFd<OwnedFd>>,
    /// Without a pidfd: the next look at the child.
    poll: Option<Pin<Box<Sleep>>>,
}

impl Reap {
    /// Reaps the child if it has exited.
    fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.child.try_wait()
    }

    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        if let Some(pidfd) = &self.pidfd {
            let ready = match pidfd.poll_read_ready(cx) {
                Poll::Ready(r) => r,
                Poll::Pending => return Poll::Pending,
            };
            if let Err(e) = ready {
                return Poll::Ready(Err(e));
            }
            return match self.try_wait() {
                Ok(Some(st)) => Poll::Ready(Ok(st)),
                Ok(None) => {
                    // A pidfd is readable only once the process is a
                    // zombie: look again at once, keeping the readiness.
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            };
        }
        loop {
            if let Some(st) = self.try_wait()? {
                return Poll::Ready(Ok(st));
            }
            let timer = self
                .poll
                .get_or_insert_with(|| Box::pin(sleep(&self.io, POLL)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.poll = None;
        }
    }
}

/// A job's process, spawned by this crate and reaped through its pidfd.
pub(crate) struct OwnChild {
    /// `None` once handed to a reaping task (in drop).
    reap: Option<Reap>,
    /// Set once reaped.
    status: Option<ExitStatus>,
}

impl Spawned for OwnChild {
    fn spawn(cmd: &mut Command) -> io::Result<Self> {
        // Spawned inside the runtime that drives the job's I/O.
        let io = Handle::try_current().map_err(io::Error::other)?;
        let child = cmd.as_std_mut().spawn()?;
        Ok(OwnChild {
            reap: Some(Reap {
                child,
                io,
                pidfd: None,
                poll: None,
            }),
            status: None,
        })
    }

    fn take_stdin(&mut self) -> Option<ChildStdin> {
        let reap = self.reap.as_mut()?;
        let stdin = reap.child.stdin.take()?;
        let _g = reap.io.enter();
        // Not registered: dropped, which gives the process end of file.
        ChildStdin::from_std(stdin).ok()
    }
}

impl OwnChild {
    /// Opens the child's pidfd and registers it with its runtime. Without
    /// one (the kernel refused it), the child's exit is looked for every
    /// few milliseconds instead.
    pub(crate) fn watch(&mut self) {
        let Some(reap) = self.reap.as_mut() else {
            return;
        };
        let pid = Pid::from_child(&reap.child);
        let Ok(fd) = pidfd_open(pid, PidfdFlags::empty()) else {
            return;
        };
        let _g = reap.io.enter();
        // Deprecated for a descriptor holder that might change its
        // descriptor; an `OwnedFd` owns one and never changes it, which is
        // what the `unsafe` replacement asks of its caller.
        #[allow(deprecated)]
        let registered = AsyncFd::with_interest(fd, Interest::READABLE);
        reap.pidfd = registered.ok();
    }

    /// The child's pid.
    pub(crate) fn id(&self) -> Option<u32> {
        self.reap.as_ref().map(|r| r.child.id())
    }

    /// The read ends of the child's stdout and stderr (blocking, close-on-exec).
    pub(crate) fn take_output(&mut self) -> (Option<OwnedFd>, Option<OwnedFd>) {
        match self.reap.as_mut() {
            Some(r) => (
                r.child.stdout.take().map(OwnedFd::from),
                r.child.stderr.take().map(OwnedFd::from),
            ),
            None => (None, None),
        }
    }

    /// Reaps the child if it has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let Some(reap) = self.reap.as_mut() else {
            return Err(io::Error::other("the process was handed over"));
        };
        let st = reap.try_wait()?;
        self.status = st;
        Ok(st)
    }

    /// Polls for the child's exit, reaping it.
    pub(crate) fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<ExitStatus>> {
        if let Some(st) = self.status {
            return Poll::Ready(Ok(st));
        }
        let Some(reap) = self.reap.as_mut() else {
            return Poll::Ready(Err(io::Error::other("the process was handed over")));
        };
        let polled = reap.poll_wait(cx);
        if let Poll::Ready(Ok(st)) = polled {
            self.status = Some(st);
        }
        polled
    }

    /// Waits for the child's exit, reaping it.
    #[cfg(test)]
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        std::future::poll_fn(|cx| self.poll_wait(cx)).await
    }
}

impl Drop for OwnChild {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let Some(mut reap) = self.reap.take() else {
            return;
        };
        if let Ok(Some(_)) = reap.try_wait() {
            return;
        }
        // Not a zombie left behind: reaped on its runtime when it exits
        // (whoever dropped it has ended its group, or will).
        let io = reap.io.clone();
        io.spawn(async move {
            let _ = std::future::poll_fn(|cx| reap.poll_wait(cx)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// `sh -c LINE`, spawned as this crate's own child (inside a runtime).
    fn sh(line: &str) -> OwnChild {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(line);
        OwnChild::spawn(&mut cmd).expect("spawn")
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn exit_status_and_signal_come_through_the_pidfd() {
        let rt = runtime();
        let _g = rt.enter();
        let mut child = sh("exit 7");
        child.watch();
        if supported() {
            assert!(child.reap.as_ref().is_some_and(|r| r.pidfd.is_some()));
        }
        let st = rt.block_on(child.wait()).expect("wait");
        assert_eq!(st.code(), Some(7));
        // Reaped once: the status is kept, the pid never waited for again.
        assert_eq!(child.try_wait().expect("try_wait"), Some(st));

        let mut child = sh("kill -9 $$");
        child.watch();
        let st = rt.block_on(child.wait()).expect("wait");
        assert_eq!(st.signal(), Some(9));
    }

    #[test]
    fn without_a_pidfd_the_exit_is_still_seen() {
        let rt = runtime();
        let _g = rt.enter();
        let mut child = sh("sleep 0.05; exit 3");
        // No watch(): the polling path.
        let st = rt.block_on(child.wait()).expect("wait");
        assert_eq!(st.code(), Some(3));
    }

    /// The parent pid of a process, from `/proc/PID/stat`.
    fn parent_of(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &stat[stat.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn a_dropped_child_is_reaped_once_it_exits() {
        let rt = runtime();
        let _g = rt.enter();
        let mut child = sh("sleep 0.1");
        child.watch();
        let pid = child.id().expect("pid");
        drop(child);
        rt.block_on(async {
            let began = std::time::Instant::now();
            // Reaped: no child of ours with that pid left, not even a zombie.
            while parent_of(pid) == Some(std::process::id()) {
                assert!(
                    began.elapsed() < Duration::from_secs(30),
                    "{pid} not reaped"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
    }
}
