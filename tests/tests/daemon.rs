//! The session daemon: start on first use, one per home, stop, crash,
//! garbage on its socket, permissions.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use jobctl_tests::{alive, daemons_of, eventually, finish, kill9, TestHome, COMMAND_TIMEOUT};

#[test]
fn daemon_start_status_stop() {
    let home = TestHome::new();
    assert_eq!(home.ok(&["daemon", "status"]), "not running\n");
    assert_eq!(home.ok(&["daemon", "stop"]), "not running\n");
    let out = home.ok(&["daemon", "start"]);
    let pid = home.daemon_pid().expect("running");
    assert_eq!(out, format!("running, pid {pid}\n"));
    assert_eq!(
        home.ok(&["daemon", "start"]),
        out,
        "a second start finds it"
    );
    assert_eq!(home.ok(&["daemon", "status"]), out);
    assert!(home.path().join("daemon.log").exists());
    home.ok(&["daemon", "stop"]);
    // `daemon stop` returns once the daemon's lock is released, which the
    // kernel does as the process exits, a moment before it is gone.
    assert!(eventually(Duration::from_secs(5), || !alive(pid)));
    assert_eq!(home.ok(&["daemon", "status"]), "not running\n");
    // Any command brings it back.
    assert_eq!(home.ok(&["list"]), "");
    assert!(home.daemon_pid().is_some_and(|p| p != pid));
}

/// Runs `args` against a dying daemon: its socket listens (nobody
/// accepts) and its life lock is held while the client connects and waits
/// for an answer; then both go, as a killed daemon's do.
fn asked_of_a_dying_daemon(home: &TestHome, args: &[&str]) -> jobctl_tests::Run {
    use nix::fcntl::{Flock, FlockArg};
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(home.path().join("daemon.lock"))
        .expect("daemon lock");
    let life = Flock::lock(lock, FlockArg::LockExclusive).expect("flock");
    let listener = std::os::unix::net::UnixListener::bind(home.socket()).expect("bind");
    let child = home.cmd(args).spawn().expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    drop(listener);
    std::fs::remove_file(home.socket()).expect("socket");
    std::thread::sleep(Duration::from_millis(200));
    drop(life);
    finish(child, COMMAND_TIMEOUT, "command")
}

/// A daemon killed a moment ago keeps its socket until its last thread is
/// gone: the kernel accepts a connection, then resets it. `daemon start`
/// and `daemon status` take that daemon for gone, not for an error.
#[test]
fn a_daemon_dying_as_it_is_asked_counts_as_gone() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    home.ok(&["daemon", "stop"]);
    for (args, want) in [
        (["daemon", "status"], "not running\n"),
        (["daemon", "start"], "running, pid "),
    ] {
        let r = asked_of_a_dying_daemon(&home, &args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        let out = String::from_utf8_lossy(&r.stdout);
        assert!(out.starts_with(want), "{args:?}: {out:?}");
    }
    assert!(home.daemon_pid().is_some());
}

/// A question that changes nothing (`list`, `wait`, `plugins`), or a
/// `suspend` or `stop`, which made twice do what they did once, asked of a
/// daemon dying as it is asked, is asked again of a new daemon rather than
/// failing with the reset.
#[test]
fn a_question_asked_of_a_dying_daemon_is_asked_again() {
    let home = TestHome::new();
    // Detached: Running again under each new daemon, until stopped.
    let id = home
        .start(&["--detached", "--", "sleep", "300"])
        .to_string();
    home.ok(&["daemon", "stop"]);
    // `wait` after `suspend`: it returns on a Suspended job.
    for args in [
        &["list"][..],
        &["plugins"],
        &["suspend", &id],
        &["wait"],
        &["stop", &id],
    ] {
        let r = asked_of_a_dying_daemon(&home, args);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
        // The new daemon answered; stop it for the next round's fake one.
        home.ok(&["daemon", "stop"]);
    }
}

#[test]
fn concurrent_first_commands_start_one_daemon() {
    let home = TestHome::new();
    let children: Vec<_> = (0..10)
        .map(|_| home.cmd(&["list"]).spawn().expect("spawn"))
        .collect();
    for c in children {
        let r = finish(c, COMMAND_TIMEOUT, "list");
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let pid = home.daemon_pid().expect("running");
    assert_eq!(daemons_of(home.path()), vec![pid], "exactly one daemon");
}

#[test]
fn socket_and_home_permissions() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    let dir_mode = std::fs::metadata(home.path())
        .expect("home")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700);
    let sock_mode = std::fs::metadata(home.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(sock_mode & 0o777, 0o600);
}

fn send_raw(home: &TestHome, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(home.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    reply
}

#[test]
fn garbage_on_the_socket_does_not_hurt_the_daemon() {
    let home = TestHome::new();
    let id = home.start(&["--", "echo", "still here"]).to_string();
    let pid = home.daemon_pid().expect("running");
    // Not a frame at all: an HTTP request.
    let reply = send_raw(&home, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(
        String::from_utf8_lossy(&reply).contains("over the limit"),
        "an error reply: {:?}",
        String::from_utf8_lossy(&reply)
    );
    // A frame whose header is not JSON.
    let mut bad = Vec::new();
    bad.extend_from_slice(&5u32.to_le_bytes());
    bad.extend_from_slice(&0u32.to_le_bytes());
    bad.extend_from_slice(b"{{{{{");
    assert!(String::from_utf8_lossy(&send_raw(&home, &bad)).contains("malformed"));
    // Valid JSON, unknown request, wrong version.
    for header in [
        &br#"{"version":1,"op":{"explode":{}}}"#[..],
        &br#"{"version":999,"op":"status"}"#[..],
    ] {
        let mut f = Vec::new();
        f.extend_from_slice(&(header.len() as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(header);
        let reply = String::from_utf8_lossy(&send_raw(&home, &f)).into_owned();
        assert!(reply.contains("error"), "{reply}");
    }
    // Truncated: a length promising more than is sent.
    let mut cut = Vec::new();
    cut.extend_from_slice(&100u32.to_le_bytes());
    cut.extend_from_slice(&0u32.to_le_bytes());
    cut.extend_from_slice(b"{\"version\":1");
    send_raw(&home, &cut);
    // A client that connects, sends half a length and stays: others go on.
    let mut stuck = UnixStream::connect(home.socket()).expect("connect");
    stuck.write_all(&[1, 0]).expect("write");
    // Random bytes.
    let noise: Vec<u8> = (0..4096u32).map(|i| (i * 7919 % 251) as u8).collect();
    send_raw(&home, &noise);
    assert_eq!(home.daemon_pid(), Some(pid), "the daemon survived");
    home.ok(&["wait", &id]);
    assert_eq!(home.ok(&["receive", &id]), "still here\n");
    drop(stuck);
}

#[test]
fn daemon_stop_kills_running_trees_and_keeps_finished_output() {
    let home = TestHome::new();
    let done = home.start(&["-c", "echo kept output"]).to_string();
    home.ok(&["wait", &done]);
    let running = home
        .start(&["-c", "sleep 300 & echo $!; echo $$; wait"])
        .to_string();
    let mut pids = Vec::new();
    assert!(eventually(Duration::from_secs(20), || {
        pids = home
            .ok(&["receive", &running, "--keep"])
            .lines()
            .filter_map(|l| l.parse::<u32>().ok())
            .collect();
        pids.len() == 2
    }));
    let daemon = home.daemon_pid().expect("running");
    home.ok(&["daemon", "stop"]);
    assert!(eventually(Duration::from_secs(5), || !alive(daemon)));
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "the job's processes outlived the session: {pids:?}"
    );
    // A new daemon over the same home: the finished job and its output are there.
    let v = home.job(done.parse().expect("id"));
    assert_eq!(v["state"], "Completed");
    assert_eq!(home.ok(&["receive", &done]), "kept output\n");
    let v = home.job(running.parse().expect("id"));
    assert!(
        v["state"] == "Stopped" || v["state"] == "Failed",
        "the running job ended with the session: {v}"
    );
}

#[test]
fn killed_daemon_leaves_no_job_processes_and_keeps_output() {
    let home = TestHome::new();
    let done = home.start(&["-c", "echo survived"]).to_string();
    home.ok(&["wait", &done]);
    let running = home
        .start(&["-c", "sleep 300 & echo $!; echo $$; wait"])
        .to_string();
    let mut pids = Vec::new();
    assert!(eventually(Duration::from_secs(20), || {
        pids = home
            .ok(&["receive", &running, "--keep"])
            .lines()
            .filter_map(|l| l.parse::<u32>().ok())
            .collect();
        pids.len() == 2
    }));
    let daemon = home.daemon_pid().expect("running");
    kill9(daemon);
    assert!(eventually(Duration::from_secs(10), || !alive(daemon)));
    assert!(
        eventually(Duration::from_secs(15), || pids.iter().all(|&p| !alive(p))),
        "job processes outlived a killed daemon: {pids:?}"
    );
    assert_eq!(home.ok(&["receive", &done]), "survived\n");
    let v = home.job(running.parse().expect("id"));
    assert_eq!(v["state"], "Failed", "{v}");
    assert!(
        v["reason"].as_str().is_some_and(|r| r.contains("session")),
        "{v}"
    );
}

#[test]
fn detached_jobs_outlive_the_session() {
    let home = TestHome::new();
    let gate = home.path().join("gate");
    let line = format!(
        "echo started; while [ ! -e '{}' ]; do sleep 0.05; done; echo finished",
        gate.display()
    );
    let id = home.start(&["--detached", "-c", &line]).to_string();
    assert!(eventually(Duration::from_secs(20), || home
        .ok(&["receive", &id, "--keep"])
        == "started\n"));
    home.ok(&["daemon", "stop"]);
    std::fs::write(&gate, b"").expect("gate");
    home.ok(&["wait", &id, "--timeout", "30"]);
    let v = home.job(id.parse().expect("id"));
    assert_eq!(v["state"], "Completed", "{v}");
    assert_eq!(home.ok(&["receive", &id]), "started\nfinished\n");
}

/// The daemon's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib * 1024
}

/// The start of a frame: its two lengths and its header.
fn frame_head(header: &[u8], blob_len: usize) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&(header.len() as u32).to_le_bytes());
    f.extend_from_slice(&(blob_len as u32).to_le_bytes());
    f.extend_from_slice(header);
    f
}

/// A raw `start` of `true`, in the protocol's current version.
fn start_true() -> Vec<u8> {
    format!(
        r#"{{"version":{},"op":{{"start":{{"work":{{"program":{{"argv":["true"]}}}},"type_name":null,"name":null,"hosts":[],"throttle":null,"cwd":"/","env":[],"detached":false}}}}}}"#,
        jobs_protocol::PROTOCOL_VERSION
    )
    .into_bytes()
}

/// `count` variables `V<i>=<value_len bytes>` as a start's blob.
fn env_blob(count: usize, value_len: usize) -> Vec<u8> {
    let mut blob = Vec::new();
    for i in 0..count {
        blob.extend_from_slice(format!("V{i}=").as_bytes());
        blob.extend(std::iter::repeat_n(b'x', value_len));
        blob.push(0);
    }
    blob
}

#[test]
fn a_start_with_a_too_large_environment_is_refused() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    let pid = home.daemon_pid().expect("running");
    // Through jobctl: 3 MiB in 30 variables (a larger stack lets the
    // kernel exec jobctl with them at all), then 40,000 small ones.
    // The variables are made by a shell that first raised its stack limit:
    // the kernel refuses an exec with more than a quarter of it in args.
    let script = format!(
        "ulimit -s 65536 && big=$(head -c 102400 /dev/zero | tr '\\0' x) && \
         for i in $(seq 30); do export JOBCTL_TEST_BIG$i=$big; done && \
         exec '{}' start -- true",
        jobctl_tests::jobctl_bin().display()
    );
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .env("JOBCTL_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let r = finish(child, COMMAND_TIMEOUT, "big env");
    assert_eq!(r.code, 1, "stdout {} stderr {}", r.text(), r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains("environment is too large"),
        "{}",
        r.stderr
    );
    let mut cmd = home.cmd(&["start", "--", "true"]);
    for i in 0..40_000 {
        cmd.env(format!("JOBCTL_TEST_{i}"), "1");
    }
    let r = finish(cmd.spawn().expect("spawn"), COMMAND_TIMEOUT, "many vars");
    assert_eq!(r.code, 1, "stdout {} stderr {}", r.text(), r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains("variables"),
        "{}",
        r.stderr
    );
    // Straight to the socket, as another client could: the daemon says why.
    let blob = env_blob(30, 100 << 10);
    let mut frame = frame_head(&start_true(), blob.len());
    frame.extend_from_slice(&blob);
    let reply = String::from_utf8_lossy(&send_raw(&home, &frame)).into_owned();
    assert!(reply.contains("environment is too large"), "{reply}");
    let blob = env_blob(40_000, 1);
    let mut frame = frame_head(&start_true(), blob.len());
    frame.extend_from_slice(&blob);
    let reply = String::from_utf8_lossy(&send_raw(&home, &frame)).into_owned();
    assert!(reply.contains("variables"), "{reply}");
    assert_eq!(home.daemon_pid(), Some(pid), "the daemon survived");
    assert_eq!(home.ok(&["list"]), "", "no job was started");
}

#[test]
fn concurrent_huge_frames_do_not_grow_the_daemon() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    let pid = home.daemon_pid().expect("running");
    // Each client sends a frame of the largest header and environment a
    // start may have, all but its last byte, and stays.
    let header = MAX_HEADER;
    let blob = 2 << 20;
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let path = home.socket();
            std::thread::spawn(move || {
                let Ok(mut s) = UnixStream::connect(&path) else {
                    return None;
                };
                let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
                let mut bytes = frame_head(&vec![b' '; header], blob);
                bytes.resize(bytes.len() + blob - 1, b'x');
                let _ = s.write_all(&bytes);
                Some(s)
            })
        })
        .collect();
    let streams: Vec<_> = clients
        .into_iter()
        .filter_map(|c| c.join().expect("client thread"))
        .collect();
    let peak = peak_rss(pid);
    drop(streams);
    assert!(
        peak < 512 << 20,
        "the daemon's peak RSS reached {} MiB",
        peak >> 20
    );
    assert!(
        eventually(Duration::from_secs(40), || home.run(&["list"]).code == 0),
        "the daemon serves again"
    );
    assert_eq!(home.daemon_pid(), Some(pid));
}

/// The largest request header (`jobs_protocol::MAX_HEADER`).
const MAX_HEADER: usize = 4 << 20;

/// Sends a signal to a process.
fn signal(pid: u32, sig: nix::sys::signal::Signal) {
    if let Ok(p) = i32::try_from(pid) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), sig);
    }
}

/// A daemon stopped with SIGSTOP, continued (SIGCONT) when dropped.
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal(pid, nix::sys::signal::Signal::SIGSTOP);
        // The stop reaches each thread when it next runs: on a loaded
        // machine a thread may still answer a request just after kill()
        // returned. Frozen means every thread shows state T.
        let frozen = eventually(COMMAND_TIMEOUT, || all_threads_stopped(pid));
        assert!(frozen, "the daemon's threads did not all stop");
        Frozen(pid)
    }
}

/// Whether every thread of `pid` is stopped (state `T` in its stat).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.filter_map(Result::ok).all(|t| {
        std::fs::read_to_string(t.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which ends with ')'.
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
        })
    })
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// Runs jobctl in `home` with extra environment, within `timeout`.
fn run_with(
    home: &TestHome,
    args: &[&str],
    env: &[(&str, &str)],
    timeout: Duration,
) -> jobctl_tests::Run {
    let mut cmd = home.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    finish(
        cmd.spawn().expect("spawn jobctl"),
        timeout,
        &format!("jobctl {}", args.join(" ")),
    )
}

#[test]
fn a_stopped_daemon_gets_a_message_not_a_hang() {
    let home = TestHome::new();
    let id = home.start(&["--", "sleep", "30"]).to_string();
    let pid = home.daemon_pid().expect("running");
    let fast = [("JOBCTL_CLIENT_TIMEOUT_MS", "300")];
    {
        let _frozen = Frozen::new(pid);
        let want = format!("jobctl: the session daemon does not answer (pid {pid})\n");
        for args in [&["list"][..], &["wait", &id], &["daemon", "status"]] {
            let r = run_with(&home, args, &fast, Duration::from_secs(20));
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert_eq!(r.stderr, want, "{args:?}");
        }
    }
    // The default client timeout: a daemon just continued on a loaded
    // machine may take longer than 300 ms for its first answer.
    let r = run_with(&home, &["list", &id], &[], COMMAND_TIMEOUT);
    assert_eq!(r.code, 0, "answers again once continued: {}", r.stderr);
    home.ok(&["stop", &id]);
}

#[test]
fn an_idle_connection_is_closed_but_a_waiting_one_is_not() {
    let home = TestHome::new();
    let idle = [("JOBCTL_IDLE_TIMEOUT_MS", "300")];
    assert_eq!(
        run_with(&home, &["daemon", "start"], &idle, COMMAND_TIMEOUT).code,
        0
    );
    let mut s = UnixStream::connect(home.socket()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut b = [0u8; 1];
    match s.read(&mut b) {
        Ok(0) => {}
        other => panic!("the idle connection was not closed by the daemon: {other:?}"),
    }
    // Requests that take longer than the idle timeout are not cut.
    let id = home.start(&["-c", "sleep 1.5; echo done"]).to_string();
    home.ok(&["wait", &id]);
    let id = home.start(&["-c", "sleep 1.5; echo late"]).to_string();
    assert_eq!(home.ok(&["receive", "--wait", &id]), "late\n");
}

#[test]
fn connections_over_the_cap_get_an_answer() {
    let home = TestHome::new();
    let cap = [("JOBCTL_MAX_CONNECTIONS", "4")];
    assert_eq!(
        run_with(&home, &["daemon", "start"], &cap, COMMAND_TIMEOUT).code,
        0
    );
    // Four connections, each served once (so surely counted), then idle.
    let status = frame_head(
        format!(
            r#"{{"version":{},"op":"status"}}"#,
            jobs_protocol::PROTOCOL_VERSION
        )
        .as_bytes(),
        0,
    );
    let held: Vec<UnixStream> = (0..4)
        .map(|_| {
            let mut s = UnixStream::connect(home.socket()).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            s.write_all(&status).expect("write");
            let mut b = [0u8; 8];
            s.read_exact(&mut b).expect("a reply");
            s
        })
        .collect();
    let r = run_with(
        &home,
        &["list"],
        &[("JOBCTL_CLIENT_TIMEOUT_MS", "5000")],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with("jobctl: ") && r.stderr.contains("too many connections"),
        "{}",
        r.stderr
    );
    drop(held);
    assert!(
        eventually(Duration::from_secs(20), || home.run(&["list"]).code == 0),
        "served again once connections closed"
    );
}

#[test]
fn the_daemon_raises_its_descriptor_limit() {
    let home = TestHome::new();
    let cmd = home.cmd(&["daemon", "start"]);
    let mut wrapped = std::process::Command::new("prlimit");
    wrapped
        .arg("--nofile=256:4096")
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let r = finish(
        wrapped
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("prlimit"),
        COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pid = home.daemon_pid().expect("running");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("the open files line");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[3..5], ["4096", "4096"], "{line}");
}

#[test]
fn accept_failures_are_logged_once_in_a_while() {
    let home = TestHome::new();
    // Few descriptors and a cap above them: accept runs out of descriptors.
    let script = format!(
        "ulimit -n 48 && exec '{}' daemon start",
        jobctl_tests::jobctl_bin().display()
    );
    let child = std::process::Command::new("/bin/sh")
        .args(["-c", &script])
        .env("JOBCTL_HOME", home.path())
        .env("JOBCTL_MAX_CONNECTIONS", "1000")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("sh");
    let r = finish(child, COMMAND_TIMEOUT, "daemon start");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let held: Vec<UnixStream> = (0..80)
        .filter_map(|_| UnixStream::connect(home.socket()).ok())
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let log = std::fs::read_to_string(home.path().join("daemon.log")).expect("log");
    let lines = log.lines().filter(|l| l.contains("accept failed")).count();
    drop(held);
    assert!(lines >= 1, "the failure is logged: {log}");
    assert!(lines <= 2, "{lines} lines of accept failures in 2 s");
}
