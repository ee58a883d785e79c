//! Whom the command and its daemon trust: a home of this user's own, a
//! socket served by this user, files that are not symlinks planted by
//! someone else.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jobctl_tests::{daemons_of, eventually, finish, jobctl_bin, TestHome};

/// An unprivileged uid (and gid) to hand files to: `nobody`.
const OTHER: u32 = 65534;

/// Gives a path to [`OTHER`]; gives it back to root when dropped.
struct GivenAway(PathBuf);

impl GivenAway {
    fn new(path: &Path) -> GivenAway {
        std::os::unix::fs::chown(path, Some(OTHER), Some(OTHER)).expect("chown to nobody");
        GivenAway(path.to_path_buf())
    }
}

impl Drop for GivenAway {
    fn drop(&mut self) {
        let _ = std::os::unix::fs::chown(&self.0, Some(0), Some(0));
    }
}

/// A child process killed (by pid) when dropped.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o7777
}

/// `jobctl ARGS` with `JOBCTL_HOME=home`.
fn jobctl_in(home: &Path, args: &[&str]) -> jobctl_tests::Run {
    let child = Command::new(jobctl_bin())
        .args(args)
        .env("JOBCTL_HOME", home)
        .env_remove("JOBCTL_PLUGIN_PATH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn jobctl");
    finish(child, Duration::from_secs(30), &format!("jobctl {args:?}"))
}

#[test]
fn a_home_owned_by_another_user_is_refused() {
    let home = TestHome::new();
    let before = mode(home.path());
    let _given = GivenAway::new(home.path());
    let r = home.run(&["list"]);
    assert_eq!(r.code, 1, "stdout {} stderr {}", r.text(), r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains(&format!("uid {OTHER}")),
        "{}",
        r.stderr
    );
    assert!(daemons_of(home.path()).is_empty(), "no daemon started");
    assert!(!home.socket().exists());
    assert_eq!(mode(home.path()), before, "left as it was");
}

#[test]
fn a_home_writable_by_others_is_refused_and_left_alone() {
    let home = TestHome::new();
    for bad in [0o777, 0o770, 0o1777] {
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(bad)).expect("chmod");
        let r = home.run(&["list"]);
        assert_eq!(r.code, 1, "mode {bad:o}: {}", r.stderr);
        assert!(
            r.stderr.starts_with("jobctl: ") && r.stderr.contains("writable"),
            "{}",
            r.stderr
        );
        assert_eq!(mode(home.path()), bad, "never chmodded");
    }
    assert!(daemons_of(home.path()).is_empty(), "no daemon started");
}

#[test]
fn an_existing_home_keeps_its_mode_and_a_new_one_is_0700() {
    let home = TestHome::new();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    assert_eq!(home.ok(&["list"]), "");
    assert_eq!(mode(home.path()), 0o755, "a project folder keeps its mode");

    let parent = tempfile::tempdir().expect("tempdir");
    let fresh = parent.path().join("state").join("jobctl");
    let r = jobctl_in(&fresh, &["daemon", "start"]);
    let pids = daemons_of(&fresh);
    let r2 = jobctl_in(&fresh, &["daemon", "stop"]);
    for p in pids {
        jobctl_tests::kill9(p);
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(mode(&fresh), 0o700);
}

#[test]
fn a_symlink_as_the_home_is_refused() {
    let real = TestHome::new();
    let parent = tempfile::tempdir().expect("tempdir");
    let link = parent.path().join("home");
    symlink(real.path(), &link).expect("symlink");
    let r = jobctl_in(&link, &["list"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains("symbolic link"),
        "{}",
        r.stderr
    );
    assert!(daemons_of(&link).is_empty() && daemons_of(real.path()).is_empty());
}

#[test]
fn the_daemon_refuses_a_home_of_another_user() {
    let home = TestHome::new();
    let _given = GivenAway::new(home.path());
    let daemon = jobctl_bin().with_file_name("jobctl-daemon");
    let child = Command::new(daemon)
        .arg("--home")
        .arg(home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the daemon");
    let r = finish(child, Duration::from_secs(20), "jobctl-daemon");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains(&format!("uid {OTHER}")), "{}", r.stderr);
    assert!(!home.socket().exists());
}

/// A listener run as [`OTHER`] that records what a client sends it.
const FAKE_DAEMON: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
open(sys.argv[2] + ".ready", "w").close()
s.settimeout(30)
c, _ = s.accept()
c.settimeout(3)
got = b""
try:
    while True:
        b = c.recv(65536)
        if not b:
            break
        got += b
except Exception:
    pass
open(sys.argv[2], "wb").write(got)
"#;

#[test]
fn a_socket_served_by_another_user_gets_nothing() {
    let home = TestHome::new();
    let fake = tempfile::tempdir().expect("tempdir");
    let _given = GivenAway::new(fake.path());
    let sock = fake.path().join("sock");
    let got = fake.path().join("got");
    let listener = Command::new("setpriv")
        .args([
            "--reuid",
            &OTHER.to_string(),
            "--regid",
            &OTHER.to_string(),
            "--clear-groups",
            "/usr/bin/python3",
            "-c",
            FAKE_DAEMON,
        ])
        .arg(&sock)
        .arg(&got)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the fake daemon");
    let mut listener = Reaped(Some(listener));
    let ready = fake.path().join("got.ready");
    assert!(
        eventually(Duration::from_secs(20), || ready.exists()),
        "the fake daemon did not start"
    );
    // Planted where the session's socket goes.
    std::fs::rename(&sock, home.socket()).expect("plant the socket");
    let r = home
        .cmd(&["start", "--", "true"])
        .env("JOBCTL_TEST_SECRET", "hunter2")
        .spawn()
        .map(|c| finish(c, Duration::from_secs(30), "jobctl start"))
        .expect("spawn jobctl");
    let child = listener.0.take().expect("the fake daemon");
    let fake_run = finish(child, Duration::from_secs(40), "the fake daemon");
    assert_eq!(fake_run.code, 0, "the fake daemon: {}", fake_run.stderr);
    let received = std::fs::read(&got).expect("what the fake daemon got");
    assert!(
        received.is_empty(),
        "the client sent {} bytes to another user's socket (secret leaked: {})",
        received.len(),
        received.windows(7).any(|w| w == b"hunter2")
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains(&format!("uid {OTHER}")),
        "{}",
        r.stderr
    );
}

#[test]
fn files_in_the_home_are_private() {
    let home = TestHome::new();
    let id = home.start(&["-c", "head -c 100000 /dev/zero"]).to_string();
    home.ok(&["wait", &id]);
    home.ok(&["receive", &id, "--keep"]);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(home.path()).expect("read the home") {
        let entry = entry.expect("entry");
        let m = mode(&entry.path());
        seen.push(entry.file_name());
        assert_eq!(m & 0o077, 0, "{} is mode {m:o}", entry.path().display());
    }
    assert!(seen.iter().any(|n| n == "jobs.db"), "{seen:?}");
}

#[test]
fn a_symlink_planted_at_a_data_file_is_not_followed() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let victim = elsewhere.path().join("precious");
    std::fs::write(&victim, b"precious\n").expect("victim");
    let records = home.path().join("jobs.db-records");
    std::fs::create_dir_all(&records).expect("records dir");
    std::fs::set_permissions(&records, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    for id in 1..=3 {
        symlink(&victim, records.join(format!("{id}.bin"))).expect("plant");
    }
    let id = home.start(&["-c", "head -c 100000 /dev/zero"]).to_string();
    home.run(&["wait", &id, "--timeout", "30"]);
    home.run(&["receive", &id]);
    assert_eq!(
        std::fs::read(&victim).expect("victim"),
        b"precious\n",
        "the symlink's target was written through"
    );
    assert!(std::fs::symlink_metadata(records.join(format!("{id}.bin")))
        .expect("still there")
        .file_type()
        .is_symlink());
    // The daemon goes on.
    assert!(home.ok(&["daemon", "status"]).starts_with("running"));
}
