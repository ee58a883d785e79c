//! What a remote job runs: the hosts, the command and the throttle, and how
//! a host string (`host`, `user@host`, `user@host:port`, `[v6]:port`) reads.

use std::path::PathBuf;
use std::sync::Arc;

use jobs_core::JobSpec;
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, RemoteError};
use crate::options::SshOptions;

/// The type name of remote jobs.
pub const TYPE_NAME: &str = "RemoteJob";

/// How many hosts run at once when the spec does not say (as
/// `Invoke-Command -ThrottleLimit`).
pub const DEFAULT_THROTTLE: usize = 32;

/// A remote job: one shell line run on each host. It travels as
/// [`JobSpec::params`]; [`RemoteSpec::into_job_spec`] builds the whole spec.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteSpec {
    /// The hosts, as the user wrote them: `host`, `user@host`,
    /// `user@host:port` or `[v6addr]:port`; names go through `~/.ssh/config`.
    pub hosts: Vec<String>,
    /// The shell line, run by the remote user's login shell.
    pub command: String,
    /// How many hosts run at once (default [`DEFAULT_THROTTLE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<usize>,
    /// Whose SSH identity the job uses (default: the executor's options,
    /// then the environment of the process that runs the executor).
    #[serde(default, skip_serializing_if = "Caller::is_empty")]
    pub caller: Caller,
    /// How long each host's child may run (its
    /// [`JobSpec::timeout`](jobs_core::JobSpec::timeout)); the parent itself
    /// has none, so hosts waiting behind the throttle get their full time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<std::time::Duration>,
    /// How the reason shows the time limit (its
    /// [`JobSpec::timeout_shown`](jobs_core::JobSpec::timeout_shown)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_shown: Option<String>,
    /// Whether each host's command runs detached: under a supervisor on
    /// the host, outliving the connection and the session (see the crate
    /// docs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub detached: bool,
    /// Bytes written to each host's command's standard input, then end of
    /// file (none: the command's stdin is empty). Not with
    /// [`detached`](field@RemoteSpec::detached): a detached command's
    /// stdin is `/dev/null` on its host (the job is refused).
    /// [`RemoteSpec::into_job_spec`] hands them to the executor in memory
    /// (the spec's payload, one copy shared by every host's child, sent
    /// as it is); [`RemoteSpec::keepable`] writes them into the params, as
    /// base64, where a store must keep the spec (a job that waits).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "input_base64"
    )]
    pub input: Option<Arc<[u8]>>,
}

/// The bytes a host's command gets on its standard input (see
/// [`RemoteSpec::input`]): a job spec's payload, the parent's and each of
/// its children's, all sharing one copy.
#[derive(Clone, Debug)]
pub(crate) struct Input(pub(crate) Arc<[u8]>);

/// [`RemoteSpec::input`] as a base64 string in the params.
mod input_base64 {
    use std::sync::Arc;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Arc<[u8]>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => s.serialize_str(&crate::base64::encode(bytes, true)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Arc<[u8]>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => crate::base64::decode(&text)
                .map(|bytes| Some(bytes.into()))
                .ok_or_else(|| serde::de::Error::custom("the input is not base64")),
            None => Ok(None),
        }
    }
}

/// Whose SSH identity a job uses: the home directory (for `~`, the ssh
/// config, known_hosts and the default keys) and the ssh-agent socket of
/// the user who started it. A session daemon started by one shell serves
/// commands from others, each with its own `HOME` and `SSH_AUTH_SOCK`:
/// the job uses the caller's, not the daemon's. What is unset here comes
/// from the executor's [`SshOptions`](crate::SshOptions), else from the
/// environment of the process that runs the executor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The caller's home directory (`$HOME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<PathBuf>,
    /// The caller's ssh-agent socket (`$SSH_AUTH_SOCK`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_socket: Option<PathBuf>,
}

impl Caller {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.home.is_none() && self.agent_socket.is_none()
    }

    /// The executor's `options` with this caller's home and agent where
    /// they set none: the executor's own settings first.
    pub(crate) fn over(&self, options: &Arc<SshOptions>) -> Arc<SshOptions> {
        if self.is_empty() {
            return Arc::clone(options);
        }
        let mut o = SshOptions::clone(options);
        o.home = o.home.or_else(|| self.home.clone());
        o.agent_socket = o.agent_socket.or_else(|| self.agent_socket.clone());
        Arc::new(o)
    }
}

impl RemoteSpec {
    /// A spec running `command` on `hosts`.
    pub fn new<H: Into<String>>(
        hosts: impl IntoIterator<Item = H>,
        command: impl Into<String>,
    ) -> Self {
        RemoteSpec {
            hosts: hosts.into_iter().map(Into::into).collect(),
            command: command.into(),
            throttle: None,
            caller: Caller::default(),
            timeout: None,
            timeout_shown: None,
            detached: false,
            input: None,
        }
    }

    /// Gives each host's command these bytes on its standard input (see
    /// [`RemoteSpec::input`]).
    pub fn input(mut self, bytes: impl Into<Arc<[u8]>>) -> Self {
        self.input = Some(bytes.into());
        self
    }

    /// Runs each host's command detached (see [`RemoteSpec::detached`]).
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// Sets whose SSH identity the job uses.
    pub fn caller(mut self, caller: Caller) -> Self {
        self.caller = caller;
        self
    }

    /// Limits how long each host's child runs.
    pub fn timeout(mut self, limit: std::time::Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// Sets how many hosts run at once.
    pub fn throttle(mut self, limit: usize) -> Self {
        self.throttle = Some(limit);
        self
    }

    /// Checks every host string (`host`, `user@host:port`, `[v6]:port`)
    /// before a job starts: an empty one, or a port outside 1–65535, is an
    /// error naming that host.
    pub fn check_hosts(&self) -> Result<(), RemoteError> {
        self.hosts
            .iter()
            .try_for_each(|h| Target::parse(h).map(drop))
    }

    /// The job spec of the parent job: type `RemoteJob`, the command as
    /// written, these params, the child throttle, and the hosts joined with
    /// commas as location. The input, if any, is the spec's in-memory
    /// payload, not part of the params: a store cannot keep such a spec
    /// until [`RemoteSpec::keepable`] has moved it there.
    pub fn into_job_spec(mut self) -> JobSpec {
        let location = self.hosts.join(",");
        let throttle = self.throttle.unwrap_or(DEFAULT_THROTTLE).max(1);
        let command = self.command.clone();
        let detached = self.detached;
        let input = self.input.take();
        let params = serde_json::to_value(&self).unwrap_or(serde_json::Value::Null);
        let mut spec = JobSpec::new(TYPE_NAME, command)
            .params(params)
            .child_throttle(throttle)
            .location(location)
            .detached(detached);
        if let Some(bytes) = input {
            spec.payload = Some(Box::new(Input(bytes)));
        }
        spec
    }

    /// Makes a spec of [`RemoteSpec::into_job_spec`] one a store can keep
    /// (a job that waits for others, and goes on waiting after its session
    /// ends): the input moves from the payload into the params, as base64.
    /// Any other spec is left as it is.
    pub fn keepable(spec: &mut JobSpec) {
        let Some(payload) = spec.payload.take() else {
            return;
        };
        let input = match payload.downcast::<Input>() {
            Ok(input) => input,
            Err(other) => {
                spec.payload = Some(other);
                return;
            }
        };
        match spec.params.as_object_mut() {
            Some(params) => {
                let text = crate::base64::encode(&input.0, true);
                params.insert("input".into(), serde_json::Value::String(text));
            }
            // Not a parent's params: the input stays where the executor
            // finds it.
            None => spec.payload = Some(input),
        }
    }
}

/// What one child job runs: one host, one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HostTask {
    pub(crate) host: String,
    pub(crate) command: String,
    #[serde(default, skip_serializing_if = "Caller::is_empty")]
    pub(crate) caller: Caller,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) detached: bool,
}

/// A job's params: a parent's [`RemoteSpec`] or a child's host task.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Params {
    Child(HostTask),
    Parent(RemoteSpec),
}

/// A host string taken apart. Fields not written are `None` and come from
/// the ssh config or the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) user: Option<String>,
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
}

impl Target {
    /// Reads `host`, `user@host`, `user@host:port`, `[v6]:port`,
    /// `user@[v6]:port` or a bare IPv6 address.
    pub(crate) fn parse(written: &str) -> Result<Target, RemoteError> {
        let bad = |why: &str| {
            RemoteError::new(
                written,
                ErrorKind::InvalidInput,
                format!("invalid host string: {why}"),
            )
        };
        let s = written.trim();
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let (user, rest) = match s.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
            Some(_) => return Err(bad("empty user name before '@'")),
            None => (None, s),
        };
        let (host, port) = if let Some(inner) = rest.strip_prefix('[') {
            let (h, after) = inner.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected ':' after ']'"))?,
                ),
            };
            (h, port)
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 address: no port can be written without brackets.
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(bad("empty host name"));
        }
        if host.contains(['[', ']', ',']) || host.contains(char::is_whitespace) {
            // `web[1-3]` or `a,b` that reached here unexpanded.
            return Err(bad(
                "a host name holds no '[', ']', ',' or spaces (a host pattern is expanded by jobctl first)",
            ));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => Some(n),
                _ => return Err(bad(&format!("bad port '{p}'"))),
            },
        };
        Ok(Target {
            user,
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(user: Option<&str>, host: &str, port: Option<u16>) -> Target {
        Target {
            user: user.map(str::to_string),
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn host_strings() {
        let cases = [
            ("web1", t(None, "web1", None)),
            ("bob@web1", t(Some("bob"), "web1", None)),
            ("bob@web1:2222", t(Some("bob"), "web1", Some(2222))),
            ("web1:22", t(None, "web1", Some(22))),
            ("[::1]:2200", t(None, "::1", Some(2200))),
            ("bob@[fe80::1]", t(Some("bob"), "fe80::1", None)),
            ("::1", t(None, "::1", None)),
            ("a@b@host", t(Some("a@b"), "host", None)),
        ];
        for (s, want) in cases {
            assert_eq!(Target::parse(s).expect(s), want, "{s}");
        }
    }

    #[test]
    fn bad_host_strings_name_the_host() {
        for s in [
            "",
            "@h",
            "h:",
            "h:0",
            "h:99999",
            "[::1",
            "[::1]x",
            "u@:22",
            "web[1-3]",
            "a,b",
            "web[1-3]:22",
            "a b",
        ] {
            let e = Target::parse(s).expect_err(s);
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{s}");
            assert!(e.to_string().contains("invalid host string"), "{e}");
        }
    }

    #[test]
    fn check_hosts_names_the_first_bad_one() {
        assert!(RemoteSpec::new(["a", "u@b:2", "[::1]:22"], "x")
            .check_hosts()
            .is_ok());
        let e = RemoteSpec::new(["a", "b:70000", ""], "x")
            .check_hosts()
            .expect_err("a bad port");
        assert_eq!(e.host(), "b:70000");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn into_job_spec_fills_the_parent() {
        let spec = RemoteSpec::new(["a", "u@b:2"], "uptime")
            .throttle(4)
            .into_job_spec();
        assert_eq!(spec.type_name, TYPE_NAME);
        assert_eq!(spec.command, "uptime");
        assert_eq!(spec.child_throttle, Some(4));
        assert_eq!(spec.location.as_deref(), Some("a,u@b:2"));
        let back: Params = serde_json::from_value(spec.params).expect("params");
        assert!(matches!(back, Params::Parent(p) if p.hosts == ["a", "u@b:2"]));
        let default = RemoteSpec::new(["a"], "x").into_job_spec();
        assert_eq!(default.child_throttle, Some(DEFAULT_THROTTLE));
    }

    #[test]
    fn the_input_is_a_shared_payload_and_keepable_moves_it_into_the_params() {
        let bytes: Vec<u8> = (0..=255u8).chain([0, 10, 255]).collect();
        let mut spec = RemoteSpec::new(["a"], "cat")
            .input(bytes.clone())
            .into_job_spec();
        assert!(spec.params.get("input").is_none(), "{}", spec.params);
        let held = spec
            .payload
            .as_ref()
            .and_then(|p| p.downcast_ref::<Input>());
        assert_eq!(held.map(|i| &i.0[..]), Some(&bytes[..]));
        RemoteSpec::keepable(&mut spec);
        assert!(spec.payload.is_none());
        let back: Params = serde_json::from_value(spec.params).expect("params");
        assert!(matches!(back, Params::Parent(p) if p.input.as_deref() == Some(&bytes[..])));
        let mut none = RemoteSpec::new(["a"], "cat").into_job_spec();
        RemoteSpec::keepable(&mut none);
        assert!(none.payload.is_none() && none.params.get("input").is_none());
    }

    #[test]
    fn child_params_are_told_apart() {
        let v = serde_json::json!({"host": "h", "command": "c"});
        assert!(matches!(
            serde_json::from_value::<Params>(v).expect("child"),
            Params::Child(_)
        ));
    }
}
