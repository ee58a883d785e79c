//! A job's folder: Slurm writes the job's stdout and stderr there (it must
//! be on a filesystem the compute nodes share), and the executor keeps the
//! Slurm job id and how far the output was read, so that a later session
//! can re-adopt the job. The folder is named by the job's instance id and
//! deleted once the job ended and its output was read.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::SlurmError;

const STATE_FILE: &str = "job.json";

/// What a session needs to follow a submitted job.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Saved {
    /// The Slurm job id.
    pub(crate) slurm_id: String,
    /// The cluster's `SLURM_CONF`, if the job chose one.
    pub(crate) slurm_conf: Option<PathBuf>,
    /// The Slurm job name.
    pub(crate) name: String,
    /// Bytes of stdout already emitted.
    pub(crate) out_read: u64,
    /// Bytes of stderr already emitted.
    pub(crate) err_read: u64,
}

/// One job's folder.
#[derive(Clone, Debug)]
pub(crate) struct JobDir {
    path: PathBuf,
}

impl JobDir {
    /// The folder of the job with this instance id under `root`.
    pub(crate) fn new(root: &Path, instance: &str) -> JobDir {
        JobDir {
            path: root.join(instance),
        }
    }

    /// Creates it (owner-only: output can be private).
    pub(crate) fn create(&self) -> Result<(), SlurmError> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(root) = self.path.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(root)
                .map_err(|e| SlurmError::file(root, e))?;
        }
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&self.path)
            .map_err(|e| SlurmError::file(&self.path, e))
    }

    /// The job's stdout file.
    pub(crate) fn out(&self) -> PathBuf {
        self.path.join("stdout")
    }

    /// The job's stderr file.
    pub(crate) fn err(&self) -> PathBuf {
        self.path.join("stderr")
    }

    fn state(&self) -> PathBuf {
        self.path.join(STATE_FILE)
    }

    /// Whether a job was submitted from this folder and not yet cleaned up.
    pub(crate) fn has_job(&self) -> bool {
        self.state().is_file()
    }

    /// Writes the saved state (whole, by rename: never half a file).
    pub(crate) fn save(&self, saved: &Saved) -> Result<(), SlurmError> {
        let tmp = self.path.join(".job.json.tmp");
        let bytes = serde_json::to_vec(saved).map_err(|e| SlurmError::State {
            path: tmp.clone(),
            message: e.to_string(),
        })?;
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(&bytes)?;
            fs::rename(&tmp, self.state())
        };
        write().map_err(|e| SlurmError::file(self.state(), e))
    }

    /// Reads the saved state.
    pub(crate) fn load(&self) -> Result<Saved, SlurmError> {
        let path = self.state();
        let bytes = fs::read(&path).map_err(|e| SlurmError::file(&path, e))?;
        serde_json::from_slice(&bytes).map_err(|e| SlurmError::State {
            path,
            message: e.to_string(),
        })
    }

    /// Deletes the folder and everything in it.
    pub(crate) fn remove(&self) -> Result<(), SlurmError> {
        match fs::remove_dir_all(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(SlurmError::file(&self.path, e))
            }
            _ => Ok(()),
        }
    }
}

/// Reads what `path` holds past `offset`, at most `limit` bytes, as
/// chunks of at most `chunk` bytes. A file not there yet holds nothing.
pub(crate) fn read_from(
    path: &Path,
    offset: u64,
    limit: usize,
    chunk: usize,
) -> Result<Vec<Vec<u8>>, SlurmError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SlurmError::file(path, e)),
    };
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| SlurmError::file(path, e))?;
    let mut chunks = Vec::new();
    let mut total = 0;
    while total < limit {
        let mut buf = vec![0; chunk.min(limit - total)];
        let mut filled = 0;
        while filled < buf.len() {
            match file.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(SlurmError::file(path, e)),
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        total += filled;
        let short = filled < chunk;
        chunks.push(buf);
        if short {
            break;
        }
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_go_on_where_they_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = JobDir::new(dir.path(), "abc");
        job.create().expect("create");
        assert!(read_from(&job.out(), 0, 100, 4)
            .expect("missing")
            .is_empty());
        fs::write(job.out(), b"0123456789").expect("write");
        let first = read_from(&job.out(), 0, 6, 4).expect("read");
        assert_eq!(first, vec![b"0123".to_vec(), b"45".to_vec()]);
        let rest = read_from(&job.out(), 6, 100, 4).expect("read");
        assert_eq!(rest.concat(), b"6789");
        assert!(read_from(&job.out(), 10, 100, 4).expect("eof").is_empty());
    }

    #[test]
    fn state_saves_loads_and_goes_away() {
        let dir = tempfile::tempdir().expect("tempdir");
        let job = JobDir::new(&dir.path().join("jobs"), "abc");
        job.create().expect("create");
        assert!(!job.has_job());
        let saved = Saved {
            slurm_id: "12".into(),
            slurm_conf: Some("/etc/slurm.conf".into()),
            name: "n".into(),
            out_read: 3,
            err_read: 0,
        };
        job.save(&saved).expect("save");
        assert!(job.has_job());
        assert_eq!(job.load().expect("load"), saved);
        job.remove().expect("remove");
        assert!(!dir.path().join("jobs/abc").exists());
        job.remove().expect("twice");
    }
}
