//! Host keys: prefer the algorithms OpenSSH records, check the server's key
//! against known_hosts (plain, `[host]:port` and hashed entries, through
//! libssh2), and record a new key when accept-new is on. A key on a
//! `@revoked` line is refused in every mode, even if another line trusts
//! it. Host certificates are not supported: a `@cert-authority` line never
//! trusts a key, and an unknown host it names is refused saying so.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use ssh2::{CheckResult, HashType, HostKeyType, KnownHostFileKind, MethodType, Session};

use crate::base64;
use crate::config::Resolved;
use crate::error::{ErrorKind, HostErr, RemoteError};
use crate::known_hosts::{self, Marker};

/// OpenSSH's default host key order: its known_hosts files mostly hold the
/// first of these a server offers, so asking for the same one finds it.
const HOST_KEY_ORDER: [&str; 7] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
    "ssh-rsa",
];

/// Sets the host key algorithm preference before the handshake.
pub(crate) fn prefer_openssh_order(session: &Session) {
    let supported = session
        .supported_algs(MethodType::HostKey)
        .unwrap_or_default();
    let prefs: Vec<&str> = HOST_KEY_ORDER
        .iter()
        .copied()
        .filter(|a| supported.contains(a))
        .collect();
    if !prefs.is_empty() {
        // A refusal leaves libssh2's own order, which still works.
        let _ = session.method_pref(MethodType::HostKey, &prefs.join(","));
    }
}

fn type_name(kind: HostKeyType) -> &'static str {
    match kind {
        HostKeyType::Rsa => "ssh-rsa",
        HostKeyType::Dss => "ssh-dss",
        HostKeyType::Ecdsa256 => "ecdsa-sha2-nistp256",
        HostKeyType::Ecdsa384 => "ecdsa-sha2-nistp384",
        HostKeyType::Ecdsa521 => "ecdsa-sha2-nistp521",
        HostKeyType::Ed25519 => "ssh-ed25519",
        HostKeyType::Unknown => "unknown",
    }
}

/// The known_hosts name of a host: `host`, or `[host]:port` off port 22.
fn host_field(hostname: &str, port: u16) -> String {
    if port == 22 {
        hostname.to_string()
    } else {
        format!("[{hostname}]:{port}")
    }
}

/// Where a known_hosts file's marked lines concern the server at hand.
#[derive(Default)]
struct Marks {
    /// The first `@revoked` line holding the server's key.
    revoked: Option<(PathBuf, usize)>,
    /// The first `@cert-authority` line naming the host.
    cert_authority: Option<(PathBuf, usize)>,
}

/// Loads one known_hosts file line by line into `kh` (plain lines; a line
/// libssh2 cannot read, such as a key type it lacks, is skipped instead of
/// failing the file), and notes in `marks` the `@revoked` lines that hold
/// `key` and the `@cert-authority` lines that name `field`. Marked lines
/// never reach libssh2: they do not trust their key.
fn load(
    kh: &mut ssh2::KnownHosts,
    path: &Path,
    field: &str,
    key: &[u8],
    marks: &mut Marks,
) -> Result<(), std::io::Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in known_hosts::entries(&text) {
        let at = || Some((path.to_path_buf(), entry.line));
        match entry.marker {
            Marker::None => {
                let _ = kh.read_str(entry.unmarked, KnownHostFileKind::OpenSSH);
            }
            // A revoked key is refused for every host, whatever hosts its
            // line names: whoever offers it is not to be trusted.
            Marker::Revoked if marks.revoked.is_none() && entry.is_key(key) => {
                marks.revoked = at();
            }
            Marker::CertAuthority if marks.cert_authority.is_none() && entry.names(field) => {
                marks.cert_authority = at();
            }
            Marker::Revoked | Marker::CertAuthority | Marker::Unknown => {}
        }
    }
    Ok(())
}

/// Checks the server's key of a handshaken session; records it if unknown
/// and accept-new is on.
pub(crate) fn verify(session: &Session, r: &Resolved, he: &HostErr) -> Result<(), RemoteError> {
    let (key, kind) = session
        .host_key()
        .ok_or_else(|| he.err(ErrorKind::Handshake, "the server sent no host key"))?;
    let fingerprint = session
        .host_key_hash(HashType::Sha256)
        .map(|h| format!("SHA256:{}", base64::encode(h, false)))
        .unwrap_or_default();
    let kh_err = |e: &dyn std::fmt::Display| {
        he.err(
            ErrorKind::KnownHosts,
            format!("cannot check known_hosts: {e}"),
        )
    };
    let mut kh = session.known_hosts().map_err(|e| kh_err(&e))?;
    let field = host_field(&r.hostname, r.port);
    let mut marks = Marks::default();
    let user_file = r.known_hosts.as_path();
    load(&mut kh, user_file, &field, key, &mut marks).map_err(|e| {
        he.err(
            ErrorKind::KnownHosts,
            format!("cannot read {}: {e}", user_file.display()),
        )
    })?;
    for global in &r.global_known_hosts {
        let _ = load(&mut kh, global, &field, key, &mut marks);
    }
    let key_desc = format!("{} key {fingerprint}", type_name(kind));
    // Whatever the other lines say and whatever the checking mode.
    if let Some((file, line)) = marks.revoked {
        return Err(he.err(
            ErrorKind::RevokedHostKey,
            format!(
                "host key revoked: {field} offers {key_desc}, which {} line {line} marks @revoked",
                file.display()
            ),
        ));
    }
    match kh.check_port(&r.hostname, r.port, key) {
        CheckResult::Match => Ok(()),
        CheckResult::Mismatch => Err(he.err(
            ErrorKind::ChangedHostKey,
            format!(
                "host key changed: {field} now offers {key_desc}, which differs from the key in {} \
                 (possible man-in-the-middle; if the change is expected, remove the old key with \
                 ssh-keygen -R '{field}')",
                user_file.display()
            ),
        )),
        CheckResult::NotFound if r.accept_new => {
            record(user_file, &field, kind, key).map_err(|e| {
                he.err(
                    ErrorKind::KnownHosts,
                    format!(
                        "cannot record the new host key in {}: {e}",
                        user_file.display()
                    ),
                )
            })
        }
        CheckResult::NotFound => {
            let certificates = match marks.cert_authority {
                Some((file, line)) => format!(
                    "; {} line {line} is a @cert-authority line for it, but host certificates \
                     are not supported: trust the host's own key",
                    file.display()
                ),
                None => String::new(),
            };
            Err(he.err(
                ErrorKind::UnknownHostKey,
                format!(
                    "unknown host key: {field} is not in {} (it offers {key_desc}); add it, or accept new keys{certificates}",
                    user_file.display()
                ),
            ))
        }
        CheckResult::Failure => Err(kh_err(&"libssh2 could not compare the key")),
    }
}

/// Appends `field type base64` to the user's known_hosts (one write, so
/// hosts recording at once do not interleave).
fn record(path: &Path, field: &str, kind: HostKeyType, key: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let line = format!(
        "{field} {} {}\n",
        type_name(kind),
        base64::encode(key, true)
    );
    file.write_all(line.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_fields_follow_openssh() {
        assert_eq!(host_field("web", 22), "web");
        assert_eq!(host_field("127.0.0.1", 2222), "[127.0.0.1]:2222");
        assert_eq!(host_field("::1", 2222), "[::1]:2222");
    }
}
