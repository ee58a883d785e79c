//! `start --each ITEMS --host PATTERN [--slots N]`: the items spread over
//! the hosts (GNU parallel's `-S`), against a private sshd listening on
//! several loopback addresses; the remote side counts what ran where.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use jobctl_tests::eventually;

use crate::remote::Fleet;

/// Every job of the session by id (`list --json --include-children`).
fn rows(f: &Fleet) -> HashMap<u64, serde_json::Value> {
    let out = f.ok(&["list", "--json", "--include-children"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("list --json is JSON");
    v.as_array()
        .expect("an array")
        .iter()
        .map(|j| (j["id"].as_u64().expect("id"), j.clone()))
        .collect()
}

/// The lines of a file (none if it does not exist).
fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// How many item markers name `addr`.
fn ran_on(marks: &Path, addr: &str) -> usize {
    std::fs::read_dir(marks)
        .expect("marks")
        .filter_map(Result::ok)
        .map(|e| lines(&e.path()).iter().filter(|l| *l == addr).count())
        .sum()
}

#[test]
fn items_spread_over_hosts_run_once_within_slots_and_leave_a_host_cut_off() {
    // h01-h04 answer; h05 never does.
    let f = Fleet::new(5);
    let dir = tempfile::tempdir().expect("dir");
    let (marks, locks) = (dir.path().join("marks"), dir.path().join("locks"));
    std::fs::create_dir(&marks).expect("mkdir");
    std::fs::create_dir(&locks).expect("mkdir");
    let over = dir.path().join("over");
    let slots = dir.path().join("slots");
    let items: String = (1..=100).map(|i| format!("i{i:03}\n")).collect();
    let items_file = dir.path().join("items");
    std::fs::write(&items_file, items).expect("items");
    // Each item marks itself with its host's address, then holds one of
    // that host's two lock folders while it runs: an item that finds both
    // taken is a third at once on that host.
    let line = format!(
        "a=$(echo $SSH_CONNECTION | cut -d' ' -f3); echo $a >> {marks}/{{}}; s=; \
         for n in 1 2; do mkdir {locks}/$a.$n 2>/dev/null && {{ s=$n; break; }}; done; \
         [ -n \"$s\" ] || echo \"$a {{}}\" >> {over}; echo \"$a $s\" >> {slots}; \
         sleep 1; [ -z \"$s\" ] || rmdir {locks}/$a.$s; \
         case {{}} in i050) exit 3;; esac",
        marks = marks.display(),
        locks = locks.display(),
        over = over.display(),
        slots = slots.display(),
    );
    let id = f.start(&[
        "--each",
        &items_file.to_string_lossy(),
        "--host",
        "h[01-05]",
        "--slots",
        "2",
        "-c",
        &line,
    ]);

    // Once some items ran, h02 is cut off: from its next connection on,
    // nothing answers there (a kept connection is for the old address and
    // port, so it is not reused).
    let marked = || std::fs::read_dir(&marks).map_or(0, Iterator::count);
    assert!(
        eventually(Duration::from_secs(60), || marked() >= 25),
        "25 items ran: {}",
        f.home.log_tail(20)
    );
    f.cut(&[2]);
    let on_h02_at_cut = ran_on(&marks, "127.0.0.2");
    assert!(on_h02_at_cut >= 1, "h02 ran items before the cut");

    // A slow machine may take longer than one command's time limit: wait
    // in steps (a hang still ends the test).
    let done = (0..6).any(|_| {
        let r = f.run(&["wait", &id.to_string(), "--timeout", "50"]);
        assert!(r.code == 0 || r.code == 124, "{}", r.stderr);
        r.code == 0
    });
    assert!(done, "the batch ended within 5 minutes");
    let all = rows(&f);
    let parent = &all[&id];
    assert_eq!(parent["type"], "BatchJob");
    assert_eq!(parent["state"], "Failed", "{parent}");
    assert_eq!(
        parent["reason"],
        "1 of 100 items failed; first: item 50 (i050): exited with status 3"
    );

    // Every item ran exactly once, on the host its job names.
    let children = parent["children"].as_array().expect("children");
    assert_eq!(children.len(), 100);
    let (mut moved, mut moves) = (0, 0);
    for (i, c) in children.iter().enumerate() {
        let child = &all[&c.as_u64().expect("id")];
        let item = format!("i{:03}", i + 1);
        assert_eq!(child["item"], item.as_str());
        let ran = lines(&marks.join(&item));
        assert_eq!(ran.len(), 1, "item {item} ran once: {ran:?}");
        let location = child["location"].as_str().expect("location");
        let n = location.strip_prefix("h0").expect("one host");
        assert_eq!(ran[0], format!("127.0.0.{n}"), "{child}");
        assert_ne!(location, "h05", "the unreachable host got no item");
        let attempts = child["attempts"].as_u64().expect("attempts");
        assert!(attempts >= 1, "{child}");
        if attempts > 1 {
            moved += 1;
            moves += attempts - 1;
        }
        if item == "i050" {
            // Its command failed: that is the item's outcome, not moved.
            assert_eq!(child["state"], "Failed");
            assert_eq!(child["reason"], "exited with status 3");
            assert_eq!(child["exit_code"], 3);
        } else {
            assert_eq!(child["state"], "Completed", "{child}");
        }
    }
    assert!(moved >= 1, "some items went to another host");

    // No host ran more than two at once, and two at once did happen.
    assert_eq!(lines(&over), Vec::<String>::new());
    let slot_lines = lines(&slots);
    assert_eq!(slot_lines.len(), 100);
    assert!(
        slot_lines.iter().any(|l| l.ends_with(" 2")),
        "{slot_lines:?}"
    );
    for n in 1..=4 {
        assert!(
            ran_on(&marks, &format!("127.0.0.{n}")) >= 1,
            "h0{n} took items"
        );
    }
    // h02 took none after the cut, beyond the (at most two) it had begun.
    let on_h02 = ran_on(&marks, "127.0.0.2");
    assert!(
        on_h02 <= on_h02_at_cut + 2,
        "h02 ran {on_h02} items, {on_h02_at_cut} before the cut"
    );
    assert_eq!(ran_on(&marks, "127.0.0.5"), 0);

    // The items that moved say why, naming the host and its error.
    let records = f.ok(&["receive", &id.to_string(), "--json", "--keep"]);
    let infos: Vec<String> = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a JSON line"))
        .filter(|r| r["stream"] == "information")
        .map(|r| r["data"].to_string())
        .collect();
    for host in ["h02", "h05"] {
        assert!(
            infos
                .iter()
                .any(|i| i.contains(&format!("host {host}: connection refused"))
                    && i.contains(&format!("{host} takes no more items"))),
            "{host} in {infos:?}"
        );
    }
    assert_eq!(infos.len() as u64, moves, "{infos:?}");
}

/// Follows batch `id` to its end and returns the most of its children
/// seen Running at once once `done_first` of them were Completed; checks
/// that it ends Completed with all `items` Completed.
fn most_running_after(f: &Fleet, id: u64, done_first: usize, items: usize) -> usize {
    let began = std::time::Instant::now();
    let (mut samples, mut most) = (0, 0);
    loop {
        let all = rows(f);
        let parent = &all[&id];
        let children: Vec<&serde_json::Value> = parent["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| &all[&c.as_u64().expect("id")])
            .collect();
        let count = |state: &str| children.iter().filter(|c| c["state"] == state).count();
        if count("Completed") >= done_first && parent["state"] == "Running" {
            samples += 1;
            most = most.max(count("Running"));
        }
        if parent["state"] != "Running" && parent["state"] != "NotStarted" {
            assert_eq!(parent["state"], "Completed", "{parent}");
            assert_eq!(count("Completed"), items);
            break;
        }
        assert!(
            began.elapsed() < Duration::from_secs(120),
            "the batch ended within 2 minutes: {parent}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        samples >= 3,
        "{samples} samples after {done_first} items were done"
    );
    most
}

/// A host that cannot be reached takes its slots out of the batch's
/// throttle (hosts × slots): the items past what the live hosts take stay
/// queued, NotStarted, rather than Running while they wait for a slot; so
/// too when the batch's failed items run again in place.
#[test]
fn a_retired_host_takes_its_slots_out_of_the_batch_throttle() {
    // h01 answers; h02 never does. Throttle: 2 hosts × 1 slot.
    let f = Fleet::new(2);
    let dir = tempfile::tempdir().expect("dir");
    let items = dir.path().join("items");
    std::fs::write(&items, "1\n2\n3\n4\n5\n").expect("items");
    let id = f.start(&[
        "--each",
        &items.to_string_lossy(),
        "--host",
        "h[01-02]",
        "-c",
        "sleep 0.5",
    ]);
    // Once two items are done, h02 was retired long before (its one item
    // moved to h01): from then on one item at a time is Running. Without
    // the lower throttle, the next item would be Running while it waits
    // for h01's slot, two at once.
    assert_eq!(most_running_after(&f, id, 2, 5), 1, "after h02 was retired");

    // Each item fails its first run; `restart --failed` gives the batch its
    // throttle back whole, and its items learn again that h02 is gone.
    let marks = dir.path().join("marks");
    std::fs::create_dir(&marks).expect("mkdir");
    let line = format!(
        "if [ -e {m}/{{}} ]; then sleep 0.5; else touch {m}/{{}}; exit 1; fi",
        m = marks.display()
    );
    let id = f.start(&[
        "--each",
        &items.to_string_lossy(),
        "--host",
        "h[01-02]",
        "-c",
        &line,
    ]);
    let _ = f.run(&["wait", &id.to_string()]);
    assert_eq!(rows(&f)[&id]["state"], "Failed");
    f.ok(&["restart", &id.to_string(), "--failed"]);
    assert_eq!(most_running_after(&f, id, 2, 5), 1, "after the restart");
}

#[test]
fn an_item_with_no_reachable_host_fails_naming_each_host() {
    let f = Fleet::new(3);
    f.cut(&[1, 2]);
    let dir = tempfile::tempdir().expect("dir");
    let items = dir.path().join("items");
    std::fs::write(&items, "a\nb\n").expect("items");
    let r = f.run(&[
        "run",
        "--each",
        &items.to_string_lossy(),
        "--host",
        "h[01-03]",
        "-c",
        "echo {}",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.text(), "");
    // Unreachable, as a host's child that could not connect.
    assert!(
        r.stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("0 ok, 2 unreachable")),
        "{}",
        r.stderr
    );
    let id = f.start(&[
        "--each",
        &items.to_string_lossy(),
        "--host",
        "h[01-03]",
        "-c",
        "echo {}",
    ]);
    let _ = f.run(&["wait", &id.to_string()]);
    let all = rows(&f);
    for c in all[&id]["children"].as_array().expect("children") {
        let child = &all[&c.as_u64().expect("id")];
        assert_eq!(child["state"], "Failed");
        assert_eq!(child["exit_code"], 255);
        let reason = child["reason"].as_str().expect("reason");
        assert!(
            reason.starts_with("no host can take the item: "),
            "{reason}"
        );
        for n in 1..=3 {
            assert!(
                reason.contains(&format!("host h0{n}: connection refused (127.0.0.{n}:1)")),
                "{reason}"
            );
        }
    }
}

#[test]
fn each_with_hosts_spreads_by_default_onall_runs_everywhere_and_bad_slots_are_refused() {
    let f = Fleet::new(3);
    let dir = tempfile::tempdir().expect("dir");
    let items = dir.path().join("items");
    std::fs::write(&items, "a\nb\nc\n").expect("items");
    let items = items.to_string_lossy().into_owned();
    let line = "echo {} $(echo $SSH_CONNECTION | cut -d' ' -f3)";

    // Without --slots: one item at a time per host, each item once.
    let r = f.run(&["run", "--each", &items, "--host", "h[01-02]", "-c", line]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut got: Vec<String> = r.text().lines().map(|l| l[..1].to_string()).collect();
    got.sort();
    assert_eq!(got, ["a", "b", "c"]);

    // --onall: every item on every host.
    let r = f.run(&[
        "run", "--each", &items, "--host", "h[01-02]", "--onall", "-c", line,
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut got: Vec<String> = r.text().lines().map(str::to_string).collect();
    got.sort();
    assert_eq!(
        got,
        [
            "a 127.0.0.1",
            "a 127.0.0.2",
            "b 127.0.0.1",
            "b 127.0.0.2",
            "c 127.0.0.1",
            "c 127.0.0.2"
        ]
    );

    for args in [
        vec![
            "start", "--each", &items, "--host", "h01", "--slots", "0", "-c", "true",
        ],
        vec!["start", "--each", &items, "--slots", "2", "-c", "true"],
        vec!["start", "--host", "h01", "--slots", "2", "-c", "true"],
        vec![
            "start", "--each", &items, "--host", "h01", "--slots", "x", "-c", "true",
        ],
        vec![
            "start", "--each", &items, "--host", "h01", "--slots", "2", "--onall", "-c", "true",
        ],
        vec!["start", "--each", &items, "--onall", "-c", "true"],
    ] {
        let r = f.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(
            r.stderr.contains("--slots")
                || r.stderr.contains("--onall")
                || r.stderr.contains("--each"),
            "{}",
            r.stderr
        );
    }
}
