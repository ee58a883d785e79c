//! Helpers: sessions over the process executor, running a job to its end,
//! collecting a stream's bytes, and telling whether a process is gone.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{
    JobId, JobInfo, MemoryStore, ReceiveOptions, Received, Record, Session, Store, StoreError,
    Stream, WaitMode,
};
use jobs_process::{ProcessExecutor, ProcessSpec};

/// A session with a process executor (1 s grace, so stop tests are quick).
pub(super) fn session() -> Session {
    session_with(ProcessExecutor::new().grace_period(Duration::from_secs(1)))
}

/// A session with the given executor.
pub(super) fn session_with(ex: ProcessExecutor) -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(ex));
    s
}

/// Runs a spec to its end; returns its final row and all its records.
pub(super) fn run(s: &Session, spec: ProcessSpec) -> (JobInfo, Vec<Received>) {
    let id = s.start(spec.into_job_spec()).expect("start");
    finish(s, id)
}

/// Waits (60 s at most) for a job and receives everything it produced.
pub(super) fn finish(s: &Session, id: JobId) -> (JobInfo, Vec<Received>) {
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(60)))
        .expect("wait");
    assert!(!out.timed_out, "job {id} did not finish");
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    (s.info(id).expect("info"), recs)
}

/// The concatenated bytes of one stream's records.
pub(super) fn bytes(recs: &[Received], stream: Stream) -> Vec<u8> {
    recs.iter()
        .filter(|r| r.record.stream == stream)
        .flat_map(|r| r.record.payload.to_display_bytes())
        .collect()
}

/// The concatenated output as text.
pub(super) fn text(recs: &[Received], stream: Stream) -> String {
    String::from_utf8(bytes(recs, stream)).expect("utf-8 output")
}

/// Follows a running job until its output holds `lines` full lines.
pub(super) fn first_lines(s: &Session, id: JobId, lines: usize) -> Vec<String> {
    let mut follow = s.follow(&[id], ReceiveOptions::default()).expect("follow");
    let mut buf = Vec::new();
    while buf.iter().filter(|&&b| b == b'\n').count() < lines {
        let r = follow
            .next_blocking()
            .expect("next")
            .expect("job ended before printing its lines");
        if r.record.stream == Stream::Output {
            buf.extend(r.record.payload.to_display_bytes());
        }
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Whether a process has ended: no such pid, or a zombie awaiting its reaper.
pub(super) fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => {
            let after = stat.rfind(')').map(|i| &stat[i + 1..]).unwrap_or("");
            matches!(after.split_whitespace().next(), Some("Z" | "X"))
        }
    }
}

/// Waits up to `secs` for every pid to be gone; returns those still alive.
pub(super) fn wait_gone(pids: &[u32], secs: u64) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| !gone(p)).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Parses whitespace-separated pids.
pub(super) fn pids(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect()
}

/// Kills still-running test processes when a test fails half way.
pub(super) struct Reaper(pub Vec<u32>);

impl Drop for Reaper {
    fn drop(&mut self) {
        for &p in &self.0 {
            if !gone(p) {
                let _ = std::process::Command::new("kill")
                    .args(["-9", &p.to_string()])
                    .status();
            }
        }
    }
}

/// A store that keeps rows as well as records, shared by two sessions in a
/// row: what the CLI's durable store does across a daemon restart.
#[derive(Default)]
pub(super) struct SharedStore {
    rows: Mutex<BTreeMap<JobId, JobInfo>>,
    records: MemoryStore,
    max_seq: AtomicU64,
}

impl Store for SharedStore {
    fn save_job(&self, info: &JobInfo) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().expect("rows");
        rows.insert(info.id, info.clone());
        Ok(())
    }
    fn delete_job(&self, id: JobId) -> Result<(), StoreError> {
        self.rows.lock().expect("rows").remove(&id);
        self.records.delete_job(id)
    }
    fn load_jobs(&self) -> Result<Vec<JobInfo>, StoreError> {
        Ok(self.rows.lock().expect("rows").values().cloned().collect())
    }
    fn max_seq(&self) -> Result<u64, StoreError> {
        Ok(self.max_seq.load(Ordering::SeqCst))
    }
    fn append(&self, job: JobId, seq: u64, record: Record) -> Result<(), StoreError> {
        self.max_seq.fetch_max(seq, Ordering::SeqCst);
        self.records.append(job, seq, record)
    }
    fn read(&self, job: JobId, after: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError> {
        self.records.read(job, after, limit)
    }
    fn discard(&self, job: JobId, through: u64) -> Result<(), StoreError> {
        self.records.discard(job, through)
    }
    fn has_records(&self, job: JobId) -> Result<bool, StoreError> {
        self.records.has_records(job)
    }
}

/// A small deterministic pseudo-random byte generator (xorshift64*).
pub(super) fn random_bytes(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        out.extend_from_slice(&seed.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `data` to a new file in `dir`.
pub(super) fn write_file(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, data).expect("write test file");
    p
}
