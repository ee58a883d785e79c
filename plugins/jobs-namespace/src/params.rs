//! What a namespace job runs, and the `unshare` command line that runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use jobs_core::{JobFailure, JobSpec};
use serde_json::Value;

/// The namespaces a job can get besides its own PID and mount namespaces
/// (which it always gets: they are what lets a stop end every process).
pub const OPTIONAL_NAMESPACES: [&str; 4] = ["net", "ipc", "uts", "user"];

/// A namespace job, as read from a spec's params.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceJob {
    /// The shell line (`params.line`, else the spec's command).
    pub line: String,
    /// The optional namespaces to enter (`params.namespaces`; default: net,
    /// ipc, uts, and user when not running as root).
    pub namespaces: Vec<String>,
    /// The host name inside the UTS namespace (`params.hostname`).
    pub hostname: Option<String>,
    /// The working folder (`params.cwd`).
    pub cwd: Option<PathBuf>,
    /// Environment variables (`params.env`): an object of strings adds to
    /// the executor's environment; a list of `[name, value]` pairs (as
    /// jobctl sends the caller's environment) replaces it.
    pub env: BTreeMap<String, String>,
    /// Whether `env` is the whole environment.
    pub env_clear: bool,
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// The namespaces a job gets when its spec does not say.
pub fn default_namespaces() -> Vec<String> {
    let mut ns: Vec<String> = ["net", "ipc", "uts"].map(String::from).to_vec();
    if !running_as_root() {
        ns.push("user".into());
    }
    ns
}

impl NamespaceJob {
    /// Reads a spec. Unknown namespaces and ill-typed params are errors.
    pub fn from_spec(spec: &JobSpec) -> Result<Self, JobFailure> {
        let p = &spec.params;
        let bad = |what: &str| JobFailure::new(format!("invalid NamespaceJob params: {what}"));
        let line = match &p["line"] {
            Value::Null => spec.command.clone(),
            Value::String(s) => s.clone(),
            _ => return Err(bad("'line' must be a string")),
        };
        if line.trim().is_empty() {
            return Err(bad("the shell line is empty"));
        }
        let namespaces = match &p["namespaces"] {
            Value::Null => default_namespaces(),
            Value::Array(a) => {
                let mut ns = Vec::new();
                for v in a {
                    let n = v
                        .as_str()
                        .ok_or_else(|| bad("'namespaces' must hold strings"))?;
                    if !OPTIONAL_NAMESPACES.contains(&n) {
                        return Err(bad(&format!(
                            "unknown namespace '{n}' (known: {})",
                            OPTIONAL_NAMESPACES.join(", ")
                        )));
                    }
                    ns.push(n.to_string());
                }
                ns
            }
            _ => return Err(bad("'namespaces' must be a list")),
        };
        let hostname = match &p["hostname"] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            _ => return Err(bad("'hostname' must be a string")),
        };
        if hostname.is_some() && !namespaces.iter().any(|n| n == "uts") {
            return Err(bad("'hostname' needs the uts namespace"));
        }
        let cwd = match &p["cwd"] {
            Value::Null => None,
            Value::String(s) => Some(PathBuf::from(s)),
            _ => return Err(bad("'cwd' must be a string")),
        };
        let mut env = BTreeMap::new();
        let mut env_clear = false;
        match &p["env"] {
            Value::Null => {}
            Value::Object(m) => {
                for (k, v) in m {
                    let v = v
                        .as_str()
                        .ok_or_else(|| bad("'env' values must be strings"))?;
                    env.insert(k.clone(), v.to_string());
                }
            }
            Value::Array(pairs) => {
                // jobctl's form: the caller's whole environment, as pairs.
                env_clear = true;
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([Value::String(k), Value::String(v)]) => {
                            env.insert(k.clone(), v.clone());
                        }
                        _ => return Err(bad("'env' pairs must be [name, value] strings")),
                    }
                }
            }
            _ => return Err(bad("'env' must be an object or a list of pairs")),
        }
        Ok(NamespaceJob {
            line,
            namespaces,
            hostname,
            cwd,
            env,
            env_clear,
        })
    }

    fn has(&self, ns: &str) -> bool {
        self.namespaces.iter().any(|n| n == ns)
    }

    /// The program and arguments that run the job: `setpriv` (the job dies
    /// with the thread that started it) around `unshare`, whose forked child
    /// is PID 1 of a new PID namespace and is killed when `unshare` dies,
    /// taking every process of the namespace with it.
    pub fn argv(&self) -> Vec<String> {
        let mut argv: Vec<String> = Vec::new();
        if std::path::Path::new("/usr/bin/setpriv").exists() {
            argv.extend(["/usr/bin/setpriv", "--pdeathsig", "KILL"].map(String::from));
        }
        // Absolute where possible: the job's environment may have no PATH.
        let unshare = if std::path::Path::new("/usr/bin/unshare").exists() {
            "/usr/bin/unshare"
        } else {
            "unshare"
        };
        argv.extend([unshare, "--fork", "--pid", "--mount-proc", "--kill-child"].map(String::from));
        for (ns, flag) in [("net", "--net"), ("ipc", "--ipc"), ("uts", "--uts")] {
            if self.has(ns) {
                argv.push(flag.into());
            }
        }
        if self.has("user") {
            argv.push("--map-root-user".into());
        }
        let mut script = String::new();
        if self.has("net") {
            // Loopback only, and up: servers inside the job can listen on it.
            script.push_str("command -v ip >/dev/null 2>&1 && ip link set lo up 2>/dev/null; ");
        }
        if self.hostname.is_some() {
            script.push_str(
                "printf %s \"$JOBS_NAMESPACE_HOSTNAME\" > /proc/sys/kernel/hostname || exit 125; \
                 unset JOBS_NAMESPACE_HOSTNAME; ",
            );
        }
        script.push_str(&self.line);
        argv.extend(["--", "/bin/sh", "-c"].map(String::from));
        argv.push(script);
        argv
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_params_and_builds_argv() {
        let spec = JobSpec::new("NamespaceJob", "echo hi").params(json!({
            "namespaces": ["net", "uts"], "hostname": "box", "env": {"A": "1"}
        }));
        let job = NamespaceJob::from_spec(&spec).expect("params");
        assert_eq!(job.line, "echo hi");
        let argv = job.argv();
        assert!(argv.contains(&"--net".to_string()));
        assert!(argv.contains(&"--uts".to_string()));
        assert!(!argv.contains(&"--ipc".to_string()));
        assert!(argv.contains(&"--kill-child".to_string()));
        assert!(argv.last().is_some_and(|s| s.ends_with("echo hi")));
    }

    #[test]
    fn env_as_pairs_is_the_whole_environment() {
        let spec = JobSpec::new("NamespaceJob", "env")
            .params(json!({"env": [["PATH", "/bin"], ["A", "b"]], "cwd": null}));
        let job = NamespaceJob::from_spec(&spec).expect("params");
        assert!(job.env_clear);
        assert_eq!(job.env.get("A").map(String::as_str), Some("b"));
    }

    #[test]
    fn refuses_bad_params() {
        for params in [
            json!({"namespaces": ["time"]}),
            json!({"namespaces": "net"}),
            json!({"hostname": "x", "namespaces": ["net"]}),
            json!({"env": {"A": 1}}),
            json!({"env": [["A"]]}),
            json!({"line": " "}),
        ] {
            let spec = JobSpec::new("NamespaceJob", "true").params(params.clone());
            assert!(NamespaceJob::from_spec(&spec).is_err(), "{params} accepted");
        }
    }
}
