//! The executors of the daemon's session, behind cargo features, and the
//! translation of a `start` request into a [`JobSpec`] for them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use anyhow::Result;
use jobs_core::{JobSpec, Session};

use crate::daemon::Daemon;
use crate::home::Home;
use crate::protocol::{ErrorCode, StartRequest, TypeEntry, Work};
use crate::serve::Fail;

/// The type name a `--type` word stands for (`process` is `BackgroundJob`).
pub fn type_name_of(word: &str) -> String {
    match word.to_ascii_lowercase().as_str() {
        "process" | "backgroundjob" => "BackgroundJob".into(),
        "thread" | "threadjob" => "ThreadJob".into(),
        "remote" | "remotejob" => "RemoteJob".into(),
        _ => word.to_string(),
    }
}

/// Registers the built-in executors and the plugins; returns the types.
pub fn register(session: &Session, home: &Home, plugins: &[PathBuf]) -> Result<Vec<TypeEntry>> {
    let _ = plugins;
    #[cfg(feature = "process")]
    session.register(std::sync::Arc::new(
        // One I/O thread: with the daemon's single worker, a second one only
        // added wake-ups per job, and a 1 GiB receive streams as fast.
        jobs_process::ProcessExecutor::new()
            .detached_dir(home.detached())
            .io_threads(1),
    ));
    #[cfg(feature = "script")]
    session.register(std::sync::Arc::new(jobs_script::ScriptExecutor::new()));
    #[cfg(feature = "remote")]
    session.register(std::sync::Arc::new(jobs_remote::SshExecutor::new()));
    let types: Vec<TypeEntry> = session
        .executor_types()
        .into_iter()
        .map(|t| TypeEntry {
            type_name: t,
            source: "built-in".into(),
            version: None,
        })
        .collect();
    #[cfg(feature = "plugins")]
    let types = {
        let mut types = types;
        types.extend(load_plugins(session, home, plugins));
        types
    };
    #[cfg(not(feature = "plugins"))]
    let _ = (home, plugins);
    Ok(types)
}

/// Loads the plugins of the home's folder, `JOBCTL_PLUGIN_PATH` and
/// `--plugin`; a plugin that does not load is logged and listed, not fatal.
#[cfg(feature = "plugins")]
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

/// Where plugins are looked for: `<home>/plugins` if it exists, then each
/// entry of `plugin_path` (colon-separated files or folders, as in
/// `JOBCTL_PLUGIN_PATH`; empty entries are skipped).
#[cfg(feature = "plugins")]
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

/// The job's environment: the caller's, with `--env` on top.
fn environment(
    env: Vec<(Vec<u8>, Vec<u8>)>,
    overrides: &[(String, String)],
) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = env
        .into_iter()
        .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
        .collect();
    for (k, v) in overrides {
        vars.retain(|(ek, _)| ek.as_os_str() != k.as_str());
        vars.push((k.into(), v.into()));
    }
    vars
}

/// The string itself when it is UTF-8 (no copy), else its bytes with the
/// invalid ones replaced.
fn lossy_string(s: OsString) -> String {
    s.into_string()
        .unwrap_or_else(|s| s.to_string_lossy().into_owned())
}

/// The command as the user wrote it.
fn command_line(work: &Work) -> String {
    match work {
        Work::Program { argv } => jobs_core::command_line(argv),
        Work::Shell { line } => line.clone(),
        Work::Script { text, file } => file.clone().unwrap_or_else(|| text.clone()),
    }
}

/// Translates a `start` request into a spec for the executor it names.
pub fn job_spec(
    d: &Daemon,
    req: StartRequest,
    env: Vec<(Vec<u8>, Vec<u8>)>,
) -> Result<JobSpec, Fail> {
    let _ = d;
    if req.throttle == Some(0) {
        return Err(Fail::new(ErrorCode::Usage, "--throttle must be at least 1"));
    }
    let vars = environment(env, &req.env);
    let type_name = if req.hosts.is_empty() {
        type_name_of(req.type_name.as_deref().unwrap_or("process"))
    } else {
        "RemoteJob".to_string()
    };
    let mut spec = match type_name.as_str() {
        "BackgroundJob" => process_spec(&req, vars)?,
        "ThreadJob" => thread_spec(&req)?,
        "RemoteJob" => {
            let mut spec = remote_spec(&req)?;
            spec.name = req.name;
            return Ok(spec);
        }
        _ => {
            let mut spec = JobSpec::new(type_name, command_line(&req.work));
            spec.params = plugin_params(&req, vars);
            spec
        }
    };
    spec.name = req.name;
    spec.throttle = req.throttle;
    spec.detached = req.detached;
    Ok(spec)
}

/// What a plugin's executor gets: the work, the directory, the environment.
fn plugin_params(req: &StartRequest, vars: Vec<(OsString, OsString)>) -> serde_json::Value {
    let env: Vec<(String, String)> = vars
        .into_iter()
        .map(|(k, v)| (lossy_string(k), lossy_string(v)))
        .collect();
    serde_json::json!({
        "work": req.work,
        "cwd": req.cwd,
        "env": env,
        "hosts": req.hosts,
    })
}

#[cfg(feature = "process")]
fn process_spec(req: &StartRequest, vars: Vec<(OsString, OsString)>) -> Result<JobSpec, Fail> {
    use jobs_process::ProcessSpec;
    let mut ps = match &req.work {
        Work::Program { argv } if argv.is_empty() => {
            return Err(Fail::new(ErrorCode::Usage, "no program to run"))
        }
        Work::Program { argv } => ProcessSpec::program(argv.clone()),
        Work::Shell { line } => ProcessSpec::shell(line.clone()),
        Work::Script { .. } => script_worker_spec(&req.work)?,
    };
    ps.cwd = Some(PathBuf::from(&req.cwd));
    ps.env_clear = true;
    // The environment crosses as strings; a variable that is not UTF-8 is
    // passed with its invalid bytes replaced.
    ps.env.extend(
        vars.into_iter()
            .map(|(k, v)| (lossy_string(k), lossy_string(v))),
    );
    ps.detached = req.detached;
    let mut spec = ps.into_job_spec();
    if let Work::Script { .. } = &req.work {
        spec.command = command_line(&req.work);
    }
    Ok(spec)
}

#[cfg(not(feature = "process"))]
fn process_spec(req: &StartRequest, _vars: Vec<(OsString, OsString)>) -> Result<JobSpec, Fail> {
    let _ = req;
    Err(Fail::new(
        ErrorCode::Failed,
        "unknown job type 'BackgroundJob': this jobctl was built without process jobs",
    ))
}

#[cfg(all(feature = "process", feature = "script"))]
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

#[cfg(all(feature = "process", not(feature = "script")))]
fn script_worker_spec(_work: &Work) -> Result<jobs_process::ProcessSpec, Fail> {
    Err(Fail::new(
        ErrorCode::Failed,
        "this jobctl was built without scripts",
    ))
}

/// A remote job: a shell line (or a program, quoted) on each host; the
/// throttle bounds the hosts running at once.
#[cfg(feature = "remote")]
fn remote_spec(req: &StartRequest) -> Result<JobSpec, Fail> {
    if req.hosts.is_empty() {
        return Err(Fail::new(
            ErrorCode::Usage,
            "a remote job needs --host HOST",
        ));
    }
    if matches!(req.work, Work::Script { .. }) {
        return Err(Fail::new(
            ErrorCode::Usage,
            "a remote job runs a program or a shell line, not a script",
        ));
    }
    if req.detached {
        return Err(Fail::new(
            ErrorCode::Usage,
            "remote jobs cannot be detached",
        ));
    }
    let mut spec = jobs_remote::RemoteSpec::new(req.hosts.clone(), command_line(&req.work));
    if let Some(t) = req.throttle {
        spec = spec.throttle(t);
    }
    Ok(spec.into_job_spec())
}

#[cfg(not(feature = "remote"))]
fn remote_spec(_req: &StartRequest) -> Result<JobSpec, Fail> {
    Err(Fail::new(
        ErrorCode::Failed,
        "unknown job type 'RemoteJob': this jobctl was built without remote jobs",
    ))
}

/// A thread job: scripts only (the client refuses anything else first).
#[cfg(feature = "script")]
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

#[cfg(not(feature = "script"))]
fn thread_spec(_req: &StartRequest) -> Result<JobSpec, Fail> {
    Err(Fail::new(
        ErrorCode::Failed,
        "unknown job type 'ThreadJob': this jobctl was built without scripts",
    ))
}

#[cfg(all(test, feature = "plugins"))]
mod tests {
    use std::path::PathBuf;

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
