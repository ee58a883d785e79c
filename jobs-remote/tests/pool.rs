//! Warm connections: sequential jobs to one host share one authenticated
//! connection; what differs in address or key does not share; a connection
//! the server dropped is replaced; a stopped job's connection, pooling off,
//! the idle timeout and the executor's drop all end connections. Proved by
//! sshd's login lines and the kernel's table of established connections.

use std::fs;
use std::time::{Duration, Instant};

use jobs_core::{JobId, JobState, ReceiveOptions, Session, Stream};
use jobs_remote::RemoteSpec;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::sshd::{bytes_of, children, keygen, process_gone, wait, Sshd, ALIAS};

/// Logins sshd accepted so far: one per TCP connection.
fn logins(sshd: &Sshd) -> usize {
    sshd.log().matches("Accepted publickey").count()
}

/// Established client-side TCP connections to `port` (any address).
fn established_to(port: u16) -> usize {
    let table = fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let want = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2].ends_with(&want) && f[3] == "01"
        })
        .count()
}

/// Waits until `established_to(port)` is `n`, failing after 20 s.
fn wait_established(port: u16, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = established_to(port);
        if now == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{now} connections to port {port}, not {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `command` on `hosts`, expects every child Completed, returns the
/// parent's id.
fn run(s: &Session, hosts: &[String], command: &str) -> JobId {
    let id = s
        .start(
            RemoteSpec::new(hosts.to_vec(), command)
                .throttle(hosts.len())
                .into_job_spec(),
        )
        .expect("start");
    wait(s, &[id], 60);
    for kid in children(s, id) {
        assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
    }
    id
}

/// The single child's stdout.
fn output(s: &Session, id: JobId) -> String {
    let kid = children(s, id).remove(0).id;
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    String::from_utf8(bytes_of(&recs, kid, Stream::Output)).expect("utf-8")
}

#[test]
fn sequential_jobs_share_one_connection() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let host = vec![sshd.host("127.0.0.1")];
    // The client's port, as sshd sees it: the same TCP connection each time.
    let first = output(&s, run(&s, &host, "echo $SSH_CONNECTION; exit 0"));
    // A failing command ends cleanly too: its connection is kept.
    let id = s
        .start(RemoteSpec::new(host.clone(), "exit 4").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    assert_eq!(children(&s, id)[0].exit_code, Some(4));
    // An alias resolving to the same host, port, user and keys shares too.
    let second = output(&s, run(&s, &[format!("{ALIAS}3")], "echo $SSH_CONNECTION"));
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_eq!(logins(&sshd), 1, "{}", sshd.log());
    assert_eq!(established_to(sshd.port), 1);
}

#[test]
fn another_address_or_key_gets_its_own_connection() {
    let sshd = Sshd::start_on(&["127.0.0.1", "127.0.0.2"]);
    let ssh = sshd.home.join(".ssh");
    let other = ssh.join("id_other");
    keygen(&other);
    let mut authorized = fs::read_to_string(sshd.dir.path().join("authorized_keys")).expect("ak");
    authorized.push_str(&fs::read_to_string(other.with_extension("pub")).expect("pub"));
    fs::write(sshd.dir.path().join("authorized_keys"), authorized).expect("ak");
    let mut config = fs::read_to_string(ssh.join("config")).expect("config");
    config.push_str(&format!(
        "Host keyed\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile ~/.ssh/id_other\n",
        sshd.port
    ));
    fs::write(ssh.join("config"), config).expect("config");

    let s = sshd.session();
    let one = sshd.host("127.0.0.1");
    let two = sshd.host("127.0.0.2");
    let keyed = "keyed".to_string();
    for host in [&one, &two, &keyed, &one, &two, &keyed] {
        run(&s, std::slice::from_ref(host), "true");
    }
    assert_eq!(logins(&sshd), 3, "{}", sshd.log());
    assert_eq!(established_to(sshd.port), 3);
}

/// The sshd processes serving connections: the listener's children.
fn connection_processes(sshd: &Sshd) -> Vec<i32> {
    let listener = fs::read_to_string(sshd.dir.path().join("sshd.pid")).expect("sshd.pid");
    children_of(listener.trim())
}

/// The processes whose parent is `parent` (a pid as text).
fn children_of(parent: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .unwrap_or_default();
        if ppid == parent {
            pids.push(pid);
        }
    }
    pids
}

#[test]
fn a_connection_the_server_dropped_is_replaced() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let host = vec![sshd.host("127.0.0.1")];
    run(&s, &host, "true");
    assert_eq!(established_to(sshd.port), 1);
    let pids = connection_processes(&sshd);
    assert!(!pids.is_empty(), "no sshd process serves the connection");
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    for pid in pids {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !process_gone(pid as u32) {
            assert!(Instant::now() < deadline, "sshd {pid} survived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let id = run(&s, &host, "echo again");
    assert_eq!(output(&s, id), "again\n");
    assert_eq!(logins(&sshd), 2, "{}", sshd.log());
    assert_eq!(established_to(sshd.port), 1);
}

/// `pids` and their descendants, parents first.
fn with_descendants(pids: Vec<i32>) -> Vec<i32> {
    let mut all = pids;
    let mut i = 0;
    while i < all.len() {
        for pid in children_of(&all[i].to_string()) {
            if !all.contains(&pid) {
                all.push(pid);
            }
        }
        i += 1;
    }
    all
}

/// Kills the frozen sshd processes even when the test fails.
struct Frozen(Vec<i32>);

impl Drop for Frozen {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[test]
fn a_pooled_connection_that_does_not_answer_is_replaced() {
    let sshd = Sshd::start();
    // The channel open on the silent connection gives up after this.
    let s = sshd.session_with(sshd.options().connect_timeout(Duration::from_secs(2)));
    let host = vec![sshd.host("127.0.0.1")];
    run(&s, &host, "true");
    // The server side of the pooled connection freezes: its socket stays
    // open, so only the channel open can tell.
    let frozen = Frozen(with_descendants(connection_processes(&sshd)));
    assert!(
        !frozen.0.is_empty(),
        "no sshd process serves the connection"
    );
    for &pid in &frozen.0 {
        kill(Pid::from_raw(pid), Signal::SIGSTOP).expect("SIGSTOP");
    }
    let id = run(&s, &host, "echo fresh");
    assert_eq!(output(&s, id), "fresh\n");
    assert_eq!(logins(&sshd), 2, "{}", sshd.log());
    drop(frozen);
}

#[test]
fn a_stopped_jobs_connection_is_not_reused() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let host = vec![sshd.host("127.0.0.1")];
    let mark = sshd.dir.path().join("started");
    let id = s
        .start(
            RemoteSpec::new(host.clone(), format!("touch {}; sleep 30", mark.display()))
                .into_job_spec(),
        )
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !mark.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    wait_established(sshd.port, 0);
    run(&s, &host, "true");
    assert_eq!(logins(&sshd), 2, "{}", sshd.log());
    // The clean one is kept.
    assert_eq!(established_to(sshd.port), 1);
}

#[test]
fn pooling_off_connects_for_every_job() {
    let sshd = Sshd::start();
    let s = sshd.session_with(sshd.options().pool_idle_timeout(Duration::ZERO));
    let host = vec![sshd.host("127.0.0.1")];
    for _ in 0..3 {
        run(&s, &host, "true");
    }
    assert_eq!(logins(&sshd), 3, "{}", sshd.log());
    assert_eq!(established_to(sshd.port), 0);
}

#[test]
fn idle_connections_close_after_the_timeout() {
    let sshd = Sshd::start();
    let s = sshd.session_with(sshd.options().pool_idle_timeout(Duration::from_millis(300)));
    let host = vec![sshd.host("127.0.0.1")];
    run(&s, &host, "true");
    wait_established(sshd.port, 0);
    run(&s, &host, "true");
    assert_eq!(logins(&sshd), 2, "{}", sshd.log());
}

#[test]
fn concurrent_jobs_use_their_own_connections_within_the_bound() {
    let sshd = Sshd::start();
    let s = sshd.session_with(sshd.options().pool_max_idle_per_host(2));
    let f = sshd.dir.path().join("barrier");
    // Each waits until all three run: three sessions at once.
    let barrier = format!(
        "echo x >> {f}; i=0; while [ $(wc -l < {f}) -lt 3 ] && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; [ $i -lt 300 ]",
        f = f.display()
    );
    let three: Vec<String> = (1..=3).map(|i| format!("{ALIAS}{i}")).collect();
    run(&s, &three, &barrier);
    assert_eq!(logins(&sshd), 3, "{}", sshd.log());
    // Same host for the pool: only two stay.
    assert_eq!(established_to(sshd.port), 2);
    fs::remove_file(&f).expect("reset barrier");
    let two = &three[..2];
    let barrier2 = barrier.replace("-lt 3 ]", "-lt 2 ]");
    run(&s, two, &barrier2);
    assert_eq!(logins(&sshd), 3, "{}", sshd.log());
}

#[test]
fn dropping_the_executor_closes_idle_connections() {
    let sshd = Sshd::start();
    let s = sshd.session();
    run(&s, &[sshd.host("127.0.0.1")], "true");
    assert_eq!(established_to(sshd.port), 1);
    drop(s);
    wait_established(sshd.port, 0);
    // Closed politely: sshd saw the disconnect message.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sshd.log().contains("Received disconnect") {
        assert!(Instant::now() < deadline, "{}", sshd.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}
