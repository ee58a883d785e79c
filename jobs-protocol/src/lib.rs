//! What the `jobctl` command and its session daemon share, and nothing
//! else: the versioned messages, their framing, and the layout of a
//! session's home ([`home`]). Both programs depend on this crate; it depends
//! only on jobs-core (for the model's types: ids, states, job rows, streams)
//! and serde, so the command that links it stays small.
//!
//! A frame is `[u32 header length][u32 blob length][header][blob]`, both
//! lengths little-endian. The header is one JSON message (a [`Request`] or a
//! [`Response`]); the blob carries bulk bytes that JSON would bloat: the
//! caller's environment on `start`, and record payloads in a receive page.
//! Every request names [`PROTOCOL_VERSION`]; a daemon refuses another. A
//! frame larger than the limits, a truncated one or one that does not parse
//! gets an error reply (when a reply can still be framed) and the connection
//! closes; the daemon itself goes on.
//!
//! # Example
//! ```
//! use jobs_protocol::{encode, read_frame, Op, Request};
//!
//! let frame = encode(&Request::new(Op::Show { id: 3 }), b"")?;
//! let (req, blob): (Request, Vec<u8>) = read_frame(&mut frame.as_slice())?;
//! assert!(matches!(req.op, Op::Show { id: 3 }) && blob.is_empty());
//! # Ok::<(), jobs_protocol::FrameError>(())
//! ```

pub mod home;

use std::ffi::OsString;
use std::io::{self, Read, Write};

use jobs_core::{JobEvent, JobId, JobInfo, JobState, PayloadKind, Stream};
use serde::{Deserialize, Serialize};

/// The protocol version both sides must speak.
/// Version 4: `start` names the jobs it waits for (`after`, `after_any`),
/// which an older daemon would ignore and start the job at once.
/// Version 5: `events`, `connect`, `start --on-finish`.
/// Version 6: `suspend`, `resume` and `restart`; `start` carries retries and
/// their delay, `stop` its signal and grace, which an older daemon would
/// ignore.
pub const PROTOCOL_VERSION: u32 = 6;
/// The largest header of a request the daemon accepts (an environment
/// block goes in the blob).
pub const MAX_HEADER: usize = 4 << 20;
/// The largest header of a response: a `list` of a session's every job
/// (a batch of 100,000 items is 100,001 rows of a few hundred bytes).
pub const MAX_RESPONSE_HEADER: usize = 512 << 20;
/// The largest blob accepted (a receive page's; a request's is smaller,
/// see [`MAX_REQUEST_BLOB`]).
pub const MAX_BLOB: usize = 64 << 20;
/// The most bytes of environment a `start` may carry (`K=V\0` entries):
/// about the kernel's `ARG_MAX`, past which no program could be started
/// with it anyway.
pub const MAX_ENV_BYTES: usize = 2 << 20;
/// The most environment variables a `start` may carry.
pub const MAX_ENV_VARS: usize = 32_768;
/// The most bytes of input a `start` may carry besides its environment: a
/// batch's items (`--each`) or a job's standard input (`--input`).
pub const MAX_START_INPUT: usize = 32 << 20;
/// The largest blob of a request: only a `start` has one, its environment
/// and its input.
pub const MAX_REQUEST_BLOB: usize = MAX_ENV_BYTES + MAX_START_INPUT;
/// The bytes of items a client sends per frame of a streamed batch
/// ([`Op::StartStreamed`]); a batch input larger than this is streamed.
pub const ITEMS_CHUNK: usize = 4 << 20;
/// The most bytes of items a streamed batch may have in all.
pub const MAX_STREAMED_ITEMS: usize = 1 << 30;
/// Payload bytes per receive page (a record larger than this is split).
pub const PAGE_BYTES: usize = 1 << 20;
/// Records per receive page.
pub const PAGE_RECORDS: usize = 512;

/// A request from the client, with the protocol version it speaks.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Must equal [`PROTOCOL_VERSION`].
    pub version: u32,
    /// What is asked.
    pub op: Op,
}

impl Request {
    /// A request of the current version.
    pub fn new(op: Op) -> Self {
        Request {
            version: PROTOCOL_VERSION,
            op,
        }
    }
}

/// What a client asks for.
// One is read per request and handled by value: a `start`'s size costs
// nothing worth a box at every use.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Starts a job; the blob holds the environment (`K=V\0` entries).
    Start(Box<StartRequest>),
    /// The job table, filtered.
    List(ListRequest),
    /// One job and its children.
    Show {
        /// The job.
        id: JobId,
    },
    /// How far a parent's children are: [`Response::Progress`].
    Progress {
        /// The parent.
        id: JobId,
    },
    /// Streams records in pages, each acknowledged with [`Op::Ack`]; see
    /// [`Response::Settle`] for when a record counts as received.
    Receive(ReceiveRequest),
    /// The client's answer to a page (or to [`Response::Settle`]).
    Ack {
        /// Parts of the page written out, in page order; fewer than the
        /// page holds: the client is going away. Answering a settle: 1, or
        /// 0 if the reader went away and the client with it. A client that
        /// goes away reads on until the daemon closes the connection, so
        /// that its last ack is handled before it exits.
        written: usize,
        /// Records of the whole receive, counted in the order they came
        /// (a split record once, with its last part), that reached their
        /// reader: for a pipe, that its reader took out of it. The daemon
        /// consumes those and only those.
        delivered: u64,
    },
    /// Waits for jobs.
    Wait(WaitRequest),
    /// Stops jobs.
    Stop(SelectRequest),
    /// Suspends jobs: [`Response::Jobs`], their rows afterwards.
    Suspend(SelectRequest),
    /// Resumes suspended jobs: [`Response::Jobs`], their rows afterwards.
    Resume(SelectRequest),
    /// Starts finished jobs again from their stored requests; answered
    /// with the new (or rerun) jobs' rows.
    Restart(RestartRequest),
    /// Re-attaches detached remote jobs whose connection is lost, now;
    /// answered with their rows once each host's attempt was made.
    Connect(SelectRequest),
    /// Removes jobs.
    Remove(RemoveRequest),
    /// The daemon's pid.
    Status,
    /// Ends the session and the daemon.
    Shutdown,
    /// The executor types and loaded plugins.
    Plugins,
    /// State-change events: [`Response::Events`] pages, then
    /// [`Response::End`] unless following.
    Events(EventsRequest),
    /// A batch whose items are too many for one message: as [`Op::Start`]
    /// with [`StartRequest::each`], the blob holding the environment and
    /// the items' first bytes; the rest follow in [`Op::Items`] frames on
    /// the same connection, and the daemon answers once the last came. A
    /// daemon before it refuses the request rather than start part of it.
    StartStreamed(Box<StartRequest>),
    /// More items of an [`Op::StartStreamed`] batch, in the blob (up to
    /// [`ITEMS_CHUNK`] bytes, cut anywhere); `end` on the last frame.
    Items {
        /// No frame follows.
        end: bool,
    },
}

/// `events`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventsRequest {
    /// Only these jobs' events (all when empty).
    pub ids: Vec<JobId>,
    /// Only events after this sequence number.
    pub since: Option<u64>,
    /// Go on as changes happen.
    pub follow: bool,
    /// With `follow`: skip the stored history and send only what happens
    /// from now on, after an empty [`Response::Events`] page that says the
    /// reader is subscribed (a table read after it misses no change).
    #[serde(default)]
    pub live_only: bool,
}

/// What a job runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// A program and its arguments.
    Program {
        /// argv, program first, byte for byte.
        #[serde(with = "jobs_core::os_serde::strings")]
        argv: Vec<OsString>,
    },
    /// A shell line for `/bin/sh -c`.
    Shell {
        /// The line, byte for byte.
        #[serde(with = "jobs_core::os_serde::string")]
        line: OsString,
    },
    /// A script of the embedded language.
    Script {
        /// The script's text.
        text: String,
        /// The file it was read from, if any (shown as the command).
        file: Option<String>,
    },
}

/// `start`: the work, its options, and the caller's directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StartRequest {
    /// What to run.
    pub work: Work,
    /// `process`, `thread`, `remote`, a type name, or none (process).
    pub type_name: Option<String>,
    /// The job's name.
    pub name: Option<String>,
    /// Remote hosts (implies the remote type).
    pub hosts: Vec<String>,
    /// Throttle limit.
    pub throttle: Option<usize>,
    /// The directory the job runs in, byte for byte.
    #[serde(with = "jobs_core::os_serde::string")]
    pub cwd: OsString,
    /// Variables set on top of the caller's environment.
    #[serde(with = "jobs_core::os_serde::pairs")]
    pub env: Vec<(OsString, OsString)>,
    /// Whether the job outlives the session.
    pub detached: bool,
    /// A batch (`start --each`): one child per item of the input, which
    /// follows the environment in the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub each: Option<Each>,
    /// `--input`: the last `input_len` bytes of the blob are the job's
    /// standard input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_len: Option<u64>,
    /// `--after`: jobs that must end Completed before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<JobId>,
    /// `--after-any`: jobs that must be finished, whatever their outcome.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after_any: Vec<JobId>,
    /// `--timeout`: how long the job (each item of a batch, each host of a
    /// remote job) may run before it is stopped and fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<std::time::Duration>,
    /// How a failure's reason shows the time limit: as the user wrote it
    /// (`90s` for `--timeout 90`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_shown: Option<String>,
    /// `--retries`: how many more times a failed job runs (for a batch,
    /// each child: see also [`Each::retries`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u32,
    /// `--retry-delay`: the wait before each new attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_delay: Option<std::time::Duration>,
    /// `--on-finish`: a shell line the daemon runs when the job finishes
    /// (a daemon before it ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_finish: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `restart`: the jobs, or with `failed` a batch's Failed and Stopped
/// children, in place.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestartRequest {
    /// The jobs.
    pub ids: Vec<JobId>,
    /// Rerun a batch's Failed and Stopped children in place instead.
    pub failed: bool,
}

impl StartRequest {
    /// The parts of this start's blob: the environment, a batch's items
    /// (empty unless [`each`](Self::each)) and the job's standard input
    /// (if [`input_len`](Self::input_len)). Lengths past the blob are an
    /// error.
    pub fn parts<'b>(&self, blob: &'b [u8]) -> Result<StartParts<'b>, String> {
        let (rest, input) = match self.input_len {
            None => (blob, None),
            Some(n) => {
                let at = usize::try_from(n)
                    .ok()
                    .and_then(|n| blob.len().checked_sub(n))
                    .ok_or("the input's length is past the request's data")?;
                let (rest, input) = blob.split_at(at);
                (rest, Some(input))
            }
        };
        let (env, items) = match &self.each {
            None => (rest, &rest[rest.len()..]),
            Some(each) => {
                let at = usize::try_from(each.env_len)
                    .ok()
                    .filter(|&n| n <= rest.len())
                    .ok_or("the environment's length is past the request's data")?;
                rest.split_at(at)
            }
        };
        Ok(StartParts { env, items, input })
    }
}

/// A start's blob, in its parts: see [`StartRequest::parts`].
#[derive(Debug, Clone, Copy)]
pub struct StartParts<'b> {
    /// The encoded environment (`K=V\0` entries).
    pub env: &'b [u8],
    /// A batch's items, as read.
    pub items: &'b [u8],
    /// The job's standard input, if it has one.
    pub input: Option<&'b [u8]>,
}

/// A parent's children, counted by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildCounts {
    /// All children.
    pub total: usize,
    /// Finished (Completed, Failed or Stopped).
    pub done: usize,
    /// Failed.
    pub failed: usize,
    /// Running or Blocked.
    pub running: usize,
    /// Whether the parent itself is finished.
    pub parent_done: bool,
}

/// How a batch's input travels: the blob is the environment's
/// `env_len` bytes, then the input's bytes as read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Each {
    /// How many of the blob's bytes are the environment.
    pub env_len: u64,
    /// Items are NUL-separated (`--null`), not lines.
    pub null: bool,
    /// `--halt now|soon,fail=N`, as written.
    #[serde(default)]
    pub halt: Option<String>,
    /// `--retries N`: more attempts for each failing child.
    #[serde(default)]
    pub retries: u32,
    /// `--slots N` with `--host`: each item runs once, on one host, at
    /// most N at a time per host (none: 1). Small, so a start request
    /// stays small.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<std::num::NonZeroU16>,
    /// `--onall` with `--host`: each item runs on every host.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_all: bool,
}

/// `list`: the filters of `jobs_core::JobFilter`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListRequest {
    /// Only these ids.
    pub ids: Vec<JobId>,
    /// Name glob.
    pub name: Option<String>,
    /// State.
    pub state: Option<JobState>,
    /// Type name or alias.
    pub type_name: Option<String>,
    /// Command glob.
    pub command: Option<String>,
    /// has_more_data.
    pub has_more_data: Option<bool>,
    /// The N newest.
    pub newest: Option<usize>,
    /// Child jobs too.
    pub include_children: bool,
}

/// `receive`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiveRequest {
    /// The jobs.
    pub ids: Vec<JobId>,
    /// Leave the records in the cache.
    pub keep: bool,
    /// Follow until the jobs finish.
    pub wait: bool,
    /// Not the children's records.
    pub no_recurse: bool,
}

/// `wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WaitRequest {
    /// The jobs (none: every job).
    pub ids: Vec<JobId>,
    /// One is enough.
    pub any: bool,
    /// Give up after this many milliseconds.
    pub timeout_ms: Option<u64>,
    /// `--force`: finished states only, not Blocked, Suspended or
    /// Disconnected.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Jobs named by id and/or filters (`stop`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SelectRequest {
    /// Ids.
    pub ids: Vec<JobId>,
    /// Name glob.
    pub name: Option<String>,
    /// State.
    pub state: Option<JobState>,
    /// `stop --signal`: the first signal (default SIGTERM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// `stop --grace`: milliseconds between the first signal and SIGKILL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_ms: Option<u64>,
}

/// `remove`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// Which jobs.
    pub select: SelectRequest,
    /// Every job.
    pub all: bool,
    /// Stop running ones first.
    pub force: bool,
}

/// A daemon's answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// A started job's row.
    Started(JobInfo),
    /// Rows.
    Jobs(Vec<JobInfo>),
    /// One job and its children's rows.
    Shown {
        /// The job.
        job: JobInfo,
        /// Its children.
        children: Vec<JobInfo>,
        /// The rows of the jobs it waits for (`after`, then `after_any`)
        /// that are still in the table.
        #[serde(default)]
        dependencies: Vec<JobInfo>,
    },
    /// How far a parent's children are, counted by the daemon (a batch of
    /// 100,000 items answers in a few bytes).
    Progress(ChildCounts),
    /// Records; their payloads follow in the blob, in order.
    Page(Vec<WireRecord>),
    /// Every page sent was acknowledged, but records written into a pipe
    /// may still sit unread in it: the client answers with an [`Op::Ack`]
    /// once its reader took everything or went away. Sent
    /// before a receive waits for more records and before its end, so that
    /// what a reader took is consumed and nothing else.
    Settle,
    /// The end of a receive, with the received jobs' rows as they are now.
    End(Vec<JobInfo>),
    /// The outcome of a wait.
    Waited {
        /// Jobs that are done.
        done: Vec<JobInfo>,
        /// Whether the timeout passed first.
        timed_out: bool,
    },
    /// Jobs removed or stopped.
    Done(Vec<JobId>),
    /// Jobs removed, with what could not be cleaned up on the way (a
    /// detached remote job's folder on a host that did not answer): one
    /// line each, for the caller to show. Sent instead of
    /// [`Response::Done`] only when there is a warning.
    Removed {
        /// The jobs removed.
        ids: Vec<JobId>,
        /// What was left behind, and where.
        warnings: Vec<String>,
    },
    /// The daemon's status.
    Status {
        /// Its pid.
        pid: u32,
    },
    /// The executor types.
    Plugins(Vec<TypeEntry>),
    /// State-change events, oldest first.
    Events(Vec<JobEvent>),
    /// Something went wrong.
    Error {
        /// What kind of failure (decides the exit code).
        kind: ErrorCode,
        /// One line, with the cause chain.
        message: String,
    },
}

/// The kinds of failure a daemon reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No job with an id.
    NoSuchJob,
    /// Bad input (usage).
    Usage,
    /// The operation failed.
    Failed,
    /// A frame that breaks the protocol.
    Protocol,
}

/// One executor type of the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TypeEntry {
    /// Its type name.
    pub type_name: String,
    /// `built-in`, or the plugin's file.
    pub source: String,
    /// The plugin's version, for a plugin.
    pub version: Option<String>,
}

/// A record in a page; `len` bytes of the blob hold its payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRecord {
    /// The job that produced it.
    pub job: JobId,
    /// Its sequence number.
    pub seq: u64,
    /// Its stream.
    pub stream: Stream,
    /// How to read the payload ([`jobs_core::Payload::decode`]).
    pub kind: PayloadKind,
    /// Payload length in the blob.
    pub len: usize,
    /// More parts of this record follow (a split large record).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the connection was closed")]
    Closed,
    /// A length over the limits.
    #[error("{0} of {1} bytes is over the limit")]
    TooLarge(&'static str, usize),
    /// A frame that does not parse.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// A request of another protocol version.
    #[error("protocol version {0} is not {PROTOCOL_VERSION}: use a jobctl of the same version as the daemon, or stop the daemon")]
    Version(u64),
    /// A `start` whose environment is over the limits.
    #[error(transparent)]
    Environment(#[from] EnvError),
    /// The daemon has too many request bytes in flight to take this frame.
    #[error("the session daemon is busy reading other large requests; try again")]
    Busy,
    /// Reading failed or the frame was cut short.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Why an environment cannot go with a `start`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// More bytes than [`MAX_ENV_BYTES`].
    #[error(
        "the environment is too large: {0} bytes, at most {MAX_ENV_BYTES} (about the kernel's ARG_MAX: no program could start with it); unset the large variables, or start the job under `env -i`"
    )]
    TooLarge(usize),
    /// More variables than [`MAX_ENV_VARS`].
    #[error(
        "the environment has {0} variables, at most {MAX_ENV_VARS}; unset some, or start the job under `env -i`"
    )]
    TooMany(usize),
}

/// Parses a request's header: the one parser of requests, whatever read
/// the frame. A request of another version is named as such; one of this
/// version that does not parse is [`FrameError::Malformed`], saying what is
/// wrong with it.
pub fn parse_request(header: &[u8]) -> Result<Request, FrameError> {
    match serde_json::from_slice::<Request>(header) {
        Ok(req) if req.version == PROTOCOL_VERSION => Ok(req),
        Ok(req) => Err(FrameError::Version(u64::from(req.version))),
        Err(e) => {
            let version = serde_json::from_slice::<serde_json::Value>(header)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
            match version {
                Some(v) if v != u64::from(PROTOCOL_VERSION) => Err(FrameError::Version(v)),
                _ => Err(FrameError::Malformed(e.to_string())),
            }
        }
    }
}

/// Checks a request frame's two lengths against the limits.
pub fn check_lengths(prefix: [u8; 8]) -> Result<(usize, usize), FrameError> {
    check_lengths_up_to(prefix, MAX_HEADER)
}

/// Checks a frame's two lengths, its header against `max_header`.
fn check_lengths_up_to(prefix: [u8; 8], max_header: usize) -> Result<(usize, usize), FrameError> {
    let h = u32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
    let b = u32::from_le_bytes([prefix[4], prefix[5], prefix[6], prefix[7]]) as usize;
    if h > max_header {
        return Err(FrameError::TooLarge("a message header", h));
    }
    if b > MAX_BLOB {
        return Err(FrameError::TooLarge("a message body", b));
    }
    Ok((h, b))
}

/// Encodes a frame.
pub fn encode<T: Serialize>(msg: &T, blob: &[u8]) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::new();
    encode_head(msg, blob.len(), &mut out)?;
    out.reserve_exact(blob.len());
    out.extend_from_slice(blob);
    Ok(out)
}

/// Encodes the start of a frame whose blob of `blob_len` bytes the caller
/// writes next: the two lengths and the header, into `out` (cleared
/// first, so one buffer serves every frame of a connection).
pub fn encode_head<T: Serialize>(
    msg: &T,
    blob_len: usize,
    out: &mut Vec<u8>,
) -> Result<(), FrameError> {
    out.clear();
    out.extend_from_slice(&[0; 8]);
    serde_json::to_writer(&mut *out, msg).map_err(|e| FrameError::Malformed(e.to_string()))?;
    let header = out.len() - 8;
    // The reader holds a request to the smaller MAX_HEADER.
    if header > MAX_RESPONSE_HEADER {
        return Err(FrameError::TooLarge("a message header", header));
    }
    if blob_len > MAX_BLOB {
        return Err(FrameError::TooLarge("a message body", blob_len));
    }
    // Both fit in a u32: the limits are far below.
    out[..4].copy_from_slice(&(header as u32).to_le_bytes());
    out[4..8].copy_from_slice(&(blob_len as u32).to_le_bytes());
    Ok(())
}

/// Writes a frame to a blocking writer.
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T, blob: &[u8]) -> io::Result<()> {
    let mut head = Vec::new();
    encode_head(msg, blob.len(), &mut head).map_err(io::Error::other)?;
    if blob.len() <= 4096 {
        head.extend_from_slice(blob);
        w.write_all(&head)?;
    } else {
        w.write_all(&head)?;
        w.write_all(blob)?;
    }
    w.flush()
}

/// Reads a frame from a blocking reader (a response: its header may be
/// as large as [`MAX_RESPONSE_HEADER`]).
pub fn read_frame<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
) -> Result<(T, Vec<u8>), FrameError> {
    let mut blob = Vec::new();
    let msg = read_frame_into(r, &mut blob)?;
    Ok((msg, blob))
}

/// Reads a frame from a blocking reader, its blob into `blob` (replacing
/// what it held): a reader of many pages reuses one buffer.
pub fn read_frame_into<T: for<'de> Deserialize<'de>>(
    r: &mut impl Read,
    blob: &mut Vec<u8>,
) -> Result<T, FrameError> {
    let mut prefix = [0u8; 8];
    let mut got = 0;
    while got < prefix.len() {
        match r.read(&mut prefix[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => {
                return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    // The client reads responses with this: the daemon reads requests
    // with its own reader, held to MAX_HEADER.
    let (h, b) = check_lengths_up_to(prefix, MAX_RESPONSE_HEADER)?;
    let mut header = vec![0u8; h];
    r.read_exact(&mut header).map_err(FrameError::Io)?;
    // Only bytes the buffer never held are zeroed: pages of one size reuse
    // it as it is, and each read takes all the socket has.
    if blob.len() < b {
        blob.resize(b, 0);
    } else {
        blob.truncate(b);
    }
    r.read_exact(blob).map_err(FrameError::Io)?;
    let msg = serde_json::from_slice(&header).map_err(|e| FrameError::Malformed(e.to_string()))?;
    Ok(msg)
}

/// Encodes an environment as `K=V\0` entries.
pub fn encode_env<K: AsRef<[u8]>, V: AsRef<[u8]>>(vars: impl Iterator<Item = (K, V)>) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in vars {
        out.extend_from_slice(k.as_ref());
        out.push(b'=');
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// Checks an encoded environment against [`MAX_ENV_BYTES`] and
/// [`MAX_ENV_VARS`]; returns the number of variables.
pub fn check_env(blob: &[u8]) -> Result<usize, EnvError> {
    if blob.len() > MAX_ENV_BYTES {
        return Err(EnvError::TooLarge(blob.len()));
    }
    let count = env_entries(blob).count();
    if count > MAX_ENV_VARS {
        return Err(EnvError::TooMany(count));
    }
    Ok(count)
}

/// The `K=V\0` entries of an encoded environment, borrowed from it: no
/// allocation per variable (entries without `=` are skipped).
pub fn env_entries(blob: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    blob.split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .filter_map(|e| {
            let eq = e.iter().position(|&b| b == b'=')?;
            Some((&e[..eq], &e[eq + 1..]))
        })
}

/// Decodes `K=V\0` entries into owned pairs (entries without `=` are
/// skipped); [`env_entries`] borrows them instead.
pub fn decode_env(blob: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    env_entries(blob)
        .map(|(k, v)| (k.to_vec(), v.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_round_trip() {
        let req = Request::new(Op::Show { id: 7 });
        let bytes = encode(&req, b"blob").expect("encode");
        let (back, blob): (Request, Vec<u8>) = read_frame(&mut bytes.as_slice()).expect("decode");
        assert!(matches!(back.op, Op::Show { id: 7 }));
        assert_eq!(blob, b"blob");
    }

    #[test]
    fn page_frames_round_trip_through_one_buffer() {
        let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
        let small = b"tail".to_vec();
        let mut wire = Vec::new();
        for blob in [&big, &small, &big] {
            let parts = vec![WireRecord {
                job: 3,
                seq: 9,
                stream: Stream::Output,
                kind: PayloadKind::Bytes,
                len: blob.len(),
                more: false,
            }];
            let mut head = Vec::new();
            encode_head(&Response::Page(parts), blob.len(), &mut head).expect("head");
            wire.extend_from_slice(&head);
            wire.extend_from_slice(blob);
        }
        let mut r = wire.as_slice();
        let mut buf = Vec::new();
        for want in [&big, &small, &big] {
            let resp: Response = read_frame_into(&mut r, &mut buf).expect("frame");
            let Response::Page(parts) = resp else {
                panic!("expected a page");
            };
            assert_eq!(parts[0].len, want.len());
            assert_eq!(&buf, want);
        }
        let end: Result<Response, _> = read_frame_into(&mut r, &mut buf);
        assert!(matches!(end, Err(FrameError::Closed)));
    }

    #[test]
    fn a_blob_cut_short_is_an_error() {
        let bytes = encode(&Request::new(Op::Status), &[7; 10_000]).expect("encode");
        let cut = &bytes[..bytes.len() - 1];
        let mut buf = Vec::new();
        let r: Result<Request, _> = read_frame_into(&mut &cut[..], &mut buf);
        assert!(matches!(r, Err(FrameError::Io(_))));
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut big = Vec::new();
        big.extend_from_slice(&u32::MAX.to_le_bytes());
        big.extend_from_slice(&0u32.to_le_bytes());
        let r: Result<(Request, Vec<u8>), _> = read_frame(&mut big.as_slice());
        assert!(matches!(r, Err(FrameError::TooLarge(..))));
        let bytes = encode(&Request::new(Op::Status), b"").expect("encode");
        let cut = &bytes[..bytes.len() - 2];
        let r: Result<(Request, Vec<u8>), _> = read_frame(&mut &cut[..]);
        assert!(matches!(r, Err(FrameError::Io(_))));
        let r: Result<(Request, Vec<u8>), _> = read_frame(&mut &b""[..]);
        assert!(matches!(r, Err(FrameError::Closed)));
    }

    #[test]
    fn garbage_is_malformed() {
        let mut g = Vec::new();
        g.extend_from_slice(&5u32.to_le_bytes());
        g.extend_from_slice(&0u32.to_le_bytes());
        g.extend_from_slice(b"{{{{{");
        let r: Result<(Request, Vec<u8>), _> = read_frame(&mut g.as_slice());
        assert!(matches!(r, Err(FrameError::Malformed(_))));
    }

    #[test]
    fn env_round_trip_keeps_bytes() {
        let vars = vec![
            (b"A".to_vec(), b"1=2".to_vec()),
            (b"B".to_vec(), vec![0xff]),
        ];
        let blob = encode_env(vars.iter().map(|(k, v)| (k, v)));
        assert_eq!(decode_env(&blob), vars);
        assert_eq!(check_env(&blob), Ok(2));
    }

    #[test]
    fn env_over_the_limits_is_refused() {
        let many = encode_env((0..=MAX_ENV_VARS).map(|i| (format!("V{i}"), "")));
        assert_eq!(check_env(&many), Err(EnvError::TooMany(MAX_ENV_VARS + 1)));
        let big = encode_env([("V", vec![b'x'; MAX_ENV_BYTES])].into_iter());
        assert_eq!(check_env(&big), Err(EnvError::TooLarge(MAX_ENV_BYTES + 3)));
        assert!(check_env(&big)
            .err()
            .is_some_and(|e| e.to_string().contains("too large")));
    }
}
