//! The loader: opens a library, checks its header before calling anything
//! else, and wraps it in a [`JobExecutor`]. Libraries are never unloaded.

use std::ffi::OsStr;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::abi::{
    HeaderPrefix, PluginHeader, PluginVTable, StrRef, ABI_VERSION, ENTRY_SYMBOL, MAGIC,
};
use super::adapter::{PluginExecutor, PluginFns};
use crate::JobExecutor;

/// Longest string a header may carry; a longer one means a broken header.
const MAX_HEADER_STR: usize = 4096;

/// Why a file could not be loaded as a plugin. Every variant names the
/// file; version mismatches name both versions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The file or folder could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Someone else could have written or replaced the file: loading it
    /// would run their code.
    #[error("{path}: refused: {rule}")]
    Insecure {
        /// The file.
        path: PathBuf,
        /// The rule it breaks.
        rule: Insecurity,
    },
    /// The system could not load the file as a library.
    #[error("{path}: not a loadable library: {message}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The dynamic loader's message.
        message: String,
    },
    /// The library has no plugin entry point.
    #[error("{path}: not a jobctl plugin (no `{ENTRY_SYMBOL}` symbol)")]
    NoEntry {
        /// The file.
        path: PathBuf,
    },
    /// The header does not start with the plugin magic.
    #[error("{path}: not a jobctl plugin header (magic {found}, expected {expected})")]
    Magic {
        /// The file.
        path: PathBuf,
        /// The bytes found, escaped.
        found: String,
        /// The bytes expected, escaped.
        expected: String,
    },
    /// The plugin speaks another version of the boundary.
    #[error("{path}: plugin ABI version {plugin}, this host speaks version {host}")]
    AbiVersion {
        /// The file.
        path: PathBuf,
        /// The plugin's version.
        plugin: u32,
        /// The host's version.
        host: u32,
    },
    /// The header's size differs from this host's.
    #[error("{path}: plugin header of {plugin} bytes, this host expects {host}")]
    HeaderSize {
        /// The file.
        path: PathBuf,
        /// The plugin's size.
        plugin: u32,
        /// The host's size.
        host: u32,
    },
    /// The plugin's function table has another size than this host's: it
    /// was built from another definition of the same ABI version.
    #[error("{path}: plugin function table of {plugin} bytes, this host expects {host}")]
    TableSize {
        /// The file.
        path: PathBuf,
        /// The plugin's size.
        plugin: u32,
        /// The host's size.
        host: u32,
    },
    /// The header or the plugin's first answer is not well formed.
    #[error("{path}: malformed plugin: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Another plugin already provides the job type.
    #[error("{path}: job type '{type_name}' is already provided by {first}")]
    DuplicateType {
        /// The file.
        path: PathBuf,
        /// The type name.
        type_name: String,
        /// The plugin that provides it.
        first: PathBuf,
    },
}

impl PluginError {
    /// The file (or folder) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            PluginError::Io { path, .. }
            | PluginError::Insecure { path, .. }
            | PluginError::Open { path, .. }
            | PluginError::NoEntry { path }
            | PluginError::Magic { path, .. }
            | PluginError::AbiVersion { path, .. }
            | PluginError::HeaderSize { path, .. }
            | PluginError::TableSize { path, .. }
            | PluginError::Malformed { path, .. }
            | PluginError::DuplicateType { path, .. } => path,
        }
    }
}

/// Which of the loader's rules (see [`load`]) a plugin file breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Insecurity {
    /// The file is a symbolic link; plugins are opened without following one.
    #[error("it is a symbolic link: give the path of the file itself")]
    Symlink,
    /// The file, or a folder above it, belongs to another user.
    #[error("{at} is owned by uid {uid}: a plugin and the folders above it must belong to uid {user} or root")]
    Owner {
        /// The file or folder.
        at: PathBuf,
        /// Its owner.
        uid: u32,
        /// The loading process's effective user.
        user: u32,
    },
    /// The file, or a folder above it, may be written by others.
    #[error("{at} is writable by its group or others (mode {mode:04o}): only its owner may write a plugin, its folder, or a folder above it that is not sticky")]
    Writable {
        /// The file or folder.
        at: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// A plugin that passed the checks: who it is, and its executor.
#[derive(Clone)]
pub struct LoadedPlugin {
    /// The plugin's crate name.
    pub name: String,
    /// The plugin's crate version.
    pub version: String,
    /// The library file (canonical path).
    pub file: PathBuf,
    /// The job type it provides.
    pub type_name: String,
    /// The executor to register with a session.
    pub executor: Arc<dyn JobExecutor>,
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("file", &self.file)
            .field("type_name", &self.type_name)
            .finish_non_exhaustive()
    }
}

/// This process's effective user id.
fn effective_uid() -> u32 {
    // SAFETY: geteuid takes nothing, cannot fail and touches no memory.
    unsafe { libc::geteuid() }
}

/// Whether `owner` may own a plugin or a folder above it.
fn trusted_owner(owner: u32, user: u32) -> bool {
    owner == user || owner == 0
}

/// Checks one file or folder against the loader's rule (see [`load`]):
/// owned by this user or root, writable by no one else (a sticky folder
/// may be when `sticky_ok`). A refusal names `subject`.
fn check_entry(
    subject: &Path,
    at: &Path,
    meta: &std::fs::Metadata,
    sticky_ok: bool,
) -> Result<(), PluginError> {
    let user = effective_uid();
    let refuse = |rule| PluginError::Insecure {
        path: subject.to_path_buf(),
        rule,
    };
    if !trusted_owner(meta.uid(), user) {
        return Err(refuse(Insecurity::Owner {
            at: at.to_path_buf(),
            uid: meta.uid(),
            user,
        }));
    }
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky_ok && sticky) {
        return Err(refuse(Insecurity::Writable {
            at: at.to_path_buf(),
            mode,
        }));
    }
    Ok(())
}

/// Checks the canonical folder `dir` and every folder above it; a
/// refusal names `subject`.
fn check_folders(subject: &Path, dir: &Path) -> Result<(), PluginError> {
    for (i, folder) in dir.ancestors().enumerate() {
        let meta = std::fs::symlink_metadata(folder).map_err(|e| PluginError::Io {
            path: folder.to_path_buf(),
            source: e,
        })?;
        check_entry(subject, folder, &meta, i > 0)?;
    }
    Ok(())
}

/// Checks a folder of files this process will run (a plugins folder, the
/// daemon's hooks folder) by the rule [`load`] applies to a plugin's
/// folders: it and every folder above it belong to this process's user or
/// root and are writable by no one else, except that a folder above it may
/// be sticky. Returns the folder's canonical path.
pub fn check_folder(dir: &Path) -> Result<PathBuf, PluginError> {
    let real = std::fs::canonicalize(dir).map_err(|e| PluginError::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    check_folders(dir, &real)?;
    Ok(real)
}

/// The plugin file checked and held open: the library is loaded through
/// this descriptor, so the file checked is the file loaded.
struct CheckedFile {
    /// The file's path: its folder canonical, its own name as given.
    path: PathBuf,
    /// The open file.
    file: File,
}

/// Opens `given` without following a symbolic link in its last component
/// and checks the open file and every folder above it (see [`load`]).
fn open_checked(given: &Path) -> Result<CheckedFile, PluginError> {
    let io = |path: &Path, source| PluginError::Io {
        path: path.to_path_buf(),
        source,
    };
    let not_a_file = |path: &Path| PluginError::Open {
        path: path.to_path_buf(),
        message: "not a regular file".into(),
    };
    // Links in the folders are resolved, so the folders checked are the
    // real ones; the last component is opened as it is.
    let name = match given.file_name() {
        Some(name) => name,
        None => return Err(not_a_file(given)),
    };
    let parent = match given.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = std::fs::canonicalize(parent).map_err(|e| io(given, e))?;
    let path = dir.join(name);
    let file = OpenOptions::new()
        .read(true)
        // Non-blocking: opening a FIFO must not wait for a writer.
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| {
            let is_link = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
            if e.raw_os_error() == Some(libc::ELOOP) && is_link {
                PluginError::Insecure {
                    path: path.clone(),
                    rule: Insecurity::Symlink,
                }
            } else {
                io(&path, e)
            }
        })?;
    let meta = file.metadata().map_err(|e| io(&path, e))?;
    if !meta.is_file() {
        return Err(not_a_file(&path));
    }
    check_entry(&path, &path, &meta, false)?;
    check_folders(&path, &dir)?;
    Ok(CheckedFile { path, file })
}

/// Checks `path` by the rules [`load`] applies before opening a library
/// (a regular file, not a symbolic link; it and every folder above it
/// owned by this process's user or root and writable by no one else,
/// except a sticky folder above its own folder), without loading it.
/// Returns the path with its folder made canonical. For hosts that run
/// other kinds of extensions (such as executables) by the same trust rule.
pub fn check_trusted(path: impl AsRef<Path>) -> Result<PathBuf, PluginError> {
    open_checked(path.as_ref()).map(|checked| checked.path)
}

/// The name under which the dynamic loader opens `file`'s descriptor.
fn descriptor_path(file: &File) -> String {
    let fd = file.as_raw_fd();
    if cfg!(target_os = "linux") {
        format!("/proc/self/fd/{fd}")
    } else {
        format!("/dev/fd/{fd}")
    }
}

fn escape(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// Reads a header string.
///
/// # Safety
/// `s` comes from a header whose magic, ABI version and size matched: it
/// points to `len` bytes of static data in the library.
unsafe fn header_str(path: &Path, what: &str, s: StrRef) -> Result<String, PluginError> {
    let malformed = |message: String| PluginError::Malformed {
        path: path.to_path_buf(),
        message,
    };
    if s.ptr.is_null() || s.len > MAX_HEADER_STR {
        return Err(malformed(format!(
            "the header's {what} is missing or too long"
        )));
    }
    // SAFETY: as the caller promises.
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8(bytes.to_vec())
        .map_err(|_| malformed(format!("the header's {what} is not UTF-8")))
}

/// Loads the plugin in `path`: checks who may have written the file,
/// opens the library, checks its header (magic, ABI version, header size,
/// table size) before calling anything else, then asks it for its job
/// type. Neither the plugin's compiler nor its language matters: a plugin
/// of this host's [`ABI_VERSION`](super::ABI_VERSION) loads. The library stays loaded for the life of the process,
/// whatever the outcome.
///
/// Loading runs the library's initializers and its entry point, which only
/// returns a static header; so before the library is opened, the file must
/// be one that only this process's user (or root) could have put there,
/// the rule OpenSSH applies to `authorized_keys`:
/// - the file is a regular file and not a symbolic link (links in the
///   folders above are resolved: the real folders are checked);
/// - the file and every folder above it, up to `/`, belong to this
///   process's effective user or root;
/// - none of them is writable by its group or others, except that a folder
///   *above* the plugin's own folder may be when it has the sticky bit (as
///   `/tmp` has): there others may add entries but not replace ours. The
///   plugin's own folder must admit no one else's files at all.
///
/// The file is opened (`O_NOFOLLOW`, close-on-exec) and checked through
/// that descriptor, and the dynamic loader opens the same descriptor
/// (`/proc/self/fd/N`), so the file cannot be swapped between the check
/// and the load. A loaded library's descriptor stays open, as the library
/// stays loaded, so that its name is never reused for another library.
/// A refusal is [`PluginError::Insecure`], naming the rule broken.
pub fn load(path: impl AsRef<Path>) -> Result<LoadedPlugin, PluginError> {
    let CheckedFile { path, file } = open_checked(path.as_ref())?;
    let by_fd = descriptor_path(&file);
    // SAFETY: opening a library runs its initializers. That is the trust
    // the caller gives a file that passed the checks above (see the module
    // docs); a Rust cdylib built with `export_executor!` has no
    // initializers of its own.
    let lib = unsafe { libloading::Library::new(&by_fd) }.map_err(|e| PluginError::Open {
        path: path.clone(),
        message: e.to_string().replace(&by_fd, &path.display().to_string()),
    })?;
    // Kept open for the life of the process, as the library is: the
    // dynamic loader knows the library by the descriptor's name and would
    // hand it back for another file opened under the same number.
    let _ = file.into_raw_fd();
    // Never unloaded: code, statics and threads of the plugin may outlive
    // any handle we hold, and unloading a Rust library is not supported.
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    type Entry = unsafe extern "C" fn() -> *const PluginHeader;
    // SAFETY: the symbol's type is the documented entry point's; the
    // loaded library is leaked, so the function stays valid.
    let entry = unsafe { lib.get::<Entry>(ENTRY_SYMBOL.as_bytes()) }
        .map(|s| *s)
        .map_err(|_| PluginError::NoEntry { path: path.clone() })?;
    // SAFETY: the entry point takes nothing and returns a pointer to a
    // static header (what `export_executor!` defines).
    let header = unsafe { entry() };
    if header.is_null() {
        return Err(PluginError::Malformed {
            path,
            message: "the entry point returned no header".into(),
        });
    }
    // SAFETY: every header, of any ABI version, starts with the prefix.
    let prefix = unsafe { (header as *const HeaderPrefix).read_unaligned() };
    if prefix.magic != MAGIC {
        return Err(PluginError::Magic {
            path,
            found: escape(&prefix.magic),
            expected: escape(&MAGIC),
        });
    }
    if prefix.abi_version != ABI_VERSION {
        return Err(PluginError::AbiVersion {
            path,
            plugin: prefix.abi_version,
            host: ABI_VERSION,
        });
    }
    let host_size = std::mem::size_of::<PluginHeader>() as u32;
    if prefix.header_size != host_size {
        return Err(PluginError::HeaderSize {
            path,
            plugin: prefix.header_size,
            host: host_size,
        });
    }
    // SAFETY: magic, version and size match: the header has this layout.
    let header = unsafe { &*header };
    let host_table = std::mem::size_of::<PluginVTable>() as u32;
    if header.vtable_size != host_table {
        return Err(PluginError::TableSize {
            path,
            plugin: header.vtable_size,
            host: host_table,
        });
    }
    // SAFETY: the strings of a matching header point to static data (so
    // for both below).
    let name = unsafe { header_str(&path, "plugin name", header.plugin_name)? };
    // SAFETY: as above.
    let version = unsafe { header_str(&path, "plugin version", header.plugin_version)? };
    // SAFETY: a matching header's table is a static of the library.
    let Some(vtable) = (unsafe { header.vtable.as_ref() }) else {
        return Err(PluginError::Malformed {
            path,
            message: "the header has no function table".into(),
        });
    };
    // SAFETY: the header passed every check and the library stays loaded.
    let fns = unsafe { PluginFns::new(header.instance, vtable) };
    let described = fns.describe().map_err(|message| PluginError::Malformed {
        path: path.clone(),
        message: format!("the plugin could not describe its executor: {message}"),
    })?;
    if described.type_name.trim().is_empty() {
        return Err(PluginError::Malformed {
            path,
            message: "the executor's type name is empty".into(),
        });
    }
    Ok(LoadedPlugin {
        name,
        version,
        file: path,
        type_name: described.type_name.clone(),
        executor: Arc::new(PluginExecutor::new(fns, described)),
    })
}

/// What [`scan`] found: the plugins that loaded, and why others did not.
#[derive(Debug, Default)]
pub struct Scan {
    /// The plugins that passed every check, in the order found.
    pub plugins: Vec<LoadedPlugin>,
    /// One error per file (or folder) that could not be used.
    pub errors: Vec<PluginError>,
}

fn is_library(path: &Path) -> bool {
    let suffix = std::env::consts::DLL_EXTENSION;
    path.extension() == Some(OsStr::new(suffix))
}

/// Loads every plugin of `paths`: a file is loaded whatever its name; a
/// folder contributes its `*.so` files (`*.dylib` on macOS), by name. A
/// file reached twice is loaded once; a second plugin of a job type that is
/// already taken is refused. A broken plugin is reported and skipped.
pub fn scan<P: AsRef<Path>>(paths: &[P]) -> Scan {
    let mut files = Vec::new();
    let mut out = Scan::default();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            match std::fs::read_dir(p) {
                Ok(rd) => {
                    let mut found: Vec<PathBuf> = rd
                        .filter_map(|e| e.ok().map(|e| e.path()))
                        .filter(|f| is_library(f))
                        .collect();
                    found.sort();
                    files.extend(found);
                }
                Err(source) => out.errors.push(PluginError::Io {
                    path: p.to_path_buf(),
                    source,
                }),
            }
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut seen = std::collections::HashSet::new();
    for f in files {
        if let Ok(canon) = std::fs::canonicalize(&f) {
            if !seen.insert(canon) {
                continue;
            }
        }
        match load(&f) {
            Ok(p) => {
                let taken = out
                    .plugins
                    .iter()
                    .find(|q| q.type_name.eq_ignore_ascii_case(&p.type_name));
                match taken {
                    Some(q) => out.errors.push(PluginError::DuplicateType {
                        path: p.file.clone(),
                        type_name: p.type_name.clone(),
                        first: q.file.clone(),
                    }),
                    None => out.plugins.push(p),
                }
            }
            Err(e) => out.errors.push(e),
        }
    }
    out
}
