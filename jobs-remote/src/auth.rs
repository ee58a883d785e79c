//! Public key authentication: the agent's keys, then the identity files;
//! never a passphrase prompt, so an encrypted key without an agent fails
//! with a reason that says so.

use std::path::{Path, PathBuf};

use ssh2::Session;

use crate::base64;
use crate::config::Resolved;
use crate::error::{ErrorKind, HostErr, RemoteError};

/// Whether a private key file is protected by a passphrase.
pub(crate) fn is_encrypted(text: &str) -> bool {
    if text.contains("Proc-Type: 4,ENCRYPTED") || text.contains("BEGIN ENCRYPTED PRIVATE KEY") {
        return true;
    }
    let Some(start) = text.find("-----BEGIN OPENSSH PRIVATE KEY-----") else {
        return false;
    };
    let body: String = text[start..]
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let Some(bytes) = base64::decode(&body) else {
        return false;
    };
    // "openssh-key-v1\0", then the cipher name as an SSH string.
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let Some(rest) = bytes.strip_prefix(MAGIC) else {
        return false;
    };
    let Some(len) = rest
        .get(..4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    else {
        return false;
    };
    rest.get(4..4 + len as usize)
        .is_some_and(|cipher| cipher != b"none")
}

fn public_key_of(private: &Path) -> Option<PathBuf> {
    let mut p = private.as_os_str().to_owned();
    p.push(".pub");
    Some(PathBuf::from(p)).filter(|p| p.is_file())
}

/// Authenticates `r.user`, or says why not.
pub(crate) fn authenticate(
    session: &Session,
    r: &Resolved,
    he: &HostErr,
) -> Result<(), RemoteError> {
    let user = r.user.as_str();
    let methods = match session.auth_methods(user) {
        Ok(m) => m.to_string(),
        Err(_) if session.authenticated() => return Ok(()),
        Err(e) => {
            return Err(he.err(
                ErrorKind::Auth,
                format!("authentication as {user} failed: {e}"),
            ))
        }
    };
    if !methods.split(',').any(|m| m == "publickey") {
        return Err(he.err(
            ErrorKind::Auth,
            format!("authentication as {user} refused: the server offers only '{methods}', not publickey"),
        ));
    }
    let mut tried: Vec<String> = Vec::new();
    if let Some(socket) = &r.agent_socket {
        if let Ok(mut agent) = session.agent() {
            let _ = agent.set_identity_path(socket);
            if agent.connect().is_ok() && agent.list_identities().is_ok() {
                let ids = agent.identities().unwrap_or_default();
                for id in &ids {
                    if agent.userauth(user, id).is_ok() {
                        return Ok(());
                    }
                }
                if !ids.is_empty() {
                    tried.push(format!("{} agent key(s)", ids.len()));
                }
                let _ = agent.disconnect();
            }
        }
    }
    let mut encrypted: Vec<&Path> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    for file in &r.identity_files {
        match std::fs::read_to_string(file) {
            Ok(text) if is_encrypted(&text) => {
                encrypted.push(file);
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                unreadable.push(format!("{} ({e})", file.display()));
                continue;
            }
        }
        let public = public_key_of(file);
        match session.userauth_pubkey_file(user, public.as_deref(), file, None) {
            Ok(()) if session.authenticated() => return Ok(()),
            Ok(()) => tried.push(file.display().to_string()),
            // LIBSSH2_ERROR_AUTHENTICATION_FAILED / PUBLICKEY_UNVERIFIED: refused.
            Err(e) if matches!(e.code(), ssh2::ErrorCode::Session(-18 | -19)) => {
                tried.push(file.display().to_string())
            }
            Err(e) => unreadable.push(format!("{} ({})", file.display(), e.message())),
        }
    }
    if let Some(first) = encrypted.first() {
        if tried.is_empty() {
            return Err(he.err(
                ErrorKind::EncryptedKey,
                format!(
                    "authentication as {user} failed: identity file {} is encrypted and no ssh-agent \
                     holds its key (load it with ssh-add; passphrases are never asked for)",
                    first.display()
                ),
            ));
        }
    }
    let mut offered = if tried.is_empty() {
        "no identity to offer (no agent key, no identity file)".to_string()
    } else {
        format!("the server refused {}", tried.join(", "))
    };
    if !encrypted.is_empty() {
        let list: Vec<String> = encrypted.iter().map(|p| p.display().to_string()).collect();
        offered.push_str(&format!(
            "; skipped encrypted {} (no agent)",
            list.join(", ")
        ));
    }
    if !unreadable.is_empty() {
        offered.push_str(&format!("; could not use {}", unreadable.join(", ")));
    }
    Err(he.err(
        ErrorKind::Auth,
        format!("authentication as {user} failed: {offered}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encrypted_keys_are_recognised() {
        // The openssh-key-v1 header with cipher "none" and "aes256-ctr".
        let header = |cipher: &str| {
            let mut b = b"openssh-key-v1\0".to_vec();
            b.extend_from_slice(&(cipher.len() as u32).to_be_bytes());
            b.extend_from_slice(cipher.as_bytes());
            b.extend_from_slice(&[0; 16]);
            format!(
                "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
                base64::encode(&b, true)
            )
        };
        assert!(!is_encrypted(&header("none")));
        assert!(is_encrypted(&header("aes256-ctr")));
        assert!(is_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
        assert!(!is_encrypted("-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"));
    }
}
