//! RemoteJob against the peer tools and a raw ssh2 loop, on a private
//! loopback sshd whose sessions see an empty `/root/.bashrc`.
//!
//! - `fanout_50`: 50 host aliases (all the same sshd) running `true`,
//!   throttle 32, vs `pdsh -f 32` and `parallel-ssh -p 32`.
//! - `sequential_20`: 20 commands one after another on one host (ten
//!   samples make the 200): jobs-remote with a fresh connection per command
//!   (pooling off) and with pooled connections, vs a raw ssh2
//!   connect/auth/exec loop, the OpenSSH client, and the OpenSSH client
//!   over one ControlMaster connection.
//!
//! The fan-out compares fresh connections (pooling off): its 50 aliases
//! all reach the same sshd as the same user, which a pool would merge.
//!
//! Needs root (the rc mask uses a mount namespace), `/usr/sbin/sshd`,
//! `pdsh` and `parallel-ssh`.
//! `cargo bench -p jobs-remote -- --warm-up-time 1 --measurement-time 3`

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

#[allow(dead_code)]
#[path = "../tests/sshd/mod.rs"]
mod sshd;

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use jobs_core::{JobState, Session, WaitMode};
use jobs_remote::RemoteSpec;

use sshd::{Sshd, ALIAS};

const FANOUT: usize = 50;
const THROTTLE: usize = 32;
const SEQUENTIAL: usize = 20;

/// An OpenSSH client config for the peer tools (they take `~` from the
/// password database, so everything is explicit).
fn client_config(sshd: &Sshd) -> String {
    let home = sshd.home.display();
    let path = sshd.dir.path().join("client_config");
    std::fs::write(
        &path,
        format!(
            "Host {ALIAS}*\n  HostName 127.0.0.1\n  Port {}\n  User root\n  IdentityFile {home}/.ssh/id_ed25519\n  \
             UserKnownHostsFile {home}/.ssh/known_hosts\n  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n",
            sshd.port
        ),
    )
    .expect("client config");
    path.display().to_string()
}

fn hosts() -> Vec<String> {
    (1..=FANOUT).map(|i| format!("{ALIAS}{i:02}")).collect()
}

fn run_jobs(session: &Session, hosts: Vec<String>, throttle: usize) {
    let id = session
        .start(
            RemoteSpec::new(hosts, "true")
                .throttle(throttle)
                .into_job_spec(),
        )
        .expect("start");
    session
        .wait_blocking(&[id], WaitMode::All, None)
        .expect("wait");
    let info = session.info(id).expect("info");
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    session.remove_blocking(id, false).expect("remove");
}

fn run_tool(program: &str, args: &[&str], envs: &[(&str, &str)]) {
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("peer tool");
    assert!(status.success(), "{program} failed");
}

/// One command the way a raw ssh2 program would: connect, handshake,
/// authenticate, exec, drain, close.
fn raw_ssh2(port: u16, key: &Path) {
    let tcp = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut s = ssh2::Session::new().expect("session");
    s.set_tcp_stream(tcp);
    s.handshake().expect("handshake");
    s.userauth_pubkey_file("root", None, key, None)
        .expect("auth");
    let mut ch = s.channel_session().expect("channel");
    ch.exec("true").expect("exec");
    ch.send_eof().expect("eof");
    let mut sink = Vec::new();
    ch.read_to_end(&mut sink).expect("read");
    ch.wait_close().expect("close");
    assert_eq!(ch.exit_status().expect("status"), 0);
}

/// The OpenSSH client's shared connection: the first command starts a
/// persistent master, later ones ride it; `-O exit` ends it on drop.
struct ControlMaster {
    cfg: String,
    path: String,
}

impl ControlMaster {
    fn new(sshd: &Sshd, cfg: &str) -> ControlMaster {
        ControlMaster {
            cfg: cfg.to_string(),
            path: sshd.dir.path().join("cm-%C").display().to_string(),
        }
    }

    fn args<'a>(&'a self, host: &'a str, command: &'a str) -> Vec<&'a str> {
        vec![
            "-F",
            &self.cfg,
            "-o",
            "ControlMaster=auto",
            "-o",
            "ControlPersist=60",
            "-S",
            &self.path,
            host,
            command,
        ]
    }
}

impl Drop for ControlMaster {
    fn drop(&mut self) {
        let host = format!("{ALIAS}01");
        let _ = Command::new("ssh")
            .args(["-F", &self.cfg, "-S", &self.path, "-O", "exit", &host])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn benches(c: &mut Criterion) {
    let sshd = Sshd::start_masked();
    let cfg = client_config(&sshd);
    let base = sshd.options().keepalive(Duration::from_secs(15), 3);
    let session = sshd.session_with(base.clone().pool_idle_timeout(Duration::ZERO));
    let pooled = sshd.session_with(base);
    let all = hosts();
    let pdsh_hosts = format!("{ALIAS}[01-{FANOUT}]");
    let pdsh_args = format!("-F {cfg} -x -l%u %h");
    let pssh_hosts = all.join(" ");
    let pssh_x = format!("-F {cfg}");
    let throttle = THROTTLE.to_string();

    let mut g = c.benchmark_group("fanout_50");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("jobs-remote", |b| {
        b.iter(|| run_jobs(&session, all.clone(), THROTTLE))
    });
    g.bench_function("pdsh -f 32", |b| {
        b.iter(|| {
            run_tool(
                "pdsh",
                &["-R", "ssh", "-f", &throttle, "-w", &pdsh_hosts, "true"],
                &[("PDSH_SSH_ARGS", &pdsh_args)],
            )
        })
    });
    g.bench_function("parallel-ssh -p 32", |b| {
        b.iter(|| {
            run_tool(
                "parallel-ssh",
                &["-p", &throttle, "-H", &pssh_hosts, "-x", &pssh_x, "true"],
                &[],
            )
        })
    });
    g.finish();

    let key = sshd.home.join(".ssh").join("id_ed25519");
    let one = format!("{ALIAS}01");
    let mut g = c.benchmark_group("sequential_20");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("jobs-remote", |b| {
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                run_jobs(&session, vec![one.clone()], 1);
            }
        })
    });
    g.bench_function("jobs-remote pooled", |b| {
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                run_jobs(&pooled, vec![one.clone()], 1);
            }
        })
    });
    g.bench_function("raw ssh2", |b| {
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                raw_ssh2(sshd.port, &key);
            }
        })
    });
    g.bench_function("openssh ssh", |b| {
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                run_tool("ssh", &["-F", &cfg, &one, "true"], &[]);
            }
        })
    });
    let control = ControlMaster::new(&sshd, &cfg);
    g.bench_function("openssh ControlMaster", |b| {
        b.iter(|| {
            for _ in 0..SEQUENTIAL {
                run_tool("ssh", &control.args(&one, "true"), &[]);
            }
        })
    });
    g.finish();
    drop(control);
}

criterion_group!(remote, benches);
criterion_main!(remote);
