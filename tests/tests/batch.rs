//! Batches (`start --each`): one parent job, one child per input item.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use jobctl_tests::TestHome;

/// Writes `items` to a file in the home and returns its path.
fn input(home: &TestHome, name: &str, bytes: &[u8]) -> PathBuf {
    let path = home.path().join(name);
    std::fs::write(&path, bytes).expect("write the items");
    path
}

fn children(home: &TestHome, parent: u64) -> Vec<serde_json::Value> {
    let job = home.job(parent);
    job["children"]
        .as_array()
        .expect("children")
        .iter()
        .map(|c| home.job(c.as_u64().expect("id")))
        .collect()
}

#[test]
fn two_hundred_items_never_run_more_than_the_throttle_and_all_output_arrives() {
    let home = TestHome::new();
    let seq: String = (1..=200).map(|i| format!("{i}\n")).collect();
    let file = input(&home, "items", seq.as_bytes());
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "4",
        "-c",
        "sleep 0.02; echo {}",
    ]);
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&home.ok(&["list", "--include-children", "--json"]))
                .expect("JSON");
        let running = rows
            .iter()
            .filter(|r| r["parent"] == id && r["state"] == "Running")
            .count();
        peak = peak.max(running);
        let parent = rows.iter().find(|r| r["id"] == id).expect("parent row");
        if parent["state"] == "Completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the batch did not finish: {parent}"
        );
    }
    assert!(peak <= 4, "{peak} children ran at once");
    assert!(peak >= 1);
    let out = home.ok(&["receive", &id.to_string()]);
    let mut got: Vec<u32> = out.lines().map(|l| l.parse().expect("a number")).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=200).collect::<Vec<_>>());
    // The parent alone in `list`; its children with --include-children.
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["list", "--json"])).expect("JSON");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["type"], "BatchJob");
    let kids = children(&home, id);
    assert_eq!(kids.len(), 200);
    assert_eq!(kids[16]["item"], "17");
    assert_eq!(kids[16]["name"], format!("Job{id}.17"));
}

/// Items that a shell or an argument parser would mangle reach the
/// command as one argument, byte for byte, in both forms.
#[test]
fn hostile_items_arrive_as_one_argument_byte_for_byte() {
    let home = TestHome::new();
    let items: Vec<&[u8]> = vec![
        b"two words",
        b"it's \"quoted\"",
        b"$(touch pwned) `touch pwned2`",
        b"-n",
        b"*",
        b"non-utf8 \xff\xfe",
        b"semi; colon | pipe > redirect",
    ];
    let mut data = Vec::new();
    for i in &items {
        data.extend_from_slice(i);
        data.push(0);
    }
    let file = input(&home, "items", &data);
    let file = file.to_str().expect("utf-8 path");
    let want: BTreeSet<Vec<u8>> = items.iter().map(|i| i.to_vec()).collect();
    for form in [
        vec!["--", "printf", "%s\\0", "{}"],
        vec!["-c", "printf '%s\\0' {}"],
        // No replacement string: the item is the last argument.
        vec!["--", "printf", "%s\\0"],
    ] {
        let mut args = vec!["run", "--each", file, "-0", "--throttle", "2"];
        args.extend(form.iter().copied());
        let run = home.run(&args);
        assert_eq!(run.code, 0, "{form:?}: {}", run.stderr);
        let got: BTreeSet<Vec<u8>> = run
            .stdout
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        assert_eq!(got, want, "{form:?}");
    }
    assert!(!home.path().join("pwned").exists());
}

#[test]
fn one_failing_item_fails_the_parent_naming_it_and_the_rest_complete() {
    let home = TestHome::new();
    let file = input(&home, "items", b"a.flac\nb.flac\nbad.flac\nc.flac\n");
    let run = home.run(&[
        "run",
        "--each",
        file.to_str().expect("utf-8 path"),
        "-c",
        "test {} != bad.flac",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("1 of 4 items failed; first: item 3 (bad.flac): exited with status 1"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_failed_reason_and_children_show_after_the_batch() {
    let home = TestHome::new();
    let file = input(&home, "items", b"1\n2\n3\n");
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--name",
        "nums",
        "-c",
        "exit $(( {} % 2 ))",
    ]);
    home.ok(&["wait", &id.to_string()]);
    let parent = home.job(id);
    assert_eq!(parent["state"], "Failed");
    assert_eq!(
        parent["reason"],
        "2 of 3 items failed; first: item 1 (1): exited with status 1"
    );
    let states: Vec<String> = children(&home, id)
        .iter()
        .map(|c| c["state"].as_str().expect("state").to_string())
        .collect();
    assert_eq!(states, ["Failed", "Completed", "Failed"]);
    let shown = home.ok(&["show", &id.to_string()]);
    assert!(shown.contains("nums.2"), "{shown}");
}

#[test]
fn a_thread_script_batch_sees_item_and_index() {
    let home = TestHome::new();
    let file = input(&home, "items", b"3\n4\n");
    let run = home.run(&[
        "run",
        "--each",
        file.to_str().expect("utf-8 path"),
        "--type",
        "thread",
        "-e",
        "item.parse_int() * 10 + index",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut got: Vec<String> = run.text().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(got, ["31", "42"]);
}

#[test]
fn an_empty_input_completes_at_once_with_no_children() {
    let home = TestHome::new();
    let file = input(&home, "items", b"");
    let id = home.start(&["--each", file.to_str().expect("utf-8 path"), "--", "true"]);
    home.ok(&["wait", &id.to_string()]);
    let parent = home.job(id);
    assert_eq!(parent["state"], "Completed");
    assert_eq!(parent["children"].as_array().map(Vec::len), Some(0));
}

#[test]
fn bad_batch_input_is_refused_before_anything_starts() {
    let home = TestHome::new();
    let file = input(&home, "items", b"a\n");
    let file = file.to_str().expect("utf-8 path");
    for (args, says) in [
        (
            vec!["start", "--each", "/no/such/items", "--", "true"],
            "cannot read /no/such/items",
        ),
        (
            vec!["start", "--each", file, "--detached", "--", "true"],
            "--detached",
        ),
        (vec!["start", "-0", "--", "true"], "--each"),
        (
            vec!["start", "--each", file, "--throttle", "0", "--", "true"],
            "throttle",
        ),
    ] {
        let run = home.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&home.ok(&["list", "--include-children", "--json"])).expect("JSON");
    assert!(rows.is_empty(), "{rows:?}");
}

#[test]
fn retries_run_a_flaky_item_until_it_passes() {
    let home = TestHome::new();
    let file = input(&home, "items", b"flaky\nsteady\n");
    let dir = home.path().display().to_string();
    // Each run appends a line to its item's marker; `flaky` fails while its
    // marker has fewer than 3 lines.
    let line = format!(
        "echo run >> {dir}/{{}}.runs; test {{}} != flaky || test $(wc -l < {dir}/{{}}.runs) -ge 3"
    );
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--retries",
        "2",
        "-c",
        &line,
    ]);
    home.ok(&["wait", &id.to_string()]);
    assert_eq!(home.job(id)["state"], "Completed");
    let kids = children(&home, id);
    assert_eq!(kids[0]["attempts"], 3, "{}", kids[0]);
    assert_eq!(kids[1]["attempts"], 1, "{}", kids[1]);
    let runs = std::fs::read_to_string(home.path().join("flaky.runs")).expect("runs");
    assert_eq!(runs.lines().count(), 3);
    let shown = home.run(&["receive", &kids[0]["id"].to_string()]);
    assert!(
        shown.stderr.contains("INFO: attempt 2 of 3"),
        "{}",
        shown.stderr
    );
    assert!(
        shown.stderr.contains("INFO: attempt 3 of 3"),
        "{}",
        shown.stderr
    );
}

#[test]
fn halt_now_after_the_first_failure_runs_no_later_item() {
    let home = TestHome::new();
    let items: String = std::iter::once("bad\n".to_string())
        .chain((1..=20).map(|i| format!("i{i}\n")))
        .collect();
    let file = input(&home, "items", items.as_bytes());
    let dir = home.path().display().to_string();
    let line = format!("test {{}} != bad || exit 3; touch {dir}/{{}}.ran; sleep 30");
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "1",
        "--halt",
        "now,fail=1",
        "-c",
        &line,
    ]);
    home.ok(&["wait", &id.to_string()]);
    let parent = home.job(id);
    assert_eq!(parent["state"], "Failed", "{parent}");
    let kids = children(&home, id);
    assert_eq!(kids[0]["state"], "Failed");
    for k in &kids[1..] {
        assert_eq!(k["state"], "Stopped", "{k}");
        assert_eq!(k["reason"], "halted after 1 failures", "{k}");
        let item = k["item"].as_str().expect("item");
        assert!(
            !home.path().join(format!("{item}.ran")).exists(),
            "{item} ran"
        );
    }
}

#[test]
fn a_malformed_halt_is_refused() {
    let home = TestHome::new();
    let file = input(&home, "items", b"a\n");
    let run = home.run(&[
        "start",
        "--each",
        file.to_str().expect("utf-8 path"),
        "--halt",
        "sometimes",
        "--",
        "true",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("now,fail=N"), "{}", run.stderr);
}

/// `receive --ordered`: each item's output together, in item order, even
/// when later items finish first; with `--wait` on a running batch too.
#[test]
fn ordered_receive_writes_items_in_input_order() {
    let home = TestHome::new();
    let seq: String = (1..=30).map(|i| format!("{i}\n")).collect();
    let file = input(&home, "items", seq.as_bytes());
    // Later items sleep less: they finish first.
    let line = "sleep 0.$(( (31 - {}) % 10 )); echo {} a; echo {} b";
    let want: String = (1..=30).map(|i| format!("{i} a\n{i} b\n")).collect();
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "8",
        "-c",
        line,
    ]);
    let out = home.ok(&["receive", "--wait", "--ordered", &id.to_string()]);
    assert_eq!(out, want);
    // Nothing left: the ordered receive consumed what it wrote.
    assert_eq!(home.ok(&["receive", &id.to_string()]), "");

    let id = home.start(&["--each", file.to_str().expect("utf-8 path"), "-c", line]);
    home.ok(&["wait", &id.to_string()]);
    let kept = home.ok(&["receive", "--keep", "--ordered", &id.to_string()]);
    assert_eq!(kept, want);
}

/// A table larger than one request may be (20,000 children: several MiB of
/// JSON) is still listed whole.
#[test]
fn a_batch_of_twenty_thousand_items_lists_whole() {
    let home = TestHome::new();
    let n = 20_000;
    let seq: String = (1..=n).map(|i| format!("{i}\n")).collect();
    let file = input(&home, "items", seq.as_bytes());
    // One child runs at a time and the first sleeps: the rest wait.
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "1",
        "-c",
        "sleep 60",
    ]);
    let list = home.ok(&["list", "--include-children", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list).expect("JSON");
    assert_eq!(rows.len(), n + 1);
    assert!(
        list.len() > 4 << 20,
        "{} bytes: not past a request's limit",
        list.len()
    );
    home.ok(&["stop", &id.to_string()]);
    assert_eq!(home.job(id)["state"], "Stopped");
}

/// A daemon SIGKILLed mid-batch: the children that finished keep their
/// output, the others end with the session, and the parent is finished
/// too (not left Running) once a new daemon restored the table.
#[test]
fn a_batch_cut_by_a_sigkilled_daemon_is_consistent_after_the_restart() {
    let home = TestHome::new();
    let seq: String = (1..=20).map(|i| format!("{i}\n")).collect();
    let file = input(&home, "items", seq.as_bytes());
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "2",
        "-c",
        "echo out {}; sleep 0.3",
    ]);
    let done = |home: &TestHome| {
        children(home, id)
            .iter()
            .filter(|c| c["state"] == "Completed")
            .count()
    };
    assert!(
        jobctl_tests::eventually(Duration::from_secs(60), || done(&home) >= 4),
        "four items never completed"
    );
    // What a client was told finished survives the SIGKILL.
    let told: Vec<String> = children(&home, id)
        .iter()
        .filter(|c| c["state"] == "Completed")
        .map(|c| c["id"].to_string())
        .collect();
    let pid = home.daemon_pid().expect("daemon pid");
    jobctl_tests::kill9(pid);
    assert!(
        jobctl_tests::eventually(Duration::from_secs(10), || !jobctl_tests::alive(pid)),
        "the daemon is gone"
    );
    // The next command starts a new daemon, which restores the table.
    let parent = home.job(id);
    assert_ne!(parent["state"], "Running", "{parent}");
    assert_ne!(parent["state"], "NotStarted", "{parent}");
    let kids = children(&home, id);
    assert_eq!(kids.len(), 20);
    let mut completed = 0;
    for k in &kids {
        let state = k["state"].as_str().expect("state");
        assert!(
            ["Completed", "Failed", "Stopped"].contains(&state),
            "a child left {state}: {k}"
        );
        if state == "Completed" {
            completed += 1;
            let out = home.ok(&["receive", &k["id"].to_string()]);
            assert_eq!(out, format!("out {}\n", k["item"].as_str().expect("item")));
        } else {
            assert!(k["reason"].is_string(), "no reason: {k}");
        }
    }
    assert!(completed >= 4, "{completed} completed");
    for t in &told {
        let k = kids.iter().find(|k| &k["id"].to_string() == t);
        assert_eq!(
            k.map(|k| k["state"].clone()),
            Some("Completed".into()),
            "child {t} was listed Completed before the SIGKILL"
        );
    }
    assert_ne!(parent["state"], "Completed", "not every item ran: {parent}");
}

/// A remote batch: each item's child is a remote job on the test sshd,
/// with the item substituted in its command.
#[test]
fn a_remote_batch_runs_each_item_on_the_host() {
    let sshd = crate::remote::Sshd::start();
    let home = TestHome::new();
    let file = input(&home, "items", b"alpha\nbeta gamma\n");
    let host = format!("127.0.0.1:{}", sshd.port);
    let out = crate::remote::ok(
        &home,
        &sshd,
        &[
            "run",
            "--each",
            file.to_str().expect("utf-8 path"),
            "--host",
            &host,
            "-c",
            "echo remote: {}",
        ],
    );
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["remote: alpha", "remote: beta gamma"]);
}

/// On a terminal, `wait` of a batch draws one progress line (done/total,
/// failed, running); without one, nothing of it.
#[test]
fn wait_of_a_batch_shows_a_progress_line_on_a_terminal_only() {
    let home = TestHome::new();
    let file = input(&home, "items", b"1\n2\n3\n4\n5\n6\n");
    let id = home.start(&[
        "--each",
        file.to_str().expect("utf-8 path"),
        "--throttle",
        "2",
        "-c",
        "sleep 0.4; test {} != 3",
    ]);
    // `script` gives the command a terminal of its own.
    let line = format!("{} wait {id}", jobctl_tests::jobctl_bin().display());
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &line, "/dev/null"])
        .env("JOBCTL_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let run = jobctl_tests::finish(
        c.spawn().expect("script (util-linux)"),
        jobctl_tests::COMMAND_TIMEOUT,
        "script jobctl wait",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let shown = run.text();
    assert!(shown.contains("/6 done, "), "no progress line: {shown:?}");
    assert!(shown.contains(" running, "), "{shown:?}");
    assert!(shown.contains("BatchJob"), "the row follows: {shown:?}");

    let id = home.start(&["--each", file.to_str().expect("utf-8 path"), "--", "true"]);
    let plain = home.run(&["wait", &id.to_string()]);
    assert_eq!(plain.code, 0);
    assert!(!plain.stderr.contains("done"), "{}", plain.stderr);
}

/// Text in braces that is no replacement string stays as written, as GNU
/// parallel leaves it.
#[test]
fn an_unknown_replacement_string_stays_as_text() {
    let home = TestHome::new();
    let file = input(&home, "items", b"a\n");
    let out = home.ok(&[
        "run",
        "--each",
        file.to_str().expect("utf-8 path"),
        "--",
        "echo",
        "{x}",
        "{}",
    ]);
    assert_eq!(out, "{x} a\n");
}

/// An input past what one message takes (40 MiB, more than the 32 MiB a
/// `start` carries whole) is streamed to the daemon and accepted whole:
/// every item runs and sees its item byte for byte, from a file and from
/// standard input.
#[test]
fn a_forty_mib_input_is_streamed_and_every_item_runs_whole() {
    let home = TestHome::new();
    // 40 items of 1 MiB: each starts and ends with its index.
    let (n, len) = (40, 1 << 20);
    let mut bytes = Vec::with_capacity(n * (len + 1));
    for i in 1..=n {
        let tag = format!("{i:08}");
        bytes.extend_from_slice(tag.as_bytes());
        bytes.extend(std::iter::repeat_n(b'x', len - 16));
        bytes.extend_from_slice(tag.as_bytes());
        bytes.push(b'\n');
    }
    assert!(bytes.len() > 40 << 20);
    let file = input(&home, "items", &bytes);
    let script =
        "`${index} ${item.len()} ${item.sub_string(0, 8)} ${item.sub_string(item.len() - 8, 8)}`";
    let want: BTreeSet<String> = (1..=n)
        .map(|i| format!("{i} {len} {i:08} {i:08}"))
        .collect();
    let args = |each: &str| -> Vec<String> {
        [
            "start",
            "-q",
            "--each",
            each,
            "--type",
            "thread",
            "--throttle",
            "4",
            "-e",
            script,
        ]
        .map(String::from)
        .to_vec()
    };
    for (each, stdin) in [(file.to_str().expect("utf-8 path"), false), ("-", true)] {
        let args = args(each);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = home.cmd(&args);
        if stdin {
            c.stdin(std::process::Stdio::piped());
        }
        let mut child = c.spawn().expect("spawn jobctl");
        let feed = child.stdin.take().map(|mut to| {
            let bytes = bytes.clone();
            std::thread::spawn(move || std::io::Write::write_all(&mut to, &bytes))
        });
        let run = jobctl_tests::finish(child, jobctl_tests::COMMAND_TIMEOUT, "jobctl start");
        if let Some(feed) = feed {
            feed.join().expect("the feeder").expect("write the items");
        }
        assert_eq!(run.code, 0, "{each}: {}", run.stderr);
        let id = run.text().trim().to_string();
        home.ok(&["wait", &id]);
        // The parent's row alone: the children's hold 1 MiB items each.
        let rows: Vec<serde_json::Value> =
            serde_json::from_str(&home.ok(&["list", &id, "--json"])).expect("JSON");
        let parent = &rows[0];
        assert_eq!(parent["state"], "Completed", "{each}: {parent}");
        assert_eq!(parent["children"].as_array().map(Vec::len), Some(n));
        let got: BTreeSet<String> = home
            .ok(&["receive", &id])
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(got, want, "{each}");
    }
}
