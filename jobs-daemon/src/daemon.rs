//! The session daemon: one per home. It owns the [`Session`], listens on
//! the home's Unix socket, and ends the session on `daemon stop` or SIGTERM.
//!
//! Life: `setsid` (no terminal, no job control signals), `umask 077`, check
//! the home (this user's, writable by no one else; see
//! [`jobs_protocol::home`]), take the home's life lock (a second daemon
//! refuses to run) and write the pid into it, open the store, register the
//! executors, restore the jobs of a previous life, then bind the socket
//! (mode 0600) and serve. Each connection is a task of
//! its own, so a client that sends garbage or stalls holds up nobody else.

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use jobs_core::{Session, Store};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::stat::{umask, Mode};
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{Notify, Semaphore};
use tracing::{error, info, warn};

use jobs_protocol::home::{open_private, Access, Home};
use jobs_store_sqlite::SqliteStore;

use crate::executors;
use crate::hooks::Hooks;
use crate::limits::{self, AcceptLog, Limits};
use crate::serve;
use crate::shared::Daemon;

/// Runs the daemon until the session ends.
pub(crate) fn run(home: Home, plugins: Vec<PathBuf>) -> Result<()> {
    // Fails only if we already lead a process group (run by hand): fine.
    let _ = nix::unistd::setsid();
    // Everything the daemon creates (database, data files, logs) is the
    // user's alone, whatever umask the first command had.
    umask(Mode::from_bits_truncate(0o077));
    home.create()?;
    let lock_path = home.daemon_lock();
    let file = open_private(&lock_path, Access::Write)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    let life = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            bail!("a session daemon already runs for {}", home.dir().display())
        }
        Err((_, e)) => return Err(anyhow!(e).context("cannot lock the daemon lock")),
    };
    // The pid, for a client's message when this daemon does not answer.
    let pid = format!("{}\n", std::process::id());
    life.set_len(0)
        .and_then(|()| life.write_all_at(pid.as_bytes(), 0))
        .with_context(|| format!("cannot write to {}", lock_path.display()))?;
    init_logging(&home)?;
    info!(pid = std::process::id(), home = %home.dir().display(), "daemon starting");
    let descriptors = limits::raise_descriptor_limit();
    let limits = Limits::from_env(descriptors);
    info!(
        descriptors,
        max_connections = limits.max_connections,
        idle_ms = limits.idle.as_millis() as u64,
        "limits"
    );
    // One worker thread. The daemon's work per request is short, and a
    // second worker is woken for every task a request spawns: on two cores
    // that hand-off cost a tenth to a fifth of the daemon's CPU per job.
    // Process jobs' pipes and exits are driven on this worker too (see
    // `executors`). A job that writes faster than its receiver reads waits
    // in the store, which lends the worker to another thread meanwhile.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("jobctl-daemon")
        .enable_all()
        .build()
        .context("cannot start the daemon's runtime")?;
    // Served from a task, not from `block_on`'s own thread: accepting a
    // connection and serving it then happen on the one worker, with no
    // wake-up of another thread in between.
    let served = rt.spawn(serve_forever(home.clone(), plugins, limits));
    let result = rt
        .block_on(served)
        .unwrap_or_else(|e| Err(anyhow!("the daemon's task failed: {e}")));
    if let Err(e) = &result {
        error!("daemon failed: {e:#}");
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    info!("daemon exited");
    // The life lock goes with the process, not before: `daemon stop` waits
    // for it, and must not see it free while this process still runs.
    std::mem::forget(life);
    result
}

fn init_logging(home: &Home) -> Result<()> {
    let log = open_private(&home.log(), Access::Append)
        .with_context(|| format!("cannot open {}", home.log().display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("JOBCTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(log))
        .try_init()
        .map_err(|e| anyhow!("cannot start logging: {e}"))
}

fn open_store(home: &Home) -> Result<Arc<SqliteStore>> {
    let path = home.database();
    // The store's error names the file; a context here would say it twice.
    let store = SqliteStore::open(&path)?;
    Ok(Arc::new(store))
}

async fn serve_forever(home: Home, plugins: Vec<PathBuf>, limits: Limits) -> Result<()> {
    let store = open_store(&home)?;
    crate::reported::defer_finished_items(&store);
    let session = Session::builder()
        .store(Arc::clone(&store) as Arc<dyn Store>)
        .runtime(tokio::runtime::Handle::current())
        .build()
        .context("cannot open the session")?;
    let (types, remote) = executors::register(&session, &home, &plugins)?;
    // Before the restore: jobs it ends with the previous session finish too.
    let (hook_events, last_event) = (session.subscribe(), session.last_event());
    let kept = Arc::clone(&store);
    session.rebuild_waiting_batches(Arc::new(move |info| {
        crate::restart::rebuild_batch(&kept, info)
    }));
    let restored = session.restore().context("cannot restore the job table")?;
    if !restored.is_empty() {
        info!(jobs = restored.len(), "restored the job table");
    }
    for (id, why) in store.unreadable_jobs() {
        warn!(
            job = id,
            "job {id} is unreadable in the store ({why}): kept as Failed"
        );
    }
    let hooks = Hooks::new(home.dir(), Arc::clone(&store))?;
    Arc::clone(&hooks).spawn(session.clone(), hook_events, last_event);
    let listener = bind(&home)?;
    let daemon = Arc::new(Daemon {
        hooks,
        session,
        store: Arc::clone(&store),
        types,
        remote,
        closing: AtomicBool::new(false),
        exit: Notify::new(),
        idle: limits.idle,
        closed: tokio::sync::watch::channel(false).0,
    });
    // One slot per connection served; past them a client is told, not
    // left waiting.
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut accept_log = AcceptLog::default();
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot watch SIGHUP")?;
    info!(socket = %home.socket().display(), "listening");
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        let d = Arc::clone(&daemon);
                        tokio::spawn(async move {
                            serve::connection(stream, d).await;
                            drop(slot);
                        });
                    }
                    Err(_) => serve::refuse(&stream, limits.max_connections),
                },
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning,
                    // and log once in a while, not once per client.
                    accept_log.failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = term.recv() => { info!("SIGTERM"); break; }
            _ = int.recv() => { info!("SIGINT"); break; }
            _ = hup.recv() => { info!("SIGHUP ignored"); }
            _ = daemon.exit.notified() => break,
        }
    }
    drop(listener);
    let _ = fs::remove_file(home.socket());
    daemon.close().await;
    // The jobs it ended have finished: their hooks run before it goes.
    let last = daemon.session.last_event();
    if daemon.hooks.drain(last, crate::hooks::STOP_WAIT).await {
        info!("the hooks of the ended jobs have run");
    }
    store
        .flush()
        .context("cannot write the last records to the job database")?;
    Ok(())
}

fn bind(home: &Home) -> Result<UnixListener> {
    let path = home.socket();
    // We hold the life lock, so a socket file left here is stale.
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!(e).context(format!("cannot remove {}", path.display()))),
    }
    let old = umask(Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(&path);
    umask(old);
    let listener = bound.with_context(|| format!("cannot listen on {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    Ok(listener)
}
