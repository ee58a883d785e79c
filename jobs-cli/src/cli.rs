//! The command line: every command and option of `jobctl`, with help text.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use clap::{ArgGroup, ArgMatches, Args, FromArgMatches, Parser, Subcommand};
use jobs_core::JobState;

/// What `start --help` and `run --help` say about host patterns (a macro:
/// `concat!` takes literals only).
macro_rules! hosts_help {
    () => { "Host patterns (--host, --exclude): `web[01-20,30]` is web01 to web20 and web30 (zero padding kept), `r[1-2]n[1-3]` six hosts, `web[1-3],db1` four; `@NAME` is a group of the file $JOBCTL_HOME/hosts, whose lines read `NAME: PATTERN...` (patterns separated by spaces or commas; `#` starts a comment line), e.g.\n  web: web[01-20]\n  all: @web db[1-2]\nA malformed pattern is a usage error (exit 2) naming it." };
}

/// Background jobs from the shell, PowerShell style: start a command, a
/// script or a remote fan-out, keep working, then list, receive, wait for,
/// stop and remove it.
#[derive(Debug, Parser)]
#[command(
    name = "jobctl",
    version,
    after_help = "Examples:\n  jobctl start -- make -j4\n  jobctl list\n  jobctl receive 1\n  jobctl run -c 'echo hello from a job'\n\nThe session lives in $JOBCTL_HOME (default ~/.local/state/jobctl); its daemon starts on first use."
)]
pub(crate) struct Cli {
    /// The session's directory (socket, database, logs, plugins); default $JOBCTL_HOME.
    #[arg(long, global = true, value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Start a job and return at once, printing its row.
    #[command(
        after_help = concat!("Examples:\n  jobctl start -- sleep 60\n  jobctl start -q -c 'make test > log 2>&1'\n  jobctl start --name build --cwd ~/src/app -- cargo build\n  jobctl start --type thread -e 'emit(6 * 7)'\n  jobctl start --host web1,web2 -- uptime\n  jobctl start --host 'web[01-20]' --exclude web13 -- uptime\n  jobctl start --host @db -- uptime\n  jobctl start --hosts-of 7 --state Failed -- uptime\n  ls *.wav | jobctl start --each - --host 'node[1-4]' --slots 2 -- flac {}\n  jobctl start --env RUST_LOG=debug -- ./server\n\nWith --each and --host the items are spread over the hosts: each runs once, on one host, at most --slots N (default 1) at a time per host, as GNU parallel's -S; a host that cannot be reached takes no more items and its item goes to another (its attempts and location say so). --onall runs every item on every host instead.\n\n", hosts_help!())
    )]
    Start(Lazy<StartArgs>),

    /// The job table.
    #[command(
        visible_alias = "get",
        after_help = "Examples:\n  jobctl list\n  jobctl list --state Running\n  jobctl list --name 'build*' --json\n  jobctl list --newest 5 --include-children"
    )]
    List(Lazy<ListArgs>),

    /// Every property of one job, with its reason and its child jobs.
    #[command(after_help = "Examples:\n  jobctl show 3\n  jobctl show 3 --json")]
    Show {
        /// The job's id.
        id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Write what jobs produced since the last receive.
    #[command(
        after_help = "Output records go to stdout byte for byte; errors to stderr; warning, verbose, debug and information records to stderr with a prefix.\n\nExamples:\n  jobctl receive 3 > out.bin\n  jobctl receive 3 --keep | head\n  jobctl receive 3 4 --wait --auto-remove\n  jobctl receive 3 --json\n  jobctl receive 3 --wait --gather\n  jobctl receive 3 --tag | clubak -b"
    )]
    Receive(Lazy<ReceiveArgs>),

    /// Wait until jobs are finished (or blocked), printing their rows.
    #[command(
        after_help = "Exit status 124 if --timeout passes first (the jobs keep running).\n\nExamples:\n  jobctl wait\n  jobctl wait 3 4 --any\n  jobctl wait 3 --timeout 10\n  jobctl wait 3 --force"
    )]
    Wait(Lazy<WaitArgs>),

    /// Stop jobs and terminate their process trees; print their rows.
    #[command(
        after_help = "Process and remote jobs get the first signal (--signal, default TERM) on their whole process group, then KILL once the grace (--grace, default 5s) has passed; other job types stop as they always do.\n\nExamples:\n  jobctl stop 3\n  jobctl stop -q --name 'build*'\n  jobctl stop --state Running\n  jobctl stop 3 --signal INT --grace 30s"
    )]
    Stop(Lazy<StopArgs>),

    /// Start finished jobs again as new jobs from their stored specs; print the new rows.
    #[command(
        after_help = "A job restarts with what it was started with: its type, command, items, hosts, the directory and environment captured at its first start, and its options (name, throttle, timeout, retries and delay, input, --detached), also after a daemon restart. It does not wait again for the jobs it waited for (--after, --after-any): those are decided already. The new job's JSON has `restarted_from`. A job that is not finished is refused (exit 1).\n\nWith --failed, a batch (start --each) reruns in place only its Failed and Stopped children: they go back to NotStarted, their attempts count on, and the batch is Running again; its row is printed.\n\nExamples:\n  jobctl restart 3\n  jobctl restart -q 3 4\n  jobctl restart 7 --failed"
    )]
    Restart(Lazy<RestartArgs>),

    /// Suspend running jobs (process groups get SIGSTOP); print their rows.
    #[command(
        after_help = "Suspending, then Suspended, as PowerShell's Suspend-Job: a process job's whole group gets SIGSTOP (a remote job's remote group likewise), a script job pauses at its next operation, a batch starts no new children and suspends its running ones. A suspended job's --timeout clock pauses. `wait` returns on Suspended; `wait --force` does not. A job that is not Running is refused (exit 1), and so is a type that cannot suspend (the message names it); a refused request changes no job.\n\nExamples:\n  jobctl suspend 3\n  jobctl suspend -q --name 'build*'"
    )]
    Suspend(Lazy<SelectArgs>),

    /// Resume suspended jobs (process groups get SIGCONT); print their rows.
    #[command(
        after_help = "Running again, as PowerShell's Resume-Job; a batch starts its queued children again. A job that is not Suspended is refused (exit 1) and no job changes.\n\nExamples:\n  jobctl resume 3\n  jobctl resume --state Suspended"
    )]
    Resume(Lazy<SelectArgs>),

    /// Re-attach detached remote jobs now; print their rows.
    #[command(
        after_help = "A detached remote job (start --host ... --detached) whose connection was lost shows Disconnected and re-attaches by itself, after 1 s, then doubling waits up to 60 s; connect makes each of its hosts try now and returns once they did.\n\nExamples:\n  jobctl connect 3\n  jobctl connect --state Disconnected"
    )]
    Connect(Lazy<SelectArgs>),

    /// Delete finished jobs and their cached records.
    #[command(
        visible_alias = "rm",
        after_help = "A job that is not finished is refused unless --force, which stops it first.\n\nExamples:\n  jobctl remove 3\n  jobctl rm --state Completed\n  jobctl rm --all --force"
    )]
    Remove(Lazy<RemoveArgs>),

    /// Start a job, stream its output until it ends, remove it, and exit with its exit code.
    #[command(
        after_help = concat!("Exits with the job's exit code (1 for a failed job without one, 130 if it was stopped). A parent with more than one child (hosts, items) ends with a summary on stderr: `18 ok, 1 failed (web07: exited with status 2), 1 unreachable (web13)`.\n\nExamples:\n  jobctl run -c 'echo hello from a job'\n  jobctl run -- make test\n  jobctl run --type thread -e 'info(\"hi\"); 42'\n  jobctl run --host 'web[01-20]' -- uptime\n\n", hosts_help!())
    )]
    Run(Lazy<StartArgs>),

    /// Manage the session daemon.
    #[command(
        after_help = "Examples:\n  jobctl daemon status\n  jobctl daemon start --plugin ./libmy_executor.so\n  jobctl daemon stop"
    )]
    Daemon {
        /// What to do.
        #[command(subcommand)]
        action: DaemonAction,
    },

    /// The session's state changes: every job's creation, transitions and removal.
    #[command(
        after_help = "Each line: the event's number (session-wide, only growing), its time, the job's id and name, the state before and after (`(new)` for a job's creation, `(removed)` for its removal), and the reason and exit code where there are some. Events survive a daemon restart: --since resumes a reader exactly where it stopped.\n\nExamples:\n  jobctl events\n  jobctl events 3 --json\n  jobctl events --follow\n  jobctl events --since 120 --follow --json"
    )]
    Events(Lazy<EventsArgs>),

    /// The executor types the session has: built-in ones and plugins.
    #[command(after_help = "Examples:\n  jobctl plugins")]
    Plugins,

    /// A full-screen live view of the session's jobs, kept live by its events.
    #[command(
        after_help = "The job table with a progress bar per job that reports progress (a batch's done/total), children folded under their parent, the selected job's latest output (read with --keep: nothing is received), counts per state and the daemon's pid.\n\nKeys: Up/Down (or k/j), Page Up/Down, Home/End select; Enter unfolds a parent or shows the job's details; Right/Left unfold/fold; s stops and r removes the selected job (after y); p/c suspend/resume; / filters by name or command (Enter keeps, Esc clears); q quits.\n\nNeeds a terminal (exit 2 otherwise); NO_COLOR turns colours off.\n\nExamples:\n  jobctl top\n  NO_COLOR=1 jobctl top"
    )]
    Top,

    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  jobctl completions bash > ~/.local/share/bash-completion/completions/jobctl\n  jobctl completions zsh > ~/.zfunc/_jobctl"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// A command's arguments, built only when the command line names that
/// command (clap's `Command::defer`). Without it every `jobctl` run built
/// every command's arguments first: a tenth of the CPU of `jobctl start`.
/// Help, completions and `debug_assert` build them all as before.
#[derive(Debug)]
pub(crate) struct Lazy<T>(pub T);

impl<T: FromArgMatches> FromArgMatches for Lazy<T> {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        T::from_arg_matches(m).map(Lazy)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl<T: Args> Args for Lazy<T> {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        cmd.defer(augment_keeping_about::<T>)
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        cmd.defer(augment_for_update_keeping_about::<T>)
    }

    fn group_id() -> Option<clap::Id> {
        T::group_id()
    }
}

/// Adds an argument struct's arguments but keeps the command's own summary:
/// derived `Args` would otherwise put the struct's doc ("What `start` and
/// `run` take") where `--help` should say what the command does.
fn augment_keeping_about<T: Args>(cmd: clap::Command) -> clap::Command {
    let (about, long) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
    restore_about(T::augment_args(cmd), about, long)
}

/// [`augment_keeping_about`] for clap's update path.
fn augment_for_update_keeping_about<T: Args>(cmd: clap::Command) -> clap::Command {
    let (about, long) = (cmd.get_about().cloned(), cmd.get_long_about().cloned());
    restore_about(T::augment_args_for_update(cmd), about, long)
}

fn restore_about(
    cmd: clap::Command,
    about: Option<clap::builder::StyledStr>,
    long: Option<clap::builder::StyledStr>,
) -> clap::Command {
    let cmd = match about {
        Some(a) => cmd.about(a),
        None => cmd.about(None::<&str>),
    };
    match long {
        Some(l) => cmd.long_about(l),
        None => cmd.long_about(None::<&str>),
    }
}

/// `daemon` actions.
#[derive(Debug, Subcommand)]
pub(crate) enum DaemonAction {
    /// Start the daemon if it is not running.
    Start {
        /// Load this plugin library (repeatable).
        #[arg(long = "plugin", value_name = "FILE")]
        plugins: Vec<PathBuf>,
    },
    /// End the session: stop its running jobs, then the daemon.
    Stop,
    /// Print `running, pid N` or `not running`.
    Status,
}

/// What `start` and `run` take.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("work").required(true).args(["argv", "shell", "script", "script_file"])))]
#[command(group(ArgGroup::new("host_source").args(["hosts", "hosts_of"])))]
pub(crate) struct StartArgs {
    /// The program and its arguments, after `--`.
    #[arg(last = true, value_name = "PROGRAM [ARGS]", value_parser = clap::value_parser!(OsString))]
    pub argv: Vec<OsString>,
    /// A shell line, run by /bin/sh -c.
    #[arg(short = 'c', long = "command", value_name = "LINE", value_parser = clap::value_parser!(OsString))]
    pub shell: Option<OsString>,
    /// A script of the embedded language.
    #[arg(short = 'e', long = "eval", value_name = "SCRIPT")]
    pub script: Option<String>,
    /// A script file of the embedded language.
    #[arg(long = "script", value_name = "FILE")]
    pub script_file: Option<PathBuf>,
    /// The job's name (default `Job<id>`).
    #[arg(long)]
    pub name: Option<String>,
    /// process, thread, remote or a plugin's type (default process; --host implies remote).
    #[arg(long = "type", value_name = "TYPE")]
    pub type_name: Option<String>,
    /// Remote hosts: a pattern such as `web[01-20,30]`, `web[1-3],db1` or
    /// `@GROUP` (a group of $JOBCTL_HOME/hosts); `user@host:port` accepted.
    /// Repeatable.
    #[arg(long = "host", value_name = "PATTERN")]
    pub hosts: Vec<String>,
    /// With --host or --hosts-of: leave out the hosts this pattern names
    /// (repeatable).
    #[arg(long, value_name = "PATTERN", requires = "host_source")]
    pub exclude: Vec<String>,
    /// Remote hosts: those of an earlier remote job's children, in the
    /// order they ran (with --state, only the children in that state):
    /// `--hosts-of 7 --state Failed` reruns on the hosts that failed.
    #[arg(long = "hosts-of", value_name = "ID")]
    pub hosts_of: Option<u64>,
    /// With --hosts-of: only the hosts whose child is in this state.
    #[arg(long = "state", value_name = "STATE", value_parser = parse_state, requires = "hosts_of")]
    pub hosts_state: Option<JobState>,
    /// How many jobs of this type (or hosts of a remote job, or children
    /// of a batch: default the number of CPUs) run at once.
    #[arg(long, value_name = "N")]
    pub throttle: Option<usize>,
    /// A batch: one child job per line of FILE (`-`: standard input), with
    /// `{}` `{#}` `{.}` `{/}` `{//}` `{/.}` replaced by the item.
    #[arg(long, value_name = "FILE|-")]
    pub each: Option<PathBuf>,
    /// With --each: the items are NUL-separated, not lines.
    #[arg(short = '0', long, requires = "each")]
    pub null: bool,
    /// With --each: after N failed items start no more (`soon`) or stop
    /// the running ones too (`now`).
    #[arg(long, value_name = "now|soon,fail=N", requires = "each", value_parser = parse_halt)]
    pub halt: Option<String>,
    /// Stop the job and fail it (`timed out after 90s`, the duration as
    /// written) once it ran this long: `90` (seconds), `90s`, `5m`,
    /// `1h30m`, `500ms`. Per item with --each, per host with --host; the
    /// clock starts when the job starts running.
    #[arg(long, value_name = "DURATION", value_parser = parse_limit)]
    pub timeout: Option<(std::time::Duration, String)>,
    /// Run a failed job up to N more times (with --each, each failing
    /// item); each new attempt is announced by an information record
    /// `attempt K of M`. Stopping the job ends its retries.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub retries: u32,
    /// With --retries: wait this long before each new attempt (`30`, `30s`,
    /// `5m`, `500ms`); the job stays Running meanwhile.
    #[arg(long, value_name = "DURATION", requires = "retries", value_parser = parse_timeout)]
    pub retry_delay: Option<std::time::Duration>,
    /// With --each and --host: at most N items at a time per host (default
    /// 1). Each item runs once, on one host (GNU parallel's -S), the
    /// default for --each with --host; a host that cannot be reached takes
    /// no more items and its item goes to another host.
    #[arg(long, value_name = "N", requires = "each", requires = "host_source", value_parser = parse_slots)]
    pub slots: Option<std::num::NonZeroU16>,
    /// With --each and --host: run every item on every host (each item a
    /// remote job with a child per host; GNU parallel's --onall).
    #[arg(
        long = "onall",
        requires = "each",
        requires = "host_source",
        conflicts_with = "slots"
    )]
    pub on_all: bool,
    /// The directory the job runs in (default: the current one).
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,
    /// Set a variable in the job's environment (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = EnvParser)]
    pub env: Vec<(OsString, OsString)>,
    /// Feed FILE (`-`: this command's standard input) to the job's standard
    /// input; without it, a job's stdin is /dev/null. Process jobs, and
    /// remote jobs (each host gets the same bytes); not with --each, nor
    /// with --detached --host.
    #[arg(long, value_name = "FILE|-")]
    pub input: Option<PathBuf>,
    /// The job outlives the session (its daemon). With --host, each host
    /// runs the command under a supervisor, with its output in
    /// ~/.cache/jobctl/jobs/ID/ there: it outlives the connection too, shows
    /// Disconnected when the link is lost and re-attaches (see `connect`).
    #[arg(long)]
    pub detached: bool,
    /// Wait, NotStarted, until these jobs end Completed (repeatable or
    /// comma-separated); if one fails, is stopped or removed, this job ends
    /// Failed without running.
    #[arg(long, value_name = "ID", value_delimiter = ',')]
    pub after: Vec<u64>,
    /// Wait until these jobs are finished, whatever their outcome
    /// (repeatable or comma-separated).
    #[arg(long = "after-any", value_name = "ID", value_delimiter = ',')]
    pub after_any: Vec<u64>,
    /// Run this shell line when the job finishes (Completed, Failed or
    /// Stopped), with JOBCTL_JOB_ID, JOBCTL_JOB_NAME, JOBCTL_JOB_TYPE,
    /// JOBCTL_JOB_STATE, JOBCTL_JOB_EXIT_CODE, JOBCTL_JOB_REASON and
    /// JOBCTL_HOME set; it gets 60 s, its output goes to the daemon's log,
    /// and it never changes the job. Kept with the job across a restart.
    #[arg(long, value_name = "SHELL LINE")]
    pub on_finish: Option<String>,
    /// Print the job's id alone.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `--env K=V`, byte for byte: a variable's name or value need not be UTF-8.
#[derive(Clone, Debug)]
struct EnvParser;

impl clap::builder::TypedValueParser for EnvParser {
    type Value = (OsString, OsString);

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let b = value.as_bytes();
        match b.iter().position(|&c| c == b'=') {
            Some(eq) if eq > 0 => Ok((
                OsStr::from_bytes(&b[..eq]).to_owned(),
                OsStr::from_bytes(&b[eq + 1..]).to_owned(),
            )),
            _ => Err(clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("--env '{}' is not K=V\n", value.to_string_lossy()),
            )
            .with_cmd(cmd)),
        }
    }
}

/// Checks `--halt` as the daemon will read it; sends it as written.
fn parse_halt(s: &str) -> Result<String, String> {
    s.parse::<jobs_core::Halt>().map(|_| s.to_string())
}

/// `--slots N`: a whole number from 1 to 65535.
fn parse_slots(s: &str) -> Result<std::num::NonZeroU16, String> {
    s.parse()
        .map_err(|_| format!("'{s}' is not a number of slots (1 to 65535)"))
}

fn parse_state(s: &str) -> Result<JobState, String> {
    s.parse::<JobState>().map_err(|e| e.to_string())
}

/// `list` filters.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only these jobs.
    pub ids: Vec<u64>,
    /// Only jobs whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Only jobs in this state.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<JobState>,
    /// Only jobs of this type (process, thread, remote, or a type name).
    #[arg(long = "type", value_name = "TYPE")]
    pub type_name: Option<String>,
    /// Only jobs whose command matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub command: Option<String>,
    /// Only jobs whose HasMoreData is this.
    #[arg(long, value_name = "BOOL")]
    pub has_more_data: Option<bool>,
    /// Only the N most recently started jobs.
    #[arg(long, value_name = "N")]
    pub newest: Option<usize>,
    /// Child jobs too.
    #[arg(long)]
    pub include_children: bool,
    /// Print a JSON array.
    #[arg(long)]
    pub json: bool,
}

/// `events` options.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Only these jobs' events (default: every job's).
    pub ids: Vec<u64>,
    /// Only the events numbered above SEQ (the last one a reader saw).
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Go on as changes happen, until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// One JSON object per event and line.
    #[arg(long)]
    pub json: bool,
}

/// `receive` options.
#[derive(Debug, Args)]
pub(crate) struct ReceiveArgs {
    /// The jobs.
    #[arg(required = true)]
    pub ids: Vec<u64>,
    /// Leave what was received in the job's cache.
    #[arg(long)]
    pub keep: bool,
    /// Follow the jobs until they finish.
    #[arg(long)]
    pub wait: bool,
    /// Remove the jobs afterwards (with --wait).
    #[arg(long, requires = "wait")]
    pub auto_remove: bool,
    /// Only the jobs' own records, not their children's.
    #[arg(long)]
    pub no_recurse: bool,
    /// Each child's records together, in the children's order (a batch's
    /// item order), each written as soon as the earlier ones are done.
    #[arg(long, conflicts_with_all = ["no_recurse", "tag", "gather"])]
    pub ordered: bool,
    /// One JSON object per record and line.
    #[arg(long)]
    pub json: bool,
    /// Prefix each output line with the child that wrote it: `host: `
    /// for a remote job's, the item and a tab for a batch's.
    #[arg(long, conflicts_with_all = ["json", "gather"])]
    pub tag: bool,
    /// Write children whose output is identical once, under a header
    /// naming them: `==== web[01-05,07] (6) ====` (as `dshbak -c`).
    /// Records are consumed once the whole view was written.
    #[arg(long, conflicts_with = "json")]
    pub gather: bool,
    /// Write the jobs' state changes among their records, in order: a
    /// job's start before its records, its end after them. With --json a
    /// line `{"id":ID,"event":{"from":..,"to":..,"reason":..}}` on stdout;
    /// otherwise a line to stderr, `EVENT: job 3 (build) Running ->
    /// Completed`, beside the other non-output records.
    #[arg(long, conflicts_with_all = ["ordered", "tag", "gather"])]
    pub write_events: bool,
}

/// `wait` options.
#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    /// The jobs (none: every job).
    pub ids: Vec<u64>,
    /// Return when any one of them is done.
    #[arg(long)]
    pub any: bool,
    /// Give up after this many seconds (exit 124; the jobs keep running).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,
    /// Wait for finished states only (Completed, Failed, Stopped); without
    /// it, Blocked, Suspended and Disconnected jobs count as done.
    #[arg(long)]
    pub force: bool,
}

/// Jobs by id and/or filters (`stop`, `suspend`, `resume`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).multiple(true).args(["ids", "name", "state"])))]
pub(crate) struct SelectArgs {
    /// The jobs.
    pub ids: Vec<u64>,
    /// Jobs whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Jobs in this state.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<JobState>,
    /// Print nothing (by default the jobs' rows afterwards, as `list`).
    #[arg(short, long)]
    pub quiet: bool,
}

/// `stop` options.
#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Which jobs.
    #[command(flatten)]
    pub select: SelectArgs,
    /// The first signal: a name with or without SIG (TERM, INT, HUP, USR1,
    /// ...) or a number (default TERM).
    #[arg(long, value_name = "SIG", value_parser = parse_signal)]
    pub signal: Option<i32>,
    /// How long after the first signal KILL follows (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub grace: Option<std::time::Duration>,
}

/// `restart` options.
#[derive(Debug, Args)]
pub(crate) struct RestartArgs {
    /// The jobs.
    #[arg(required = true)]
    pub ids: Vec<u64>,
    /// Rerun, in place, only the Failed and Stopped children of a batch.
    #[arg(long)]
    pub failed: bool,
    /// Print the ids alone.
    #[arg(short, long)]
    pub quiet: bool,
}

fn parse_signal(s: &str) -> Result<i32, String> {
    jobs_core::parse_signal(s)
}

/// `remove` options.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).multiple(true).args(["ids", "name", "state", "all"])))]
pub(crate) struct RemoveArgs {
    /// The jobs.
    pub ids: Vec<u64>,
    /// Jobs whose name matches this glob.
    #[arg(long, value_name = "GLOB")]
    pub name: Option<String>,
    /// Jobs in this state.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<JobState>,
    /// Every job.
    #[arg(long)]
    pub all: bool,
    /// Stop jobs that are not finished first.
    #[arg(long)]
    pub force: bool,
}

/// `start --timeout`: the duration, and how a reason shows it: as written,
/// with `s` added to a plain number of seconds (`90` shows as `90s`).
fn parse_limit(s: &str) -> Result<(std::time::Duration, String), String> {
    let limit = parse_timeout(s)?;
    let t = s.trim();
    let shown = if t.bytes().all(|b| b.is_ascii_digit()) {
        format!("{t}s")
    } else {
        t.to_string()
    };
    Ok((limit, shown))
}

/// A duration as [`jobs_core::parse_duration`] reads it.
fn parse_timeout(s: &str) -> Result<std::time::Duration, String> {
    jobs_core::parse_duration(s).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn start_takes_program_after_double_dash() {
        let cli = Cli::try_parse_from(["jobctl", "start", "-q", "--", "echo", "-n", "hi"])
            .expect("parse");
        match cli.command {
            Command::Start(Lazy(a)) => {
                assert_eq!(a.argv, ["echo", "-n", "hi"]);
                assert!(a.quiet);
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn hosts_are_patterns_kept_as_written() {
        let cli =
            Cli::try_parse_from(["jobctl", "start", "--host", "a,b", "--host", "c", "-c", "x"])
                .expect("parse");
        match cli.command {
            Command::Start(Lazy(a)) => assert_eq!(a.hosts, ["a,b", "c"]),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_time_limit_shows_as_written_with_plain_seconds_marked() {
        let shown = |s: &str| parse_limit(s).map(|(_, shown)| shown);
        assert_eq!(shown("90"), Ok("90s".to_string()));
        assert_eq!(shown("1h30m"), Ok("1h30m".to_string()));
        assert_eq!(shown("90s"), Ok("90s".to_string()));
        assert_eq!(parse_limit("90").map(|(d, _)| d.as_secs()), Ok(90));
        assert!(parse_limit("abc").is_err());
    }

    #[test]
    fn start_needs_exactly_one_kind_of_work() {
        assert!(Cli::try_parse_from(["jobctl", "start"]).is_err());
        assert!(Cli::try_parse_from(["jobctl", "start", "-c", "x", "-e", "y"]).is_err());
    }

    #[test]
    fn each_commands_help_opens_with_what_the_command_does() {
        let expected = [
            ("start", "Start a job and return at once"),
            ("list", "The job table"),
            ("receive", "Write what jobs produced"),
            ("wait", "Wait until jobs are finished"),
            ("stop", "Stop jobs"),
            ("suspend", "Suspend running jobs"),
            ("resume", "Resume suspended jobs"),
            ("restart", "Start finished jobs again"),
            ("remove", "Delete finished jobs"),
            ("run", "Start a job, stream its output"),
        ];
        for (name, opening) in expected {
            let err = Cli::try_parse_from(["jobctl", name, "--help"]).expect_err("help");
            let help = err.to_string();
            assert!(
                help.starts_with(opening),
                "`jobctl {name} --help` opens with {:?}",
                help.lines().next()
            );
        }
    }
}
