//! Bulk bytes beside the database: one append-only data file per job.
//!
//! A bytes record of [`FILE_THRESHOLD`] bytes or more keeps its payload in
//! `<database>-records/<job>.bin`; its row holds where (`file_off`,
//! `file_len`). A batch writes its bytes first and then commits the rows that
//! point at them, so a row on disk only ever points at bytes that were
//! written. A crash in between leaves bytes past every row's end: they are
//! never read, and the next write goes after them. Bytes stay in the file
//! when their rows are discarded; the file is emptied once none of the job's
//! rows are left (a large one is removed, and the next bytes go to a new
//! one), and removed with the job.
//!
//! A data file is opened without following symlinks (`O_NOFOLLOW`): a
//! symlink planted at its path is an error, not a way to have the daemon
//! append to, or empty, another file. Files are created 0600, their folder
//! 0700.
//!
//! Everything here runs under the store's database lock, so the file's end
//! and the rows in the table never disagree for anyone who looks.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use jobs_core::{JobId, StoreError};

use jobs_core::PayloadKind;

use crate::row::{Data, Row, Span};

/// Bytes records this large or larger go to the job's data file.
pub(super) const FILE_THRESHOLD: usize = 4096;

/// Open data files kept past which the cache is emptied (a file descriptor
/// each).
const MAX_OPEN: usize = 64;

/// A data file this large is emptied by removing it and closing it on a
/// thread of its own: the kernel drops a file's cached pages when it is
/// truncated or its last descriptor closes, which for a gigabyte just
/// written takes a good part of a second, and the caller holds the
/// database lock (a receive's last acknowledgement waits for it).
const CLOSE_APART: u64 = 64 << 20;

/// Closes `file` on a thread of its own (here if none can be started).
fn close_apart(file: File) {
    let _ = std::thread::Builder::new()
        .name("jobctl-close".into())
        .spawn(move || drop(file));
}

/// The data files of one store.
pub(super) struct DataFiles {
    dir: PathBuf,
    open: HashMap<JobId, DataFile>,
}

struct DataFile {
    file: File,
    /// Where the next bytes go: the file's length.
    end: u64,
}

/// The directory of the data files of the database at `db`.
pub(crate) fn dir_of(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-records");
    db.with_file_name(name)
}

/// Whether a row's bytes go to its job's data file.
pub(super) fn goes_to_file(row: &Row) -> bool {
    row.kind == PayloadKind::Bytes
        && matches!(&row.data, Data::Blob(b) if b.len() >= FILE_THRESHOLD)
}

impl DataFiles {
    pub(super) fn new(dir: PathBuf) -> DataFiles {
        DataFiles {
            dir,
            open: HashMap::new(),
        }
    }

    fn path(&self, job: JobId) -> PathBuf {
        self.dir.join(format!("{job}.bin"))
    }

    /// The job's open file; `None` if it has none and `create` is false.
    fn get(&mut self, job: JobId, create: bool) -> Result<Option<&mut DataFile>, StoreError> {
        if !self.open.contains_key(&job) {
            let path = self.path(job);
            let fail = |e| StoreError::new(format!("cannot open {}", path.display()), e);
            if create {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&self.dir)
                    .map_err(|e| {
                        StoreError::new(format!("cannot create {}", self.dir.display()), e)
                    })?;
            }
            let file = match OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(fail(e)),
            };
            // Bytes past the last row of a batch cut short by a crash are
            // left as they are: nothing points at them.
            let end = file.metadata().map_err(fail)?.len();
            if self.open.len() >= MAX_OPEN {
                self.open.clear();
            }
            self.open.insert(job, DataFile { file, end });
        }
        Ok(self.open.get_mut(&job))
    }

    /// Writes the bytes of the rows that go to data files, in order, and
    /// returns where each went (`None` for rows kept in the table).
    pub(super) fn place(&mut self, rows: &[Row]) -> Result<Vec<Option<Span>>, StoreError> {
        let mut spans = Vec::with_capacity(rows.len());
        for r in rows {
            let bytes = match &r.data {
                Data::Blob(b) if goes_to_file(r) => b,
                _ => {
                    spans.push(None);
                    continue;
                }
            };
            let path = self.path(r.job);
            let f = self
                .get(r.job, true)?
                .ok_or_else(|| StoreError::msg(format!("{} vanished", path.display())))?;
            f.file
                .write_all_at(bytes, f.end)
                .map_err(|e| StoreError::new(format!("cannot write to {}", path.display()), e))?;
            let len = bytes.len() as u64;
            spans.push(Some(Span { off: f.end, len }));
            // Advanced only once written: a failed write is overwritten by
            // the retry, a written one stays even if its rows do not commit.
            f.end += len;
        }
        Ok(spans)
    }

    /// The bytes of record `seq` of `job` at `span`.
    pub(super) fn read(&mut self, job: JobId, seq: u64, span: Span) -> Result<Vec<u8>, StoreError> {
        let path = self.path(job);
        let missing = || {
            StoreError::msg(format!(
                "record {seq} of job {job}: its {} bytes at {} are missing from {}",
                span.len,
                span.off,
                path.display()
            ))
        };
        let f = self.get(job, false)?.ok_or_else(missing)?;
        let fits = span.off.checked_add(span.len).is_some_and(|e| e <= f.end);
        let len = usize::try_from(span.len).ok().filter(|_| fits);
        let len = len.ok_or_else(missing)?;
        // Read into spare capacity: the buffer is not zeroed first.
        let mut buf = crate::pool::take(len);
        let mut from = &f.file;
        from.seek(SeekFrom::Start(span.off))
            .and_then(|_| from.take(span.len).read_to_end(&mut buf))
            .map_err(|e| StoreError::new(format!("cannot read {}", path.display()), e))?;
        if buf.len() != len {
            return Err(missing());
        }
        Ok(buf)
    }

    /// Drops the bytes of a job none of whose rows are left.
    pub(super) fn empty(&mut self, job: JobId) -> Result<(), StoreError> {
        let path = self.path(job);
        if let Some(f) = self.get(job, false)? {
            if f.end >= CLOSE_APART {
                // The next bytes go to a new file at the path.
                std::fs::remove_file(&path)
                    .map_err(|e| StoreError::new(format!("cannot remove {}", path.display()), e))?;
                if let Some(old) = self.open.remove(&job) {
                    close_apart(old.file);
                }
            } else if f.end > 0 {
                f.file
                    .set_len(0)
                    .map_err(|e| StoreError::new(format!("cannot empty {}", path.display()), e))?;
                f.end = 0;
            }
        }
        Ok(())
    }

    /// Removes a deleted job's data file.
    pub(super) fn remove(&mut self, job: JobId) -> Result<(), StoreError> {
        self.open.remove(&job);
        let path = self.path(job);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(StoreError::new(
                format!("cannot remove {}", path.display()),
                e,
            )),
            _ => Ok(()),
        }
    }
}
