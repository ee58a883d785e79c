//! The session's durable store seen from outside: what a damaged database
//! costs (only what it damaged).

use jobctl_tests::TestHome;

#[test]
fn an_unreadable_job_row_fails_that_job_alone_and_the_daemon_starts() {
    let home = TestHome::new();
    let ids: Vec<u64> = (0..3).map(|_| home.start(&["--", "echo", "hi"])).collect();
    let all: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut wait = vec!["wait"];
    wait.extend(all.iter().map(String::as_str));
    home.ok(&wait);
    home.ok(&["daemon", "stop"]);

    let db = rusqlite::Connection::open(home.path().join("jobs.db")).expect("open the database");
    let changed = db
        .execute(
            "UPDATE jobs SET info = '{\"id\": ' WHERE id = ?1",
            [ids[1] as i64],
        )
        .expect("damage one row");
    assert_eq!(changed, 1);
    drop(db);

    let list = home.ok(&["list", "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&list).expect("JSON rows");
    assert_eq!(rows.len(), 3, "{list}");
    for (row, id) in rows.iter().zip(&ids) {
        assert_eq!(row["id"], *id);
        if *id == ids[1] {
            assert_eq!(row["state"], "Failed", "{row}");
            assert_eq!(row["reason"], "unreadable in the store", "{row}");
        } else {
            assert_eq!(row["state"], "Completed", "{row}");
        }
    }
    // The readable jobs keep their output.
    assert_eq!(home.ok(&["receive", &ids[2].to_string()]), "hi\n");
    let log = std::fs::read_to_string(home.path().join("daemon.log")).expect("log");
    assert!(
        log.contains(&format!("job {} is unreadable in the store", ids[1])),
        "{log}"
    );
}

/// Each cause of a failure is said once, in the `jobctl: ...` line the user
/// sees, from the outermost to the innermost.
#[test]
fn a_store_that_cannot_open_is_explained_once_in_the_jobctl_line() {
    let home = TestHome::new();
    let db = home.path().join("jobs.db");
    std::fs::write(&db, vec![0x5a; 8192]).expect("write a file that is not a database");

    let run = home.run(&["list"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("jobctl: "))
        .unwrap_or_else(|| panic!("no jobctl: line in {}", run.stderr));
    // What failed (the daemon), why (its store), where (the file), and the
    // database's own word for it, each once.
    for part in [
        "the session daemon",
        "cannot open the store",
        &db.display().to_string(),
        "not a database",
    ] {
        assert_eq!(line.matches(part).count(), 1, "{part:?} in {line:?}");
    }
    assert!(line.contains("daemon.log"), "{line}");
}
