//! Remote fan-out as pdsh and clush users know it: host patterns and
//! groups, the closing summary, `receive --tag` and `receive --gather`,
//! against a private sshd listening on many loopback addresses.

use crate::remote::Fleet;

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

#[test]
fn hosts_of_reruns_on_exactly_the_hosts_in_a_state() {
    let f = Fleet::new(6);
    // h02 and h04 fail, h06 is unreachable (Failed too).
    let line =
        format!("{WHERE}; case $SSH_CONNECTION in *' 127.0.0.2 '*|*' 127.0.0.4 '*) exit 3;; esac");
    let first = f.start(&["--host", "h[01-06]", "-c", &line]).to_string();
    let _ = f.run(&["wait", &first]);

    let r = f.run(&[
        "run",
        "--hosts-of",
        &first,
        "--state",
        "Failed",
        "--exclude",
        "h06",
        "-c",
        WHERE,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(sorted_lines(&r.text()), ["127.0.0.2", "127.0.0.4"]);

    // Without --state: every host of the job, in its order.
    let id = f.start(&["--hosts-of", &first, "--exclude", "h06", "-c", WHERE]);
    let _ = f.ok(&["wait", &id.to_string()]);
    let job = f.home.job(id);
    assert_eq!(job["type"], "RemoteJob", "{job}");
    let locations: Vec<String> = job["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| {
            f.home.job(c.as_u64().expect("id"))["location"]
                .as_str()
                .expect("loc")
                .to_string()
        })
        .collect();
    assert_eq!(locations, ["h01", "h02", "h03", "h04", "h05"]);

    // Bad input: a state no host is in, a job that is not remote, an
    // unknown job, --state without --hosts-of, --host with --hosts-of.
    let r = f.run(&[
        "start",
        "--hosts-of",
        &id.to_string(),
        "--state",
        "Failed",
        "-c",
        "true",
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("no host of job {id} is Failed")),
        "{}",
        r.stderr
    );
    let local = f.start(&["-c", "true"]).to_string();
    let r = f.run(&["start", "--hosts-of", &local, "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a remote job"), "{}", r.stderr);
    let r = f.run(&["start", "--hosts-of", "999", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no job with id 999"), "{}", r.stderr);
    let r = f.run(&["start", "--state", "Failed", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let r = f.run(&["start", "--hosts-of", &first, "--host", "h01", "-c", "true"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    let rows = f.ok(&["list", "--json"]);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&rows)
            .expect("json")
            .as_array()
            .map(Vec::len),
        Some(3),
        "the first job, the second and the local one (`run` removes its own); none started by bad input: {rows}"
    );
}

/// 20 hosts: h04 and h05 print something else, h20 is unreachable.
const TWO_KINDS: &str = "case $SSH_CONNECTION in *' 127.0.0.4 '*|*' 127.0.0.5 '*) echo other;; *) echo same; printf lines;; esac";

/// Blocks of a gathered view: (header, body), whatever draws the header.
fn blocks(
    text: &str,
    header: impl Fn(&[&str], usize) -> Option<(String, usize)>,
) -> Vec<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match header(&lines, i) {
            Some((h, skip)) => {
                out.push((h, String::new()));
                i += skip;
            }
            None => {
                let last = out.last_mut().expect("a body after a header");
                last.1.push_str(lines[i]);
                last.1.push('\n');
                i += 1;
            }
        }
    }
    out
}

#[test]
fn gather_and_tag_fold_twenty_hosts_as_clubak_does() {
    let f = Fleet::new(20);
    let id = f
        .start(&["--host", "h[01-20]", "-c", TWO_KINDS])
        .to_string();
    let _ = f.run(&["wait", &id]);

    let expected = "==== h[01-03,06-19] (17) ====\nsame\nlines\n==== h[04-05] (2) ====\nother\n";
    let r = f.run(&["receive", &id, "--gather", "--keep"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.text(), expected);

    let r = f.run(&["receive", &id, "--tag", "--keep"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let tagged = r.text();
    let mut want: Vec<String> = (1..=19)
        .flat_map(|n| match n {
            4 | 5 => vec![format!("h{n:02}: other")],
            _ => vec![format!("h{n:02}: same"), format!("h{n:02}: lines")],
        })
        .collect();
    want.sort();
    assert_eq!(sorted_lines(&tagged), want);
    // Each host's lines stay in its order, whatever the others do.
    let h01: Vec<&str> = tagged.lines().filter(|l| l.starts_with("h01:")).collect();
    assert_eq!(h01, ["h01: same", "h01: lines"]);

    // ClusterShell's clubak reads the tagged lines into the same sets.
    if let Ok(mut clubak) = std::process::Command::new("clubak")
        .arg("-b")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write as _;
        clubak
            .stdin
            .take()
            .expect("stdin")
            .write_all(tagged.as_bytes())
            .expect("write");
        let out = clubak.wait_with_output().expect("clubak");
        assert!(out.status.success());
        let theirs = blocks(&String::from_utf8_lossy(&out.stdout), |l, i| {
            (l[i].starts_with("----") && i + 2 < l.len() && l[i + 2].starts_with("----"))
                .then(|| (l[i + 1].trim().to_string(), 3))
        });
        let ours = blocks(expected, |l, i| {
            l[i].strip_prefix("==== ")
                .and_then(|h| h.strip_suffix(" ===="))
                .map(|h| (h.to_string(), 1))
        });
        // clubak keeps the space after `host:`.
        let theirs: Vec<(String, String)> = theirs
            .into_iter()
            .map(|(h, body)| {
                let body = body
                    .lines()
                    .map(|l| format!("{}\n", l.strip_prefix(' ').unwrap_or(l)));
                (h, body.collect())
            })
            .collect();
        assert_eq!(ours, theirs);
    } else {
        eprintln!("clubak is not installed (Debian package clustershell): not compared");
    }

    // The gather consumed what it showed; nothing is left.
    let r = f.run(&["receive", &id, "--gather"]);
    assert_eq!(r.text(), expected);
    assert_eq!(f.ok(&["receive", &id]), "");
}

#[test]
fn gather_and_tag_work_for_a_batch_s_items() {
    let f = Fleet::new(2);
    let items = f.home.path().join("items");
    std::fs::write(&items, "a1\na2\nb\n").expect("items");
    let items = items.to_string_lossy().into_owned();
    let id = f
        .start(&[
            "--each",
            &items,
            "-c",
            "case {} in a*) echo A;; *) echo B;; esac",
        ])
        .to_string();
    let _ = f.run(&["wait", &id]);
    assert_eq!(
        f.ok(&["receive", &id, "--gather", "--keep"]),
        "==== a[1-2] (2) ====\nA\n==== b (1) ====\nB\n"
    );
    assert_eq!(
        sorted_lines(&f.ok(&["receive", &id, "--tag"])),
        ["a1\tA", "a2\tA", "b\tB"]
    );
    let r = f.run(&["receive", &id, "--wait"]);
    assert_eq!(r.stderr, "3 ok\n");
}
