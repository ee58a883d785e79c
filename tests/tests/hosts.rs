//! Remote fan-out as pdsh and clush users know it: host patterns and
//! groups, the closing summary, `receive --tag` and `receive --gather`,
//! against a private sshd listening on many loopback addresses.

use std::fmt::Write as _;

use jobctl_tests::TestHome;

use crate::remote::{ok, run, Sshd};

/// Hosts `h01`…`hNN` in the client's ssh config, each its own address
/// `127.0.0.N`; the last one has no sshd (connection refused).
struct Fleet {
    sshd: Sshd,
    home: TestHome,
}

impl Fleet {
    fn new(hosts: u8) -> Fleet {
        let sshd = Sshd::start_on(hosts - 1);
        let mut config = String::new();
        for n in 1..=hosts {
            let _ = write!(
                config,
                "Host h{n:02}\n  HostName 127.0.0.{n}\n  Port {}\n",
                sshd.port
            );
        }
        std::fs::write(sshd.client_home().join(".ssh/config"), config).expect("ssh config");
        Fleet {
            sshd,
            home: TestHome::new(),
        }
    }

    fn run(&self, args: &[&str]) -> jobctl_tests::Run {
        run(&self.home, &self.sshd, args)
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(&self.home, &self.sshd, args)
    }

    /// `jobctl start -q ARGS` as the ssh user; the id.
    fn start(&self, args: &[&str]) -> u64 {
        let mut all = vec!["start", "-q"];
        all.extend_from_slice(args);
        self.ok(&all).trim().parse().expect("an id")
    }
}

/// The address the command's host listens on.
const WHERE: &str = "echo $SSH_CONNECTION | cut -d' ' -f3";

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn host_patterns_groups_and_exclusions() {
    let f = Fleet::new(5);
    // A malformed pattern is refused before any daemon is asked.
    let r = f.run(&["start", "--host", "h[03-01]", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("malformed host pattern 'h[03-01]': reversed range 03-01"),
        "{}",
        r.stderr
    );
    let r = f.run(&["run", "--host", "h[1-", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("'h[1-'"), "{}", r.stderr);
    assert_eq!(f.ok(&["daemon", "status"]), "not running\n");

    std::fs::write(
        f.home.path().join("hosts"),
        "# the front\nweb: h[01-03]\nall: @web h04\n",
    )
    .expect("hosts file");
    let r = f.run(&["run", "--host", "@all", "--exclude", "h02", "-c", WHERE]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        sorted_lines(&r.text()),
        ["127.0.0.1", "127.0.0.3", "127.0.0.4"]
    );
    assert_eq!(r.stderr, "3 ok\n");

    // Several ranges and hosts in one argument; duplicates run once.
    let id = f.start(&["--host", "h[01,03-04],h01", "--host", "h04", "-c", WHERE]);
    let _ = f.ok(&["wait", &id.to_string()]);
    let locations: Vec<String> = f.home.job(id)["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| {
            let c = c.as_u64().expect("id");
            f.home.job(c)["location"].as_str().expect("loc").to_string()
        })
        .collect();
    assert_eq!(locations, ["h01", "h03", "h04"]);

    let r = f.run(&["start", "--host", "@nope", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("unknown host group '@nope'"),
        "{}",
        r.stderr
    );
    let r = f.run(&["start", "--host", "h01", "--exclude", "h01", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
}

#[test]
fn run_and_receive_wait_end_with_a_folded_summary() {
    let f = Fleet::new(6);
    let line = format!("{WHERE}; case $SSH_CONNECTION in *' 127.0.0.3 '*) exit 2;; esac");
    let r = f.run(&["run", "--host", "h[01-06]", "-c", &line]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.text().lines().count(), 5, "{}", r.text());
    assert_eq!(
        r.stderr.lines().last(),
        Some("4 ok, 1 failed (h03: exited with status 2), 1 unreachable (h06)"),
        "{}",
        r.stderr
    );

    let id = f.start(&["--host", "h[01-06]", "-c", &line]).to_string();
    let r = f.run(&["receive", &id, "--wait"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stderr.lines().last(),
        Some("4 ok, 1 failed (h03: exited with status 2), 1 unreachable (h06)"),
        "{}",
        r.stderr
    );
    let h06 = f.home.job(
        f.home.job(id.parse().expect("id"))["children"][5]
            .as_u64()
            .expect("child"),
    );
    assert_eq!(
        h06["exit_code"], 255,
        "ssh's code for an unreachable host: {h06}"
    );
    // Without --wait: no summary.
    let r = f.run(&["receive", &id, "--keep"]);
    assert!(!r.stderr.contains(" ok"), "{}", r.stderr);
}
