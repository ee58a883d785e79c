//! A private OpenSSH server on loopback for the tests: its own host key,
//! authorized key, temp HOME with `.ssh/config`, `known_hosts` and an
//! identity; killed by pid (and process group) when dropped, and by the
//! kernel (parent-death signal) if the test process dies first.

use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobs_core::{JobId, JobInfo, JobState, Received, Session, Stream, WaitMode};
use jobs_remote::{SshExecutor, SshOptions};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// The alias prefix configured in the fixture's `.ssh/config`.
pub(crate) const ALIAS: &str = "node";

/// Runs a program and panics with its stderr if it fails.
pub(crate) fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Generates an unencrypted ed25519 key pair at `path`.
pub(crate) fn keygen(path: &Path) {
    let p = path.to_str().expect("utf-8 path");
    sh(
        "ssh-keygen",
        &["-q", "-t", "ed25519", "-N", "", "-C", "test", "-f", p],
    );
}

/// A free TCP port on 127.0.0.1 (nothing listens on it after this returns).
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A running sshd and the client-side files that go with it.
pub(crate) struct Sshd {
    /// Owns every file; removed on drop.
    pub dir: TempDir,
    /// The HOME the executor is pointed at.
    pub home: PathBuf,
    /// The port sshd listens on, on every address.
    pub port: u16,
    child: Child,
}

impl Sshd {
    /// An sshd on 127.0.0.1, trusted in known_hosts (hashed entry).
    pub(crate) fn start() -> Sshd {
        Sshd::start_on(&["127.0.0.1"])
    }

    /// An sshd listening on each of `addrs` (loopback addresses), each
    /// trusted in known_hosts; the first in hashed form.
    pub(crate) fn start_on(addrs: &[&str]) -> Sshd {
        Sshd::launch(addrs, false)
    }

    /// An sshd on 127.0.0.1 whose sessions see an empty `/root/.bashrc`
    /// (bind-mounted over in a private mount namespace): root's rc file on
    /// these machines costs ~100 ms per command, which benchmarks must not
    /// measure.
    pub(crate) fn start_masked() -> Sshd {
        Sshd::launch(&["127.0.0.1"], true)
    }

    fn launch(addrs: &[&str], mask_bashrc: bool) -> Sshd {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_path_buf();
        let home = root.join("home");
        let ssh = home.join(".ssh");
        fs::create_dir_all(&ssh).expect("mkdir .ssh");
        fs::create_dir_all("/run/sshd").expect("mkdir /run/sshd");
        keygen(&root.join("host_ed25519"));
        keygen(&ssh.join("id_ed25519"));
        fs::copy(ssh.join("id_ed25519.pub"), root.join("authorized_keys")).expect("authorize");
        let port = free_port();
        let mut cfg = format!(
            "Port {port}\nHostKey {root}/host_ed25519\nPidFile {root}/sshd.pid\n\
             AuthorizedKeysFile {root}/authorized_keys\nStrictModes no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nMaxStartups 200\nMaxSessions 200\n\
             LogLevel VERBOSE\n",
            root = root.display()
        );
        for a in addrs {
            cfg.push_str(&format!("ListenAddress {a}\n"));
        }
        let cfg_path = root.join("sshd_config");
        fs::write(&cfg_path, cfg).expect("sshd_config");
        fs::write(
            ssh.join("config"),
            format!(
                "Host {ALIAS}*\n  HostName {}\n  Port {port}\n  User root\n",
                addrs[0]
            ),
        )
        .expect("ssh config");
        let mut command = if mask_bashrc {
            let script = format!(
                "[ -e /root/.bashrc ] && mount --bind /dev/null /root/.bashrc; exec /usr/sbin/sshd -D -f {} -E {}",
                cfg_path.display(),
                root.join("sshd.log").display()
            );
            let mut c = Command::new("setpriv");
            c.args([
                "--pdeathsig",
                "KILL",
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .args(["sh", "-c", &script]);
            c
        } else {
            let mut c = Command::new("setpriv");
            c.args(["--pdeathsig", "KILL", "/usr/sbin/sshd", "-D"])
                .arg("-f")
                .arg(&cfg_path)
                .arg("-E")
                .arg(root.join("sshd.log"));
            c
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start /usr/sbin/sshd (is openssh-server installed?)");
        let mut sshd = Sshd {
            dir,
            home,
            port,
            child,
        };
        for (i, a) in addrs.iter().enumerate() {
            sshd.trust(a, i == 0);
        }
        sshd.wait_listening(addrs);
        sshd
    }

    fn wait_listening(&mut self, addrs: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for a in addrs {
            while TcpStream::connect((*a, self.port)).is_err() {
                if let Ok(Some(st)) = self.child.try_wait() {
                    panic!("sshd exited ({st}): {}", self.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "sshd not listening: {}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// sshd's log so far.
    pub(crate) fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// The server's public host key line (`type base64`).
    pub(crate) fn host_key(&self) -> String {
        let pubkey = fs::read_to_string(self.dir.path().join("host_ed25519.pub")).expect("pub");
        pubkey
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The client's known_hosts file.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        self.home.join(".ssh").join("known_hosts")
    }

    /// Adds the server's key for `addr` to known_hosts, hashed or plain.
    pub(crate) fn trust(&self, addr: &str, hashed: bool) {
        let kh = self.known_hosts();
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&kh)
            .expect("known_hosts");
        writeln!(f, "[{addr}]:{} {}", self.port, self.host_key()).expect("write");
        drop(f);
        if hashed {
            sh(
                "ssh-keygen",
                &["-q", "-H", "-f", kh.to_str().expect("utf-8")],
            );
            let _ = fs::remove_file(kh.with_extension("old"));
        }
    }

    /// `127.0.0.1:PORT`-style host string for one of the addresses.
    pub(crate) fn host(&self, addr: &str) -> String {
        format!("{addr}:{}", self.port)
    }

    /// Options pointing at the fixture's HOME: no agent, fast keepalive.
    pub(crate) fn options(&self) -> SshOptions {
        SshOptions::default()
            .home(&self.home)
            .use_agent(false)
            .connect_timeout(Duration::from_secs(10))
            .keepalive(Duration::from_secs(1), 3)
            .stop_grace(Duration::from_secs(1))
    }

    /// A session with the executor registered with these options.
    pub(crate) fn session_with(&self, options: SshOptions) -> Session {
        let session = Session::new().expect("session");
        session.register(Arc::new(SshExecutor::with_options(options)));
        session
    }

    /// A session with the executor registered with [`Sshd::options`].
    pub(crate) fn session(&self) -> Session {
        self.session_with(self.options())
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Waits for the jobs to finish, failing the test after `secs`.
pub(crate) fn wait(session: &Session, ids: &[JobId], secs: u64) {
    let out = session
        .wait_blocking(ids, WaitMode::All, Some(Duration::from_secs(secs)))
        .expect("wait");
    assert!(!out.timed_out, "jobs {ids:?} still running after {secs}s");
}

/// The children of a parent, in host order.
pub(crate) fn children(session: &Session, parent: JobId) -> Vec<JobInfo> {
    let info = session.info(parent).expect("info");
    info.children
        .iter()
        .map(|c| session.info(*c).expect("child info"))
        .collect()
}

/// The bytes of one job's records of one stream, concatenated.
pub(crate) fn bytes_of(records: &[Received], job: JobId, stream: Stream) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r.job == job && r.record.stream == stream)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect()
}

/// Polls until `job` reaches `state`.
pub(crate) fn wait_state(session: &Session, job: JobId, state: JobState, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let now = session.info(job).expect("info").state;
        if now == state {
            return;
        }
        assert!(Instant::now() < deadline, "job {job} is {now}, not {state}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a local process is gone (a zombie counts as gone).
pub(crate) fn process_gone(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|s| s == "Z" || s == "X"),
    }
}
