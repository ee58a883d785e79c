//! Runs a parsed command: talks to the daemon and writes the answer.

use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::CommandFactory;
use jobs_core::{JobInfo, JobState};

use crate::cli::{Cli, Command, DaemonAction, Lazy, ListArgs, ReceiveArgs, SelectArgs, StartArgs};
use crate::client::{self, Client};
use crate::each;
use crate::exit::{self, Exit};
use crate::hosts;
use crate::output::{RecordWriter, View, Written};
use crate::progress;
use crate::render;
use crate::summary;
use crate::view::{Gatherer, Names, Tagger};
use jobs_protocol::home::Home;
use jobs_protocol::{
    encode_env, Each, ListRequest, Op, ReceiveRequest, RemoveRequest, Response, RestartRequest,
    SelectRequest, StartRequest, WaitRequest, Work, MAX_START_INPUT,
};

/// Runs the command line; returns the exit code.
pub(crate) fn run(cli: Cli) -> Result<i32> {
    let home = || Home::resolve(cli.home.clone());
    match cli.command {
        Command::Start(Lazy(args)) => start(&home()?, args),
        Command::List(Lazy(args)) => list(&home()?, args),
        Command::Show { id, json } => show(&home()?, id, json),
        Command::Receive(Lazy(args)) => receive(&home()?, args),
        Command::Wait(Lazy(args)) => {
            let timeout_ms = match args.timeout {
                Some(s) if !(s.is_finite() && s >= 0.0) => {
                    return Err(anyhow!(Exit::new(
                        exit::USAGE,
                        format!("--timeout {s} is not a number of seconds")
                    )))
                }
                Some(s) => Some((s * 1000.0).round() as u64),
                None => None,
            };
            wait(&home()?, args.ids, args.any, args.force, timeout_ms)
        }
        Command::Stop(Lazy(a)) => {
            let s = a.select;
            let home = home()?;
            let c = Client::connect_or_start(&home, &[])?;
            let grace_ms = a
                .grace
                .map(|g| g.as_millis().try_into().unwrap_or(u64::MAX));
            // Asked twice, a stop does what it did once: a daemon that goes
            // away before it answers is asked again of a new one.
            let resp = c.ask(&home, || {
                Op::Stop(SelectRequest {
                    ids: s.ids.clone(),
                    name: s.name.clone(),
                    state: s.state,
                    signal: a.signal,
                    grace_ms,
                })
            })?;
            let Response::Jobs(stopped) = resp else {
                return Err(unexpected(resp));
            };
            // As PowerShell's `Stop-Job -PassThru`: the rows as `list`.
            if !s.quiet && !stopped.is_empty() {
                stdout_table(&stopped)?;
            }
            Ok(exit::SUCCESS)
        }
        // Made twice, a suspend does what it did once; a resume would find
        // its jobs Running the second time, and refuse them.
        Command::Suspend(Lazy(s)) => passthru(&home()?, s, Op::Suspend, true),
        Command::Resume(Lazy(s)) => passthru(&home()?, s, Op::Resume, false),
        Command::Restart(Lazy(r)) => {
            let mut c = Client::connect_or_start(&home()?, &[])?;
            let resp = c.call(Op::Restart(RestartRequest {
                ids: r.ids,
                failed: r.failed,
            }))?;
            let Response::Jobs(rows) = resp else {
                return Err(unexpected(resp));
            };
            if r.quiet {
                let ids: String = rows.iter().map(|j| format!("{}\n", j.id)).collect();
                ignore_closed(io::stdout().lock().write_all(ids.as_bytes()))?;
            } else {
                stdout_table(&rows)?;
            }
            Ok(exit::SUCCESS)
        }
        Command::Connect(Lazy(s)) => passthru(&home()?, s, Op::Connect, false),
        Command::Remove(Lazy(r)) => {
            let mut c = Client::connect_or_start(&home()?, &[])?;
            expect_done(c.call(Op::Remove(RemoveRequest {
                select: SelectRequest {
                    ids: r.ids,
                    name: r.name,
                    state: r.state,
                    ..SelectRequest::default()
                },
                all: r.all,
                force: r.force,
            }))?)?;
            Ok(exit::SUCCESS)
        }
        Command::Run(Lazy(args)) => run_job(&home()?, args),
        Command::Daemon { action } => daemon(&home()?, action),
        Command::Events(Lazy(args)) => crate::events::events(&home()?, args),
        Command::Plugins => plugins(&home()?),
        Command::Top => crate::top::run(&home()?),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "jobctl", &mut io::stdout());
            Ok(exit::SUCCESS)
        }
    }
}

fn unexpected(r: Response) -> anyhow::Error {
    anyhow!("unexpected reply from the session daemon: {r:?}")
}

fn expect_done(r: Response) -> Result<Vec<u64>> {
    match r {
        Response::Done(ids) => Ok(ids),
        Response::Removed { ids, warnings } => {
            for w in warnings {
                eprintln!("jobctl: warning: {w}");
            }
            Ok(ids)
        }
        other => Err(unexpected(other)),
    }
}

/// `suspend`, `resume` and `connect`: asks `op` of the selected jobs and prints
/// their rows afterwards (as `-PassThru`), unless `-q`.
/// Sends `op` over the selected jobs and prints the rows it returns;
/// `again`: asked again of a new daemon if the daemon goes away before it
/// answers (for a request that, made twice, does what it did once).
fn passthru(home: &Home, s: SelectArgs, op: fn(SelectRequest) -> Op, again: bool) -> Result<i32> {
    let mut c = Client::connect_or_start(home, &[])?;
    let request = || {
        op(SelectRequest {
            ids: s.ids.clone(),
            name: s.name.clone(),
            state: s.state,
            ..SelectRequest::default()
        })
    };
    let resp = if again {
        c.ask(home, request)?
    } else {
        c.call(request())?
    };
    let Response::Jobs(rows) = resp else {
        return Err(unexpected(resp));
    };
    if !s.quiet && !rows.is_empty() {
        stdout_table(&rows)?;
    }
    Ok(exit::SUCCESS)
}

fn stdout_table(jobs: &[JobInfo]) -> Result<()> {
    let mut out = io::stdout().lock();
    ignore_closed(render::table(&mut out, jobs).and_then(|_| out.flush()))
}

/// A closed stdout (`| head`) is not an error worth a message.
fn ignore_closed(r: io::Result<()>) -> Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn start_request(args: &StartArgs, hosts: Vec<String>) -> Result<StartRequest> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let cwd = match &args.cwd {
        Some(d) => cwd.join(d),
        None => cwd,
    };
    let work = if let Some(line) = &args.shell {
        Work::Shell { line: line.clone() }
    } else if let Some(text) = &args.script {
        Work::Script {
            text: text.clone(),
            file: None,
        }
    } else if let Some(file) = &args.script_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the script {}", file.display()))?;
        Work::Script {
            text,
            file: Some(file.display().to_string()),
        }
    } else {
        Work::Program {
            argv: args.argv.clone(),
        }
    };
    let is_thread = args
        .type_name
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("thread") || t.eq_ignore_ascii_case("ThreadJob"));
    if is_thread && !matches!(work, Work::Script { .. }) {
        return Err(anyhow!(Exit::new(
            exit::USAGE,
            "a thread job runs scripts only: give the script with -e SCRIPT or --script FILE, or use --type process for a program or a shell line"
        )));
    }
    if (!args.hosts.is_empty() || args.hosts_of.is_some())
        && args.type_name.as_deref().is_some_and(|t| {
            !(t.eq_ignore_ascii_case("remote") || t.eq_ignore_ascii_case("RemoteJob"))
        })
    {
        return Err(anyhow!(Exit::new(
            exit::USAGE,
            "--host and --hosts-of run a remote job: they do not go with another --type"
        )));
    }
    Ok(StartRequest {
        work,
        type_name: args.type_name.clone(),
        name: args.name.clone(),
        hosts,
        throttle: args.throttle,
        cwd: cwd.into_os_string(),
        env: args.env.clone(),
        detached: args.detached,
        each: None,
        input_len: None,
        after: args.after.clone(),
        after_any: args.after_any.clone(),
        timeout: args.timeout.as_ref().map(|(limit, _)| *limit),
        timeout_shown: args.timeout.as_ref().map(|(_, shown)| shown.clone()),
        retries: args.retries,
        retry_delay: args.retry_delay,
        on_finish: args.on_finish.clone(),
    })
}

/// Starts the job; `hosts` are the expanded `--host` patterns.
fn start_job(c: &mut Client, args: &StartArgs, hosts: Vec<String>) -> Result<JobInfo> {
    use std::os::unix::ffi::OsStrExt;
    let mut req = start_request(args, hosts)?;
    let mut blob = encode_env(
        std::env::vars_os().map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec())),
    );
    let env_len = blob.len();
    if let Some(file) = &args.each {
        req.each = Some(Each {
            env_len: env_len as u64,
            null: args.null,
            halt: args.halt.clone(),
            retries: args.retries,
            slots: args.slots,
            on_all: args.on_all,
        });
        if args.input.is_none() {
            each::send_batch(c, req, blob, file)?;
            return started(c);
        }
        read_all(file, "--each", "the items", env_len, &mut blob)?;
    }
    if let Some(file) = &args.input {
        if args.each.as_deref() == Some(Path::new("-")) && file.as_os_str() == "-" {
            return Err(anyhow!(Exit::new(
                exit::USAGE,
                "--each - and --input - cannot both read standard input"
            )));
        }
        let before = blob.len();
        read_all(file, "--input", "the input", env_len, &mut blob)?;
        req.input_len = Some((blob.len() - before) as u64);
    }
    c.send(Op::Start(Box::new(req)), &blob)?;
    started(c)
}

/// The daemon's answer to a start.
fn started(c: &mut Client) -> Result<JobInfo> {
    match c.recv()?.0 {
        Response::Started(info) => Ok(info),
        other => Err(unexpected(other)),
    }
}

/// Appends FILE (`-`: standard input) of `flag` to `blob`; it travels
/// whole, so it must fit in one message.
/// Items and input together take at most `MAX_START_INPUT` bytes past the
/// environment's `env_len`.
fn read_all(file: &Path, flag: &str, what: &str, env_len: usize, blob: &mut Vec<u8>) -> Result<()> {
    let room = (env_len + MAX_START_INPUT).saturating_sub(blob.len());
    let (mut input, shown) = crate::each::open_input(file, flag)?;
    let start = blob.len();
    let read = input
        .by_ref()
        .take(room as u64 + 1)
        .read_to_end(blob)
        .with_context(|| format!("cannot read {what} from {shown}"))?;
    if read > room {
        blob.truncate(start);
        return Err(anyhow!(Exit::new(
            exit::USAGE,
            format!(
                "{flag}: {what} from {shown} are over the {} MiB one start takes",
                MAX_START_INPUT >> 20
            )
        )));
    }
    Ok(())
}

fn start(home: &Home, args: StartArgs) -> Result<i32> {
    let hosts = hosts::resolve(home, &args.hosts, &args.exclude)?;
    let mut c = Client::connect_or_start(home, &[])?;
    let hosts = hosts::of_job(home, &mut c, &args, hosts)?;
    let info = start_job(&mut c, &args, hosts)?;
    if args.quiet {
        ignore_closed(writeln!(io::stdout(), "{}", info.id))?;
    } else {
        stdout_table(&[info])?;
    }
    Ok(exit::SUCCESS)
}

fn list(home: &Home, a: ListArgs) -> Result<i32> {
    let c = Client::connect_or_start(home, &[])?;
    let resp = c.ask(home, || {
        Op::List(ListRequest {
            ids: a.ids.clone(),
            name: a.name.clone(),
            state: a.state,
            type_name: a.type_name.clone(),
            command: a.command.clone(),
            has_more_data: a.has_more_data,
            newest: a.newest,
            include_children: a.include_children,
        })
    })?;
    let Response::Jobs(jobs) = resp else {
        return Err(unexpected(resp));
    };
    if a.json {
        let mut out = io::stdout().lock();
        ignore_closed(render::json_list(&mut out, &jobs).and_then(|_| out.flush()))?;
    } else {
        stdout_table(&jobs)?;
    }
    Ok(exit::SUCCESS)
}

fn show(home: &Home, id: u64, json: bool) -> Result<i32> {
    let c = Client::connect_or_start(home, &[])?;
    let resp = c.ask(home, || Op::Show { id })?;
    let Response::Shown {
        job,
        children,
        dependencies,
    } = resp
    else {
        return Err(unexpected(resp));
    };
    let mut out = io::stdout().lock();
    let r = if json {
        render::show_json(&mut out, &job, &children)
    } else {
        render::show(&mut out, &job, &children, &dependencies)
    };
    ignore_closed(r.and_then(|_| out.flush()))?;
    Ok(exit::SUCCESS)
}

/// Streams records until the daemon says the receive is over; returns the
/// final rows, or `None` if stdout closed first. Each answer tells the
/// daemon how many records reached their reader (see `output`): those are
/// consumed, the rest come again on the next receive.
fn receive_stream(
    c: &mut Client,
    req: ReceiveRequest,
    w: &mut RecordWriter,
    mut feed: Option<&mut crate::events::EventFeed>,
) -> Result<Option<Vec<JobInfo>>> {
    c.send(Op::Receive(req), &[])?;
    let mut blob = Vec::new();
    loop {
        let resp = c.recv_into(&mut blob)?;
        match resp {
            Response::Page(parts) => match write_events(&mut feed, w, false)
                .and_then(|()| Ok(w.write_page(&parts, &blob)?))?
            {
                Written::All => c.send(
                    Op::Ack {
                        written: parts.len(),
                        delivered: w.delivered(),
                    },
                    &[],
                )?,
                Written::Partial(n) => {
                    // The reader went away: say what it got, stop.
                    let delivered = w.delivered();
                    go_away(c, &mut blob, n, delivered);
                    return Ok(None);
                }
            },
            Response::Settle => {
                let (delivered, there) = w.settle().context("cannot write to stdout")?;
                if !there {
                    go_away(c, &mut blob, 0, delivered);
                    return Ok(None);
                }
                c.send(
                    Op::Ack {
                        written: 1,
                        delivered,
                    },
                    &[],
                )?;
            }
            Response::End(rows) => {
                write_events(&mut feed, w, true)?;
                for r in &rows {
                    if r.state == JobState::Failed {
                        let reason = r.reason.as_deref().unwrap_or("failed");
                        w.note(&format!(
                            "jobctl: job {} ({}) failed: {}",
                            r.id,
                            render::visible(&r.name),
                            render::visible(reason)
                        ));
                    }
                }
                w.finish();
                return Ok(Some(rows));
            }
            other => return Err(unexpected(other)),
        }
    }
}

/// Writes the events `feed` has ready (at the `end`: all it has left).
fn write_events(
    feed: &mut Option<&mut crate::events::EventFeed>,
    w: &mut RecordWriter,
    end: bool,
) -> Result<()> {
    let Some(f) = feed.as_deref_mut() else {
        return Ok(());
    };
    let events = if end { f.rest()? } else { f.ready() };
    for ev in &events {
        w.event(ev).context("cannot write to stdout")?;
    }
    Ok(())
}

/// Consumes the first `shown` records a receive of `ids` gives, writing
/// nothing: what `--gather` showed, which came in the same order (records
/// that came since follow them, and stay).
fn consume(c: &mut Client, ids: &[u64], no_recurse: bool, shown: u64) -> Result<()> {
    c.send(
        Op::Receive(ReceiveRequest {
            ids: ids.to_vec(),
            keep: false,
            wait: false,
            no_recurse,
        }),
        &[],
    )?;
    let mut blob = Vec::new();
    let mut seen = 0u64;
    loop {
        match c.recv_into(&mut blob)? {
            Response::Page(parts) => {
                seen += parts.iter().filter(|p| !p.more).count() as u64;
                let delivered = seen.min(shown);
                c.send(
                    Op::Ack {
                        written: parts.len(),
                        delivered,
                    },
                    &[],
                )?;
            }
            Response::Settle => c.send(
                Op::Ack {
                    written: 1,
                    delivered: seen.min(shown),
                },
                &[],
            )?,
            Response::End(_) => return Ok(()),
            other => return Err(unexpected(other)),
        }
    }
}

/// Ends a receive whose reader went away: the last ack, then what the
/// daemon still sends is read and dropped until it closes the connection,
/// so that the ack is handled (the records consumed) before `jobctl`
/// exits and a next receive starts.
fn go_away(c: &mut Client, blob: &mut Vec<u8>, written: usize, delivered: u64) {
    if c.send(Op::Ack { written, delivered }, &[]).is_ok() {
        while c.recv_into(blob).is_ok() {}
    }
}

fn receive(home: &Home, a: ReceiveArgs) -> Result<i32> {
    let mut c = Client::connect_or_start(home, &[])?;
    let ids = a.ids.clone();
    let names = || -> Result<Names> { Ok(Names::new(Client::connect(home)?, &ids)) };
    let view = if a.tag {
        View::Tag(Tagger::new(names()?))
    } else if a.gather {
        View::Gather(Gatherer::new(names()?))
    } else {
        View::Plain
    };
    let mut w = RecordWriter::new(a.json, view).context("cannot open stdout")?;
    let line = if a.wait {
        progress::show(home, &ids)
    } else {
        None
    };
    let mut feed = if a.write_events {
        let mut ids = a.ids.clone();
        if !a.no_recurse {
            ids.extend(children_of(&mut c, &a.ids)?);
        }
        Some(crate::events::EventFeed::start(home, ids, a.wait)?)
    } else {
        None
    };
    let rows = if a.ordered {
        receive_ordered(&mut c, &a)?
    } else {
        receive_stream(
            &mut c,
            ReceiveRequest {
                ids: a.ids.clone(),
                // A gather consumes what it showed only once it was shown.
                keep: a.keep || a.gather,
                wait: a.wait,
                no_recurse: a.no_recurse,
            },
            &mut w,
            feed.as_mut(),
        )?
    };
    if a.gather && rows.is_some() {
        if !w.write_gathered().context("cannot write to stdout")? {
            return Ok(exit::SUCCESS);
        }
        if !a.keep && !a.auto_remove {
            consume(&mut c, &ids, a.no_recurse, w.seen())?;
        }
    }
    drop(line);
    if let (Some(rows), true) = (&rows, a.wait) {
        summarize(&mut c, rows);
    }
    if rows.is_some() && a.auto_remove {
        expect_done(c.call(Op::Remove(RemoveRequest {
            select: SelectRequest {
                ids,
                ..SelectRequest::default()
            },
            all: false,
            force: false,
        }))?)?;
    }
    Ok(exit::SUCCESS)
}

/// The children of `ids` (and theirs), from the job table.
fn children_of(c: &mut Client, ids: &[u64]) -> Result<Vec<u64>> {
    let resp = c.call(Op::List(ListRequest {
        ids: ids.to_vec(),
        include_children: true,
        ..ListRequest::default()
    }))?;
    let Response::Jobs(jobs) = resp else {
        return Err(unexpected(resp));
    };
    Ok(jobs
        .iter()
        .flat_map(|j| j.children.iter().copied())
        .collect())
}

/// `receive --ordered`: for each job, its own records, then each child's
/// in turn, one child at a time (with `--wait`, each followed to its end
/// before the next): a batch's output in item order, as GNU parallel `-k`.
fn receive_ordered(c: &mut Client, a: &ReceiveArgs) -> Result<Option<Vec<JobInfo>>> {
    let mut rows = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // The rows alone (`list`): each names its children's ids, and `show`
    // would send every child's row too.
    let resp = c.call(Op::List(ListRequest {
        ids: a.ids.clone(),
        include_children: true,
        ..ListRequest::default()
    }))?;
    let Response::Jobs(mut jobs) = resp else {
        return Err(unexpected(resp));
    };
    // In the order the ids were given.
    jobs.sort_by_key(|j| a.ids.iter().position(|&id| id == j.id));
    for job in jobs {
        let mut sources = vec![(job.id, true)];
        sources.extend(job.children.iter().map(|&c| (c, false)));
        for (source, own) in sources {
            if !seen.insert(source) {
                continue;
            }
            let got = receive_stream(
                c,
                ReceiveRequest {
                    ids: vec![source],
                    keep: a.keep,
                    // A parent's own records first: its children follow.
                    wait: a.wait && !own,
                    no_recurse: own,
                },
                // Each receive counts what it delivered from its own start.
                &mut RecordWriter::new(a.json, View::Plain).context("cannot open stdout")?,
                None,
            )?;
            match got {
                Some(r) => rows.extend(r),
                None => return Ok(None),
            }
        }
    }
    Ok(Some(rows))
}

/// Writes to stderr the closing summary of each of `rows` that is a parent
/// with more than one child (see `summary`). A summary that cannot be had
/// (the job was removed meanwhile) is left out: it never changes the exit
/// code.
fn summarize(c: &mut Client, rows: &[JobInfo]) {
    for r in rows.iter().filter(|r| r.children.len() > 1) {
        if let Ok(Response::Shown { children, .. }) = c.call(Op::Show { id: r.id }) {
            if let Some(line) = summary::line(&children) {
                let _ = writeln!(io::stderr(), "{line}");
            }
        }
    }
}

fn wait(
    home: &Home,
    ids: Vec<u64>,
    any: bool,
    force: bool,
    timeout_ms: Option<u64>,
) -> Result<i32> {
    let c = Client::connect_or_start(home, &[])?;
    let line = progress::show(home, &ids);
    let resp = c.ask(home, || {
        Op::Wait(WaitRequest {
            ids: ids.clone(),
            any,
            timeout_ms,
            force,
        })
    })?;
    drop(line);
    let Response::Waited { done, timed_out } = resp else {
        return Err(unexpected(resp));
    };
    if timed_out {
        return Ok(exit::TIMEOUT);
    }
    stdout_table(&done)?;
    Ok(exit::SUCCESS)
}

/// Ctrl-C (or SIGTERM, SIGHUP) while `run` follows its job stops the job;
/// the receive then ends as the job does, and `run` exits 130.
/// The signals are caught from before the start, so that one arriving
/// while the job starts is not lost.
fn stop_on_interrupt(home: &Home, signals: Option<signal_hook::iterator::Signals>, id: u64) {
    let Some(mut signals) = signals else {
        return;
    };
    let home = home.clone();
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            if let Ok(Some(mut c)) = Client::connect(&home) {
                let _ = c.call(Op::Stop(SelectRequest {
                    ids: vec![id],
                    ..SelectRequest::default()
                }));
            }
        }
    });
}

fn run_job(home: &Home, args: StartArgs) -> Result<i32> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let hosts = hosts::resolve(home, &args.hosts, &args.exclude)?;
    let mut c = Client::connect_or_start(home, &[])?;
    let hosts = hosts::of_job(home, &mut c, &args, hosts)?;
    let signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).ok();
    let info = start_job(&mut c, &args, hosts)?;
    let id = info.id;
    stop_on_interrupt(home, signals, id);
    let mut w = RecordWriter::new(false, View::Plain).context("cannot open stdout")?;
    let rows = receive_stream(
        &mut c,
        ReceiveRequest {
            ids: vec![id],
            keep: false,
            wait: true,
            no_recurse: false,
        },
        &mut w,
        None,
    )?;
    let Some(rows) = rows else {
        return Ok(exit::SUCCESS);
    };
    summarize(&mut c, &rows);
    let row = rows
        .into_iter()
        .find(|r| r.id == id)
        .context("the job vanished while it ran")?;
    expect_done(c.call(Op::Remove(RemoveRequest {
        select: SelectRequest {
            ids: vec![id],
            ..SelectRequest::default()
        },
        all: false,
        force: false,
    }))?)?;
    Ok(match row.state {
        JobState::Completed => row.exit_code.unwrap_or(exit::SUCCESS),
        JobState::Stopped => exit::STOPPED,
        _ => row.exit_code.filter(|&c| c != 0).unwrap_or(exit::FAILURE),
    })
}

fn daemon(home: &Home, action: DaemonAction) -> Result<i32> {
    match action {
        DaemonAction::Start { plugins } => {
            if let Some(pid) = Client::live_pid(home)? {
                if !plugins.is_empty() {
                    bail!("the session daemon already runs (pid {pid}); stop it to load plugins");
                }
                println!("running, pid {pid}");
                return Ok(exit::SUCCESS);
            }
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            let plugins: Vec<_> = plugins.into_iter().map(|p| cwd.join(p)).collect();
            let mut c = Client::connect_or_start(home, &plugins)?;
            println!("running, pid {}", status_pid(&mut c)?);
            Ok(exit::SUCCESS)
        }
        DaemonAction::Stop => {
            let Some(mut c) = Client::connect(home)? else {
                println!("not running");
                return Ok(exit::SUCCESS);
            };
            let resp = c.call(Op::Shutdown)?;
            let Response::Status { .. } = resp else {
                return Err(unexpected(resp));
            };
            client::wait_daemon_gone(home, Duration::from_secs(30))?;
            Ok(exit::SUCCESS)
        }
        DaemonAction::Status => {
            match Client::live_pid(home)? {
                Some(pid) => println!("running, pid {pid}"),
                None => println!("not running"),
            }
            Ok(exit::SUCCESS)
        }
    }
}

fn status_pid(c: &mut Client) -> Result<u32> {
    match c.call(Op::Status)? {
        Response::Status { pid } => Ok(pid),
        other => Err(unexpected(other)),
    }
}

fn plugins(home: &Home) -> Result<i32> {
    let c = Client::connect_or_start(home, &[])?;
    let resp = c.ask(home, || Op::Plugins)?;
    let Response::Plugins(types) = resp else {
        return Err(unexpected(resp));
    };
    let width = types
        .iter()
        .map(|t| t.type_name.len())
        .max()
        .unwrap_or(0)
        .max("PSJobTypeName".len());
    let mut out = String::new();
    out.push_str(&format!("{:width$}  Source\n", "PSJobTypeName"));
    out.push_str(&format!("{:width$}  ------\n", "-".repeat(13)));
    for t in types {
        let source = match t.version {
            Some(v) => format!("{} (version {v})", t.source),
            None => t.source,
        };
        out.push_str(&format!("{:width$}  {source}\n", t.type_name));
    }
    ignore_closed(io::stdout().lock().write_all(out.as_bytes()))?;
    Ok(exit::SUCCESS)
}
