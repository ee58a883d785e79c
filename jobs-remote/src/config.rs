//! Where and as whom to connect: the host string, then `~/.ssh/config`
//! (parsed by `ssh2-config`), then the defaults, as the OpenSSH client does.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use ssh2_config::{ParseRule, SshConfig};

use crate::error::{ErrorKind, HostErr, RemoteError};
use crate::options::{
    SshOptions, DEFAULT_CONNECT_TIMEOUT, DEFAULT_KEEPALIVE_COUNT, DEFAULT_KEEPALIVE_INTERVAL,
};
use crate::spec::Target;

/// The default identity files, in the order OpenSSH tries them.
const DEFAULT_IDENTITIES: [&str; 3] = ["id_ed25519", "id_ecdsa", "id_rsa"];

/// Everything needed to reach one host.
#[derive(Clone, Debug)]
pub(crate) struct Resolved {
    /// The host as the user wrote it (for reasons).
    pub(crate) written: String,
    /// The name or address to connect to (config `HostName`).
    pub(crate) hostname: String,
    pub(crate) port: u16,
    pub(crate) user: String,
    /// Identity files that exist, in the order to try them.
    pub(crate) identity_files: Vec<PathBuf>,
    /// The user's known_hosts file (read, and written by accept-new).
    pub(crate) known_hosts: PathBuf,
    /// Further known_hosts files, read only.
    pub(crate) global_known_hosts: Vec<PathBuf>,
    pub(crate) accept_new: bool,
    /// The agent socket to try first, if agent use is on and one is known.
    pub(crate) agent_socket: Option<PathBuf>,
    pub(crate) connect_timeout: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_count: u32,
}

/// The home directory: the option, else `$HOME` (never the password
/// database, so tests can point it at a temp dir).
pub(crate) fn home_dir(options: &SshOptions) -> Option<PathBuf> {
    options
        .home
        .clone()
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from))
        .filter(|p| !p.as_os_str().is_empty())
}

fn local_user() -> String {
    for var in ["USER", "LOGNAME"] {
        if let Ok(u) = std::env::var(var) {
            if !u.is_empty() {
                return u;
            }
        }
    }
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".to_string())
}

/// Expands a leading `~` and the `%d %h %u %r %%` tokens of a path option.
fn expand(raw: &str, home: Option<&Path>, host: &str, user: &str) -> PathBuf {
    let mut out = String::new();
    let mut rest = raw;
    if let (Some(h), Some(tail)) = (home, rest.strip_prefix('~')) {
        if tail.is_empty() || tail.starts_with('/') {
            out.push_str(&h.to_string_lossy());
            rest = tail;
        }
    }
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&home.map(|h| h.to_string_lossy()).unwrap_or_default()),
            Some('h') => out.push_str(host),
            Some('r') => out.push_str(user),
            Some('u') => out.push_str(&local_user()),
            Some('%') => out.push('%'),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    PathBuf::from(out)
}

/// The last ssh config parsed, with what identifies its file's content.
struct Parsed {
    path: PathBuf,
    home: Option<PathBuf>,
    modified: Option<SystemTime>,
    len: u64,
    config: Arc<SshConfig>,
}

/// One parse of the ssh config for every host of a fan-out: each host's
/// thread asks for it, and parsing a config with a block per host once
/// per host cost time and memory in the square of the hosts (1,000 hosts,
/// all at once: 640 MiB of daemon RSS, most of it these parses). The file
/// is parsed again when its path, size or modification time changes.
static PARSED: Mutex<Option<Parsed>> = Mutex::new(None);

fn read_config(
    path: &Path,
    home: Option<&Path>,
    he: &HostErr,
) -> Result<Arc<SshConfig>, RemoteError> {
    let cannot_read = |e: std::io::Error| {
        he.err(
            ErrorKind::Config,
            format!("cannot read ssh config {}: {e}", path.display()),
        )
    };
    let file = File::open(path).map_err(cannot_read)?;
    let meta = file.metadata().map_err(cannot_read)?;
    let modified = meta.modified().ok();
    // A poisoned lock only means a parse panicked; the cache is still sound.
    let mut parsed = PARSED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(p) = parsed.as_ref().filter(|p| {
        p.path == path
            && p.home.as_deref() == home
            && p.modified == modified
            && modified.is_some()
            && p.len == meta.len()
    }) {
        return Ok(Arc::clone(&p.config));
    }
    let mut config = SshConfig::default();
    if let Some(h) = home {
        config = config.home_dir(h);
    }
    let config = Arc::new(
        config
            .parse(
                &mut BufReader::new(file),
                ParseRule::ALLOW_UNKNOWN_FIELDS | ParseRule::ALLOW_UNSUPPORTED_FIELDS,
            )
            .map_err(|e| {
                he.err(
                    ErrorKind::Config,
                    format!("cannot parse ssh config {}: {e}", path.display()),
                )
            })?,
    );
    *parsed = Some(Parsed {
        path: path.to_path_buf(),
        home: home.map(Path::to_path_buf),
        modified,
        len: meta.len(),
        config: Arc::clone(&config),
    });
    Ok(config)
}

/// Resolves a host string against the options and the user's ssh config.
pub(crate) fn resolve(written: &str, options: &SshOptions) -> Result<Resolved, RemoteError> {
    let he = HostErr {
        host: written.to_string(),
    };
    let target = Target::parse(written)?;
    let home = home_dir(options);
    let config_path = match (&options.ssh_config, &home) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(h)) => Some(h.join(".ssh").join("config")).filter(|p| p.is_file()),
        (None, None) => None,
    };
    let params = match &config_path {
        Some(p) => Some(read_config(p, home.as_deref(), &he)?.query(&target.host)),
        None => None,
    };
    let unsupported = |key: &str| -> Option<String> {
        params
            .as_ref()
            .and_then(|p| p.unsupported_fields.get(key))
            .and_then(|args| args.first().cloned())
    };
    if let Some(p) = &params {
        if p.proxy_jump.as_ref().is_some_and(|j| !j.is_empty())
            || unsupported("proxycommand").is_some_and(|c| !c.eq_ignore_ascii_case("none"))
        {
            return Err(he.err(
                ErrorKind::Config,
                "ProxyJump and ProxyCommand in the ssh config are not supported",
            ));
        }
    }

    let hostname = params
        .as_ref()
        .and_then(|p| p.host_name.clone())
        .map(|h| h.replace("%h", &target.host))
        .unwrap_or_else(|| target.host.clone());
    let port = target
        .port
        .or_else(|| params.as_ref().and_then(|p| p.port))
        .unwrap_or(22);
    let user = target
        .user
        .clone()
        .or_else(|| params.as_ref().and_then(|p| p.user.clone()))
        .unwrap_or_else(local_user);

    let mut identity_files: Vec<PathBuf> = options.identity_files.clone();
    if let Some(files) = params.as_ref().and_then(|p| p.identity_file.clone()) {
        for f in files {
            identity_files.push(expand(
                &f.to_string_lossy(),
                home.as_deref(),
                &hostname,
                &user,
            ));
        }
    }
    if let Some(h) = &home {
        for name in DEFAULT_IDENTITIES {
            identity_files.push(h.join(".ssh").join(name));
        }
    }
    let mut seen = std::collections::HashSet::new();
    identity_files.retain(|p| p.is_file() && seen.insert(p.clone()));

    let known_hosts = match &options.known_hosts {
        Some(p) => p.clone(),
        None => match unsupported("userknownhostsfile") {
            Some(f) => expand(&f, home.as_deref(), &hostname, &user),
            None => home
                .as_deref()
                .map(|h| h.join(".ssh").join("known_hosts"))
                .ok_or_else(|| {
                    he.err(
                        ErrorKind::KnownHosts,
                        "no known_hosts file: HOME is not set and none was given",
                    )
                })?,
        },
    };
    let global_known_hosts = ["/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .collect();
    let accept_new = options.accept_new_host_keys
        || unsupported("stricthostkeychecking")
            .is_some_and(|v| v.eq_ignore_ascii_case("accept-new"));

    let connect_timeout = options
        .connect_timeout
        .or_else(|| params.as_ref().and_then(|p| p.connect_timeout))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    let keepalive_interval = options
        .keepalive_interval
        .or_else(|| params.as_ref().and_then(|p| p.server_alive_interval))
        .filter(|d| !d.is_zero())
        .unwrap_or(DEFAULT_KEEPALIVE_INTERVAL);
    let keepalive_count = options
        .keepalive_count
        .or_else(|| unsupported("serveralivecountmax").and_then(|v| v.parse().ok()))
        .unwrap_or(DEFAULT_KEEPALIVE_COUNT)
        .max(1);

    Ok(Resolved {
        written: written.to_string(),
        hostname,
        port,
        user,
        identity_files,
        known_hosts,
        global_known_hosts,
        accept_new,
        agent_socket: options
            .agent_socket
            .clone()
            .or_else(|| std::env::var_os("SSH_AUTH_SOCK").map(PathBuf::from))
            .filter(|p| options.use_agent && !p.as_os_str().is_empty()),
        connect_timeout,
        keepalive_interval,
        keepalive_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_gives_hostname_user_port_identity() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir_all(&ssh).expect("mkdir");
        std::fs::write(ssh.join("id_alias"), "key").expect("write");
        std::fs::write(ssh.join("id_ed25519"), "key").expect("write");
        std::fs::write(
            ssh.join("config"),
            "Host web*\n  HostName 10.0.0.%h\n  User deploy\n  Port 2022\n  IdentityFile ~/.ssh/id_alias\n  ServerAliveInterval 5\n  ServerAliveCountMax 2\n  StrictHostKeyChecking accept-new\n  UserKnownHostsFile ~/kh\n",
        )
        .expect("write");
        let options = SshOptions::default().home(dir.path());
        let r = resolve("web1", &options).expect("resolve");
        assert_eq!(r.hostname, "10.0.0.web1");
        assert_eq!((r.user.as_str(), r.port), ("deploy", 2022));
        assert_eq!(
            r.identity_files,
            [ssh.join("id_alias"), ssh.join("id_ed25519")]
        );
        assert_eq!(r.keepalive_interval, Duration::from_secs(5));
        assert_eq!(r.keepalive_count, 2);
        assert!(r.accept_new);
        assert_eq!(r.known_hosts, dir.path().join("kh"));
        let r = resolve("bob@web1:7", &options).expect("resolve");
        assert_eq!((r.user.as_str(), r.port), ("bob", 7));
        let other = resolve("db", &options).expect("resolve");
        assert_eq!((other.hostname.as_str(), other.port), ("db", 22));
        assert!(!other.accept_new);
        assert_eq!(other.known_hosts, ssh.join("known_hosts"));
    }

    #[test]
    fn the_config_is_read_again_once_it_changed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("cfg");
        std::fs::write(&cfg, "Host h\n  HostName first\n").expect("write");
        let options = SshOptions::default().home(dir.path()).ssh_config(&cfg);
        assert_eq!(resolve("h", &options).expect("resolve").hostname, "first");
        // Served from the parse just made: the same file, unchanged.
        assert_eq!(resolve("h", &options).expect("resolve").hostname, "first");
        std::fs::write(&cfg, "Host h\n  HostName second.example\n").expect("write");
        assert_eq!(
            resolve("h", &options).expect("resolve").hostname,
            "second.example"
        );
        let other = dir.path().join("other");
        std::fs::write(&other, "Host h\n  HostName third\n").expect("write");
        let options = SshOptions::default().home(dir.path()).ssh_config(&other);
        assert_eq!(resolve("h", &options).expect("resolve").hostname, "third");
    }

    #[test]
    fn proxy_jump_is_refused_clearly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("cfg");
        std::fs::write(&cfg, "Host j\n  ProxyJump bastion\n").expect("write");
        let options = SshOptions::default().home(dir.path()).ssh_config(&cfg);
        let e = resolve("j", &options).expect_err("refused");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().starts_with("host j: ProxyJump"), "{e}");
    }
}
