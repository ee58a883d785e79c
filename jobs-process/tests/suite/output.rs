//! stdout and stderr: byte-exact, large, many lines, kept apart; 500 jobs at once.

use jobs_core::{JobState, Payload, Stream};
use jobs_process::ProcessSpec;

use super::support::{bytes, random_bytes, run, session, text, write_file};

#[test]
fn binary_output_round_trips_byte_exact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut data = random_bytes(3 << 20, 0x5eed);
    data[1000] = 0;
    data[2_000_000] = 0;
    data.extend_from_slice(b"\0\xff\xfe no final newline");
    let file = write_file(dir.path(), "data.bin", &data);
    let s = session();
    let (info, recs) = run(
        &s,
        ProcessSpec::program(["cat".into(), file.display().to_string()]),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(info.exit_code, Some(0));
    for r in &recs {
        assert!(
            matches!(r.record.payload, Payload::Bytes(_)),
            "not bytes: {:?}",
            r.record.stream
        );
    }
    let got = bytes(&recs, Stream::Output);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "output differs from the input");
}

#[test]
fn outputs_around_page_and_pipe_sizes_come_back_whole() {
    // Sizes on either side of a page and of a pipe's buffer, on stdout and
    // stderr alike.
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session();
    for len in [1, 4095, 4096, 4097, 8192, 70_000] {
        let data = random_bytes(len, len as u64);
        let file = write_file(dir.path(), &format!("d{len}.bin"), &data);
        let line = format!("cat '{0}'; cat '{0}' >&2", file.display());
        let (info, recs) = run(&s, ProcessSpec::shell(line));
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        assert!(
            bytes(&recs, Stream::Output) == data,
            "stdout of {len} bytes"
        );
        assert!(bytes(&recs, Stream::Error) == data, "stderr of {len} bytes");
    }
}

#[test]
fn a_20_mb_line_comes_back_whole() {
    let s = session();
    let (info, recs) = run(
        &s,
        ProcessSpec::shell("head -c 20971520 /dev/zero | tr '\\0' 'a'"),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let got = bytes(&recs, Stream::Output);
    assert_eq!(got.len(), 20 << 20);
    assert!(got.iter().all(|&b| b == b'a'));
}

#[test]
fn two_hundred_thousand_lines_in_order() {
    let s = session();
    let (info, recs) = run(&s, ProcessSpec::program(["seq", "1", "200000"]));
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    let want: String = (1..=200_000).map(|i| format!("{i}\n")).collect();
    assert!(text(&recs, Stream::Output) == want, "lines differ");
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn stdout_and_stderr_stay_apart() {
    let s = session();
    let (info, recs) = run(
        &s,
        ProcessSpec::shell("for i in 1 2 3; do echo out$i; echo err$i >&2; done"),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
    assert_eq!(text(&recs, Stream::Output), "out1\nout2\nout3\n");
    assert_eq!(text(&recs, Stream::Error), "err1\nerr2\nerr3\n");
}

#[test]
fn environment_and_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = session();
    let spec = ProcessSpec::program(["/usr/bin/env"])
        .env_clear(true)
        .env("A", "1")
        .env("B", "two words")
        .env("A", "3");
    let (_, recs) = run(&s, spec);
    let mut lines: Vec<String> = text(&recs, Stream::Output)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[..2], ["A=3", "B=two words"]);
    let fd = lines[2]
        .strip_prefix("JOBCTL_RECORDS_FD=")
        .expect("records fd");
    assert!(fd.parse::<u32>().expect("a number") > 2);

    std::env::set_var("JOBS_PROCESS_TEST_INHERITED", "yes");
    let spec = ProcessSpec::shell("pwd; echo $JOBS_PROCESS_TEST_INHERITED").cwd(dir.path());
    let (_, recs) = run(&s, spec);
    let want = format!(
        "{}\nyes\n",
        dir.path().canonicalize().expect("canon").display()
    );
    assert_eq!(text(&recs, Stream::Output), want);
}

#[test]
fn five_hundred_concurrent_jobs_lose_nothing() {
    let s = session();
    let ids: Vec<_> = (0..500)
        .map(|i| {
            let spec = ProcessSpec::program([
                "printf".to_string(),
                format!("job %s\\n{i}"),
                format!("{i}"),
            ]);
            s.start(spec.into_job_spec()).expect("start")
        })
        .collect();
    let out = s
        .wait_blocking(
            &ids,
            jobs_core::WaitMode::All,
            Some(std::time::Duration::from_secs(120)),
        )
        .expect("wait");
    assert!(!out.timed_out);
    for (i, id) in ids.iter().enumerate() {
        let info = s.info(*id).expect("info");
        assert_eq!(
            info.state,
            JobState::Completed,
            "job {i}: {:?}",
            info.reason
        );
        let recs = s.receive(&[*id], Default::default()).expect("receive");
        assert_eq!(text(&recs, Stream::Output), format!("job {i}\n{i}"));
    }
}

#[test]
fn stdin_text_reaches_the_process_whole() {
    let s = session();
    // Around a pipe's buffer, and far beyond what an argument may hold.
    for len in [0, 1, 65_536, 70_000, 3 << 20] {
        let data: String = random_bytes(len, len as u64)
            .iter()
            .map(|b| char::from(b'a' + b % 26))
            .collect();
        let (info, recs) = run(&s, ProcessSpec::program(["cat"]).stdin(data.clone()));
        assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
        assert!(text(&recs, Stream::Output) == data, "stdin of {len} bytes");
    }
}

#[test]
fn a_process_that_leaves_its_stdin_unread_completes() {
    let s = session();
    let (info, _) = run(
        &s,
        ProcessSpec::program(["true"]).stdin("x".repeat(3 << 20)),
    );
    assert_eq!(info.state, JobState::Completed, "{:?}", info.reason);
}

#[test]
fn stdin_text_travels_in_the_params() {
    let spec = ProcessSpec::program(["cat"]).stdin("hello");
    let back = ProcessSpec::from_params(&spec.to_params()).expect("params");
    assert_eq!(back.stdin.as_deref(), Some(std::ffi::OsStr::new("hello")));
    let plain = ProcessSpec::program(["cat"]).to_params();
    assert!(plain.get("stdin").is_none(), "{plain}");
}
