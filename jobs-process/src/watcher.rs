//! The watcher: a tiny `/bin/sh` process per executor that ends every
//! registered job's process group once the executor is gone, however it went
//! (dropped, or its host process SIGKILLed).
//!
//! It reads `add PGID` / `del PGID` lines on its stdin, a pipe whose write
//! end only the executor holds (close-on-exec, so no job inherits it). When
//! the pipe reaches end of file, the host is gone: the watcher sends SIGTERM
//! to every group still registered, waits up to the grace period, and
//! SIGKILLs what is left. It sits in its own process group, so a Ctrl-C or a
//! group kill aimed at the host does not take it down first.

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use std::os::unix::process::CommandExt;

use crate::spawn::SPAWN_LOCK;

/// The watcher's program. `$1` is the grace period in tenths of a second.
const SCRIPT: &str = r#"
trap '' INT HUP TERM
set -f
groups=' '
while read -r op pg; do
  case $op in
    add) groups="$groups$pg " ;;
    del) case $groups in *" $pg "*) groups="${groups%% $pg *} ${groups#* $pg }" ;; esac ;;
  esac
done
[ "$groups" = ' ' ] && exit 0
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

/// The executor's handle on its watcher, started on first use and started
/// again if it died.
pub(crate) struct Watcher {
    grace: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stdin: Option<ChildStdin>,
    /// The groups registered, to hand to a restarted watcher.
    groups: Vec<i32>,
}

impl Watcher {
    pub(crate) fn new(grace: Duration) -> Self {
        Watcher {
            grace,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a push/retain or a write: consistent after a panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes sure a watcher runs, so that registering a job cannot fail for
    /// want of one. Called before a job is spawned.
    pub(crate) fn ensure(&self) -> std::io::Result<()> {
        let mut st = self.lock();
        if st.stdin.is_none() {
            st.stdin = Some(self.spawn(&st.groups)?);
        }
        Ok(())
    }

    fn spawn(&self, groups: &[i32]) -> std::io::Result<ChildStdin> {
        let tenths = self.grace.as_millis().div_ceil(100).to_string();
        // Spawned under the lock of job spawns, so it never inherits a
        // job's records descriptor.
        let _lock = SPAWN_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("jobs-process-watcher")
            .arg(tenths)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .current_dir("/")
            .process_group(0)
            .spawn()?;
        drop(_lock);
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("the watcher has no stdin"))?;
        // Reaps the watcher whenever it ends, so it never lingers as a zombie.
        std::thread::Builder::new()
            .name("jobs-process-watcher".into())
            .stack_size(64 << 10)
            .spawn(move || {
                let _ = child.wait();
            })?;
        for g in groups {
            writeln!(stdin, "add {g}")?;
        }
        Ok(stdin)
    }

    /// Registers a job's process group; restarts a dead watcher once.
    pub(crate) fn add(&self, pgid: i32) -> std::io::Result<()> {
        let mut st = self.lock();
        st.groups.push(pgid);
        self.send(&mut st, &format!("add {pgid}\n"))
    }

    /// Forgets a group whose processes are all gone.
    pub(crate) fn del(&self, pgid: i32) {
        let mut st = self.lock();
        st.groups.retain(|&g| g != pgid);
        // A watcher that died has nothing to forget; the next `ensure` or
        // `add` starts a new one.
        let _ = self.send(&mut st, &format!("del {pgid}\n"));
    }

    fn send(&self, st: &mut State, line: &str) -> std::io::Result<()> {
        if let Some(stdin) = st.stdin.as_mut() {
            if stdin.write_all(line.as_bytes()).is_ok() {
                return Ok(());
            }
        }
        // The watcher is gone (EPIPE): a new one gets the whole list.
        st.stdin = None;
        let groups = st.groups.clone();
        st.stdin = Some(self.spawn(&groups)?);
        Ok(())
    }
}
