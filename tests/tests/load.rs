//! Many clients at once.

use std::collections::BTreeSet;

use jobctl_tests::{finish, jobctl_bin, TestHome, COMMAND_TIMEOUT};

#[test]
fn ten_clients_start_a_hundred_jobs_each() {
    let home = TestHome::new();
    home.ok(&["daemon", "start"]);
    // Each client is a shell loop of 100 `jobctl start` commands.
    let clients: Vec<_> = (0..10)
        .map(|c| {
            let script = format!(
                "for i in $(seq 0 99); do '{}' start -q -- echo {c}-$i >/dev/null || exit 1; done",
                jobctl_bin().display()
            );
            std::process::Command::new("/bin/sh")
                .args(["-c", &script])
                .env("JOBCTL_HOME", home.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("sh")
        })
        .collect();
    for c in clients {
        let r = finish(c, COMMAND_TIMEOUT * 3, "a client loop");
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    home.ok(&["wait"]);
    let v: serde_json::Value = serde_json::from_str(&home.ok(&["list", "--json"])).expect("json");
    let jobs = v.as_array().expect("array");
    assert_eq!(jobs.len(), 1000);
    assert!(jobs.iter().all(|j| j["state"] == "Completed"));
    let ids: Vec<String> = jobs.iter().map(|j| j["id"].to_string()).collect();
    let mut args = vec!["receive"];
    args.extend(ids.iter().map(String::as_str));
    let out = home.ok(&args);
    let got: BTreeSet<&str> = out.lines().collect();
    assert_eq!(out.lines().count(), 1000, "no line lost or doubled");
    let want: BTreeSet<String> = (0..10)
        .flat_map(|c| (0..100).map(move |i| format!("{c}-{i}")))
        .collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
}
