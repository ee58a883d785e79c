//! Events and hooks: `events --follow` sees every job's transitions exactly
//! once and in order; `events --since` resumes across a SIGKILL of the
//! daemon with nothing lost or repeated; hooks run with the job's details,
//! change no job, delay nothing, and are killed at their time limit.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobctl_tests::{alive, eventually, kill9, TestHome};
use serde_json::Value;

const PATIENCE: Duration = Duration::from_secs(60);

/// `events --follow --json` running in the background, its lines collected.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<Value>>>,
}

impl Follower {
    fn start(home: &TestHome) -> Follower {
        let mut child = home
            .cmd(&["events", "--follow", "--json"])
            .spawn()
            .expect("spawn events --follow");
        let out = child.stdout.take().expect("piped stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                sink.lock().expect("lock").push(v);
            }
        });
        Follower { child, lines }
    }

    fn seen(&self) -> Vec<Value> {
        self.lines.lock().expect("lock").clone()
    }

    /// Waits until an event of job `id` to state `to` (null: removed) came.
    fn wait_for(&self, id: u64, to: Value) {
        assert!(
            eventually(PATIENCE, || self
                .seen()
                .iter()
                .any(|e| e["id"] == id && e["to"] == to)),
            "no event of job {id} to {to}: {:?}",
            self.seen()
        );
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The exit status of `child` once it ended on its own, within [`PATIENCE`].
fn exited(child: &mut Child) -> Option<std::process::ExitStatus> {
    let mut status = None;
    eventually(PATIENCE, || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status
}

/// The (from, to) pairs of job `id`'s events, in order.
fn transitions(events: &[Value], id: u64) -> Vec<(Value, Value)> {
    events
        .iter()
        .filter(|e| e["id"] == id)
        .map(|e| (e["from"].clone(), e["to"].clone()))
        .collect()
}

fn pair(from: Option<&str>, to: Option<&str>) -> (Value, Value) {
    let v = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.into()));
    (v(from), v(to))
}

fn seqs(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["seq"].as_u64().expect("seq is a number"))
        .collect()
}

fn assert_strictly_increasing(events: &[Value]) {
    let s = seqs(events);
    assert!(
        s.windows(2).all(|w| w[0] < w[1]),
        "seq must strictly increase, nothing repeated: {s:?}"
    );
}

fn read_json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn follow_sees_each_jobs_transitions_exactly_once_in_order() {
    let home = TestHome::new();
    let follower = Follower::start(&home);
    let ok = home.start(&["--name", "ok", "--", "true"]);
    let bad = home.start(&["--name", "bad", "-c", "exit 3"]);
    let stopped = home.start(&["--name", "stopped", "--", "sleep", "30"]);
    let removed = home.start(&["--name", "removed", "--", "true"]);
    home.ok(&[
        "wait",
        &ok.to_string(),
        &bad.to_string(),
        &removed.to_string(),
    ]);
    home.ok(&["stop", &stopped.to_string()]);
    home.ok(&["remove", &removed.to_string()]);
    follower.wait_for(removed, Value::Null);
    follower.wait_for(stopped, "Stopped".into());
    let live = follower.seen();
    assert_strictly_increasing(&live);
    let (new, run) = (
        pair(None, Some("NotStarted")),
        pair(Some("NotStarted"), Some("Running")),
    );
    assert_eq!(
        transitions(&live, ok),
        [
            new.clone(),
            run.clone(),
            pair(Some("Running"), Some("Completed"))
        ]
    );
    assert_eq!(
        transitions(&live, bad),
        [
            new.clone(),
            run.clone(),
            pair(Some("Running"), Some("Failed"))
        ]
    );
    assert_eq!(
        transitions(&live, stopped),
        [
            new.clone(),
            run.clone(),
            pair(Some("Running"), Some("Stopping")),
            pair(Some("Stopping"), Some("Stopped")),
        ]
    );
    assert_eq!(
        transitions(&live, removed),
        [
            new,
            run,
            pair(Some("Running"), Some("Completed")),
            pair(Some("Completed"), None),
        ]
    );
    let failed = live
        .iter()
        .find(|e| e["id"] == bad && e["to"] == "Failed")
        .expect("the failure");
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["reason"], "exited with status 3");
    assert_eq!(failed["name"], "bad");
    assert_eq!(failed["type"], "BackgroundJob");
    // Every field CLI.md names, on every line.
    for key in [
        "seq",
        "time",
        "id",
        "name",
        "type",
        "from",
        "to",
        "reason",
        "exit_code",
    ] {
        assert!(live.iter().all(|e| e.get(key).is_some()), "{key} missing");
    }
    // What the store kept is what was pushed live, no more, no less.
    let stored = read_json_lines(&home.ok(&["events", "--json"]));
    assert_eq!(stored, live);
    // A filter by id, and the text for people.
    let only = read_json_lines(&home.ok(&["events", &bad.to_string(), "--json"]));
    assert_eq!(transitions(&only, bad).len(), 3);
    assert!(only.iter().all(|e| e["id"] == bad));
    let text = home.ok(&["events", &bad.to_string()]);
    assert!(
        text.contains("bad  Running -> Failed  reason: exited with status 3  exit code 3"),
        "{text}"
    );
}

#[test]
fn since_resumes_after_a_sigkill_with_nothing_lost_or_repeated() {
    let home = TestHome::new();
    let first = home.start(&["--", "true"]);
    home.ok(&["wait", &first.to_string()]);
    let before = read_json_lines(&home.ok(&["events", "--json"]));
    let last = *seqs(&before).last().expect("events of the first job");
    // After the reader's last look: a job that completes, one that is
    // running when the daemon dies.
    let done = home.start(&["--", "true"]);
    home.ok(&["wait", &done.to_string()]);
    let running = home.start(&["--", "sleep", "30"]);
    assert!(eventually(PATIENCE, || home.job(running)["state"] == "Running"));
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    assert!(eventually(PATIENCE, || !alive(pid)), "the daemon is gone");
    // Any command brings the daemon back.
    let after = read_json_lines(&home.ok(&["events", "--since", &last.to_string(), "--json"]));
    assert_strictly_increasing(&after);
    assert!(seqs(&after).iter().all(|&s| s > last), "{after:?}");
    assert!(after.iter().all(|e| e["id"] != first), "{after:?}");
    assert_eq!(
        transitions(&after, done),
        [
            pair(None, Some("NotStarted")),
            pair(Some("NotStarted"), Some("Running")),
            pair(Some("Running"), Some("Completed")),
        ]
    );
    // The job the crash ended ends with an event too.
    let ended = transitions(&after, running);
    assert_eq!(ended.first(), Some(&pair(None, Some("NotStarted"))));
    assert_eq!(
        ended.last().map(|p| &p.1),
        Some(&Value::from("Failed")),
        "{ended:?}"
    );
    let end = after.iter().rfind(|e| e["id"] == running).expect("the end");
    assert_eq!(
        end["reason"],
        "the session host ended while the job was running"
    );
    // The whole story is exactly the two reads put together.
    let all = read_json_lines(&home.ok(&["events", "--json"]));
    let mut joined = before.clone();
    joined.extend(after.iter().cloned());
    assert_eq!(all, joined);
    // And numbering goes on after what was handed out.
    let next = home.start(&["--", "true"]);
    let more = read_json_lines(&home.ok(&["events", &next.to_string(), "--json"]));
    let top = *seqs(&all).last().expect("events");
    assert!(seqs(&more).iter().all(|&s| s > top), "{more:?} after {top}");
}

/// A hooks folder with a hook that writes its environment, one that fails
/// and one that sleeps for the job named `sleepy`.
fn hooks_folder(home: &TestHome) -> std::path::PathBuf {
    let out = home.path().join("out");
    std::fs::create_dir(&out).expect("out folder");
    let hooks = home.path().join("hooks");
    std::fs::create_dir(&hooks).expect("hooks folder");
    std::fs::set_permissions(&hooks, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let write = |name: &str, body: &str| {
        let p = hooks.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("hook");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    };
    write(
        "10-record",
        r#"env | grep '^JOBCTL_' | sort > "$JOBCTL_HOME/out/$JOBCTL_JOB_ID.tmp"
mv "$JOBCTL_HOME/out/$JOBCTL_JOB_ID.tmp" "$JOBCTL_HOME/out/$JOBCTL_JOB_ID.env""#,
    );
    write("20-fail", "echo 'this hook fails' >&2; exit 1");
    write(
        "30-sleep",
        r#"[ "$JOBCTL_JOB_NAME" = sleepy ] || exit 0
echo $$ > "$JOBCTL_HOME/out/sleeper.tmp"; mv "$JOBCTL_HOME/out/sleeper.tmp" "$JOBCTL_HOME/out/sleeper"
exec sleep 1000"#,
    );
    out
}

/// The `JOBCTL_*` variables a hook saw for job `id`, once it wrote them.
fn hook_env(out: &Path, id: u64) -> std::collections::BTreeMap<String, String> {
    let file = out.join(format!("{id}.env"));
    assert!(
        eventually(PATIENCE, || file.exists()),
        "no hook ran for job {id}"
    );
    std::fs::read_to_string(&file)
        .expect("read")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn start_daemon_with_hook_timeout(home: &TestHome, timeout: &str) {
    let mut c = home.cmd(&["daemon", "start"]);
    c.env("JOBCTL_HOOK_TIMEOUT", timeout);
    let r = jobctl_tests::finish(c.spawn().expect("spawn"), PATIENCE, "daemon start");
    assert_eq!(r.code, 0, "daemon start: {}", r.stderr);
}

#[test]
fn hooks_see_the_finished_job_change_nothing_and_delay_nothing() {
    let home = TestHome::new();
    let out = hooks_folder(&home);
    start_daemon_with_hook_timeout(&home, "8s");
    let ok = home.start(&["--name", "ok", "--", "true"]);
    let bad = home.start(&["--name", "bad", "-c", "exit 3"]);
    let stopped = home.start(&["--name", "stopped", "--", "sleep", "30"]);
    home.ok(&["wait", &ok.to_string(), &bad.to_string()]);
    home.ok(&["stop", &stopped.to_string()]);
    let home_dir = home.path().display().to_string();

    let env = hook_env(&out, ok);
    assert_eq!(env["JOBCTL_JOB_ID"], ok.to_string());
    assert_eq!(env["JOBCTL_JOB_NAME"], "ok");
    assert_eq!(env["JOBCTL_JOB_TYPE"], "BackgroundJob");
    assert_eq!(env["JOBCTL_JOB_STATE"], "Completed");
    assert_eq!(env["JOBCTL_JOB_EXIT_CODE"], "0");
    assert_eq!(env["JOBCTL_JOB_REASON"], "");
    assert_eq!(env["JOBCTL_HOME"], home_dir);

    let env = hook_env(&out, bad);
    assert_eq!(env["JOBCTL_JOB_NAME"], "bad");
    assert_eq!(env["JOBCTL_JOB_STATE"], "Failed");
    assert_eq!(env["JOBCTL_JOB_EXIT_CODE"], "3");
    assert_eq!(env["JOBCTL_JOB_REASON"], "exited with status 3");

    let env = hook_env(&out, stopped);
    let row = home.job(stopped);
    assert_eq!(env["JOBCTL_JOB_STATE"], "Stopped");
    assert_eq!(
        env["JOBCTL_JOB_REASON"],
        row["reason"].as_str().unwrap_or("")
    );
    assert_eq!(
        env["JOBCTL_JOB_EXIT_CODE"],
        row["exit_code"]
            .as_i64()
            .map(|c| c.to_string())
            .unwrap_or_default()
    );

    // The failing hook changed no job.
    assert_eq!(home.job(ok)["state"], "Completed");
    assert_eq!(home.job(bad)["state"], "Failed");
    assert_eq!(home.job(bad)["reason"], "exited with status 3");
    assert_eq!(home.job(stopped)["state"], "Stopped");

    // A sleeping hook: the next job starts and ends while it sleeps, and
    // it is killed at the limit.
    let sleepy = home.start(&["--name", "sleepy", "--", "true"]);
    let marker = out.join("sleeper");
    assert!(eventually(PATIENCE, || marker.exists()), "the sleeper ran");
    let sleeper: u32 = std::fs::read_to_string(&marker)
        .expect("pid")
        .trim()
        .parse()
        .expect("a pid");
    let next = home.start(&["--name", "next", "--", "true"]);
    home.ok(&["wait", &next.to_string()]);
    assert!(
        alive(sleeper),
        "the next job ended while the sleeping hook still ran"
    );
    let _ = hook_env(&out, next);
    assert_eq!(home.job(sleepy)["state"], "Completed");
    assert!(
        eventually(PATIENCE, || !alive(sleeper)),
        "the sleeping hook is killed at its limit"
    );
    let log = std::fs::read_to_string(home.path().join("daemon.log")).expect("log");
    assert!(log.contains("30-sleep killed after 8s"), "{log}");
    assert!(
        log.contains("this hook fails"),
        "the hook's output is logged"
    );
    assert_eq!(home.job(sleepy)["state"], "Completed");
}

#[test]
fn an_on_finish_line_runs_and_survives_a_restart() {
    let home = TestHome::new();
    let out = home.path().join("out");
    std::fs::create_dir(&out).expect("out folder");
    let line =
        r#"echo "$JOBCTL_JOB_STATE $JOBCTL_JOB_REASON" > "$JOBCTL_HOME/out/line.$JOBCTL_JOB_ID""#;
    let quick = home.start(&["--on-finish", line, "--", "true"]);
    let file = |id: u64| out.join(format!("line.{id}"));
    assert!(eventually(PATIENCE, || file(quick).exists()));
    assert_eq!(
        std::fs::read_to_string(file(quick)).expect("read").trim(),
        "Completed"
    );
    // A job the daemon's death ends: its line was kept with it.
    let long = home.start(&["--on-finish", line, "--", "sleep", "30"]);
    assert!(eventually(PATIENCE, || home.job(long)["state"] == "Running"));
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    assert!(eventually(PATIENCE, || !alive(pid)), "the daemon is gone");
    home.ok(&["list"]);
    assert!(eventually(PATIENCE, || file(long)
        .metadata()
        .is_ok_and(|m| m.len() > 0)));
    assert_eq!(
        std::fs::read_to_string(file(long)).expect("read").trim(),
        "Failed the session host ended while the job was running"
    );
}

#[test]
fn daemon_stop_runs_the_hooks_of_the_jobs_it_ends_before_it_returns() {
    let home = TestHome::new();
    let out = home.path().join("out");
    std::fs::create_dir(&out).expect("out folder");
    // Each line takes a while, so four of them run at once and the rest
    // queue: the stop must wait for all of them.
    let line = r#"sleep 0.5; echo "$JOBCTL_JOB_STATE" > "$JOBCTL_HOME/out/line.$JOBCTL_JOB_ID.tmp"
mv "$JOBCTL_HOME/out/line.$JOBCTL_JOB_ID.tmp" "$JOBCTL_HOME/out/line.$JOBCTL_JOB_ID""#;
    let ids: Vec<u64> = (0..6)
        .map(|_| home.start(&["--on-finish", line, "--", "sleep", "300"]))
        .collect();
    for &id in &ids {
        assert!(eventually(PATIENCE, || home.job(id)["state"] == "Running"));
    }
    home.ok(&["daemon", "stop"]);
    for id in ids {
        let file = out.join(format!("line.{id}"));
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
            panic!("the hook of job {id} did not run before the stop returned: {e}")
        });
        assert!(!text.trim().is_empty(), "job {id}: {text:?}");
    }
}

#[test]
fn a_follower_gets_the_last_events_and_ends_when_the_daemon_stops() {
    let home = TestHome::new();
    let mut follower = Follower::start(&home);
    let id = home.start(&["--", "sleep", "300"]);
    follower.wait_for(id, Value::from("Running"));
    home.ok(&["daemon", "stop"]);
    // The stop ended the job: that event reached the follower, which then
    // ended on its own, successfully.
    let status = exited(&mut follower.child).expect("the follower ends when the daemon stops");
    assert!(status.success(), "{status:?}");
    let ends: Vec<Value> = follower
        .seen()
        .into_iter()
        .filter(|e| {
            e["id"] == id
                && ["Completed", "Failed", "Stopped"].contains(&e["to"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(ends.len(), 1, "{:?}", follower.seen());

    // A daemon that dies leaves the follower with where to go on from.
    let mut follower = Follower::start(&home);
    let id = home.start(&["--", "sleep", "300"]);
    follower.wait_for(id, Value::from("Running"));
    let last = follower.seen().last().expect("an event")["seq"].clone();
    let pid = home.daemon_pid().expect("the daemon runs");
    kill9(pid);
    let status = exited(&mut follower.child).expect("the follower ends when the daemon dies");
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    use std::io::Read;
    follower
        .child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(err.contains(&format!("--since {last}")), "{err}");
}

#[test]
fn a_hooks_folder_others_may_write_is_refused() {
    let home = TestHome::new();
    let out = hooks_folder(&home);
    std::fs::set_permissions(
        home.path().join("hooks"),
        std::fs::Permissions::from_mode(0o770),
    )
    .expect("chmod");
    let line = r#"touch "$JOBCTL_HOME/out/line.$JOBCTL_JOB_ID""#;
    let id = home.start(&["--on-finish", line, "--", "true"]);
    // The job's own line runs; the folder's hooks do not.
    assert!(eventually(PATIENCE, || out
        .join(format!("line.{id}"))
        .exists()));
    assert!(eventually(PATIENCE, || {
        std::fs::read_to_string(home.path().join("daemon.log"))
            .is_ok_and(|l| l.contains("hooks folder refused"))
    }));
    assert!(!out.join(format!("{id}.env")).exists());
    let log = std::fs::read_to_string(home.path().join("daemon.log")).expect("log");
    assert!(log.contains("writable by its group or others"), "{log}");
}

#[test]
fn receive_writes_a_jobs_state_changes_among_its_records_in_order() {
    let home = TestHome::new();
    let id = home.start(&["-c", "echo a; sleep 0.5; echo b; exit 2"]);
    let r = home.run(&[
        "receive",
        &id.to_string(),
        "--wait",
        "--keep",
        "--write-events",
        "--json",
    ]);
    let lines = read_json_lines(&r.text());
    let shape: Vec<String> = lines
        .iter()
        .map(|l| match l.get("event") {
            Some(e) => format!("event {} -> {}", e["from"], e["to"]),
            None => format!("record {}", l["data"]),
        })
        .collect();
    assert_eq!(
        shape,
        [
            r#"event null -> "NotStarted""#,
            r#"event "NotStarted" -> "Running""#,
            r#"record "a\n""#,
            r#"record "b\n""#,
            r#"event "Running" -> "Failed""#,
        ],
        "{}",
        r.text()
    );
    assert!(lines.iter().all(|l| l["id"] == id));
    assert_eq!(lines[4]["event"]["reason"], "exited with status 2");
    // For people: stdout stays the job's output byte for byte, the
    // changes go to stderr.
    let r = home.run(&["receive", &id.to_string(), "--write-events"]);
    assert_eq!(r.text(), "a\nb\n");
    let events: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.starts_with("EVENT: "))
        .collect();
    assert_eq!(
        events,
        [
            format!("EVENT: job {id} (Job{id}) (new) -> NotStarted"),
            format!("EVENT: job {id} (Job{id}) NotStarted -> Running"),
            format!("EVENT: job {id} (Job{id}) Running -> Failed: exited with status 2"),
        ],
        "{}",
        r.stderr
    );
}

#[test]
fn a_follower_that_reads_late_misses_nothing_and_repeats_nothing() {
    const ITEMS: usize = 3000;
    let home = TestHome::new();
    let items: String = (1..=ITEMS).map(|i| format!("{i}\n")).collect();
    let list = home.path().join("items");
    std::fs::write(&list, items).expect("items");
    // Its output is not read until the batch is over: far more events than
    // the pipe, the socket and the live channel hold (9,003 here, 4,096 in
    // the channel) pile up meanwhile.
    let follower = Follower::start_unread(&home);
    let batch = home.start(&["--each", &list.display().to_string(), "--", "true"]);
    // Polled: one `wait` of a batch this size may outlast a command's limit
    // on a loaded machine.
    assert!(
        eventually(Duration::from_secs(600), || home.job(batch)["state"]
            == "Completed"),
        "the batch ends"
    );
    let stored = read_json_lines(&home.ok(&["events", "--json"]));
    assert_eq!(stored.len(), 3 * (ITEMS + 1), "3 events per job");
    let live = follower.read(stored.len());
    assert_strictly_increasing(&live);
    assert_eq!(live, stored);
    // What the live channel dropped for it came from the store.
    let log = std::fs::read_to_string(home.path().join("daemon.log")).expect("log");
    assert!(
        log.contains("an events reader fell behind"),
        "the follower never fell behind: the test did not test the catch-up"
    );
}

impl Follower {
    /// A follower whose output is read only by [`Follower::read`].
    fn start_unread(home: &TestHome) -> Follower {
        let child = home
            .cmd(&["events", "--follow", "--json"])
            .spawn()
            .expect("spawn events --follow");
        Follower {
            child,
            lines: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Reads `n` lines of its output.
    fn read(mut self, n: usize) -> Vec<Value> {
        let out = self.child.stdout.take().expect("piped stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .take(n)
                .map(|l| serde_json::from_str::<Value>(&l.expect("a line")).expect("JSON"))
                .collect::<Vec<_>>()
        });
        let pid = self.child.id();
        // Bounds a hang: the follower is killed if the lines never come.
        let watchdog = std::thread::spawn(move || {
            std::thread::sleep(PATIENCE);
            kill9(pid);
        });
        drop(watchdog);
        reader.join().expect("reader")
    }
}

#[test]
fn a_hundred_jobs_finishing_at_once_queue_their_hooks_and_none_is_lost() {
    let home = TestHome::new();
    let hooks = home.path().join("hooks");
    std::fs::create_dir(&hooks).expect("hooks folder");
    let hook = hooks.join("count");
    // Appends are atomic for a short line; the sleep keeps hooks queued.
    std::fs::write(
        &hook,
        "#!/bin/sh\nsleep 0.2\necho \"$JOBCTL_JOB_ID\" >> \"$JOBCTL_HOME/finished\"\n",
    )
    .expect("hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let items = home.path().join("items");
    std::fs::write(
        &items,
        (1..=100).map(|i| format!("{i}\n")).collect::<String>(),
    )
    .expect("items");
    let batch = home.start(&["--each", &items.display().to_string(), "--", "true"]);
    home.ok(&["wait", &batch.to_string(), "--timeout", "300"]);
    let finished = home.path().join("finished");
    let ids = || -> Vec<u64> {
        let mut v: Vec<u64> = std::fs::read_to_string(&finished)
            .unwrap_or_default()
            .lines()
            .map(|l| l.parse().expect("an id"))
            .collect();
        v.sort_unstable();
        v
    };
    // The batch's parent and its 100 children, once each.
    assert!(
        eventually(Duration::from_secs(120), || ids().len() >= 101),
        "{} hooks ran",
        ids().len()
    );
    std::thread::sleep(Duration::from_millis(500));
    let expected: Vec<u64> = (batch..=batch + 100).collect();
    assert_eq!(ids(), expected);
    // Hooks are not jobs.
    let table: Value =
        serde_json::from_str(&home.ok(&["list", "--json", "--include-children"])).expect("JSON");
    assert_eq!(table.as_array().map(Vec::len), Some(101));
}

/// A bad `--since` is a usage error before any daemon is asked; an id
/// with no events (never was, or removed long ago) is an empty history.
#[test]
fn bad_events_arguments_are_usage_errors() {
    let home = TestHome::new();
    for bad in [
        &["events", "--since", "abc"][..],
        &["events", "--since", "-1"],
    ] {
        let r = home.run(bad);
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
    }
    assert_eq!(home.ok(&["daemon", "status"]), "not running\n");
    assert_eq!(home.ok(&["events", "999"]), "");
}
