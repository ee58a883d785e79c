//! Around the job, byte for byte: a working directory, variables and
//! arguments that are not UTF-8 reach the job as they are.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use jobctl_tests::{finish, TestHome, COMMAND_TIMEOUT};

/// Starts a job with `args` (any bytes), waits for it, returns its output.
fn run_bytes(home: &TestHome, args: &[&OsStr], env: Option<(&OsStr, &OsStr)>) -> Vec<u8> {
    let mut c = home.cmd(&["start", "-q"]);
    c.args(args);
    if let Some((k, v)) = env {
        c.env(k, v);
    }
    let r = finish(c.spawn().expect("spawn"), COMMAND_TIMEOUT, "jobctl start");
    assert_eq!(r.code, 0, "start failed: {}", r.stderr);
    let id = r.text().trim().to_string();
    home.ok(&["wait", &id]);
    let v = home.job(id.parse().expect("id"));
    assert_eq!(v["state"], "Completed", "{v}");
    home.run(&["receive", &id]).stdout
}

#[test]
fn a_non_utf8_directory_variable_and_argument_reach_the_job_unchanged() {
    let home = TestHome::new();
    let scratch = tempfile::tempdir().expect("temp dir");
    let dir = scratch.path().join(OsStr::from_bytes(b"caf\xe9 \xff"));
    std::fs::create_dir(&dir).expect("a directory whose name is not UTF-8");

    // The working directory.
    let out = run_bytes(
        &home,
        &[
            OsStr::new("--cwd"),
            dir.as_os_str(),
            OsStr::new("--"),
            OsStr::new("pwd"),
        ],
        None,
    );
    let mut want = dir.as_os_str().as_bytes().to_vec();
    want.push(b'\n');
    assert_eq!(out, want);

    // A variable of the caller's environment, and one set with --env.
    let out = run_bytes(
        &home,
        &[
            OsStr::new("-c"),
            OsStr::new("printf '%s|%s' \"$JOBCTL_T1\" \"$JOBCTL_T2\""),
        ],
        Some((OsStr::new("JOBCTL_T1"), OsStr::from_bytes(b"a\xfeb"))),
    );
    assert_eq!(out, b"a\xfeb|");
    let out = run_bytes(
        &home,
        &[
            OsStr::new("--env"),
            OsStr::from_bytes(b"JOBCTL_T2=\xfd\xfc"),
            OsStr::new("-c"),
            OsStr::new("printf '%s' \"$JOBCTL_T2\""),
        ],
        None,
    );
    assert_eq!(out, b"\xfd\xfc");

    // An argument, and a shell line.
    let out = run_bytes(
        &home,
        &[
            OsStr::new("--"),
            OsStr::new("printf"),
            OsStr::new("%s"),
            OsStr::from_bytes(b"\x80\x81 x"),
        ],
        None,
    );
    assert_eq!(out, b"\x80\x81 x");
    let out = run_bytes(
        &home,
        &[OsStr::new("-c"), OsStr::from_bytes(b"printf '\xf0\xf1'")],
        None,
    );
    assert_eq!(out, b"\xf0\xf1");
}
