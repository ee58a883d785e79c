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

/// `--input -` feeds the caller's standard input to the job, byte for
/// byte; without it the job's stdin is empty (`/dev/null`).
#[test]
fn input_reaches_the_jobs_stdin_byte_for_byte() {
    use std::io::Write;
    let home = TestHome::new();
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let mut child = home
        .cmd(&["run", "--input", "-", "--", "cat"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn jobctl");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&data).expect("write");
    drop(stdin);
    let run = jobctl_tests::finish(child, jobctl_tests::COMMAND_TIMEOUT, "run --input -");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout == data, "{} bytes back", run.stdout.len());

    let file = home.path().join("in");
    std::fs::write(&file, b"from a file\n").expect("write");
    let out = home.ok(&["run", "--input", file.to_str().expect("utf-8"), "--", "cat"]);
    assert_eq!(out, "from a file\n");
    assert_eq!(home.ok(&["run", "--", "cat"]), "");
    for (args, says) in [
        (
            vec!["start", "--input", "/no/such/file", "--", "cat"],
            "cannot read",
        ),
        (
            vec!["start", "--input", file.to_str().expect("utf-8"), "-e", "1"],
            "script",
        ),
        (
            vec![
                "start",
                "--input",
                file.to_str().expect("utf-8"),
                "--type",
                "thread",
                "-e",
                "1",
            ],
            "process and remote jobs only",
        ),
    ] {
        let run = home.run(&args);
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
}
