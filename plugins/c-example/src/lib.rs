//! Builds `CShellJob`, the executor plugin written in C (`c_example.c`),
//! with the system's C compiler, so that tests load a real library through
//! jobs-core's loader.
//!
//! The plugin is plain C against `plugins/include/jobctl_plugin.h`: no Rust,
//! no jobs-core, no cargo. By hand:
//!
//! ```text
//! cc -std=c11 -O2 -fPIC -shared -pthread -fvisibility=hidden \
//!    -I plugins/include -o libc_example.so plugins/c-example/c_example.c
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The plugin's C source.
pub const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/c_example.c");

/// The folder of `jobctl_plugin.h`.
pub const INCLUDE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../include");

/// The job type the plugin provides.
pub const TYPE: &str = "CShellJob";

/// Why the C compiler could not build something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The compiler could not be started.
    #[error("cannot run the C compiler `{cc}`")]
    Spawn {
        /// The compiler.
        cc: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The compiler failed.
    #[error("`{command}` failed:\n{stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// What the compiler wrote to stderr.
        stderr: String,
    },
}

/// The C compiler: `$CC`, else `cc`.
pub fn compiler() -> String {
    std::env::var("CC")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| "cc".to_string())
}

/// Runs the C compiler with warnings as errors and the plugin header's
/// folder on the include path, over `args`.
pub fn cc(args: &[&std::ffi::OsStr]) -> Result<(), BuildError> {
    let cc = compiler();
    let mut cmd = Command::new(&cc);
    cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-I", INCLUDE_DIR])
        .args(args);
    let out = cmd.output().map_err(|source| BuildError::Spawn {
        cc: cc.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            command: format!("{cmd:?}"),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(())
}

/// Builds the plugin into `dir` as `file_name`, with extra `defines`
/// (`NAME=VALUE`, e.g. `C_EXAMPLE_ABI_VERSION=99` for a plugin that claims
/// another ABI version); returns the library's path.
///
/// The loader refuses a library that others could have written: give it
/// a folder of your own that no one else may write (mode 0700).
pub fn build(dir: &Path, file_name: &str, defines: &[&str]) -> Result<PathBuf, BuildError> {
    build_source(Path::new(SOURCE), dir, file_name, defines)
}

/// Builds the plugin written in `source` (C) into `dir` as `file_name`,
/// as [`build`] builds `c_example.c`.
pub fn build_source(
    source: &Path,
    dir: &Path,
    file_name: &str,
    defines: &[&str],
) -> Result<PathBuf, BuildError> {
    let lib = dir.join(file_name);
    let mut args: Vec<std::ffi::OsString> = ["-O2", "-fPIC", "-shared", "-pthread"]
        .iter()
        .map(Into::into)
        .collect();
    args.push("-fvisibility=hidden".into());
    for d in defines {
        args.push(format!("-D{d}").into());
    }
    args.push("-o".into());
    args.push(lib.clone().into());
    args.push(source.into());
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    cc(&refs)?;
    Ok(lib)
}
