//! Host keys against known_hosts: unknown and changed keys are refused with
//! a reason, accept-new records the key, hashed entries match.

use std::fs;

use jobs_core::{JobState, ReceiveOptions, Stream};
use jobs_remote::RemoteSpec;

use crate::sshd::{bytes_of, children, keygen, wait, Sshd};

fn run_one(sshd: &Sshd, options: jobs_remote::SshOptions) -> jobs_core::JobInfo {
    let s = sshd.session_with(options);
    let id = s
        .start(RemoteSpec::new([sshd.host("127.0.0.1")], "echo in").into_job_spec())
        .expect("start");
    wait(&s, &[id], 60);
    let kid = children(&s, id).remove(0);
    if kid.state == JobState::Completed {
        let recs = s
            .receive(&[id], ReceiveOptions::default())
            .expect("receive");
        assert_eq!(bytes_of(&recs, kid.id, Stream::Output), b"in\n");
    }
    kid
}

#[test]
fn hashed_known_hosts_entry_matches() {
    let sshd = Sshd::start();
    let kh = fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    assert!(kh.starts_with("|1|"), "the fixture's entry is hashed: {kh}");
    let kid = run_one(&sshd, sshd.options());
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
}

#[test]
fn unknown_host_key_is_refused() {
    let sshd = Sshd::start();
    fs::write(sshd.known_hosts(), "").expect("empty known_hosts");
    let kid = run_one(&sshd, sshd.options());
    assert_eq!(kid.state, JobState::Failed);
    let reason = kid.reason.unwrap_or_default();
    let host = sshd.host("127.0.0.1");
    assert!(
        reason.starts_with(&format!("host {host}: unknown host key")),
        "{reason}"
    );
    assert!(reason.contains("SHA256:"), "{reason}");
    assert_eq!(fs::read_to_string(sshd.known_hosts()).expect("kh"), "");
}

#[test]
fn changed_host_key_is_refused() {
    let sshd = Sshd::start();
    let impostor = sshd.dir.path().join("impostor");
    keygen(&impostor);
    let key = fs::read_to_string(impostor.with_extension("pub")).expect("pub");
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    fs::write(
        sshd.known_hosts(),
        format!("[127.0.0.1]:{} {}\n", sshd.port, key.join(" ")),
    )
    .expect("known_hosts");
    // Not even accept-new lets a changed key through.
    let kid = run_one(&sshd, sshd.options().accept_new_host_keys(true));
    assert_eq!(kid.state, JobState::Failed);
    let reason = kid.reason.unwrap_or_default();
    let host = sshd.host("127.0.0.1");
    assert!(
        reason.starts_with(&format!("host {host}: host key changed")),
        "{reason}"
    );
}

#[test]
fn accept_new_records_the_key() {
    let sshd = Sshd::start();
    let kh = sshd.home.join(".ssh").join("known_hosts");
    fs::remove_file(&kh).expect("remove known_hosts");
    let kid = run_one(&sshd, sshd.options().accept_new_host_keys(true));
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
    let recorded = fs::read_to_string(&kh).expect("recorded");
    assert_eq!(
        recorded,
        format!("[127.0.0.1]:{} {}\n", sshd.port, sshd.host_key())
    );
    // Now known: a strict run succeeds too.
    let kid = run_one(&sshd, sshd.options());
    assert_eq!(kid.state, JobState::Completed, "{:?}", kid.reason);
}

/// The reason of a job whose known_hosts marks the server's key revoked.
fn revoked_reason(sshd: &Sshd, options: jobs_remote::SshOptions) -> String {
    let kid = run_one(sshd, options);
    assert_eq!(kid.state, JobState::Failed);
    kid.reason.unwrap_or_default()
}

#[test]
fn revoked_host_key_is_refused_even_when_also_trusted() {
    let sshd = Sshd::start();
    // The trusted (hashed) entry stays; the revocation comes after it.
    let mut kh = fs::read_to_string(sshd.known_hosts()).expect("known_hosts");
    let before = kh.lines().count();
    kh.push_str(&format!("@revoked * {}\n", sshd.host_key()));
    fs::write(sshd.known_hosts(), &kh).expect("known_hosts");
    let reason = revoked_reason(&sshd, sshd.options());
    let host = sshd.host("127.0.0.1");
    assert!(
        reason.starts_with(&format!("host {host}: host key revoked")),
        "{reason}"
    );
    let kh_path = sshd.known_hosts();
    assert!(
        reason.contains(&format!("{} line {}", kh_path.display(), before + 1)),
        "{reason}"
    );
}

#[test]
fn revoked_host_key_is_refused_and_not_recorded_with_accept_new() {
    let sshd = Sshd::start();
    let kh = format!(
        "# revoked after the leak\n@revoked [127.0.0.1]:{} {}\n",
        sshd.port,
        sshd.host_key()
    );
    fs::write(sshd.known_hosts(), &kh).expect("known_hosts");
    let reason = revoked_reason(&sshd, sshd.options().accept_new_host_keys(true));
    assert!(reason.contains("host key revoked"), "{reason}");
    assert!(reason.contains("line 2"), "{reason}");
    assert_eq!(
        fs::read_to_string(sshd.known_hosts()).expect("kh"),
        kh,
        "a revoked key must not be recorded"
    );
}

/// Host certificates are not supported: a `@cert-authority` line is never
/// taken as the host's own key, and the refusal says why.
#[test]
fn cert_authority_line_is_not_a_trusted_key() {
    let sshd = Sshd::start();
    fs::write(
        sshd.known_hosts(),
        format!("@cert-authority [127.0.0.1]:* {}\n", sshd.host_key()),
    )
    .expect("known_hosts");
    let kid = run_one(&sshd, sshd.options());
    assert_eq!(kid.state, JobState::Failed);
    let reason = kid.reason.unwrap_or_default();
    assert!(reason.contains("unknown host key"), "{reason}");
    assert!(
        reason.contains("line 1 is a @cert-authority line")
            && reason.contains("host certificates are not supported"),
        "{reason}"
    );
}
