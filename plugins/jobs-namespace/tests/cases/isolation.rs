//! What running in fresh namespaces means for a job, through the plugin.

use std::time::{Duration, Instant};

use jobs_core::{JobState, Payload, ReceiveOptions, Session, Stream, WaitMode};
use serde_json::json;

use crate::support::{job, job_with, plugin, session};

fn run(s: &Session, spec: jobs_core::JobSpec) -> (u64, Vec<u8>) {
    let id = s.start(spec).expect("start");
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!out.timed_out, "job {id} did not finish");
    let bytes = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive")
        .iter()
        .filter(|r| r.record.stream == Stream::Output)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect();
    (id, bytes)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("utf-8 output")
}

#[test]
fn plugin_describes_itself() {
    let p = plugin();
    assert_eq!(p.name, "jobs-namespace");
    assert_eq!(p.type_name, "NamespaceJob");
    assert_eq!(p.version, env!("CARGO_PKG_VERSION"));
    let s = session();
    let id = s
        .start(job_with("true", json!({"namespaces": ["net", "uts"]})))
        .expect("start");
    assert_eq!(s.info(id).expect("info").location, "localhost[net,uts]");
}

#[test]
fn job_is_pid_1_and_sees_only_its_own_processes() {
    let s = session();
    let (id, out) = run(&s, job("echo $$; ls /proc | grep -c '^[0-9]'"));
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let out = text(out);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("1"));
    let procs: u32 = lines.next().and_then(|l| l.parse().ok()).expect("a count");
    assert!(procs <= 4, "the job sees {procs} processes");
}

#[test]
fn network_is_loopback_only() {
    let s = session();
    let (_, out) = run(
        &s,
        job("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '"),
    );
    assert_eq!(text(out), "lo\n");
    let (_, host) = run(
        &s,
        job_with(
            "tail -n +3 /proc/net/dev | wc -l",
            json!({"namespaces": []}),
        ),
    );
    let host_ifaces: u32 = text(host).trim().parse().expect("count");
    assert!(host_ifaces >= 1);
}

#[test]
fn hostname_env_and_cwd_apply() {
    let s = session();
    let dir = std::env::temp_dir();
    let (id, out) = run(
        &s,
        job_with(
            "cat /proc/sys/kernel/hostname; echo \"$GREETING\"; pwd",
            json!({
                "namespaces": ["uts"],
                "hostname": "sandbox",
                "env": {"GREETING": "hello"},
                "cwd": dir.to_str().expect("utf-8 temp dir"),
            }),
        ),
    );
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let expected = format!("sandbox\nhello\n{}\n", dir.display());
    assert_eq!(text(out), expected);
}

#[test]
fn env_as_pairs_replaces_the_environment() {
    let s = session();
    let (id, out) = run(
        &s,
        job_with(
            "echo \"${ONLY}-${HOME:-unset}\"",
            json!({"env": [["ONLY", "1"]], "cwd": null, "work": {"shell": "ignored"}}),
        ),
    );
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    assert_eq!(text(out), "1-unset\n");
}

#[test]
fn output_is_byte_exact_and_streams_stay_apart() {
    let s = session();
    let id = s
        .start(job("printf 'a\\000b\\377'; printf 'warn\\n' >&2"))
        .expect("start");
    s.wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let out: Vec<u8> = recs
        .iter()
        .filter(|r| r.record.stream == Stream::Output)
        .flat_map(|r| match &r.record.payload {
            Payload::Bytes(b) => b.clone(),
            other => panic!("expected bytes, got {other:?}"),
        })
        .collect();
    assert_eq!(out, b"a\0b\xff");
    let err: Vec<u8> = recs
        .iter()
        .filter(|r| r.record.stream == Stream::Error)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect();
    assert_eq!(err, b"warn\n");
}

#[test]
fn failure_names_status_and_last_error_line() {
    let s = session();
    let (id, _) = run(&s, job("echo first >&2; echo 'disk full' >&2; exit 4"));
    let info = s.info(id).expect("info");
    assert_eq!(info.state, JobState::Failed);
    assert_eq!(
        info.reason.as_deref(),
        Some("exited with status 4: disk full")
    );
    assert_eq!(info.exit_code, Some(4));
    let (bad, _) = run(&s, job_with("true", json!({"namespaces": ["time"]})));
    let reason = s.info(bad).expect("info").reason.unwrap_or_default();
    assert!(reason.contains("unknown namespace 'time'"), "{reason}");
}

/// Host pids of processes whose command line (arguments joined by spaces)
/// contains `marker`, zombies excluded.
fn pids_with(marker: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let mut cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        for b in cmd.iter_mut().filter(|b| **b == 0) {
            *b = b' ';
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(marker) {
            out.push(pid);
        }
    }
    out
}

#[test]
fn stop_ends_every_process_of_the_job() {
    let s = session();
    let marker = format!("{}", 4_000_000 + std::process::id() % 1_000_000);
    // Background children and a double fork: none may survive the stop.
    let line = format!("sleep {marker} & (sleep {marker} &) ; sleep {marker}");
    let id = s.start(job(&line)).expect("start");
    let deadline = Instant::now() + Duration::from_secs(30);
    // Three sleeps, their shell and unshare.
    while pids_with(&format!("sleep {marker}")).len() < 5 {
        assert!(
            Instant::now() < deadline,
            "the job's processes never appeared: {:?}",
            s.info(id).expect("info")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = pids_with(&format!("sleep {marker}"));
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "processes {left:?} outlived the stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
