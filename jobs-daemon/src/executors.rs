//! The executors of the daemon's session (the built-in ones and the
//! plugins), and the translation of a `start` request into a [`JobSpec`]
//! for them.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;

use anyhow::Result;
use jobs_core::{JobSpec, Session};

use jobs_protocol::home::Home;
use jobs_protocol::{env_entries, ErrorCode, StartRequest, TypeEntry, Work};

use crate::fail::Fail;

/// The type name a `--type` word stands for (`process` is `BackgroundJob`).
pub(crate) fn type_name_of(word: &str) -> String {
    match word.to_ascii_lowercase().as_str() {
        "process" | "backgroundjob" => "BackgroundJob".into(),
        "thread" | "threadjob" => "ThreadJob".into(),
        "remote" | "remotejob" => "RemoteJob".into(),
        _ => word.to_string(),
    }
}

/// Registers the built-in executors and the plugins; returns the types
/// and the remote executor (for `connect`).
pub(crate) fn register(
    session: &Session,
    home: &Home,
    plugins: &[PathBuf],
) -> Result<(Vec<TypeEntry>, std::sync::Arc<jobs_remote::SshExecutor>)> {
    session.register(std::sync::Arc::new(
        // Pipes and exits on the daemon's own worker: a job's exit wakes
        // the thread that finishes it, with no I/O thread in between.
        jobs_process::ProcessExecutor::new()
            .detached_dir(home.detached())
            .on_session_runtime(),
    ));
    session.register(std::sync::Arc::new(
        jobs_script::ScriptExecutor::new().limits(script_limits()),
    ));
    let remote = std::sync::Arc::new(jobs_remote::SshExecutor::with_options(remote_options()));
    session.register(remote.clone());
    let types: Vec<TypeEntry> = session
        .executor_types()
        .into_iter()
        .map(|t| TypeEntry {
            type_name: t,
            source: "built-in".into(),
            version: None,
        })
        .collect();
    let mut types = types;
    types.extend(load_plugins(session, home, plugins));
    types.extend(load_executables(session, home));
    Ok((types, remote))
}

/// The remote executor's options: the defaults, with
/// `JOBCTL_DETACHED_KEEPALIVE` (seconds between keepalives of a detached
/// remote job's connection; two silent ones make it Disconnected) when set.
fn remote_options() -> jobs_remote::SshOptions {
    let options = jobs_remote::SshOptions::default();
    match std::env::var("JOBCTL_DETACHED_KEEPALIVE")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(secs) => options.detached_keepalive(
            std::time::Duration::from_secs(secs),
            jobs_remote::DEFAULT_DETACHED_KEEPALIVE_COUNT,
        ),
        None => options,
    }
}

/// Loads the plugins of the home's folder, `JOBCTL_PLUGIN_PATH` and
/// `--plugin`; a plugin that does not load is logged and listed, not fatal.
fn load_plugins(session: &Session, home: &Home, extra: &[PathBuf]) -> Vec<TypeEntry> {
    use jobs_core::plugin;
    let var = std::env::var_os("JOBCTL_PLUGIN_PATH");
    let mut paths = plugin_search_path(home.dir(), var.as_deref());
    paths.extend(extra.iter().cloned());
    let scan = plugin::scan(&paths);
    let builtin: Vec<String> = session.executor_types();
    let mut out = Vec::new();
    for p in scan.plugins {
        if builtin.iter().any(|b| b.eq_ignore_ascii_case(&p.type_name)) {
            tracing::warn!(file = %p.file.display(), "plugin type {} is built in; not loaded", p.type_name);
            out.push(TypeEntry {
                type_name: p.type_name.clone(),
                source: format!("{} (not loaded: the type is built in)", p.file.display()),
                version: Some(p.version),
            });
            continue;
        }
        tracing::info!(file = %p.file.display(), "loaded plugin {} {} ({})", p.name, p.version, p.type_name);
        session.register(std::sync::Arc::clone(&p.executor));
        out.push(TypeEntry {
            type_name: p.type_name,
            source: p.file.display().to_string(),
            version: Some(p.version),
        });
    }
    for e in scan.errors {
        // With its cause: the message names the file, the source says why.
        let e = anyhow::Error::new(e);
        tracing::warn!("plugin not loaded: {e:#}");
        out.push(TypeEntry {
            type_name: "-".into(),
            source: format!("not loaded: {e:#}"),
            version: None,
        });
    }
    out
}

/// Registers the executables of the home's `executors` folder and of
/// `JOBCTL_EXECUTOR_PATH` (started at their first job); one that is refused
/// or whose type is taken is logged and listed, not fatal.
fn load_executables(session: &Session, home: &Home) -> Vec<TypeEntry> {
    let var = std::env::var_os("JOBCTL_EXECUTOR_PATH");
    let scan = jobs_exec::scan(&jobs_exec::search_path(home.dir(), var.as_deref()));
    let taken: Vec<String> = session.executor_types();
    let mut out = Vec::new();
    for f in scan.executors {
        let source = format!("executable {}", f.path.display());
        if taken.iter().any(|t| t.eq_ignore_ascii_case(&f.name)) {
            tracing::warn!(
                "executable {}: type {} is taken; not used",
                f.path.display(),
                f.name
            );
            out.push(TypeEntry {
                type_name: f.name,
                source: format!("{source} (not used: the type is taken)"),
                version: None,
            });
            continue;
        }
        tracing::info!("executor {} is {}", f.name, f.path.display());
        session.register(f.executor);
        out.push(TypeEntry {
            type_name: f.name,
            source,
            version: None,
        });
    }
    for e in scan.errors {
        let e = anyhow::Error::new(e);
        tracing::warn!("executable not used: {e:#}");
        out.push(TypeEntry {
            type_name: "-".into(),
            source: format!("not loaded: {e:#}"),
            version: None,
        });
    }
    out
}

/// Where plugins are looked for: `<home>/plugins` if it exists, then each
/// entry of `plugin_path` (colon-separated files or folders, as in
/// `JOBCTL_PLUGIN_PATH`; empty entries are skipped).
fn plugin_search_path(
    home: &std::path::Path,
    plugin_path: Option<&std::ffi::OsStr>,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = home.join("plugins");
    if dir.is_dir() {
        out.push(dir);
    }
    if let Some(var) = plugin_path {
        out.extend(std::env::split_paths(var).filter(|p| !p.as_os_str().is_empty()));
    }
    out
}

/// The job's environment: the caller's (`K=V\0` entries, read in place),
/// with `--env` on top.
pub(crate) fn environment(
    env: &[u8],
    overrides: &[(OsString, OsString)],
) -> Vec<(OsString, OsString)> {
    let overridden = |k: &[u8]| overrides.iter().any(|(o, _)| o.as_bytes() == k);
    let mut vars: Vec<(OsString, OsString)> = env_entries(env)
        .filter(|(k, _)| !overridden(k))
        .map(|(k, v)| {
            (
                OsStr::from_bytes(k).to_owned(),
                OsStr::from_bytes(v).to_owned(),
            )
        })
        .collect();
    for (k, v) in overrides {
        vars.retain(|(ek, _)| ek != k);
        vars.push((k.clone(), v.clone()));
    }
    vars
}

/// The command as the user reads it (bytes that are not UTF-8 show as
/// U+FFFD; the job runs with them as they are).
pub(crate) fn command_line(work: &Work) -> String {
    match work {
        Work::Program { argv } => {
            let words: Vec<_> = argv.iter().map(|a| a.to_string_lossy()).collect();
            jobs_core::command_line(&words)
        }
        Work::Shell { line } => line.to_string_lossy().into_owned(),
        Work::Script { text, file } => file.clone().unwrap_or_else(|| text.clone()),
    }
}

/// The command a remote host runs: text, since it crosses SSH as a shell
/// line; a program or line that is not UTF-8 is refused rather than changed.
pub(crate) fn remote_command_line(work: &Work) -> Result<String, Fail> {
    let utf8 = |s: &OsString| {
        s.to_str().map(str::to_owned).ok_or_else(|| {
            Fail::new(
                ErrorCode::Usage,
                format!(
                    "a remote job's command must be UTF-8 text: {:?} is not",
                    s.to_string_lossy()
                ),
            )
        })
    };
    match work {
        Work::Program { argv } => {
            let words = argv.iter().map(utf8).collect::<Result<Vec<_>, _>>()?;
            Ok(jobs_core::command_line(&words))
        }
        Work::Shell { line } => utf8(line),
        Work::Script { .. } => Err(Fail::new(
            ErrorCode::Usage,
            "a remote job runs a program or a shell line, not a script",
        )),
    }
}

/// The session's limits for thread scripts: the defaults, with
/// `JOBCTL_SCRIPT_MAX_MEMORY` (MiB of the daemon's resident memory past
/// which a running script fails) when set.
fn script_limits() -> jobs_script::Limits {
    let limits = jobs_script::Limits::new();
    match std::env::var("JOBCTL_SCRIPT_MAX_MEMORY")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        Some(mib) => limits.max_memory(mib.saturating_mul(1 << 20)),
        None => limits,
    }
}

/// Translates a `start` request into a spec for the executor it names.
/// `env` is the encoded environment (`K=V\0` entries); `input`, if any,
/// is the job's standard input (process and attached remote jobs), copied
/// once into the spec.
pub(crate) fn job_spec(
    req: StartRequest,
    env: &[u8],
    input: Option<&[u8]>,
) -> Result<JobSpec, Fail> {
    let vars = environment(env, &req.env).into();
    job_spec_with(req, vars, input)
}

/// [`job_spec`] with the environment already made from the caller's and
/// the request's variables (a batch makes it once for all its children).
pub(crate) fn job_spec_with(
    req: StartRequest,
    vars: jobs_process::Env,
    input: Option<&[u8]>,
) -> Result<JobSpec, Fail> {
    if req.throttle == Some(0) {
        return Err(Fail::new(ErrorCode::Usage, "--throttle must be at least 1"));
    }
    if let Work::Program { argv } = &req.work {
        if argv.first().is_none_or(|p| p.is_empty()) {
            return Err(Fail::new(
                ErrorCode::Usage,
                "no program to run: the program after -- is empty",
            ));
        }
    }
    let type_name = if req.hosts.is_empty() {
        type_name_of(req.type_name.as_deref().unwrap_or("process"))
    } else {
        "RemoteJob".to_string()
    };
    if input.is_some() {
        if type_name != "BackgroundJob" && type_name != "RemoteJob" {
            return Err(Fail::new(
                ErrorCode::Usage,
                format!("--input feeds process and remote jobs only, not {type_name}"),
            ));
        }
        if type_name == "RemoteJob" && req.detached {
            return Err(Fail::new(
                ErrorCode::Usage,
                "--input does not go with --detached --host: a detached remote command's stdin is /dev/null on its host",
            ));
        }
        if matches!(req.work, Work::Script { .. }) {
            return Err(Fail::new(
                ErrorCode::Usage,
                "--input does not go with a script: a script job reads no standard input",
            ));
        }
    }
    let mut spec = match type_name.as_str() {
        "BackgroundJob" => process_spec(&req, vars, input)?,
        "ThreadJob" => thread_spec(&req)?,
        "RemoteJob" => {
            if req.retries > 0 {
                return Err(Fail::new(
                    ErrorCode::Usage,
                    "--retries does not go with --host: a remote job's hosts are not run again",
                ));
            }
            let mut spec = remote_spec(&req, &vars, input)?;
            spec.name = req.name;
            spec.after = req.after;
            spec.after_any = req.after_any;
            if spec.has_dependencies() {
                keepable(&mut spec);
            }
            // Per host: the children carry it (see `remote_spec`).
            return Ok(spec);
        }
        _ => {
            let mut spec = JobSpec::new(type_name, command_line(&req.work));
            spec.params = plugin_params(&req, vars.to_vec());
            spec
        }
    };
    spec.name = req.name;
    spec.throttle = req.throttle;
    spec.detached = req.detached;
    spec.after = req.after;
    spec.after_any = req.after_any;
    spec.timeout = req.timeout;
    spec.timeout_shown = req.timeout_shown;
    spec.retries = req.retries;
    spec.retry_delay = req.retry_delay;
    // Another attempt runs the spec again, which an in-process payload
    // cannot be.
    if spec.has_dependencies() || spec.retries > 0 {
        keepable(&mut spec);
    }
    Ok(spec)
}

/// A job that waits for others goes on waiting after a daemon restart only
/// if the store can keep its spec, which an in-process payload cannot be: a
/// process job's payload becomes its params, a remote job's input goes
/// into its params, and a script's payload is dropped (its params say the
/// same, and the script executor reads them).
pub(crate) fn keepable(spec: &mut JobSpec) {
    jobs_remote::RemoteSpec::keepable(spec);
    if let Some(payload) = spec.payload.take() {
        match payload.downcast::<jobs_process::ProcessSpec>() {
            Ok(ps) => spec.params = ps.to_params(),
            Err(other) if spec.params.is_null() => spec.payload = Some(other),
            Err(_) => {}
        }
    }
}

/// What a plugin's executor gets: the work, the directory, the environment.
/// Names, directory and variables are written as UTF-8 strings where they
/// are, as arrays of bytes where not (see `jobs_core::os_serde`).
fn plugin_params(req: &StartRequest, vars: Vec<(OsString, OsString)>) -> serde_json::Value {
    #[derive(serde::Serialize)]
    struct Params<'a> {
        work: &'a Work,
        #[serde(with = "jobs_core::os_serde::string")]
        cwd: &'a OsString,
        #[serde(with = "jobs_core::os_serde::pairs")]
        env: Vec<(OsString, OsString)>,
        hosts: &'a [String],
    }
    let params = Params {
        work: &req.work,
        cwd: &req.cwd,
        env: vars,
        hosts: &req.hosts,
    };
    // Strings, byte arrays and a list of hosts always serialize.
    serde_json::to_value(params).unwrap_or_default()
}

fn process_spec(
    req: &StartRequest,
    vars: jobs_process::Env,
    input: Option<&[u8]>,
) -> Result<JobSpec, Fail> {
    use jobs_process::ProcessSpec;
    let mut ps = match &req.work {
        Work::Program { argv } => ProcessSpec::program(argv.clone()),
        Work::Shell { line } => ProcessSpec::shell(line.clone()),
        Work::Script { .. } => script_worker_spec(&req.work)?,
    };
    ps.cwd = Some(PathBuf::from(&req.cwd));
    ps.env_clear = true;
    // Shared, not copied: the children of a batch hold one list.
    ps.env = match ps.env.is_empty() {
        true => vars,
        false => {
            ps.env.extend(vars.iter().cloned());
            ps.env
        }
    };
    ps.detached = req.detached;
    if let Some(bytes) = input {
        ps.stdin = Some(OsString::from_vec(bytes.to_vec()));
    }
    let mut spec = ps.into_job_spec();
    if let Work::Script { .. } = &req.work {
        spec.command = command_line(&req.work);
    }
    Ok(spec)
}

fn script_worker_spec(work: &Work) -> Result<jobs_process::ProcessSpec, Fail> {
    let Work::Script { text, .. } = work else {
        return Err(Fail::new(ErrorCode::Usage, "not a script"));
    };
    let exe = std::env::current_exe().map_err(|e| {
        Fail::new(
            ErrorCode::Failed,
            format!("cannot find the jobctl executable: {e}"),
        )
    })?;
    let mut argv = vec![exe.to_string_lossy().into_owned()];
    argv.extend(
        jobs_script::worker_args(
            &jobs_script::WorkerScript::Inline(text.clone()),
            &jobs_script::Limits::default(),
        )
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned()),
    );
    Ok(jobs_process::ProcessSpec::program(argv))
}

/// A remote job: a shell line (or a program, quoted) on each host; the
/// throttle bounds the hosts running at once.
fn remote_spec(
    req: &StartRequest,
    vars: &[(OsString, OsString)],
    input: Option<&[u8]>,
) -> Result<JobSpec, Fail> {
    if req.hosts.is_empty() {
        return Err(Fail::new(
            ErrorCode::Usage,
            "a remote job needs --host HOST",
        ));
    }
    let line = remote_command_line(&req.work)?;
    let mut spec = jobs_remote::RemoteSpec::new(req.hosts.clone(), line)
        .caller(caller(vars))
        .detached(req.detached);
    spec.check_hosts().map_err(|e| {
        Fail::new(
            ErrorCode::Usage,
            format!("--host '{}': {}", e.host(), e.message()),
        )
    })?;
    if let Some(t) = req.throttle {
        spec = spec.throttle(t);
    }
    if let Some(input) = input {
        spec = spec.input(input);
    }
    if let Some(limit) = req.timeout {
        spec = spec.timeout(limit);
        spec.timeout_shown = req.timeout_shown.clone();
    }
    Ok(spec.into_job_spec())
}

/// Whose SSH identity a remote job uses: the caller's (`HOME`,
/// `SSH_AUTH_SOCK` of its environment), not the daemon's, which was
/// started by whichever command came first.
pub(crate) fn caller(vars: &[(OsString, OsString)]) -> jobs_remote::Caller {
    let var = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| PathBuf::from(v))
            .filter(|p| !p.as_os_str().is_empty())
    };
    jobs_remote::Caller {
        home: var("HOME"),
        agent_socket: var("SSH_AUTH_SOCK"),
    }
}

/// A thread job: scripts only (the client refuses anything else first).
fn thread_spec(req: &StartRequest) -> Result<JobSpec, Fail> {
    let Work::Script { text, .. } = &req.work else {
        return Err(Fail::new(
            ErrorCode::Usage,
            "a thread job runs scripts only: give the script with -e SCRIPT or --script FILE, or use --type process for a program or a shell line",
        ));
    };
    let mut spec = jobs_script::script_spec(text, &jobs_script::Limits::default());
    spec.command = command_line(&req.work);
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn a_waiting_jobs_spec_carries_no_payload_so_the_store_can_keep_it() {
        let ps = jobs_process::ProcessSpec::shell(std::ffi::OsString::from("echo hi"));
        let mut spec = ps.into_job_spec();
        super::keepable(&mut spec);
        assert!(spec.payload.is_none());
        let back = jobs_process::ProcessSpec::from_params(&spec.params).expect("params");
        assert_eq!(back.display(), "echo hi");
        let mut script = jobs_script::script_spec("1 + 1", &jobs_script::Limits::default());
        super::keepable(&mut script);
        assert!(script.payload.is_none());
        assert_eq!(script.params["script"], "1 + 1");
    }

    #[test]
    fn a_waiting_remote_jobs_input_moves_from_its_payload_into_its_params() {
        let mut spec = jobs_remote::RemoteSpec::new(["h"], "cat")
            .input(vec![1u8, 2, 3])
            .into_job_spec();
        assert!(spec.payload.is_some() && spec.params.get("input").is_none());
        super::keepable(&mut spec);
        assert!(spec.payload.is_none());
        assert_eq!(spec.params["input"], "AQID");
        assert_eq!(spec.params["command"], "cat");
    }

    #[test]
    fn plugin_search_path_is_home_plugins_then_the_variable() {
        let home = tempfile::tempdir().expect("tempdir");
        let var = std::ffi::OsString::from("/opt/a.so::/opt/dir");
        assert_eq!(
            super::plugin_search_path(home.path(), Some(&var)),
            [PathBuf::from("/opt/a.so"), PathBuf::from("/opt/dir")]
        );
        std::fs::create_dir(home.path().join("plugins")).expect("mkdir");
        assert_eq!(
            super::plugin_search_path(home.path(), None),
            [home.path().join("plugins")]
        );
    }
}
