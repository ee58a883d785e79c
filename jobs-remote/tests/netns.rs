//! A host cut off mid-job: an sshd in a network namespace behind a veth
//! pair, addresses in 10.200.0.0/16 under a blackhole route (nothing can
//! leave the machine), and the namespace side of the veth taken down while
//! the command runs. Needs root and `ip`; fails loudly without them.

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jobs_core::{JobState, ReceiveOptions, Stream};
use jobs_remote::RemoteSpec;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::sshd::{bytes_of, children, sh, wait, Sshd};

const BLACKHOLE: &str = "10.200.0.0/16";

/// The namespace, its veth pair, its sshd and the blackhole route; all
/// undone on drop, in reverse order.
struct CutHost {
    ns: String,
    veth_ns: String,
    addr: String,
    added_blackhole: bool,
    sshd: Option<Child>,
}

impl CutHost {
    fn new() -> CutHost {
        let ok = Command::new("ip")
            .args(["netns", "list"])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "`ip netns` is not available: this test needs root and iproute2"
        );
        let tag = std::process::id() % 100_000;
        let subnet = tag % 250 + 1;
        let mut host = CutHost {
            ns: format!("jr{tag}"),
            veth_ns: format!("jrt{tag}"),
            addr: format!("10.200.{subnet}.2"),
            added_blackhole: false,
            sshd: None,
        };
        // First of all: nothing addressed to 10.200/16 may leave the machine.
        let routes = sh("ip", &["route", "show", "type", "blackhole"]);
        if !routes.contains(BLACKHOLE.trim_end_matches("/16")) {
            sh("ip", &["route", "add", "blackhole", BLACKHOLE]);
            host.added_blackhole = true;
        }
        let veth_host = format!("jrh{tag}");
        sh("ip", &["netns", "add", &host.ns]);
        sh(
            "ip",
            &[
                "link",
                "add",
                &veth_host,
                "type",
                "veth",
                "peer",
                "name",
                &host.veth_ns,
            ],
        );
        sh("ip", &["link", "set", &host.veth_ns, "netns", &host.ns]);
        sh(
            "ip",
            &[
                "addr",
                "add",
                &format!("10.200.{subnet}.1/24"),
                "dev",
                &veth_host,
            ],
        );
        sh("ip", &["link", "set", &veth_host, "up"]);
        sh(
            "ip",
            &[
                "-n",
                &host.ns,
                "addr",
                "add",
                &format!("{}/24", host.addr),
                "dev",
                &host.veth_ns,
            ],
        );
        sh("ip", &["-n", &host.ns, "link", "set", &host.veth_ns, "up"]);
        sh("ip", &["-n", &host.ns, "link", "set", "lo", "up"]);
        host
    }

    /// Starts sshd inside the namespace with the fixture's config, but
    /// listening on the namespace's address.
    fn start_sshd(&mut self, fixture: &Sshd) {
        let root = fixture.dir.path();
        let cfg = fs::read_to_string(root.join("sshd_config")).expect("sshd_config");
        let cfg: String = cfg
            .lines()
            .filter(|l| !l.starts_with("ListenAddress") && !l.starts_with("PidFile"))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = root.join("sshd_ns_config");
        fs::write(
            &path,
            format!(
                "{cfg}ListenAddress {}\nPidFile {}/sshd_ns.pid\n",
                self.addr,
                root.display()
            ),
        )
        .expect("config");
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "ip", "netns", "exec", &self.ns])
            .args(["/usr/sbin/sshd", "-D", "-f"])
            .arg(&path)
            .arg("-E")
            .arg(root.join("sshd_ns.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd in the namespace");
        self.sshd = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        let target = format!("{}:{}", self.addr, fixture.port);
        loop {
            let probe = std::net::TcpStream::connect_timeout(
                &target.parse().expect("addr"),
                Duration::from_millis(500),
            );
            if probe.is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "sshd in the namespace did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        fixture.trust(&self.addr, false);
    }

    /// Cuts the host off: the namespace side of the veth only, so the
    /// host-side route stays and nothing is routed elsewhere.
    fn cut(&self) {
        sh(
            "ip",
            &["-n", &self.ns, "link", "set", &self.veth_ns, "down"],
        );
    }
}

impl Drop for CutHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.sshd.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
        // Session processes of that sshd are still in the namespace (their
        // peer is gone, so they would linger): end them by pid.
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // Deleting the namespace removes its veth end and so the pair.
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        if self.added_blackhole {
            let _ = Command::new("ip")
                .args(["route", "del", "blackhole", BLACKHOLE])
                .status();
        }
    }
}

#[test]
fn a_host_cut_off_mid_job_fails_while_the_other_completes() {
    let sshd = Sshd::start();
    let mut cut = CutHost::new();
    cut.start_sshd(&sshd);
    let s = sshd.session();
    let far = format!("{}:{}", cut.addr, sshd.port);
    let near = sshd.host("127.0.0.1");
    // Both print, then the far one waits long; the near one finishes later
    // than the cut so it demonstrably goes on.
    let cmd = "echo started; set -- $SSH_CONNECTION; if [ \"$3\" = 127.0.0.1 ]; then sleep 6; echo near-done; else sleep 60; fi";
    let id = s
        .start(RemoteSpec::new([far.clone(), near], cmd).into_job_spec())
        .expect("start");
    // Cut only once the far host's first line has arrived here.
    let keep = ReceiveOptions {
        keep: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let kids = loop {
        let kids = children(&s, id);
        if let Some(far_kid) = kids.first() {
            let recs = s.receive(&[far_kid.id], keep).expect("receive");
            if bytes_of(&recs, far_kid.id, Stream::Output) == b"started\n" {
                break kids;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the far host never ran the command"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let t_cut = Instant::now();
    cut.cut();
    wait(&s, &[id], 40);
    let kids_after = children(&s, id);
    let far_kid = &kids_after[0];
    assert_eq!(far_kid.id, kids[0].id);
    assert_eq!(far_kid.state, JobState::Failed);
    let reason = far_kid.reason.clone().unwrap_or_default();
    assert!(
        reason.starts_with(&format!("host {far}: connection lost")),
        "{reason}"
    );
    // Keepalive 1 s x 3 (+1 s for whole-second keepalive timing).
    assert!(
        t_cut.elapsed() < Duration::from_secs(20),
        "{:?}",
        t_cut.elapsed()
    );
    let near_kid = &kids_after[1];
    assert_eq!(near_kid.state, JobState::Completed, "{:?}", near_kid.reason);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(
        bytes_of(&recs, near_kid.id, Stream::Output),
        b"started\nnear-done\n"
    );
    assert_eq!(bytes_of(&recs, far_kid.id, Stream::Output), b"started\n");
    assert_eq!(s.info(id).expect("info").state, JobState::Failed);
}
