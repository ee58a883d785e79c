//! Detached jobs: the process writes to files and outlives the session; the
//! session that started it, or a later one that re-adopts it, tails them.
//!
//! A job's directory (`<detached dir>/<instance id>/`) holds:
//! - `stdout`, `stderr`, `records`: the process's fd 1, 2 and 3;
//! - `pid`: `PID STARTTIME` of the wrapper shell that leads the job's
//!   process group (the start time tells it from a later process that
//!   reuses the pid);
//! - `exit`: the exit status, written by the wrapper when the job's command
//!   ends (`/bin/sh` reports death by signal N as 128+N);
//! - `offsets`: how far the session has read each file, so a re-adopting
//!   session goes on where the last one stopped. The same offsets are the
//!   job's checkpoint in the session's store, stored in one transaction
//!   with the records read up to them; a session restored from a durable
//!   store resumes from that checkpoint, so a daemon killed at any moment
//!   neither loses nor repeats a byte. The file serves sessions whose store
//!   keeps no checkpoints.
//!
//! The directory is removed once the job's end was seen and all its output
//! was handed to the session.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use jobs_core::{JobContext, JobFailure, Record, Stream};

use crate::attached::{status_result, CHUNK};
use crate::group::{proc_stat, sleep, Ending};
use crate::lent::Lent;
use crate::records::LineDecoder;
use crate::spawn::{check_cwd, resolve_program, spawn_as, Launch};
use crate::spec::Command;
use crate::ProcessSpec;

/// How often the files are looked at.
const TAIL: Duration = Duration::from_millis(50);
/// How much of one file is read per look before others get a turn.
const TAIL_BUDGET: u64 = 16 << 20;

/// Runs the command, then writes its exit status to the file named by `$0`.
/// Trapping TERM keeps the wrapper alive to record the status of a command
/// that a stop terminated (traps are reset for the command it runs).
const WRAPPER: &str = r#"trap : INT HUP TERM; "$@"; echo "$?" > "$0""#;

/// Whether `dir` holds a detached job a session can take over.
pub(crate) fn adoptable(dir: &Path) -> bool {
    dir.join("pid").is_file()
}

pub(crate) async fn run(
    ex: Lent,
    spec: ProcessSpec,
    dir: PathBuf,
    ctx: JobContext,
) -> Result<(), JobFailure> {
    let io = ex.io.clone();
    check_cwd(&spec)?;
    if let Command::Program(argv) = &spec.command {
        // Fails early, naming the program: the wrapper shell would only
        // report it on the job's stderr with status 127.
        resolve_program(
            &spec,
            argv.first()
                .map_or(std::ffi::OsStr::new(""), |a| a.as_os_str()),
        )?;
    }
    let fail = |what: &str, e: std::io::Error| {
        JobFailure::new(format!("cannot {what} in '{}': {e}", dir.display()))
    };
    // Output may be private: only the owner may look inside.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| fail("create the job's directory", e))?;
    // Append mode: a writer that opens `/dev/fd/N` anew still adds at the end.
    let create = |name: &str| {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| fail("create files", e))
    };
    let (out, err, rec) = (create("stdout")?, create("stderr")?, create("records")?);
    let _ = std::fs::remove_file(dir.join("exit"));
    let exit_path = dir.join("exit").into_os_string();
    let job_argv = spec.argv();
    let mut argv = vec!["/bin/sh".into(), "-c".into(), WRAPPER.into(), exit_path];
    argv.extend(job_argv.iter().cloned());
    let launch = Launch {
        argv,
        shown: job_argv
            .first()
            .map(|a| a.to_string_lossy().into_owned())
            .unwrap_or_default(),
        stdout: Stdio::from(out),
        stderr: Stdio::from(err),
        records: OwnedFd::from(rec),
    };
    let mut child: tokio::process::Child = spawn_as(&io, &spec, launch)?;
    let pid = child
        .id()
        .ok_or_else(|| JobFailure::new("the job's process has no pid"))?;
    let start = proc_stat(pid).map(|s| s.start_time).unwrap_or(0);
    write_atomic(&dir, "pid", &format!("{pid} {start}\n"))
        .map_err(|e| fail("write the pid file", e))?;
    let _paused = ex.groups.register(&ctx, i32::try_from(pid).unwrap_or(0));

    let mut tail = Tail::open(&dir, [0; 3]).map_err(|e| fail("open the output files", e))?;
    let exited = loop {
        tokio::select! {
            st = child.wait() => break Some(st),
            _ = ctx.stopped() => break None,
            _ = sleep(&io, TAIL) => tail.pump(&ctx),
        }
    };
    let result = match exited {
        Some(Ok(st)) => {
            tail.finish(&ctx);
            match read_exit(&dir) {
                // The wrapper's own status only matters if it was killed.
                Some(code) if st.success() => code_result(code, &ctx),
                _ => status_result(st, &ctx),
            }
        }
        Some(Err(e)) => Err(JobFailure::new(format!(
            "cannot wait for the job's process: {e}"
        ))),
        None => {
            let pgid = i32::try_from(pid).unwrap_or(0);
            let ending = Ending::of(ctx.stop_options(), ex.grace);
            let (killed, _) = tokio::join!(ending.terminate(&io, pgid), child.wait());
            tail.finish(&ctx);
            stopped_result(killed, ending)
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

pub(crate) async fn resume(ex: Lent, dir: PathBuf, ctx: JobContext) -> Result<(), JobFailure> {
    let io = ex.io.clone();
    let broken = |e: String| {
        JobFailure::new(format!(
            "cannot take over the detached job in '{}': {e}",
            dir.display()
        ))
    };
    let pid_text = std::fs::read_to_string(dir.join("pid")).map_err(|e| broken(e.to_string()))?;
    let mut it = pid_text.split_whitespace().map(str::parse::<u64>);
    let (Some(Ok(pid)), Some(Ok(start))) = (it.next(), it.next()) else {
        return Err(broken(format!("bad pid file {pid_text:?}")));
    };
    let pid = u32::try_from(pid).map_err(|e| broken(e.to_string()))?;
    let offsets = read_offsets(&dir, &ctx);
    let mut tail = Tail::open(&dir, offsets).map_err(|e| broken(e.to_string()))?;
    let alive = || proc_stat(pid).is_some_and(|s| s.start_time == start && !s.gone());
    let _paused = alive().then(|| ex.groups.register(&ctx, i32::try_from(pid).unwrap_or(0)));
    let result = loop {
        if let Some(code) = read_exit(&dir) {
            tail.finish(&ctx);
            break code_result(code, &ctx);
        }
        if !alive() {
            // It may have written its status just before it ended.
            tail.finish(&ctx);
            break match read_exit(&dir) {
                Some(code) => code_result(code, &ctx),
                None => Err(JobFailure::new(
                    "the job's process ended without recording its exit status",
                )),
            };
        }
        tokio::select! {
            _ = ctx.stopped() => {
                let pgid = i32::try_from(pid).unwrap_or(0);
                let ending = Ending::of(ctx.stop_options(), ex.grace);
                let killed = alive() && ending.terminate(&io, pgid).await;
                tail.finish(&ctx);
                break stopped_result(killed, ending);
            }
            _ = sleep(&io, TAIL) => tail.pump(&ctx),
        }
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn stopped_result(killed: bool, ending: Ending) -> Result<(), JobFailure> {
    if killed {
        Err(ending.killed())
    } else {
        Ok(())
    }
}

fn code_result(code: i32, ctx: &JobContext) -> Result<(), JobFailure> {
    ctx.set_exit_code(code);
    if code == 0 {
        Ok(())
    } else {
        Err(JobFailure::exited(code))
    }
}

/// The status in `exit`, once the wrapper wrote all of it (with its newline).
fn read_exit(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(dir.join("exit")).ok()?;
    text.strip_suffix('\n')?.trim().parse().ok()
}

/// Offsets as stored: `STDOUT STDERR RECORDS` and a newline.
fn offsets_text(o: [u64; 3]) -> String {
    format!("{} {} {}\n", o[0], o[1], o[2])
}

/// How far the files were read: the checkpoint stored with the records
/// (exact; none yet means none of the job's records was kept), or, for a
/// session whose store keeps no checkpoints, the `offsets` file.
fn read_offsets(dir: &Path, ctx: &JobContext) -> [u64; 3] {
    let text = if ctx.keeps_checkpoints() {
        ctx.checkpoint()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    } else {
        std::fs::read_to_string(dir.join("offsets")).unwrap_or_default()
    };
    let mut out = [0u64; 3];
    for (slot, v) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = v.parse().unwrap_or(0);
    }
    out
}

/// Writes a small file whole or not at all (write, then rename).
fn write_atomic(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    std::fs::rename(tmp, dir.join(name))
}

/// Reads the three files from where the session left off.
struct Tail {
    dir: PathBuf,
    files: [Option<File>; 3],
    offsets: [u64; 3],
    decoder: LineDecoder,
    /// Bytes of `records` fed to the decoder but not yet a whole line.
    rec_partial: u64,
}

const NAMES: [&str; 3] = ["stdout", "stderr", "records"];

impl Tail {
    fn open(dir: &Path, offsets: [u64; 3]) -> std::io::Result<Tail> {
        let mut files: [Option<File>; 3] = [None, None, None];
        for (i, name) in NAMES.iter().enumerate() {
            let mut f = File::open(dir.join(name))?;
            f.seek(SeekFrom::Start(offsets[i]))?;
            files[i] = Some(f);
        }
        Ok(Tail {
            dir: dir.to_path_buf(),
            files,
            offsets,
            decoder: LineDecoder::default(),
            rec_partial: 0,
        })
    }

    /// Emits what was appended since the last look; saves the offsets.
    fn pump(&mut self, ctx: &JobContext) {
        let mut buf = vec![0u8; CHUNK];
        let mut moved = false;
        for (i, name) in NAMES.iter().enumerate() {
            let Some(f) = self.files[i].as_mut() else {
                continue;
            };
            let mut budget = TAIL_BUDGET;
            while budget > 0 {
                let n = match f.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        ctx.emit(Record::text(
                            Stream::Error,
                            format!("reading the job's {name} file failed: {e}"),
                        ));
                        self.files[i] = None;
                        break;
                    }
                };
                budget = budget.saturating_sub(n as u64);
                moved = true;
                let mut records = Vec::new();
                match i {
                    0 => {
                        records.push(Record::bytes(Stream::Output, buf[..n].to_vec()));
                        self.offsets[0] += n as u64;
                    }
                    1 => {
                        records.push(Record::bytes(Stream::Error, buf[..n].to_vec()));
                        self.offsets[1] += n as u64;
                    }
                    _ => {
                        self.decoder.feed(&buf[..n], &mut |r| records.push(r));
                        let total = self.offsets[2] + self.rec_partial + n as u64;
                        let partial = self.decoder.pending() as u64;
                        self.offsets[2] = total - partial;
                        self.rec_partial = partial;
                    }
                }
                // The records and how far they reach, stored together: a
                // session restored after a crash resumes exactly after the
                // records it kept.
                ctx.emit_checkpointed(records, offsets_text(self.offsets).into_bytes());
            }
        }
        if moved && !ctx.keeps_checkpoints() {
            // For a session whose store keeps no checkpoints. Losing an
            // update only means a re-adopting session repeats a little
            // output; it never loses any.
            let _ = write_atomic(&self.dir, "offsets", &offsets_text(self.offsets));
        }
    }

    /// Reads everything that is left, including a last unterminated record.
    fn finish(&mut self, ctx: &JobContext) {
        loop {
            let before = self.offsets[0] + self.offsets[1] + self.offsets[2] + self.rec_partial;
            self.pump(ctx);
            let after = self.offsets[0] + self.offsets[1] + self.offsets[2] + self.rec_partial;
            if after == before {
                break;
            }
        }
        self.decoder.finish(&mut |r| {
            ctx.emit(r);
        });
    }
}
