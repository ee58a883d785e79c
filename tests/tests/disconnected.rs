//! Detached remote jobs (`start --host H --detached`) against real sshds:
//! a daemon killed at random moments, a network cut (a network namespace
//! whose link goes down), stop and remove of a Disconnected job, and a
//! host cut for good beside one that completes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jobctl_tests::{eventually, kill9, TestHome};

use crate::remote::{ok, run, Sshd};

/// Bounds a wait for something that takes seconds (keepalive, backoff,
/// SYN retransmits); only a hang reaches it.
const LONG: Duration = Duration::from_secs(60);

/// A small xorshift generator seeded from the clock; a failure prints it.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Users of the blackhole route over 10.200.0.0/16 (nothing in that range
/// may leave the machine while a namespace's link is down), and whether
/// this process added it.
static BLACKHOLE: Mutex<(usize, bool)> = Mutex::new((0, false));
/// Tells this process's namespaces apart.
static NEXT_NETNS: AtomicUsize = AtomicUsize::new(0);

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A network namespace joined to this one by a veth pair: the address
/// 10.200.N.2 lives inside it, and cutting its side of the link makes
/// that address silent (packets are dropped, no reset).
struct Netns {
    name: String,
    inner: String,
    addr: String,
}

impl Netns {
    fn new() -> Netns {
        let n = NEXT_NETNS.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}{n}", std::process::id() % 100_000);
        let net = 100 + (std::process::id() as usize % 37) * 4 + n % 4;
        {
            let mut b = BLACKHOLE.lock().unwrap_or_else(|p| p.into_inner());
            if b.0 == 0 {
                b.1 = ip(&["route", "add", "blackhole", "10.200.0.0/16"]);
            }
            b.0 += 1;
        }
        let ns = Netns {
            name: format!("jtd{tag}"),
            inner: format!("vt{tag}"),
            addr: format!("10.200.{net}.2"),
        };
        let host = format!("vh{tag}");
        let steps: [Vec<String>; 8] = [
            vec!["netns".into(), "add".into(), ns.name.clone()],
            vec![
                "link".into(),
                "add".into(),
                host.clone(),
                "type".into(),
                "veth".into(),
                "peer".into(),
                "name".into(),
                ns.inner.clone(),
            ],
            vec![
                "link".into(),
                "set".into(),
                ns.inner.clone(),
                "netns".into(),
                ns.name.clone(),
            ],
            vec![
                "addr".into(),
                "add".into(),
                format!("10.200.{net}.1/24"),
                "dev".into(),
                host.clone(),
            ],
            vec!["link".into(), "set".into(), host.clone(), "up".into()],
            vec![
                "-n".into(),
                ns.name.clone(),
                "addr".into(),
                "add".into(),
                format!("{}/24", ns.addr),
                "dev".into(),
                ns.inner.clone(),
            ],
            vec![
                "-n".into(),
                ns.name.clone(),
                "link".into(),
                "set".into(),
                ns.inner.clone(),
                "up".into(),
            ],
            vec![
                "-n".into(),
                ns.name.clone(),
                "link".into(),
                "set".into(),
                "lo".into(),
                "up".into(),
            ],
        ];
        for step in &steps {
            let args: Vec<&str> = step.iter().map(String::as_str).collect();
            assert!(
                ip(&args),
                "`ip {}` failed: this test needs network namespaces (root, iproute2)",
                args.join(" ")
            );
        }
        ns
    }

    /// Cuts the link, on the namespace's side (never the host's: the
    /// route would go and traffic leave the machine).
    fn cut(&self) {
        assert!(ip(&["-n", &self.name, "link", "set", &self.inner, "down"]));
    }

    /// Mends the link.
    fn mend(&self) {
        assert!(ip(&["-n", &self.name, "link", "set", &self.inner, "up"]));
    }

    /// An sshd inside the namespace, on its address.
    fn sshd(&self) -> Sshd {
        Sshd::start_with(
            &format!("ListenAddress {}\n", self.addr),
            std::slice::from_ref(&self.addr),
            Some(&self.name),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // The veth pair goes with the namespace.
        ip(&["netns", "del", &self.name]);
        let mut b = BLACKHOLE.lock().unwrap_or_else(|p| p.into_inner());
        b.0 -= 1;
        if b.0 == 0 && b.1 {
            ip(&["route", "del", "blackhole", "10.200.0.0/16"]);
            b.1 = false;
        }
    }
}

/// `wait --force ID`: the job is in a finished state.
fn wait_finished(home: &TestHome, sshd: &Sshd, id: u64) {
    ok(
        home,
        sshd,
        &["wait", "--force", &id.to_string(), "--timeout", "60"],
    );
}

/// Waits for the parent `id`, asserts its `child` Completed, and receives
/// the parent (exit 0 asserted).
fn completed_and_received(home: &TestHome, sshd: &Sshd, id: u64, child: u64) -> jobctl_tests::Run {
    wait_finished(home, sshd, id);
    assert_eq!(
        field(home, child, "state"),
        "Completed",
        "{}",
        home.job(child)
    );
    let r = run(home, sshd, &["receive", &id.to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    r
}

fn field(home: &TestHome, id: u64, name: &str) -> String {
    home.job(id)[name].as_str().unwrap_or_default().to_string()
}

pub(crate) fn children(home: &TestHome, parent: u64) -> Vec<u64> {
    home.job(parent)["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| c.as_u64().expect("an id"))
        .collect()
}

/// Waits until job `id` is in `state`; panics with its row otherwise.
fn reach(home: &TestHome, id: u64, state: &str, within: Duration) {
    assert!(
        eventually(within, || field(home, id, "state") == state),
        "job {id} never reached {state}: {}",
        home.job(id)
    );
}

/// Waits until a child's output arrives: it was launched and is attached.
fn streaming(home: &TestHome, sshd: &Sshd, child: u64) {
    assert!(
        eventually(LONG, || !ok(
            home,
            sshd,
            &["receive", &child.to_string(), "--keep"]
        )
        .is_empty()),
        "job {child} never streamed: {}",
        home.job(child)
    );
    assert_eq!(field(home, child, "state"), "Running");
}

/// The folder of a detached child on its host (the remote user's home is
/// asked of the host itself).
pub(crate) fn remote_folder(home: &TestHome, sshd: &Sshd, host: &str, child: u64) -> PathBuf {
    let remote_home = ok(home, sshd, &["run", "--host", host, "-c", "echo $HOME"]);
    PathBuf::from(remote_home.trim())
        .join(".cache/jobctl/jobs")
        .join(field(home, child, "instance_id"))
}

/// The process group the supervisor leads, once its pid file is there.
pub(crate) fn remote_group(folder: &std::path::Path) -> i32 {
    let mut pgid = 0;
    assert!(
        eventually(LONG, || {
            pgid = std::fs::read_to_string(folder.join("pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            pgid > 1
        }),
        "no pid file in {}",
        folder.display()
    );
    pgid
}

/// The live (not zombie) processes of a process group, from /proc.
pub(crate) fn group_members(pgid: i32) -> Vec<u32> {
    jobctl_tests::procs("stat", |pid, stat| {
        let f = jobctl_tests::stat_fields(stat);
        (f.len() > 2 && f[2] == pgid.to_string() && !matches!(f[0].as_str(), "Z" | "X"))
            .then_some(pid)
    })
}

/// The processes whose parent is `parent`, from /proc.
fn children_of(parent: u32) -> Vec<u32> {
    jobctl_tests::procs("stat", |pid, stat| {
        let f = jobctl_tests::stat_fields(stat);
        (f.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)).then_some(pid)
    })
}

/// Lines `prefix0` .. `prefix{n-1}`, each with its newline.
fn numbered(prefix: &str, n: u32) -> String {
    (0..n).map(|i| format!("{prefix}{i}\n")).collect()
}

/// A shell line printing `n` numbered lines, one every `pause` seconds.
fn printer(prefix: &str, n: u32, pause: &str) -> String {
    format!("i=0; while [ $i -lt {n} ]; do echo {prefix}$i; i=$((i+1)); sleep {pause}; done")
}

fn start(home: &TestHome, sshd: &Sshd, hosts: &str, line: &str) -> u64 {
    ok(
        home,
        sshd,
        &["start", "-q", "--detached", "--host", hosts, "-c", line],
    )
    .trim()
    .parse()
    .expect("an id")
}

/// Fails with every difference spelled out, not a wall of lines.
fn assert_lines(got: &str, want: &str, seed: u64) {
    if got != want {
        let g: Vec<&str> = got.lines().collect();
        let w: Vec<&str> = want.lines().collect();
        let first = g
            .iter()
            .zip(&w)
            .position(|(a, b)| a != b)
            .unwrap_or(g.len().min(w.len()));
        panic!(
            "seed {seed}: got {} lines for {}; first difference at line {first}: {:?} for {:?}",
            g.len(),
            w.len(),
            g.get(first),
            w.get(first)
        );
    }
}

#[test]
fn a_detached_remote_job_survives_daemon_sigkills_and_every_line_arrives_once() {
    let (mut rng, seed) = Rng::seeded();
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    // One line every 100 ms for about 8 s.
    let id = start(&home, &sshd, &h1, &printer("line", 80, "0.1"));
    let child = children(&home, id)[0];
    let folder = remote_folder(&home, &sshd, &h1, child);
    let pgid = remote_group(&folder);
    let r = run(&home, &sshd, &["rm", &id.to_string()]);
    assert_eq!(r.code, 1, "a running job is not removed: {}", r.stderr);
    assert!(folder.is_dir(), "a refused rm leaves the remote folder");
    for round in 0..3 {
        std::thread::sleep(Duration::from_millis(300 + rng.next() % 1500));
        let before = ok(&home, &sshd, &["receive", &id.to_string(), "--keep"]);
        let pid = home.daemon_pid().expect("the daemon runs");
        kill9(pid);
        assert!(
            eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
            "the daemon is gone"
        );
        assert!(
            !group_members(pgid).is_empty() || folder.join("status").is_file(),
            "seed {seed}, round {round}: the remote command died with the daemon"
        );
        // Any command brings the daemon back; it re-attaches by itself,
        // with the SSH identity of the user who started the job even when
        // the command that starts it has none.
        let mut list = home.cmd(&["list"]);
        list.env("HOME", "/nonexistent").env_remove("SSH_AUTH_SOCK");
        let r = jobctl_tests::finish(
            list.spawn().expect("spawn list"),
            jobctl_tests::COMMAND_TIMEOUT,
            "list",
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(
            eventually(LONG, || {
                let state = field(&home, child, "state");
                let now = ok(&home, &sshd, &["receive", &id.to_string(), "--keep"]);
                (state == "Running" && now.len() > before.len()) || state == "Completed"
            }),
            "seed {seed}, round {round}: the child never streamed again: {}",
            home.job(child)
        );
    }
    // Ending the session leaves it running too; the next one re-attaches.
    ok(&home, &sshd, &["daemon", "stop"]);
    assert!(
        !group_members(pgid).is_empty() || folder.join("status").is_file(),
        "seed {seed}: the remote command died with the session"
    );
    ok(&home, &sshd, &["list"]);
    wait_finished(&home, &sshd, id);
    assert_eq!(field(&home, id, "state"), "Completed", "{}", home.job(id));
    let got = ok(&home, &sshd, &["receive", &id.to_string()]);
    assert_lines(&got, &numbered("line", 80), seed);
    assert!(
        eventually(Duration::from_secs(10), || !folder.exists()),
        "the remote folder is removed once everything was read"
    );
    let r = run(&home, &sshd, &["connect", &id.to_string()]);
    assert_eq!(r.code, 1, "a finished job has nothing to connect");
    assert!(r.stderr.contains("nothing to connect"), "{}", r.stderr);
    ok(&home, &sshd, &["rm", &id.to_string()]);
}

#[test]
fn a_network_cut_makes_a_detached_job_disconnected_then_running_with_nothing_lost() {
    let ns = Netns::new();
    let sshd = ns.sshd();
    let home = TestHome::new();
    let host = format!("{}:{}", ns.addr, sshd.port);
    // 150 lines, one every 100 ms: the job outlasts the cut.
    let id = start(&home, &sshd, &host, &printer("n", 150, "0.1"));
    let child = children(&home, id)[0];
    let folder = remote_folder(&home, &sshd, &host, child);
    let pgid = remote_group(&folder);
    streaming(&home, &sshd, child);
    std::thread::sleep(Duration::from_secs(1));
    ns.cut();
    let cut_at = Instant::now();
    // Keepalive every 2 s, two unanswered: Disconnected within about 5 s.
    reach(&home, child, "Disconnected", Duration::from_secs(20));
    let noticed = cut_at.elapsed();
    eprintln!("Disconnected {noticed:?} after the cut");
    assert!(
        noticed < Duration::from_secs(15),
        "Disconnected only after {noticed:?}"
    );
    assert_eq!(
        field(&home, id, "state"),
        "Disconnected",
        "the parent says so"
    );
    // `wait` returns on Disconnected.
    ok(&home, &sshd, &["wait", &id.to_string(), "--timeout", "10"]);
    assert!(
        !group_members(pgid).is_empty(),
        "the remote command lives on while the link is down"
    );
    ns.mend();
    let mended_at = Instant::now();
    ok(&home, &sshd, &["connect", &id.to_string()]);
    eprintln!("connect returned {:?} after the mend", mended_at.elapsed());

    assert!(
        eventually(LONG, || matches!(
            field(&home, child, "state").as_str(),
            "Running" | "Completed"
        )),
        "not back after the cut: {}",
        home.job(child)
    );
    let r = completed_and_received(&home, &sshd, id, child);
    assert_lines(&r.text(), &numbered("n", 150), 0);
    assert_eq!(
        r.stderr.matches("disconnected").count(),
        1,
        "one warning for one loss, however many attempts: {}",
        r.stderr
    );
    ok(&home, &sshd, &["rm", &id.to_string()]);
    assert!(!folder.exists(), "the remote folder is gone");
}

#[test]
fn stop_reaches_a_disconnected_job_over_a_new_connection_and_rm_leaves_no_folder() {
    let ns = Netns::new();
    let sshd = ns.sshd();
    let home = TestHome::new();
    let host = format!("{}:{}", ns.addr, sshd.port);
    let id = start(&home, &sshd, &host, "echo up; sleep 300 & sleep 300; wait");
    let child = children(&home, id)[0];
    let folder = remote_folder(&home, &sshd, &host, child);
    let pgid = remote_group(&folder);
    streaming(&home, &sshd, child);
    assert!(
        eventually(LONG, || group_members(pgid).len() >= 3),
        "the supervisor and both sleeps run"
    );
    ns.cut();
    reach(&home, child, "Disconnected", Duration::from_secs(20));
    // The stop has to connect anew; the link comes back while it tries.
    let mut stop = {
        let mut c = home.cmd(&["stop", &id.to_string()]);
        c.env("HOME", sshd.client_home())
            .env_remove("SSH_AUTH_SOCK");
        c.spawn().expect("spawn stop")
    };
    std::thread::sleep(Duration::from_millis(1500));
    ns.mend();
    let r = jobctl_tests::finish(
        stop.try_wait()
            .ok()
            .flatten()
            .map_or(stop, |_| panic!("stop returned before the host was back")),
        LONG,
        "jobctl stop",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        field(&home, child, "state"),
        "Stopped",
        "{}",
        home.job(child)
    );
    assert!(
        eventually(Duration::from_secs(10), || group_members(pgid).is_empty()),
        "the remote group {pgid} lives on ({}): {:?}",
        home.job(child),
        group_members(pgid)
            .iter()
            .map(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default())
            .collect::<Vec<_>>()
    );
    ok(&home, &sshd, &["rm", &id.to_string()]);
    assert!(!folder.exists(), "the remote folder is gone after rm");
}

#[test]
fn a_host_cut_for_good_stays_disconnected_while_the_other_completes() {
    let ns = Netns::new();
    let far = ns.sshd();
    let near = Sshd::start();
    let home = TestHome::new();
    // One client home knows both hosts: the far sshd's, which the near
    // one learns (its host key, and the client's key to let in).
    let mut known =
        std::fs::read_to_string(far.client_home().join(".ssh/known_hosts")).expect("known_hosts");
    known.push_str(
        &std::fs::read_to_string(near.client_home().join(".ssh/known_hosts")).expect("known_hosts"),
    );
    std::fs::write(far.client_home().join(".ssh/known_hosts"), known).expect("write");
    near.authorize(&far.client_home().join(".ssh/id_ed25519.pub"));
    let h_near = format!("127.0.0.1:{}", near.port);
    let h_far = format!("{}:{}", ns.addr, far.port);
    let hosts = format!("{h_near},{h_far}");
    let id = start(&home, &far, &hosts, &printer("x", 30, "0.1"));
    let kids = children(&home, id);
    assert_eq!(kids.len(), 2);
    streaming(&home, &far, kids[1]);
    ns.cut();
    ok(
        &home,
        &far,
        &["wait", "--force", &kids[0].to_string(), "--timeout", "60"],
    );
    assert_eq!(field(&home, kids[0], "state"), "Completed");
    reach(&home, kids[1], "Disconnected", Duration::from_secs(20));
    assert_eq!(
        field(&home, id, "state"),
        "Disconnected",
        "{}",
        home.job(id)
    );
    let r = run(&home, &far, &["wait", &id.to_string(), "--timeout", "10"]);
    assert_eq!(r.code, 0, "wait returns on Disconnected: {}", r.stderr);
    assert!(r.text().contains("Disconnected"), "{}", r.text());
    // The near host's lines all came; the far one's so far, each once.
    let got = ok(&home, &far, &["receive", &kids[0].to_string()]);
    assert_lines(&got, &numbered("x", 30), 0);
    // Ending it: the host back, stop goes through.
    ns.mend();
    ok(&home, &far, &["stop", &id.to_string()]);
    ok(&home, &far, &["rm", &id.to_string()]);
}

#[test]
fn a_host_whose_folder_is_gone_at_re_attach_fails_its_child_naming_the_host() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let id = start(&home, &sshd, &h1, &printer("g", 30, "0.1"));
    let child = children(&home, id)[0];
    let folder = remote_folder(&home, &sshd, &h1, child);
    let pgid = remote_group(&folder);
    streaming(&home, &sshd, child);
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    assert!(
        eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the daemon is gone"
    );
    // The command goes on writing to files no folder holds any more.
    std::fs::remove_dir_all(&folder).expect("remove the remote folder");
    ok(&home, &sshd, &["list"]);
    wait_finished(&home, &sshd, id);
    let row = home.job(child);
    assert_eq!(row["state"], "Failed", "{row}");
    let reason = row["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(&h1) && reason.contains("gone"),
        "the reason names the host: {reason}"
    );
    assert_eq!(field(&home, id, "state"), "Failed");
    // Its command ends by itself within 3 s; nothing is left behind.
    assert!(
        eventually(LONG, || group_members(pgid).is_empty()),
        "the remote command ends"
    );
}

#[test]
fn a_connection_killed_on_the_host_is_re_attached_with_nothing_lost() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let id = start(&home, &sshd, &h1, &printer("k", 60, "0.1"));
    let child = children(&home, id)[0];
    let folder = remote_folder(&home, &sshd, &h1, child);
    let pgid = remote_group(&folder);
    streaming(&home, &sshd, child);
    // What an sshd restart or an admin does to a session: its sshd
    // process dies, and the connection with it.
    let sessions = children_of(sshd.pid());
    assert!(!sessions.is_empty(), "the job's connection has its sshd");
    for p in sessions {
        kill9(p);
    }
    assert!(
        !group_members(pgid).is_empty(),
        "the remote command does not depend on the connection"
    );
    let r = completed_and_received(&home, &sshd, id, child);
    assert_lines(&r.text(), &numbered("k", 60), 0);
    assert!(
        r.stderr.contains("disconnected"),
        "the loss was seen and said: {}",
        r.stderr
    );
}

/// A stop that cannot reach the host ends the job but leaves its folder
/// (and its command) there; `rm` then cleans them up over SSH once the host
/// answers, and when it does not, removes the job anyway, soon, saying the
/// host kept the folder.
#[test]
fn rm_cleans_up_on_the_host_what_a_stop_that_could_not_reach_it_left() {
    let ns = Netns::new();
    let sshd = ns.sshd();
    let home = TestHome::new();
    let host = format!("{}:{}", ns.addr, sshd.port);
    let line = "echo up; sleep 300";
    let (a, b) = (
        start(&home, &sshd, &host, line),
        start(&home, &sshd, &host, line),
    );
    let (ca, cb) = (children(&home, a)[0], children(&home, b)[0]);
    let (fa, fb) = (
        remote_folder(&home, &sshd, &host, ca),
        remote_folder(&home, &sshd, &host, cb),
    );
    let pgid = remote_group(&fa);
    remote_group(&fb);
    streaming(&home, &sshd, ca);
    streaming(&home, &sshd, cb);
    ns.cut();
    reach(&home, ca, "Disconnected", Duration::from_secs(20));
    reach(&home, cb, "Disconnected", Duration::from_secs(20));
    // The stops give up: the host stays cut past the connect timeout.
    for id in [a, b] {
        run(&home, &sshd, &["stop", &id.to_string()]);
        wait_finished(&home, &sshd, id);
    }
    assert!(fa.is_dir() && fb.is_dir(), "the stops left the folders");
    assert!(!group_members(pgid).is_empty(), "and the command runs on");

    // The host still cut: `rm` removes the job, and says what it left.
    let instance = field(&home, cb, "instance_id");
    let began = std::time::Instant::now();
    let r = run(&home, &sshd, &["rm", &b.to_string()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&host) && r.stderr.contains(&instance),
        "the warning names the host and the folder: {}",
        r.stderr
    );
    assert!(
        began.elapsed() < Duration::from_secs(30),
        "rm waited {:?} for an unreachable host",
        began.elapsed()
    );
    assert_eq!(
        home.run(&["list", &b.to_string()]).code,
        2,
        "job {b} is gone"
    );
    assert!(fb.is_dir(), "the unreachable host kept the folder");

    // The host back: `rm` ends what runs of the job there and deletes its
    // folder.
    ns.mend();
    ok(&home, &sshd, &["rm", &a.to_string()]);
    assert!(!fa.exists(), "the remote folder is gone after rm");
    assert!(
        eventually(Duration::from_secs(10), || group_members(pgid).is_empty()),
        "the remote command was ended by rm"
    );
}
