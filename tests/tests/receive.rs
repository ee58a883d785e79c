//! Receive: byte-exact output, keep, partial receives, closed pipes, JSON.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use jobctl_tests::{eventually, finish, jobctl_bin, Run, TestHome, COMMAND_TIMEOUT};

use crate::remote::{self, Sshd};

#[test]
fn binary_output_is_byte_exact() {
    let home = TestHome::new();
    // Every byte value, a NUL-laden blob of 3 MiB with no final newline.
    let data: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .chain(0..=255u8)
        .collect();
    let file = home.path().join("blob.bin");
    std::fs::write(&file, &data).expect("write");
    let id = home
        .start(&["--", "cat", file.to_str().expect("utf8")])
        .to_string();
    home.ok(&["wait", &id]);
    receives_exactly(&home, &["receive", &id], &data);
}

/// Runs `args` (a receive), which must succeed and write exactly `want`,
/// leaving the job with no more data.
fn receives_exactly(home: &TestHome, args: &[&str], want: &[u8]) {
    let r = home.run(args);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout.len(), want.len());
    assert!(r.stdout == want, "{args:?} changed the bytes");
    assert_eq!(
        home.job(args[1].parse().expect("id"))["has_more_data"],
        false
    );
}

#[test]
fn stderr_goes_to_stderr_and_failed_reason_too() {
    let home = TestHome::new();
    let id = home
        .start(&["-c", "printf out; printf err >&2; exit 5"])
        .to_string();
    home.ok(&["wait", &id]);
    let r = home.run(&["receive", &id]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, b"out");
    assert!(r.stderr.starts_with("err"), "{}", r.stderr);
    assert!(r.stderr.contains("exited with status 5"), "{}", r.stderr);
}

#[test]
fn keep_leaves_records_and_plain_receive_consumes_them() {
    let home = TestHome::new();
    let id = home.start(&["-c", "echo one; echo two"]).to_string();
    home.ok(&["wait", &id]);
    assert_eq!(home.ok(&["receive", &id, "--keep"]), "one\ntwo\n");
    assert_eq!(home.job(id.parse().expect("id"))["has_more_data"], true);
    assert_eq!(home.ok(&["receive", &id, "--keep"]), "one\ntwo\n");
    assert_eq!(home.ok(&["receive", &id]), "one\ntwo\n");
    assert_eq!(home.ok(&["receive", &id]), "");
    assert_eq!(home.job(id.parse().expect("id"))["has_more_data"], false);
}

#[test]
fn partial_receive_then_the_rest() {
    let home = TestHome::new();
    let gate = home.path().join("gate");
    let line = format!(
        "echo first; while [ ! -e '{}' ]; do sleep 0.02; done; echo second",
        gate.display()
    );
    let id = home.start(&["-c", &line]).to_string();
    assert!(eventually(Duration::from_secs(20), || {
        home.ok(&["receive", &id, "--keep"]) == "first\n"
    }));
    assert_eq!(home.ok(&["receive", &id]), "first\n");
    assert_eq!(home.job(id.parse().expect("id"))["state"], "Running");
    std::fs::write(&gate, b"").expect("gate");
    home.ok(&["wait", &id]);
    assert_eq!(home.ok(&["receive", &id]), "second\n");
    assert_eq!(home.ok(&["receive", &id]), "");
}

#[test]
fn receive_into_a_closed_pipe_keeps_what_was_not_written() {
    let home = TestHome::new();
    // ~6.9 MB of numbered lines: far more than a pipe holds.
    let id = home.start(&["--", "seq", "1", "1000000"]).to_string();
    home.ok(&["wait", &id]);
    let full = {
        let r = home.run(&["receive", &id, "--keep"]);
        assert_eq!(r.code, 0);
        r.stdout
    };
    let r = shell(
        &home,
        &format!("'{}' receive {id} | head -1", jobctl_bin().display()),
    );
    assert_eq!(r.text(), "1\n");
    let v = home.job(id.parse().expect("id"));
    assert_eq!(
        v["has_more_data"], true,
        "what head never read is still there"
    );
    let rest = home.run(&["receive", &id]).stdout;
    assert!(!rest.is_empty());
    assert!(
        full.ends_with(&rest),
        "the rest is a suffix of the output ({} of {} bytes)",
        rest.len(),
        full.len()
    );
}

#[test]
fn receive_wait_follows_and_auto_removes() {
    let home = TestHome::new();
    let id = home
        .start(&["-c", "for i in 1 2 3; do echo $i; sleep 0.1; done"])
        .to_string();
    let out = home.ok(&["receive", &id, "--wait", "--auto-remove"]);
    assert_eq!(out, "1\n2\n3\n");
    let r = home.run(&["list", &id]);
    assert_eq!(r.code, 2, "the job was removed: {}", r.stderr);
    assert_eq!(r.stderr.trim(), format!("jobctl: no job with id {id}"));
    let r = home.run(&["receive", "1", "--auto-remove"]);
    assert_eq!(r.code, 2, "--auto-remove needs --wait");
}

#[test]
fn receive_several_jobs_no_recurse_and_json() {
    let home = TestHome::new();
    let a = home.start(&["--", "printf", "a"]).to_string();
    // Records of several jobs come in production order: let `a` finish first.
    home.ok(&["wait", &a]);
    let b = home
        .start(&["--type", "thread", "-e", r#"warn("careful"); #{n: 1}"#])
        .to_string();
    home.ok(&["wait"]);
    let out = home.ok(&["receive", &a, &b, "--json", "--keep", "--no-recurse"]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(
        lines,
        vec![
            serde_json::json!({"id": a.parse::<u64>().expect("id"), "stream": "output", "data": "a"}),
            serde_json::json!({"id": b.parse::<u64>().expect("id"), "stream": "warning", "data": "careful"}),
            serde_json::json!({"id": b.parse::<u64>().expect("id"), "stream": "output", "data": {"n": 1}}),
        ]
    );
    let r = home.run(&["receive", &a, &b]);
    assert_eq!(r.stdout, b"a{\"n\":1}\n");
    assert_eq!(r.stderr, "WARNING: careful\n");
}

#[test]
fn large_output_streams_through() {
    let home = TestHome::new();
    // 64 MiB through the daemon and the store, read as it streams.
    let id = home
        .start(&["-c", "head -c 67108864 /dev/zero"])
        .to_string();
    let mut child = home
        .cmd(&["receive", &id, "--wait"])
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut total = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = out.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        total += n;
    }
    let r = finish(child, COMMAND_TIMEOUT, "receive --wait");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(total, 64 << 20);
}

/// Distinct bytes, so that a lost, repeated or reordered page shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

#[test]
fn a_streamed_mix_of_small_and_large_records_is_byte_exact() {
    let home = TestHome::new();
    let data = pattern(12 << 20);
    let file = home.path().join("mix.bin");
    std::fs::write(&file, &data).expect("write");
    // Small records (a line at a time), then a fast 12 MiB, then small ones.
    let script = format!(
        "for i in 1 2 3; do echo line $i; sleep 0.05; done; cat '{}'; echo; echo tail",
        file.display()
    );
    let id = home.start(&["-c", &script]).to_string();
    let mut want = b"line 1\nline 2\nline 3\n".to_vec();
    want.extend_from_slice(&data);
    want.extend_from_slice(b"\ntail\n");
    receives_exactly(&home, &["receive", &id, "--wait"], &want);
}

#[test]
fn a_reader_that_stops_early_loses_nothing_of_a_large_output() {
    let home = TestHome::new();
    let data = pattern(16 << 20);
    let file = home.path().join("big.bin");
    std::fs::write(&file, &data).expect("write");
    let id = home
        .start(&["--", "cat", file.to_str().expect("utf8")])
        .to_string();
    home.ok(&["wait", &id]);
    receive_head_then_rest(&home, &id, "", 3_000_000, &data);
    assert_eq!(home.job(id.parse().expect("id"))["has_more_data"], false);
}

/// Runs a shell line in the session of `home`.
fn shell(home: &TestHome, line: &str) -> Run {
    let child = Command::new("/bin/sh")
        .args(["-c", line])
        .env("JOBCTL_HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    finish(child, COMMAND_TIMEOUT, line)
}

/// `jobctl receive ID FLAGS | head -c N`, then (once the job is done) a
/// plain receive: nothing of `data` is lost. A record is consumed only once
/// it was written out whole, so what head did not take comes again, from
/// a record's start.
fn receive_head_then_rest(home: &TestHome, id: &str, flags: &str, n: usize, data: &[u8]) {
    let line = format!(
        "'{}' receive {id} {flags} | head -c {n}",
        jobctl_bin().display()
    );
    let head = shell(home, &line).stdout;
    assert_eq!(head.len(), n);
    assert!(data.starts_with(&head));
    home.ok(&["wait", id]);
    let rest = home.run(&["receive", id]).stdout;
    assert!(
        head.len() + rest.len() >= data.len(),
        "lost {} bytes",
        data.len() - head.len() - rest.len()
    );
    assert!(data.ends_with(&rest), "the rest is a suffix of the output");
}

#[test]
fn a_following_reader_that_stops_early_loses_nothing() {
    let home = TestHome::new();
    let data = pattern(24 << 20);
    let file = home.path().join("big.bin");
    std::fs::write(&file, &data).expect("write");
    // Received as it is produced: records are taken from memory.
    let script = format!("cat '{}'; sleep 0.3", file.display());
    let id = home.start(&["-c", &script]).to_string();
    receive_head_then_rest(&home, &id, "--wait", 5_000_000, &data);
}

/// `jobctl ARGS` into a pipe whose reader waits until jobctl has written
/// `full` bytes (so that whole records sit unread in the pipe), then takes
/// exactly `n` bytes and closes its end; `then` runs once it closed.
/// Returns the bytes taken and how jobctl ended.
fn read_exactly_then_close(
    home: &TestHome,
    args: &[&str],
    full: u64,
    n: usize,
    then: impl FnOnce(),
) -> (Vec<u8>, Run) {
    let mut child = home.cmd(args).spawn().expect("spawn jobctl");
    let pid = child.id();
    assert!(
        eventually(COMMAND_TIMEOUT, || written_by(pid) >= full),
        "jobctl wrote {full} bytes"
    );
    let mut out = child.stdout.take().expect("stdout");
    let mut head = vec![0u8; n];
    out.read_exact(&mut head).expect("read the first bytes");
    drop(out);
    then();
    (head, finish(child, COMMAND_TIMEOUT, &args.join(" ")))
}

/// The bytes a process has handed to `write` and its kin so far.
fn written_by(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| {
            io.lines()
                .find_map(|l| l.strip_prefix("wchar: "))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `numbered(k)` lines: `line 0\n`, `line 1\n`...
fn numbered(k: usize) -> Vec<u8> {
    (0..k)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect()
}

/// What a second receive gave after a reader took `head`: it starts at or
/// before the record holding the first byte the reader did not take, and
/// together they hold every byte of `data`.
fn nothing_lost(data: &[u8], head: &[u8], rest: &[u8]) {
    assert!(data.starts_with(head), "the reader got the output's start");
    assert!(data.ends_with(rest), "the rest is a suffix of the output");
    assert!(
        head.len() + rest.len() >= data.len(),
        "lost {} bytes after the {} the reader took",
        data.len() - head.len() - rest.len(),
        head.len()
    );
}

#[test]
fn a_reader_that_takes_n_bytes_of_a_finished_job_loses_nothing_after_them() {
    let home = TestHome::new();
    // 20,000 records of a line each, 209 kB: far more than a pipe holds.
    let id = home
        .start(&[
            "--type",
            "thread",
            "-e",
            r#"for i in 0..20000 { emit("line " + i) }"#,
        ])
        .to_string();
    home.ok(&["wait", &id]);
    let data = numbered(20000);
    assert_eq!(home.ok(&["receive", &id, "--keep"]).into_bytes(), data);
    let (head, r) = read_exactly_then_close(&home, &["receive", &id], 60_000, 1000, || {});
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rest = home.run(&["receive", &id]).stdout;
    nothing_lost(&data, &head, &rest);
    // The reader took part of the line holding byte 1000: it comes again whole.
    let cut = data[..1000]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    assert_eq!(
        rest.len(),
        data.len() - cut,
        "the rest starts at the cut record"
    );
    assert_eq!(home.job(id.parse().expect("id"))["has_more_data"], false);
}

#[test]
fn a_following_reader_that_takes_n_bytes_loses_nothing_after_them() {
    let home = TestHome::new();
    let gate = home.path().join("gate");
    // Lines that fit in the pipe, then (once the reader is gone) one more.
    let line = format!(
        "seq -f 'line %g' 0 2999; while [ ! -e '{}' ]; do sleep 0.02; done; echo end",
        gate.display()
    );
    let id = home.start(&["-c", &line]).to_string();
    let lines = numbered(3000);
    let mut data = lines.clone();
    data.extend_from_slice(b"end\n");
    // Every line is in the cache before the follower starts, so that it
    // writes them all into the pipe at once.
    assert!(eventually(COMMAND_TIMEOUT, || home
        .run(&["receive", &id, "--keep"])
        .stdout
        == lines));
    let (head, r) = read_exactly_then_close(
        &home,
        &["receive", &id, "--wait"],
        lines.len() as u64,
        1000,
        || std::fs::write(&gate, b"").expect("gate"),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    home.ok(&["wait", &id]);
    let rest = home.run(&["receive", &id]).stdout;
    nothing_lost(&data, &head, &rest);
    assert_eq!(home.job(id.parse().expect("id"))["has_more_data"], false);
}

#[test]
fn a_job_named_twice_is_received_once() {
    let home = TestHome::new();
    let id = home.start(&["-c", "echo one; echo two"]).to_string();
    home.ok(&["wait", &id]);
    assert_eq!(home.ok(&["receive", &id, &id, "--keep"]), "one\ntwo\n");
    assert_eq!(
        home.ok(&["receive", &id, &id, "--keep", "--no-recurse"]),
        "one\ntwo\n"
    );
    assert_eq!(home.ok(&["receive", &id, &id, "--wait"]), "one\ntwo\n");
    assert_eq!(home.ok(&["receive", &id]), "");
}

#[test]
fn a_child_named_with_its_parent_is_received_once() {
    let sshd = Sshd::start();
    let home = TestHome::new();
    let hosts = format!("127.0.0.1:{p},127.0.0.2:{p}", p = sshd.port);
    let parent: u64 = remote::ok(
        &home,
        &sshd,
        &["start", "-q", "--host", &hosts, "--", "echo", "from a host"],
    )
    .trim()
    .parse()
    .expect("an id");
    remote::ok(&home, &sshd, &["wait", &parent.to_string()]);
    let children = home.job(parent)["children"].clone();
    let child = children[0].as_u64().expect("a child").to_string();
    let parent = parent.to_string();
    let both = "from a host\nfrom a host\n";
    for ids in [[&parent, &child], [&child, &parent]] {
        let mut args = vec!["receive", "--keep"];
        args.extend(ids.iter().map(|s| s.as_str()));
        assert_eq!(home.ok(&args), both, "{args:?}");
    }
    assert_eq!(
        home.ok(&["receive", &child, &parent, &child, "--wait"]),
        both
    );
    assert_eq!(home.ok(&["receive", &parent]), "");
}
