//! Executor plugins loaded by the daemon: a real cdylib.

use std::path::PathBuf;
use std::process::Command;

use jobctl_tests::{finish, jobctl_bin, TestHome, COMMAND_TIMEOUT};

/// Builds the fixture plugins (examples of `jobs-plugin-fixture`) next to
/// the jobctl binary and returns their folder.
fn fixture_plugins() -> PathBuf {
    let profile_dir = jobctl_bin().parent().expect("profile dir").to_path_buf();
    let target = profile_dir.parent().expect("target dir");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let st = Command::new(cargo)
        .args(["build", "-q", "-p", "jobs-plugin-fixture", "--examples"])
        .env("CARGO_TARGET_DIR", target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo");
    assert!(st.success(), "building the fixture plugins failed");
    profile_dir.join("examples")
}

#[test]
fn plugins_load_list_and_run_jobs() {
    let examples = fixture_plugins();
    let good = examples.join("libfixture_plugin.so");
    let bad = examples.join("libwrong_magic.so");
    let home = TestHome::new();
    let r = finish(
        home.cmd(&["daemon", "start", "--plugin"])
            .arg(&good)
            .arg("--plugin")
            .arg(&bad)
            .spawn()
            .expect("spawn"),
        COMMAND_TIMEOUT,
        "daemon start",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = home.ok(&["plugins"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("FixtureJob"))
        .unwrap_or_else(|| panic!("no FixtureJob in {out}"));
    assert!(
        line.contains("libfixture_plugin.so") && line.contains("version"),
        "{out}"
    );
    assert!(
        out.contains("not loaded") && out.contains("libwrong_magic.so"),
        "{out}"
    );
    let id = home.start(&["--type", "FixtureJob", "-c", "anything"]);
    home.ok(&["wait", &id.to_string(), "--timeout", "30"]);
    let v = home.job(id);
    assert_eq!(v["type"], "FixtureJob");
    let state = v["state"].as_str().expect("state");
    assert!(state == "Completed" || state == "Failed", "{v}");
}
