//! Remote jobs through jobctl, against a private sshd on loopback.

use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jobctl_tests::{eventually, finish, TestHome, COMMAND_TIMEOUT};

/// A private sshd on 127.0.0.1, 127.0.0.2 (or more addresses: see
/// [`Sshd::start_on`]), killed on drop.
pub(crate) struct Sshd {
    child: Child,
    pub(crate) port: u16,
    /// The client's `$HOME`: key, known_hosts.
    home: PathBuf,
    _dir: tempfile::TempDir,
}

fn keygen(path: &Path) {
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen");
    assert!(st.success());
}

impl Sshd {
    /// An sshd on 127.0.0.1 and 127.0.0.2.
    pub(crate) fn start() -> Sshd {
        Sshd::start_on(2)
    }

    /// An sshd on 127.0.0.1 to 127.0.0.`addresses` (on every address past
    /// 16, sshd's limit), each a host of its own with its line in
    /// known_hosts.
    pub(crate) fn start_on(addresses: u8) -> Sshd {
        // sshd takes at most 16 listen addresses; past that, all of them
        // (key logins only, for the test's own key).
        let listen: String = if addresses > 16 {
            "ListenAddress 0.0.0.0\n".into()
        } else {
            (1..=addresses)
                .map(|n| format!("ListenAddress 127.0.0.{n}\n"))
                .collect()
        };
        let hosts: Vec<String> = (1..=addresses).map(|n| format!("127.0.0.{n}")).collect();
        Sshd::start_with(&listen, &hosts, None)
    }

    /// An sshd with these `ListenAddress` lines, known (known_hosts) as
    /// each of `hosts`, run inside the network namespace `netns` if given.
    pub(crate) fn start_with(listen: &str, hosts: &[String], netns: Option<&str>) -> Sshd {
        let dir = tempfile::tempdir().expect("dir");
        let d = dir.path();
        let home = d.join("home");
        std::fs::create_dir_all(home.join(".ssh")).expect("mkdir");
        std::fs::create_dir_all("/run/sshd").expect("privsep dir");
        keygen(&d.join("host_ed25519"));
        keygen(&home.join(".ssh/id_ed25519"));
        std::fs::copy(home.join(".ssh/id_ed25519.pub"), d.join("authorized_keys")).expect("cp");
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("addr")
            .port();
        let config = format!(
            "Port {port}\n{listen}HostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\nMaxStartups 200\nMaxSessions 200\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("config");
        let host_key = std::fs::read_to_string(d.join("host_ed25519.pub")).expect("pub");
        let key = host_key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let known: String = hosts
            .iter()
            .map(|h| format!("[{h}]:{port} {key}\n"))
            .collect();
        std::fs::write(home.join(".ssh/known_hosts"), known).expect("known_hosts");
        let probe = hosts.last().cloned().unwrap_or_else(|| "127.0.0.1".into());
        let log = d.join("sshd.log");
        let mut child = None;
        // `ip netns exec` now and then fails as it sets up its mounts while
        // another runs: an sshd that exited is started again.
        for _ in 0..3 {
            let mut cmd = match netns {
                Some(ns) => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", ns, "/usr/sbin/sshd"]);
                    c
                }
                None => Command::new("/usr/sbin/sshd"),
            };
            let mut c = cmd
                .args(["-D", "-e", "-f"])
                .arg(d.join("sshd_config"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("sshd log"))
                .spawn()
                .expect("sshd");
            let listens = eventually(Duration::from_secs(10), || {
                std::net::TcpStream::connect((probe.as_str(), port)).is_ok()
                    || c.try_wait().ok().flatten().is_some()
            }) && c.try_wait().ok().flatten().is_none();
            if listens {
                child = Some(c);
                break;
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let child = child.unwrap_or_else(|| {
            panic!(
                "sshd does not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Sshd {
            child,
            port,
            home,
            _dir: dir,
        }
    }
}

impl Sshd {
    /// The client's `$HOME` (`.ssh/` holds the key and known_hosts).
    pub(crate) fn client_home(&self) -> &Path {
        &self.home
    }

    /// The listening sshd's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lets the holder of this public key log in too.
    pub(crate) fn authorize(&self, public_key: &Path) {
        let key = std::fs::read_to_string(public_key).expect("public key");
        let path = self._dir.path().join("authorized_keys");
        let mut keys = std::fs::read_to_string(&path).expect("authorized_keys");
        keys.push_str(&key);
        std::fs::write(path, keys).expect("authorized_keys");
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs jobctl as the user whose `$HOME` holds the key and known_hosts.
pub(crate) fn run(home: &TestHome, sshd: &Sshd, args: &[&str]) -> jobctl_tests::Run {
    let mut c = home.cmd(args);
    c.env("HOME", &sshd.home).env_remove("SSH_AUTH_SOCK");
    finish(c.spawn().expect("spawn"), COMMAND_TIMEOUT, &args.join(" "))
}

/// [`run`], asserting success; stdout.
pub(crate) fn ok(home: &TestHome, sshd: &Sshd, args: &[&str]) -> String {
    let r = run(home, sshd, args);
    assert_eq!(r.code, 0, "jobctl {} failed: {}", args.join(" "), r.stderr);
    r.text()
}

/// Hosts `h01`…`hNN` in the client's ssh config, each its own address
/// `127.0.0.N`; the last one has no sshd (port 1: connection refused).
pub(crate) struct Fleet {
    pub(crate) sshd: Sshd,
    pub(crate) home: TestHome,
    hosts: u8,
}

impl Fleet {
    pub(crate) fn new(hosts: u8) -> Fleet {
        let sshd = Sshd::start_on(hosts - 1);
        let fleet = Fleet {
            sshd,
            home: TestHome::new(),
            hosts,
        };
        fleet.write_config(&[hosts]);
        fleet
    }

    /// Points the aliases `down` (by number) at port 1, where nothing
    /// listens: from the next connection on, they cannot be reached.
    pub(crate) fn cut(&self, down: &[u8]) {
        let mut all = down.to_vec();
        all.push(self.hosts);
        self.write_config(&all);
    }

    fn write_config(&self, down: &[u8]) {
        let mut config = String::new();
        for n in 1..=self.hosts {
            let port = if down.contains(&n) { 1 } else { self.sshd.port };
            let _ = write!(
                config,
                "Host h{n:02}\n  HostName 127.0.0.{n}\n  Port {port}\n"
            );
        }
        // Whole or not at all: a reader never sees half a file.
        let path = self.sshd.client_home().join(".ssh/config");
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, config).expect("ssh config");
        std::fs::rename(&tmp, &path).expect("ssh config");
    }

    pub(crate) fn run(&self, args: &[&str]) -> jobctl_tests::Run {
        run(&self.home, &self.sshd, args)
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        ok(&self.home, &self.sshd, args)
    }

    /// `jobctl start -q ARGS` as the ssh user; the id.
    pub(crate) fn start(&self, args: &[&str]) -> u64 {
        let mut all = vec!["start", "-q"];
        all.extend_from_slice(args);
        self.ok(&all).trim().parse().expect("an id")
    }
}

#[test]
fn remote_jobs_fan_out_to_hosts() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    // The daemon is started from a shell whose HOME holds no ssh setup: a
    // remote job reads the ~/.ssh of the user who starts it, through the
    // $HOME that command was run with, as ssh does.
    let mut start = home.cmd(&["daemon", "start"]);
    start
        .env("HOME", "/nonexistent")
        .env_remove("SSH_AUTH_SOCK");
    let r = finish(
        start.spawn().expect("spawn"),
        COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let h2 = format!("127.0.0.2:{}", sshd.port);

    let r = run(
        &home,
        &sshd,
        &["run", "--host", &h1, "-c", "echo hi; echo oops >&2; exit 3"],
    );
    assert_eq!(
        r.code, 1,
        "a failed remote parent has no exit code: {}",
        r.stderr
    );
    assert_eq!(r.text(), "hi\n");
    assert!(r.stderr.contains("oops"), "{}", r.stderr);

    let hosts = format!("{h1},{h2}");
    let id: u64 = ok(
        &home,
        &sshd,
        &[
            "start",
            "-q",
            "--host",
            &hosts,
            "--throttle",
            "1",
            "--",
            "echo",
            "from a host",
        ],
    )
    .trim()
    .parse()
    .expect("an id");
    ok(&home, &sshd, &["wait", &id.to_string()]);
    let parent = home.job(id);
    assert_eq!(parent["type"], "RemoteJob");
    assert_eq!(parent["state"], "Completed", "{parent}");
    let children: Vec<u64> = parent["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c.as_u64().expect("id"))
        .collect();
    assert_eq!(children.len(), 2);
    let locations: Vec<String> = children
        .iter()
        .map(|&c| home.job(c)["location"].as_str().expect("loc").to_string())
        .collect();
    assert_eq!(locations, [h1.clone(), h2.clone()]);
    let table = ok(&home, &sshd, &["list", "--include-children"]);
    assert_eq!(table.lines().count(), 2 + 3, "{table}");
    assert!(
        ok(&home, &sshd, &["list"]).lines().count() == 3,
        "children are hidden by default"
    );
    let shown = ok(&home, &sshd, &["show", &id.to_string()]);
    assert!(shown.contains(&h1) && shown.contains(&h2), "{shown}");
    assert_eq!(
        ok(
            &home,
            &sshd,
            &["receive", &id.to_string(), "--no-recurse", "--keep"]
        ),
        ""
    );
    assert_eq!(
        ok(&home, &sshd, &["receive", &id.to_string()]),
        "from a host\nfrom a host\n"
    );

    // One unreachable host fails its own child; the other goes on.
    let bad = "127.0.0.1:1".to_string();
    let r = run(
        &home,
        &sshd,
        &["run", "--host", &format!("{h1},{bad}"), "-c", "echo ok"],
    );
    assert_eq!(r.code, 1);
    assert_eq!(r.text(), "ok\n");
    assert!(r.stderr.contains("127.0.0.1:1"), "{}", r.stderr);

    let r = run(&home, &sshd, &["start", "--host", &h1, "-e", "1"]);
    assert_eq!(r.code, 2, "scripts do not run remotely: {}", r.stderr);
}

#[test]
fn a_remote_timeout_fails_the_host_child_and_kills_the_remote_tree() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let marker = home.path().join("remote-sleep.pid");
    let line = format!(
        "sleep 30 & echo $! > '{}'; sleep 30",
        marker.to_str().expect("utf-8 path")
    );
    let id: u64 = ok(
        &home,
        &sshd,
        &["start", "-q", "--timeout", "1", "--host", &h1, "-c", &line],
    )
    .trim()
    .parse()
    .expect("an id");
    ok(
        &home,
        &sshd,
        &["wait", "--force", &id.to_string(), "--timeout", "20"],
    );
    let parent = home.job(id);
    assert_eq!(parent["state"], "Failed", "{parent}");
    let child = home.job(parent["children"][0].as_u64().expect("child"));
    assert_eq!(child["state"], "Failed", "{child}");
    assert_eq!(child["reason"], "timed out after 1s", "{child}");
    let pid: u32 = std::fs::read_to_string(&marker)
        .expect("marker")
        .trim()
        .parse()
        .expect("pid");
    assert!(
        eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the remote sleep {pid} lives on"
    );
}

/// Debian's `/bin/sh` is dash, whose `kill` takes no `--`: a stop must
/// still reach the whole remote group, not its leader alone, when the
/// server runs commands with dash (here forced by the server's config, as
/// a login shell of `/bin/sh` would).
#[test]
fn a_stop_reaches_the_remote_group_under_a_dash_shell() {
    let listen =
        "ListenAddress 127.0.0.1\nForceCommand exec /bin/dash -c \"$SSH_ORIGINAL_COMMAND\"\n";
    let sshd = Sshd::start_with(listen, &["127.0.0.1".to_string()], None);
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let marker = home.path().join("remote-sleep.pid");
    let line = format!(
        "sleep 60 & echo $! > '{}'; sleep 60",
        marker.to_str().expect("utf-8 path")
    );
    let id = ok(&home, &sshd, &["start", "-q", "--host", &h1, "-c", &line]);
    let id = id.trim();
    assert!(
        eventually(Duration::from_secs(20), || std::fs::read_to_string(&marker)
            .is_ok_and(|s| s.ends_with('\n'))),
        "the remote command did not start"
    );
    let pid: u32 = std::fs::read_to_string(&marker)
        .expect("marker")
        .trim()
        .parse()
        .expect("pid");
    ok(&home, &sshd, &["stop", "-q", id]);
    assert!(
        eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the background sleep {pid} of the stopped remote job lives on"
    );
}
