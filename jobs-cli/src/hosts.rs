//! Host patterns of `--host` and `--exclude`, expanded here, in the client.
//!
//! Here rather than in the daemon: the request then carries the hosts
//! themselves, so the daemon, the stored spec, `list`, `show`, a plugin
//! and a later restart see exactly the hosts that ran, whatever the groups
//! file says by then; a typo is refused before any daemon is started or
//! asked; and the client needs the same code anyway, to fold hosts back
//! into patterns in its summaries and `receive --gather` headers. The
//! groups file is the session's (`$JOBCTL_HOME/hosts`, or `--home`), read
//! only when a pattern names a group. The daemon still checks every host
//! string it gets (`RemoteSpec::check_hosts`).

use std::error::Error as _;

use anyhow::{anyhow, Result};
use jobs_hostlist::{expand, Groups, GroupsError};
use jobs_protocol::home::Home;
use jobs_protocol::{Op, Response};

use crate::cli::StartArgs;
use crate::client::Client;
use crate::exit::{self, Exit};

/// The file of host groups in a session's home.
pub(crate) fn groups_file(home: &Home) -> std::path::PathBuf {
    home.dir().join("hosts")
}

/// The hosts `patterns` name, less `exclude`'s; empty if no pattern is
/// given. A malformed pattern or groups file is a usage error naming it.
pub(crate) fn resolve(home: &Home, patterns: &[String], exclude: &[String]) -> Result<Vec<String>> {
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let names_group = patterns.iter().chain(exclude).any(|p| p.contains('@'));
    let groups = if names_group {
        Groups::read(&groups_file(home)).map_err(|e| match e {
            GroupsError::Syntax { .. } => anyhow!(Exit::new(exit::USAGE, e.to_string())),
            e => anyhow::Error::new(e),
        })?
    } else {
        Groups::default()
    };
    expand(patterns, exclude, &groups).map_err(|e| {
        let mut message = format!("--host: {e}");
        let mut cause = e.source();
        while let Some(c) = cause {
            message.push_str(&format!(": {c}"));
            cause = c.source();
        }
        anyhow!(Exit::new(exit::USAGE, message))
    })
}

/// With `--hosts-of ID`: the hosts of job ID's children (in `--state`, if
/// given), less `--exclude`; else `hosts` unchanged. A job that is not a
/// remote parent, or has no child in that state, is a usage error.
pub(crate) fn of_job(
    home: &Home,
    c: &mut Client,
    args: &StartArgs,
    hosts: Vec<String>,
) -> Result<Vec<String>> {
    let Some(id) = args.hosts_of else {
        return Ok(hosts);
    };
    let resp = c.call(Op::Show { id })?;
    let Response::Shown { job, children, .. } = resp else {
        return Err(anyhow!("unexpected answer from the daemon: {resp:?}"));
    };
    let usage = |m: String| anyhow!(Exit::new(exit::USAGE, format!("--hosts-of {id}: {m}")));
    if job.type_name != "RemoteJob" || children.is_empty() {
        return Err(usage(format!(
            "job {id} ({}) is a {}, not a remote job with hosts",
            job.name, job.type_name
        )));
    }
    let picked: Vec<String> = children
        .iter()
        .filter(|ch| args.hosts_state.is_none_or(|s| ch.state == s))
        .map(|ch| ch.location.to_string())
        .collect();
    if picked.is_empty() {
        let state = args.hosts_state.map(|s| s.to_string()).unwrap_or_default();
        return Err(usage(format!("no host of job {id} is {state}")));
    }
    resolve(home, &picked, &args.exclude)
}
