//! Running commands on real sshd hosts: streams, exit codes, failures that
//! stay with their host, throttled fan-out, stop, signals, binary output.

use std::fs;
use std::time::{Duration, Instant};

use jobs_core::{JobState, ReceiveOptions, Stream};
use jobs_remote::{RemoteSpec, TYPE_NAME};

use crate::sshd::{bytes_of, children, free_port, keygen, process_gone, sh, wait, Sshd, ALIAS};

/// Each host prints its own address on stdout and stderr; 127.0.0.2 exits 3.
const PER_HOST: &str = r#"set -- $SSH_CONNECTION; printf 'out %s\n' "$3"; printf 'err %s\n' "$3" >&2; case "$3" in 127.0.0.2) exit 3;; esac"#;

#[test]
fn output_error_and_exit_code_per_host() {
    let sshd = Sshd::start_on(&["127.0.0.1", "127.0.0.2"]);
    let s = sshd.session();
    let hosts = [
        sshd.host("127.0.0.1"),
        format!("root@{}", sshd.host("127.0.0.2")),
    ];
    let id = s
        .start(RemoteSpec::new(hosts.clone(), PER_HOST).into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.type_name, TYPE_NAME);
    assert_eq!(parent.location, hosts.join(","));
    assert_eq!(parent.state, JobState::Failed);
    let reason = parent.reason.unwrap_or_default();
    assert!(reason.contains("exited with status 3"), "{reason}");

    let kids = children(&s, id);
    assert_eq!(kids.len(), 2);
    assert_eq!(kids[0].location, hosts[0]);
    assert_eq!(kids[1].location, hosts[1]);
    assert_eq!(kids[0].state, JobState::Completed, "{:?}", kids[0].reason);
    assert_eq!(kids[0].exit_code, Some(0));
    assert_eq!(kids[1].state, JobState::Failed);
    assert_eq!(kids[1].exit_code, Some(3));
    assert_eq!(kids[1].reason.as_deref(), Some("exited with status 3"));

    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(
        bytes_of(&recs, kids[0].id, Stream::Output),
        b"out 127.0.0.1\n"
    );
    assert_eq!(
        bytes_of(&recs, kids[0].id, Stream::Error),
        b"err 127.0.0.1\n"
    );
    assert_eq!(
        bytes_of(&recs, kids[1].id, Stream::Output),
        b"out 127.0.0.2\n"
    );
    assert_eq!(
        bytes_of(&recs, kids[1].id, Stream::Error),
        b"err 127.0.0.2\n"
    );
    assert!(!s.info(id).expect("info").has_more_data);
}

#[test]
fn aliases_come_from_ssh_config() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let id = s
        .start(RemoteSpec::new([format!("{ALIAS}7")], "id -un").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
    assert_eq!(kid.location, format!("{ALIAS}7"));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(bytes_of(&recs, kid.id, Stream::Output), b"root\n");
}

#[test]
fn wrong_key_is_refused_with_an_auth_reason() {
    let sshd = Sshd::start();
    // The server now trusts another key only.
    let other = sshd.dir.path().join("other");
    keygen(&other);
    fs::copy(
        other.with_extension("pub"),
        sshd.dir.path().join("authorized_keys"),
    )
    .expect("copy");
    let s = sshd.session();
    let host = sshd.host("127.0.0.1");
    let id = s
        .start(RemoteSpec::new([host.clone()], "true").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Failed);
    let reason = kid.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("host {host}: authentication as root failed")),
        "{reason}"
    );
    assert!(reason.contains("id_ed25519"), "{reason}");
}

#[test]
fn encrypted_key_without_agent_says_so() {
    let sshd = Sshd::start();
    let id_file = sshd.home.join(".ssh").join("id_ed25519");
    let p = id_file.to_str().expect("utf-8");
    sh(
        "ssh-keygen",
        &["-q", "-p", "-P", "", "-N", "secret", "-f", p],
    );
    let s = sshd.session();
    let id = s
        .start(RemoteSpec::new([sshd.host("127.0.0.1")], "true").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Failed);
    let reason = kid.reason.clone().unwrap_or_default();
    assert!(reason.contains("is encrypted and no ssh-agent"), "{reason}");
}

#[test]
fn unreachable_hosts_fail_alone_and_quickly() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let closed = format!("127.0.0.1:{}", free_port());
    let hosts = [
        closed.clone(),
        "no-such-host.invalid".to_string(),
        sshd.host("127.0.0.1"),
    ];
    let t0 = Instant::now();
    let id = s
        .start(RemoteSpec::new(hosts, "echo fine").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    // Refused and unresolvable hosts fail at once, not after the 10 s timeout.
    assert!(
        t0.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t0.elapsed()
    );
    let kids = children(&s, id);
    let r0 = kids[0].reason.clone().unwrap_or_default();
    assert_eq!(kids[0].state, JobState::Failed);
    assert!(
        r0.starts_with(&format!("host {closed}: connection refused")),
        "{r0}"
    );
    let r1 = kids[1].reason.clone().unwrap_or_default();
    assert_eq!(kids[1].state, JobState::Failed);
    assert!(
        r1.starts_with("host no-such-host.invalid: cannot resolve host name"),
        "{r1}"
    );
    assert_eq!(kids[2].state, JobState::Completed, "{:?}", kids[2].reason);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Failed);
    assert!(parent
        .reason
        .unwrap_or_default()
        .contains("2 of 3 child jobs failed"));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(bytes_of(&recs, kids[2].id, Stream::Output), b"fine\n");
}

#[test]
fn fan_out_to_twenty_aliases_never_exceeds_the_throttle() {
    let sshd = Sshd::start_masked();
    // One connection per command: the login count below is the point.
    let s = sshd.session_with(sshd.options().pool_idle_timeout(Duration::ZERO));
    let d = sshd.dir.path().display().to_string();
    // Server side: count running commands under a lock, log each count.
    let cmd = format!(
        "flock {d}/lock sh -c 'n=$(cat {d}/cur 2>/dev/null || echo 0); n=$((n+1)); echo $n > {d}/cur; echo $n >> {d}/log'; \
         sleep 0.4; \
         flock {d}/lock sh -c 'n=$(cat {d}/cur); echo $((n-1)) > {d}/cur'; echo done"
    );
    let hosts: Vec<String> = (1..=20).map(|i| format!("{ALIAS}{i:02}")).collect();
    let id = s
        .start(RemoteSpec::new(hosts, cmd).throttle(4).into_job_spec())
        .expect("start");
    wait(&s, &[id], 90);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Completed, "{:?}", parent.reason);
    let kids = children(&s, id);
    assert_eq!(kids.len(), 20);
    assert!(kids.iter().all(|k| k.state == JobState::Completed));
    let log = fs::read_to_string(sshd.dir.path().join("log")).expect("log");
    let counts: Vec<u32> = log
        .lines()
        .map(|l| l.trim().parse().expect("count"))
        .collect();
    assert_eq!(counts.len(), 20);
    let max = counts.iter().copied().max().unwrap_or(0);
    assert!(max <= 4, "{max} commands ran at once: {counts:?}");
    assert!(max >= 2, "hosts never overlapped: {counts:?}");
    // And sshd saw no more than 4 sessions at a time either: every session
    // opened is logged; the throttle is on hosts, so 20 logins in all.
    assert_eq!(sshd.log().matches("Accepted publickey").count(), 20);
}

#[test]
fn stop_kills_the_remote_process_tree() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let pidfile = sshd.dir.path().join("bg.pid");
    let cmd = format!(
        "sleep 300 & echo $! > {p}.tmp; mv {p}.tmp {p}; echo started; wait",
        p = pidfile.display()
    );
    let id = s
        .start(RemoteSpec::new([sshd.host("127.0.0.1")], cmd).into_job_spec())
        .expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pidfile.exists() {
        assert!(
            Instant::now() < deadline,
            "the remote command never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let pid: u32 = fs::read_to_string(&pidfile)
        .expect("pid")
        .trim()
        .parse()
        .expect("pid number");
    assert!(!process_gone(pid), "the remote sleep is not running");
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Stopped, "{:?}", kid.reason);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(pid) {
        assert!(
            Instant::now() < deadline,
            "remote process {pid} outlived the stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_signal_death_is_reported_by_name() {
    let sshd = Sshd::start();
    let s = sshd.session();
    let id = s
        .start(
            RemoteSpec::new(
                [sshd.host("127.0.0.1")],
                "echo before; kill -USR1 $$; echo after",
            )
            .into_job_spec(),
        )
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Failed);
    assert_eq!(kid.reason.as_deref(), Some("killed by signal 10 (SIGUSR1)"));
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(bytes_of(&recs, kid.id, Stream::Output), b"before\n");
}

#[test]
fn binary_output_is_byte_exact() {
    let sshd = Sshd::start();
    let s = sshd.session();
    // 3 MiB of every byte value in a scrambled order, no trailing newline.
    let mut data = Vec::with_capacity(3 << 20);
    let mut x: u32 = 0x1234_5678;
    while data.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        data.push((x >> 11) as u8);
    }
    data.extend_from_slice(b"\r\n\0end-without-newline");
    let file = sshd.dir.path().join("blob");
    fs::write(&file, &data).expect("blob");
    let f = file.display();
    let id = s
        .start(
            RemoteSpec::new(
                [sshd.host("127.0.0.1")],
                format!("cat {f}; head -c 100000 {f} >&2"),
            )
            .into_job_spec(),
        )
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let out = bytes_of(&recs, kid.id, Stream::Output);
    assert_eq!(out.len(), data.len());
    assert!(out == data, "stdout differs from the file");
    assert!(
        bytes_of(&recs, kid.id, Stream::Error) == data[..100_000],
        "stderr differs"
    );
    assert!(recs
        .iter()
        .all(|r| matches!(r.record.payload, jobs_core::Payload::Bytes(_))));
}

/// A private ssh-agent, killed by pid on drop.
struct Agent {
    child: std::process::Child,
    socket: std::path::PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn agent_keys_are_tried_first() {
    let sshd = Sshd::start();
    let socket = sshd.dir.path().join("agent.sock");
    let child = std::process::Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("ssh-agent");
    let agent = Agent { child, socket };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.socket.exists() {
        assert!(Instant::now() < deadline, "ssh-agent did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let id_file = sshd.home.join(".ssh").join("id_ed25519");
    let status = std::process::Command::new("ssh-add")
        .arg("-q")
        .arg(&id_file)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .status()
        .expect("ssh-add");
    assert!(status.success());
    // The file itself is now useless without the agent.
    let p = id_file.to_str().expect("utf-8");
    sh(
        "ssh-keygen",
        &["-q", "-p", "-P", "", "-N", "secret", "-f", p],
    );
    let s = sshd.session_with(sshd.options().agent_socket(&agent.socket));
    let id = s
        .start(RemoteSpec::new([sshd.host("127.0.0.1")], "echo via-agent").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let kid = &children(&s, id)[0];
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(bytes_of(&recs, kid.id, Stream::Output), b"via-agent\n");
}

#[test]
fn stop_while_the_handshake_hangs_is_prompt() {
    let sshd = Sshd::start();
    // A server that accepts connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let host = format!("127.0.0.1:{}", silent.local_addr().expect("addr").port());
    let s = sshd.session_with(sshd.options().connect_timeout(Duration::from_secs(60)));
    let id = s
        .start(RemoteSpec::new([host], "true").into_job_spec())
        .expect("start");
    // The connection is accepted (held in the backlog) and the handshake waits.
    let (_held, _) = silent.accept().expect("accept");
    let kid = s.info(id).expect("info").children[0];
    crate::sshd::wait_state(&s, kid, JobState::Running, 10);
    let t0 = Instant::now();
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    assert_eq!(s.info(kid).expect("info").state, JobState::Stopped);
    // Far below the 60 s handshake timeout.
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t0.elapsed()
    );
}
