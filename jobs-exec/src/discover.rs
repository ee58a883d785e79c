//! Finding executables: every executable file of the executor folders is
//! an executor whose job type is its file name.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jobs_core::plugin::PluginError;

use crate::ExecutableExecutor;

/// Why a file of an executor folder is not used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The folder or file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The folder or file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file breaks the plugins' trust rule (someone else could have
    /// written or replaced it), or is not a regular file.
    #[error(transparent)]
    Untrusted(#[from] PluginError),
    /// The file has no execute permission.
    #[error("{path}: not executable (mode {mode:04o})")]
    NotExecutable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file name is no job type name.
    #[error("{path}: the file name is not a job type name (UTF-8 letters, digits, '-', '_', '.')")]
    BadName {
        /// The file.
        path: PathBuf,
    },
    /// An executor of an earlier folder already has the type.
    #[error("{path}: job type '{name}' is already provided by {first}")]
    Duplicate {
        /// The file.
        path: PathBuf,
        /// The type name.
        name: String,
        /// The executable that provides it.
        first: PathBuf,
    },
}

impl DiscoveryError {
    /// The file (or folder) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DiscoveryError::Io { path, .. }
            | DiscoveryError::NotExecutable { path, .. }
            | DiscoveryError::BadName { path }
            | DiscoveryError::Duplicate { path, .. } => path,
            DiscoveryError::Untrusted(e) => e.path(),
        }
    }
}

/// An executable found in an executor folder.
#[derive(Debug, Clone)]
pub struct Found {
    /// The job type: the file's name.
    pub name: String,
    /// The file (its folder canonical).
    pub path: PathBuf,
    /// Its executor, to register with a session (nothing runs yet).
    pub executor: Arc<ExecutableExecutor>,
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The executables that passed the checks, in the order found.
    pub executors: Vec<Found>,
    /// One error per file (or folder) that could not be used.
    pub errors: Vec<DiscoveryError>,
}

/// The executor folders: `<home>/executors` if it exists, then each entry
/// of `executor_path` (colon-separated folders, as in
/// `JOBCTL_EXECUTOR_PATH`; empty entries are skipped).
pub fn search_path(home: &Path, executor_path: Option<&OsStr>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = home.join("executors");
    if dir.is_dir() {
        out.push(dir);
    }
    if let Some(var) = executor_path {
        out.extend(std::env::split_paths(var).filter(|p| !p.as_os_str().is_empty()));
    }
    out
}

/// Whether `name` may be a job type: UTF-8 letters, digits, `-`, `_`, `.`,
/// not starting with a dot.
fn type_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Finds the executors of `folders`: each regular file (hidden files are
/// skipped) is checked by the plugins' trust rule
/// ([`jobs_core::plugin::check_trusted`]: it, its folder and every folder
/// above belong to this user or root and are writable by no one else) and
/// must be executable; its name is its job type. The first folder with a
/// type wins. Nothing is started.
pub fn scan<P: AsRef<Path>>(folders: &[P]) -> Scan {
    let mut out = Scan::default();
    for folder in folders {
        let folder = folder.as_ref();
        let entries = match std::fs::read_dir(folder) {
            Ok(rd) => rd,
            Err(source) => {
                out.errors.push(DiscoveryError::Io {
                    path: folder.to_path_buf(),
                    source,
                });
                continue;
            }
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let hidden = file
                .file_name()
                .is_none_or(|n| n.as_encoded_bytes().starts_with(b"."));
            if hidden || file.is_dir() {
                continue;
            }
            match check(&file) {
                Ok(found) => {
                    let taken = out
                        .executors
                        .iter()
                        .find(|f| f.name.eq_ignore_ascii_case(&found.name));
                    match taken {
                        Some(first) => out.errors.push(DiscoveryError::Duplicate {
                            path: found.path,
                            name: found.name,
                            first: first.path.clone(),
                        }),
                        None => out.executors.push(found),
                    }
                }
                Err(e) => out.errors.push(e),
            }
        }
    }
    out
}

/// Checks one file of an executor folder.
fn check(file: &Path) -> Result<Found, DiscoveryError> {
    let name = file
        .file_name()
        .and_then(OsStr::to_str)
        .filter(|n| type_name_ok(n))
        .ok_or_else(|| DiscoveryError::BadName {
            path: file.to_path_buf(),
        })?
        .to_string();
    let path = jobs_core::plugin::check_trusted(file)?;
    let meta = std::fs::metadata(&path).map_err(|source| DiscoveryError::Io {
        path: path.clone(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o111 == 0 {
        return Err(DiscoveryError::NotExecutable { path, mode });
    }
    Ok(Found {
        executor: Arc::new(ExecutableExecutor::new(name.clone(), path.clone())),
        name,
        path,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }

    #[test]
    fn finds_executables_by_name_and_reports_what_it_refuses() {
        let home = tempfile::tempdir().expect("tempdir");
        mode(home.path(), 0o700);
        let dir = home.path().join("executors");
        std::fs::create_dir(&dir).expect("mkdir");
        mode(&dir, 0o700);
        for (name, m) in [("Good", 0o755), ("plain", 0o644), (".hidden", 0o755)] {
            let f = dir.join(name);
            std::fs::write(&f, "#!/bin/sh\n").expect("write");
            mode(&f, m);
        }
        let var = std::ffi::OsString::from(format!("::{}", dir.display()));
        let folders = super::search_path(home.path(), Some(&var));
        assert_eq!(folders, [dir.clone(), dir.clone()]);
        let scan = super::scan(&folders);
        let names: Vec<&str> = scan.executors.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["Good"]);
        let errors: Vec<String> = scan.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(
            errors[0].contains("plain: not executable (mode 0644)"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("'Good' is already provided by"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_folder_others_may_write_is_refused() {
        let home = tempfile::tempdir().expect("tempdir");
        mode(home.path(), 0o700);
        let dir = home.path().join("executors");
        std::fs::create_dir(&dir).expect("mkdir");
        let f = dir.join("Open");
        std::fs::write(&f, "#!/bin/sh\n").expect("write");
        mode(&f, 0o755);
        mode(&dir, 0o777);
        let scan = super::scan(&[&dir]);
        assert!(scan.executors.is_empty());
        let e = scan.errors[0].to_string();
        assert!(
            e.contains("refused") && e.contains("writable by its group or others (mode 0777)"),
            "{e}"
        );
        assert_eq!(
            scan.errors[0].path(),
            dir.canonicalize().expect("canon").join("Open")
        );
    }
}
