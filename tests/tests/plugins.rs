//! Executor plugins loaded by the daemon: a real cdylib.

use std::path::PathBuf;
use std::process::Command;

use jobctl_tests::{finish, jobctl_bin, TestHome, COMMAND_TIMEOUT};

/// Builds the fixture plugins (examples of `jobs-plugin-fixture`) next to
/// the jobctl binary and returns their folder.
pub(crate) fn fixture_plugins() -> PathBuf {
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

/// Builds the C executor (plugins/c-example, plain C against
/// plugins/include/jobctl_plugin.h) with `cc` into `dir`.
pub(crate) fn build_c_plugin(dir: &std::path::Path) -> PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let lib = dir.join("libc_example.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let st = Command::new(cc)
        .args(["-std=c11", "-O2", "-fPIC", "-shared", "-pthread", "-I"])
        .arg(root.join("plugins/include"))
        .arg("-o")
        .arg(&lib)
        .arg(root.join("plugins/c-example/c_example.c"))
        .status()
        .expect("cc");
    assert!(st.success(), "building the C plugin failed");
    lib
}

#[test]
fn a_plugin_written_in_c_runs_jobs_from_the_home_plugins_folder() {
    use std::os::unix::fs::PermissionsExt;
    let home = TestHome::new();
    let plugins = home.path().join("plugins");
    std::fs::create_dir(&plugins).expect("plugins folder");
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    build_c_plugin(&plugins);
    let out = home.ok(&["plugins"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("CShellJob"))
        .unwrap_or_else(|| panic!("no CShellJob in {out}"));
    assert!(
        line.contains("libc_example.so") && line.contains("version 0.1.0"),
        "{out}"
    );

    let ok = home.start(&["--type", "CShellJob", "-c", "echo hello; echo note >&2"]);
    home.ok(&["wait", &ok.to_string(), "--timeout", "30"]);
    assert_eq!(home.job(ok)["state"], "Completed", "{}", home.job(ok));
    let r = home.run(&["receive", &ok.to_string()]);
    assert_eq!(r.text(), "hello\n", "stderr: {}", r.stderr);
    assert!(r.stderr.contains("note"), "{}", r.stderr);

    let bad = home.start(&["--type", "CShellJob", "-c", "echo broken >&2; exit 5"]);
    home.run(&["wait", &bad.to_string(), "--timeout", "30"]);
    let v = home.job(bad);
    assert_eq!(v["state"], "Failed", "{v}");
    assert_eq!(v["reason"], "exited with status 5: broken", "{v}");
    assert_eq!(v["exit_code"], 5, "{v}");

    let long = home.start(&["--type", "CShellJob", "-c", "sleep 60"]);
    home.ok(&["stop", &long.to_string()]);
    home.run(&["wait", &long.to_string(), "--timeout", "30"]);
    assert_eq!(home.job(long)["state"], "Stopped", "{}", home.job(long));
}
