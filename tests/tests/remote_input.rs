//! `start --input` for remote jobs: the bytes reach each host's command on
//! its standard input over the SSH channel, then end of file. Against the
//! private sshd of `remote.rs`.

use std::io::Write;
use std::process::Stdio;

use jobctl_tests::{finish, Run, TestHome, COMMAND_TIMEOUT};

use crate::remote::{ok, run, Sshd};

/// `jobctl ARGS` as the ssh user, with `input` on its standard input.
fn run_with_stdin(home: &TestHome, sshd: &Sshd, args: &[&str], input: &[u8]) -> Run {
    let mut c = home.cmd(args);
    c.env("HOME", sshd.client_home())
        .env_remove("SSH_AUTH_SOCK")
        .stdin(Stdio::piped());
    let mut child = c.spawn().expect("spawn jobctl");
    let mut stdin = child.stdin.take().expect("stdin");
    // A writer of its own: jobctl may print before it has read it all.
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let r = finish(child, COMMAND_TIMEOUT, &args.join(" "));
    writer.join().expect("the writer");
    r
}

/// The children's ids of a parent job.
fn children(home: &TestHome, id: u64) -> Vec<u64> {
    home.job(id)["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(serde_json::Value::as_u64)
        .collect()
}

/// `sha256sum`'s hex digest of `data`, computed here by the system's tool.
fn sha256(data: &[u8]) -> String {
    let mut c = std::process::Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = c.stdin.take().expect("stdin");
    let owned = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&owned));
    let out = c.wait_with_output().expect("sha256sum output");
    writer.join().expect("writer").expect("write");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_string()
}

/// Starts `sha256sum` on `hosts` with the file `path` as its input
/// (`options` before `--input`); the job's id.
fn start_sum(home: &TestHome, sshd: &Sshd, options: &[&str], path: &str, hosts: &str) -> u64 {
    let mut args = vec!["start", "-q"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--input", path, "--host", hosts, "--", "sha256sum"]);
    ok(home, sshd, &args).trim().parse().expect("an id")
}

/// Each of the two host children of `id` completed and printed `want`.
fn assert_sums(home: &TestHome, sshd: &Sshd, id: u64, want: &str) {
    let kids = children(home, id);
    assert_eq!(kids.len(), 2, "{}", home.job(id));
    for k in kids {
        let row = home.job(k);
        assert_eq!(row["state"], "Completed", "{row}");
        let out = ok(home, sshd, &["receive", &k.to_string()]);
        assert_eq!(out.split_whitespace().next(), Some(want), "{row}");
    }
}

/// A few MiB no line-oriented tool would take for text: every byte value.
fn big_input() -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..3 * 1024 * 1024 + 17)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

#[test]
fn remote_input_reaches_each_hosts_stdin_then_end_of_file() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let h2 = format!("127.0.0.2:{}", sshd.port);
    let hosts = format!("{h1},{h2}");

    // From the caller's stdin, to both hosts; `wc -l` ends only at EOF.
    let r = run_with_stdin(
        &home,
        &sshd,
        &["run", "--input", "-", "--host", &hosts, "--", "wc", "-l"],
        b"a\nb\n",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.text();
    let counts: Vec<&str> = out.lines().map(str::trim).collect();
    assert_eq!(counts, ["2", "2"], "{out}");

    // A few MiB from a file: every host's command reads them byte for byte.
    let data = big_input();
    let file = home.path().join("big");
    std::fs::write(&file, &data).expect("write");
    let path = file.to_str().expect("utf-8");
    let id = start_sum(&home, &sshd, &[], path, &hosts);
    ok(&home, &sshd, &["wait", &id.to_string()]);
    assert_sums(&home, &sshd, id, &sha256(&data));

    // Echoed back while it is still being sent: no deadlock, exact bytes.
    let r = run(
        &home,
        &sshd,
        &["run", "--input", path, "--host", &h1, "--", "cat"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout == data,
        "{} of {} bytes back",
        r.stdout.len(),
        data.len()
    );

    // A command that reads none of it ends as usual.
    let r = run(
        &home,
        &sshd,
        &["run", "--input", path, "--host", &h1, "--", "true"],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);

    // A command line too long for one SSH packet travels on stdin too,
    // ahead of the input, which the command then reads whole.
    let long = format!(": {}; wc -c", "x".repeat(40 * 1024));
    let r = run_with_stdin(
        &home,
        &sshd,
        &["run", "--input", "-", "--host", &h1, "-c", &long],
        b"12345",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.text().trim(), "5");

    // Without --input a remote command's stdin is empty.
    assert_eq!(ok(&home, &sshd, &["run", "--host", &h1, "--", "cat"]), "");
}

#[test]
fn remote_input_is_refused_with_detached_and_with_each_before_anything_starts() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let file = home.path().join("in");
    std::fs::write(&file, "x\n").expect("write");
    let input = file.to_str().expect("utf-8");
    let items = home.path().join("items");
    std::fs::write(&items, "a\nb\n").expect("write");
    let items = items.to_str().expect("utf-8");
    for (args, says) in [
        (
            vec![
                "start",
                "--input",
                input,
                "--detached",
                "--host",
                &h1,
                "--",
                "cat",
            ],
            "--detached",
        ),
        (
            vec![
                "start", "--input", input, "--each", items, "--host", &h1, "--", "cat",
            ],
            "--each",
        ),
    ] {
        let r = run(&home, &sshd, &args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    let listed = ok(&home, &sshd, &["list", "--json", "--include-children"]);
    assert_eq!(listed.trim(), "[]", "nothing started: {listed}");
}

/// A remote job that waits for another keeps its input across a SIGKILL of
/// the daemon: it is part of the spec the store keeps.
#[test]
fn a_waiting_remote_job_keeps_its_input_across_a_sigkilled_daemon() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let dir = tempfile::tempdir().expect("dir");
    let go = dir.path().join("go");
    let h1 = format!("127.0.0.1:{}", sshd.port);
    let data = big_input();
    let file = home.path().join("big");
    std::fs::write(&file, &data).expect("write");
    let start = |args: &[&str]| -> u64 {
        let mut all = vec!["start", "-q"];
        all.extend_from_slice(args);
        ok(&home, &sshd, &all).trim().parse().expect("an id")
    };
    let a = start(&["--detached", "-c", &crate::deps::until(&go)]);
    let after = a.to_string();
    let path = file.to_str().expect("utf-8");
    let r = start(&[
        "--after",
        &after,
        "--input",
        path,
        "--host",
        &h1,
        "--",
        "sha256sum",
    ]);
    crate::deps::crash(&home);
    let row = home.job(r);
    assert_eq!(row["state"], "NotStarted", "{row}");
    std::fs::write(&go, "").expect("go");
    ok(&home, &sshd, &["wait", &r.to_string()]);
    let kids = children(&home, r);
    assert_eq!(kids.len(), 1);
    let row = home.job(kids[0]);
    assert_eq!(row["state"], "Completed", "{row}");
    let out = ok(&home, &sshd, &["receive", &kids[0].to_string()]);
    assert_eq!(out.split_whitespace().next(), Some(sha256(&data).as_str()));
}

/// The input is held once for all hosts: a host queued behind the throttle
/// gets it as the first did, and a restart (from the kept request) feeds it
/// again to every host.
#[test]
fn remote_input_reaches_hosts_queued_behind_the_throttle_and_a_restart() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let hosts = format!("127.0.0.1:{p},127.0.0.2:{p}", p = sshd.port);
    let data = big_input();
    let file = home.path().join("big");
    std::fs::write(&file, &data).expect("write");
    let path = file.to_str().expect("utf-8");
    let want = sha256(&data);
    let first = start_sum(&home, &sshd, &["--throttle", "1"], path, &hosts);
    ok(&home, &sshd, &["wait", &first.to_string()]);
    // The file changes: a restart replays the input the first start read.
    std::fs::write(&file, b"other").expect("rewrite");
    let again = ok(&home, &sshd, &["restart", "-q", &first.to_string()]);
    let again: u64 = again.trim().parse().expect("an id");
    ok(&home, &sshd, &["wait", &again.to_string()]);
    for id in [first, again] {
        assert_sums(&home, &sshd, id, &want);
    }
}
