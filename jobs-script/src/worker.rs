//! Scripts as process jobs: the worker mode of a binary, writing records to
//! the process executor's side channel as JSON lines.

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use jobs_core::{ErrorRecord, Payload, Record, StopToken, Stream};
use rhai::Dynamic;

use crate::source::read_exactly;
use crate::value::to_json;
use crate::{read_script_file, run_script, Limits, ScriptErrorKind, Sink};

/// The first argument that puts a binary in worker mode (`jobctl __worker`).
pub const WORKER_ARG: &str = "__worker";

pub use jobs_core::channel::{FAILURE_CATEGORY, RECORDS_FD_ENV};

/// Exit code: the script completed.
pub const EXIT_COMPLETED: i32 = 0;
/// Exit code: the script failed (threw, did not parse, hit a limit).
pub const EXIT_FAILED: i32 = 1;
/// Exit code: the worker's arguments or records channel were unusable.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the script was stopped by SIGTERM or SIGINT (128 + SIGTERM).
pub const EXIT_STOPPED: i32 = 143;

/// Where a worker takes its script from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerScript {
    /// The source text itself (`-e`).
    Inline(String),
    /// A file to read it from (`--script`), at most
    /// [`MAX_SCRIPT_SIZE`](crate::MAX_SCRIPT_SIZE) bytes.
    File(PathBuf),
    /// The source text, given to the worker on its stdin: only its length
    /// is an argument (`--stdin-bytes N`). The way for a process job: an
    /// argument holds at most 128 KiB and shows in the process table.
    Stdin(String),
}

impl WorkerScript {
    /// The text to write to the worker's stdin ([`WorkerScript::Stdin`]),
    /// e.g. with `jobs_process::ProcessSpec::stdin`.
    pub fn stdin(&self) -> Option<&str> {
        match self {
            WorkerScript::Stdin(text) => Some(text),
            WorkerScript::Inline(_) | WorkerScript::File(_) => None,
        }
    }
}

/// The arguments that start a worker for `script`, beginning with
/// [`WORKER_ARG`]: run the binary that calls [`worker_main`] with them.
pub fn worker_args(script: &WorkerScript, limits: &Limits) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![WORKER_ARG.into()];
    if *limits != Limits::default() {
        args.push("--limits".into());
        args.push(serde_json::to_string(limits).unwrap_or_default().into());
    }
    match script {
        WorkerScript::Inline(s) => {
            args.push("-e".into());
            args.push(s.into());
        }
        WorkerScript::File(p) => {
            args.push("--script".into());
            args.push(p.into());
        }
        WorkerScript::Stdin(s) => {
            args.push("--stdin-bytes".into());
            args.push(s.len().to_string().into());
        }
    }
    args
}

/// Where [`worker_main`] was told to take the script from.
enum Source {
    Inline(String),
    File(PathBuf),
    Stdin(usize),
}

/// An error and its causes, `: `-separated, for a line on stderr.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn usage(msg: &str) -> i32 {
    eprintln!("{WORKER_ARG}: {msg}");
    EXIT_USAGE
}

/// The worker mode's entry point: `args` are those after [`WORKER_ARG`]
/// (`[--limits JSON] (-e SCRIPT | --script FILE | --stdin-bytes N)`). A
/// script file, or the N bytes read from stdin, may hold at most
/// [`MAX_SCRIPT_SIZE`](crate::MAX_SCRIPT_SIZE) bytes. Runs the script as [`run_worker`] does and
/// returns the process's exit code.
pub fn worker_main<I: IntoIterator<Item = OsString>>(args: I) -> i32 {
    let mut args = args.into_iter();
    let mut limits = Limits::default();
    let mut script = None;
    while let Some(arg) = args.next() {
        let Some(arg) = arg.to_str().map(str::to_string) else {
            return usage("arguments must be UTF-8");
        };
        let Some(value) = args.next() else {
            return usage(&format!("{arg} needs a value"));
        };
        match arg.as_str() {
            "--limits" => match value.to_str().map(serde_json::from_str::<Limits>) {
                Some(Ok(l)) => limits = l,
                Some(Err(e)) => return usage(&format!("bad --limits: {e}")),
                None => return usage("--limits must be UTF-8"),
            },
            "-e" => match value.into_string() {
                Ok(s) => script = Some(Source::Inline(s)),
                Err(_) => return usage("a script must be UTF-8"),
            },
            "--script" => script = Some(Source::File(value.into())),
            "--stdin-bytes" => match value.to_str().map(str::parse::<usize>) {
                Some(Ok(n)) => script = Some(Source::Stdin(n)),
                _ => return usage("--stdin-bytes needs a number of bytes"),
            },
            other => return usage(&format!("unknown argument {other}")),
        }
    }
    let source = match script {
        Some(Source::Inline(s)) => Ok(s),
        Some(Source::File(p)) => read_script_file(&p),
        Some(Source::Stdin(n)) => read_exactly(io::stdin().lock(), n, "on stdin"),
        None => return usage("no script: give -e SCRIPT, --script FILE or --stdin-bytes N"),
    };
    match source {
        Ok(source) => run_worker(&source, &limits),
        Err(e) => usage(&error_chain(&e)),
    }
}

/// Runs `script` in this process as a worker: records go to the channel
/// named by [`RECORDS_FD_ENV`] (or, without it, to stdout and stderr as
/// text), SIGTERM and SIGINT stop it between operations. Returns the exit
/// code: [`EXIT_COMPLETED`], [`EXIT_FAILED`], [`EXIT_STOPPED`] or
/// [`EXIT_USAGE`].
pub fn run_worker(script: &str, limits: &Limits) -> i32 {
    let channel: Option<Box<dyn Write + Send>> = match std::env::var(RECORDS_FD_ENV) {
        Ok(fd) => match open_channel(&fd) {
            Ok(file) => Some(Box::new(file)),
            Err(e) => return usage(&format!("cannot open {RECORDS_FD_ENV}={fd}: {e}")),
        },
        Err(_) => None,
    };
    let stop = StopToken::new();
    if let Err(e) = watch_signals(stop.clone()) {
        eprintln!("{WORKER_ARG}: cannot watch for SIGTERM: {e}");
    }
    run_worker_with(script, limits, channel, &stop)
}

/// Opens the inherited descriptor `fd` as a file through `/dev/fd`, so no
/// descriptor is adopted unsafely.
fn open_channel(fd: &str) -> io::Result<std::fs::File> {
    let n: u32 = fd
        .trim()
        .parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "not a descriptor number"))?;
    OpenOptions::new().write(true).open(format!("/dev/fd/{n}"))
}

/// Triggers `stop` on SIGTERM or SIGINT, from a thread of its own.
fn watch_signals(stop: StopToken) -> io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("worker-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop.trigger();
            }
        })?;
    Ok(())
}

/// As [`run_worker`], with the records channel and the stop token given
/// (`None`: text on stdout and stderr). No signal is watched.
pub fn run_worker_with(
    script: &str,
    limits: &Limits,
    channel: Option<Box<dyn Write + Send>>,
    stop: &StopToken,
) -> i32 {
    let sink: Arc<WorkerSink> = Arc::new(match channel {
        Some(w) => WorkerSink::Channel(Mutex::new(w)),
        None => WorkerSink::Stdio,
    });
    match run_script(script, limits, Arc::clone(&sink) as Arc<dyn Sink>, stop) {
        Ok(()) => EXIT_COMPLETED,
        Err(e) if e.kind() == ScriptErrorKind::Stopped => EXIT_STOPPED,
        Err(e) => {
            sink.fail(e.reason());
            EXIT_FAILED
        }
    }
}

/// A worker's records: JSON lines on the channel, or text on stdio.
enum WorkerSink {
    Channel(Mutex<Box<dyn Write + Send>>),
    Stdio,
}

impl WorkerSink {
    /// Reports the failure's reason: an error record of category
    /// [`FAILURE_CATEGORY`] on the channel, or a line on stderr.
    fn fail(&self, reason: &str) {
        match self {
            WorkerSink::Channel(_) => self.record(Record::new(
                Stream::Error,
                Payload::Error(ErrorRecord {
                    message: reason.to_string(),
                    category: Some(FAILURE_CATEGORY.to_string()),
                    details: None,
                }),
            )),
            WorkerSink::Stdio => eprintln!("{reason}"),
        }
    }
}

impl Sink for WorkerSink {
    fn output(&self, value: Dynamic) {
        self.record(Record::new(Stream::Output, Payload::Value(to_json(&value))));
    }

    fn record(&self, record: Record) {
        match self {
            WorkerSink::Channel(w) => {
                let Ok(mut line) = serde_json::to_vec(&record) else {
                    return;
                };
                line.push(b'\n');
                let mut w = w.lock().unwrap_or_else(|p| p.into_inner());
                // A broken channel means the session is gone; the process
                // executor ends the worker then, so the error is not fatal here.
                let _ = w.write_all(&line).and_then(|()| w.flush());
            }
            WorkerSink::Stdio => {
                let prefix = match record.stream {
                    Stream::Output | Stream::Error => "",
                    Stream::Warning => "WARNING: ",
                    Stream::Verbose => "VERBOSE: ",
                    Stream::Debug => "DEBUG: ",
                    Stream::Information => "INFO: ",
                    Stream::Progress => return,
                };
                let mut line = prefix.as_bytes().to_vec();
                line.extend_from_slice(&record.payload.to_display_bytes());
                line.push(b'\n');
                let _ = if record.stream == Stream::Output {
                    io::stdout().lock().write_all(&line)
                } else {
                    io::stderr().lock().write_all(&line)
                };
            }
        }
    }
}
