//! The watcher: a tiny `/bin/sh` process per executor that ends every
//! registered job's process group once the executor is gone, however it went
//! (dropped, or its host process SIGKILLed).
//!
//! The groups to end are kept in a **registry**: an anonymous in-memory
//! file (`memfd`) of fixed slots, one group id per slot, that the executor
//! writes in place (one `pwrite` per job start and end, which wakes
//! nobody) and the watcher reads only at the end. The watcher blocks on a
//! read of its stdin, a pipe whose write end only the executor holds
//! (close-on-exec, so no job inherits it) and never writes to. When that
//! pipe reaches end of file, the host is gone: the watcher reads the
//! registry, sends SIGTERM to every group in it, waits up to the grace
//! period, and SIGKILLs what is left. It sits in its own process group, so a
//! Ctrl-C or a group kill aimed at the host does not take it down first.
//!
//! A watcher that died (killed by hand) is noticed by the thread that reaps
//! it, and the next job start spawns a new one on the same registry.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use crate::spawn::SPAWN_LOCK;

/// The watcher's program. `$1` is the grace period in tenths of a second,
/// `$2` the registry's descriptor number (above 9, which dash's redirections
/// refuse: it is opened anew by its `/proc` name).
const SCRIPT: &str = r#"
trap '' INT HUP TERM
set -f
while read -r _; do :; done
groups=
while read -r pg; do
  case $pg in *[!0-9]*|'') ;; *) groups="$groups $pg" ;; esac
done <"/proc/self/fd/$2"
[ -z "$groups" ] && exit 0
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null; kill -s CONT -- "-$g" 2>/dev/null; done
i=0
while [ "$i" -lt "$1" ]; do
  alive=
  for g in $groups; do kill -s 0 -- "-$g" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && exit 0
  sleep 0.1
  i=$((i + 1))
done
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
exit 0
"#;

/// The size of a registry slot: a group id right-aligned in 15 columns and
/// a newline (a power of two, so no slot straddles a page).
const SLOT: usize = 16;

/// The executor's handle on its watcher, started on first use and started
/// again if it died.
pub(crate) struct Watcher {
    grace: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Created with the first watcher, kept across its restarts.
    registry: Option<Registry>,
    /// The watcher's stdin, and whether the watcher is known to have ended.
    stdin: Option<ChildStdin>,
    ended: Arc<AtomicBool>,
    /// The watcher's pid.
    #[cfg(test)]
    pid: Option<u32>,
}

/// The registry file and which of its slots hold a group.
struct Registry {
    file: File,
    slots: Vec<Option<i32>>,
}

impl Registry {
    fn new() -> std::io::Result<Self> {
        let fd = memfd_create(c"jobs-process-watcher", MemFdCreateFlag::MFD_CLOEXEC)?;
        Ok(Registry {
            file: File::from(fd),
            slots: Vec::new(),
        })
    }

    /// Writes the group into a free slot.
    fn add(&mut self, pgid: i32) -> std::io::Result<()> {
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        self.write(slot, Some(pgid))?;
        self.slots[slot] = Some(pgid);
        Ok(())
    }

    /// Blanks the group's slot. A failed write leaves the group registered
    /// (and its slot taken), which at worst signals a group that is gone.
    fn del(&mut self, pgid: i32) {
        if let Some(slot) = self.slots.iter().position(|&g| g == Some(pgid)) {
            if self.write(slot, None).is_ok() {
                self.slots[slot] = None;
            }
        }
    }

    /// Writes one slot: the group id, or blanks.
    fn write(&self, slot: usize, pgid: Option<i32>) -> std::io::Result<()> {
        let text = match pgid {
            Some(g) => format!("{g:>15}\n"),
            None => format!("{:15}\n", ""),
        };
        let offset = u64::try_from(slot * SLOT).map_err(std::io::Error::other)?;
        self.file.write_all_at(text.as_bytes(), offset)
    }
}

impl Watcher {
    pub(crate) fn new(grace: Duration) -> Self {
        Watcher {
            grace,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a slot write: consistent after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure a watcher runs, so that registering a job cannot fail for
    /// want of one. Called before a job is spawned.
    pub(crate) fn ensure(&self) -> std::io::Result<()> {
        let mut st = self.lock();
        self.ensure_locked(&mut st)
    }

    fn ensure_locked(&self, st: &mut State) -> std::io::Result<()> {
        if st.stdin.is_some() && !st.ended.load(Ordering::Acquire) {
            return Ok(());
        }
        // A dead watcher's pipe is closed before a new one starts.
        st.stdin = None;
        let registry = match st.registry.take() {
            Some(r) => r,
            None => Registry::new()?,
        };
        let registry = &*st.registry.insert(registry);
        let ended = Arc::new(AtomicBool::new(false));
        let (stdin, _pid) = self.spawn(&registry.file, Arc::clone(&ended))?;
        st.stdin = Some(stdin);
        #[cfg(test)]
        {
            st.pid = Some(_pid);
        }
        st.ended = ended;
        Ok(())
    }

    fn spawn(&self, registry: &File, ended: Arc<AtomicBool>) -> std::io::Result<(ChildStdin, u32)> {
        let tenths = self.grace.as_millis().div_ceil(100).to_string();
        let fd = registry.as_raw_fd();
        // The registry reaches the watcher by inheritance: inheritable only
        // under the lock of job spawns, so no job inherits it, and the
        // watcher never inherits a job's records descriptor.
        let _lock = SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty()))?;
        let spawned = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("jobs-process-watcher")
            .arg(tenths)
            .arg(fd.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .process_group(0)
            .spawn();
        let restored = fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        drop(_lock);
        let mut child = spawned?;
        restored?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the watcher has no stdin"))?;
        let pid = child.id();
        // Reaps the watcher whenever it ends, so it never lingers as a
        // zombie, and tells the next job start to spawn a new one.
        std::thread::Builder::new()
            .name("jobs-process-watcher".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = child.wait();
                ended.store(true, Ordering::Release);
            })?;
        Ok((stdin, pid))
    }

    /// Registers a job's process group; restarts a dead watcher.
    pub(crate) fn add(&self, pgid: i32) -> std::io::Result<()> {
        let mut st = self.lock();
        self.ensure_locked(&mut st)?;
        match st.registry.as_mut() {
            Some(r) => r.add(pgid),
            None => Err(std::io::Error::other("the watcher has no registry")),
        }
    }

    /// Forgets a group whose processes are all gone.
    pub(crate) fn del(&self, pgid: i32) {
        if let Some(r) = self.lock().registry.as_mut() {
            r.del(pgid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A registry alone: no watcher runs, so these made-up groups are never
    // signalled.
    #[test]
    fn slots_are_reused_and_hold_one_group_each() {
        let mut r = Registry::new().expect("registry");
        r.add(12345).expect("add");
        r.add(678).expect("add");
        r.del(12345);
        r.add(9).expect("add");
        r.add(4194304).expect("add");
        r.del(678);
        assert_eq!(r.slots, vec![Some(9), None, Some(4194304)]);
        let mut buf = vec![0u8; 3 * SLOT];
        r.file.read_exact_at(&mut buf, 0).expect("read");
        let text = String::from_utf8_lossy(&buf);
        assert_eq!(text, format!("{:>15}\n{:15}\n{:>15}\n", 9, "", 4194304));
    }

    /// The pid of the watcher `w` runs now, if it is alive (not a zombie).
    fn watcher_pid(w: &Watcher) -> Option<i32> {
        let pid = w.lock().pid?;
        let alive = crate::group::proc_stat(pid).is_some_and(|st| !st.gone());
        alive.then(|| i32::try_from(pid).ok()).flatten()
    }

    /// Kills the sleeper's group if the test ends early.
    struct Sleeper(std::process::Child);

    impl Drop for Sleeper {
        fn drop(&mut self) {
            if let Ok(pid) = i32::try_from(self.0.id()) {
                crate::group::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            }
            let _ = self.0.wait();
        }
    }

    #[test]
    fn a_replaced_watcher_still_ends_the_registered_groups() {
        let child = Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .expect("sleep");
        let mut sleeper = Sleeper(child);
        let pgid = i32::try_from(sleeper.0.id()).expect("pid");
        let w = Watcher::new(Duration::from_millis(500));
        w.add(pgid).expect("add");
        let first = watcher_pid(&w).expect("a watcher runs");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(first),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill the watcher");
        let began = std::time::Instant::now();
        while !w.lock().ended.load(Ordering::Acquire) {
            assert!(began.elapsed() < Duration::from_secs(30), "death unnoticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(sleeper.0.try_wait().expect("try_wait").is_none());
        w.ensure().expect("a new watcher");
        let second = watcher_pid(&w).expect("a new watcher runs");
        assert_ne!(second, first);
        // The executor is gone: the new watcher ends the group it never
        // saw registered, from the registry.
        drop(w);
        let began = std::time::Instant::now();
        let status = loop {
            if let Some(st) = sleeper.0.try_wait().expect("try_wait") {
                break st;
            }
            assert!(
                began.elapsed() < Duration::from_secs(30),
                "sleeper left alive"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(nix::libc::SIGTERM)
        );
    }
}
