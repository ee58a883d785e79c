//! Builds plugin libraries from a test or bench, so that plugin tests load a
//! real cdylib: `cargo build` into the running test's own target folder and
//! profile, then the path of the library.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a plugin could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The running executable is not in a cargo target folder.
    #[error("cannot find the target folder from {0}")]
    NoTargetDir(PathBuf),
    /// Cargo could not be started.
    #[error("cannot run cargo")]
    Spawn(#[from] std::io::Error),
    /// Cargo failed.
    #[error("`cargo {args}` failed:\n{stderr}")]
    Failed {
        /// The arguments.
        args: String,
        /// What cargo wrote to stderr.
        stderr: String,
    },
}

/// The target folder and profile folder of the running test or bench
/// (`<target>/<profile>/deps/<binary>`).
fn target_of_current_exe() -> Result<(PathBuf, PathBuf), BuildError> {
    let exe = std::env::current_exe()?;
    let no = || BuildError::NoTargetDir(exe.clone());
    let mut dir = exe.parent().ok_or_else(no)?;
    if matches!(
        dir.file_name().and_then(|n| n.to_str()),
        Some("deps" | "examples")
    ) {
        dir = dir.parent().ok_or_else(no)?;
    }
    let target = dir.parent().ok_or_else(no)?;
    Ok((target.to_path_buf(), dir.to_path_buf()))
}

/// Runs `cargo build <args>` with the target folder and profile of the
/// running test (release for a bench), and returns the profile folder
/// (`<target>/debug`), where libraries land (examples in `examples/`).
pub fn cargo_build(args: &[&str]) -> Result<PathBuf, BuildError> {
    let (target, profile_dir) = target_of_current_exe()?;
    cargo_build_in(&target, &profile_dir, args)
}

/// `cargo build <args>` into the target folder `target`, with the profile
/// named by `profile_dir`'s last component; returns `<target>/<profile>`.
fn cargo_build_in(target: &Path, profile_dir: &Path, args: &[&str]) -> Result<PathBuf, BuildError> {
    let profile_dir = target.join(
        profile_dir
            .file_name()
            .ok_or_else(|| BuildError::NoTargetDir(profile_dir.to_path_buf()))?,
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build").arg("--target-dir").arg(target);
    match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => {}
        Some("release") => {
            cmd.arg("--release");
        }
        Some(other) => {
            cmd.args(["--profile", other]);
        }
        None => return Err(BuildError::NoTargetDir(profile_dir)),
    }
    // The package under test names the workspace: cargo sets this for the
    // tests and benches it runs.
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        cmd.arg("--manifest-path")
            .arg(Path::new(&dir).join("Cargo.toml"));
    }
    cmd.args(args);
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(BuildError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(profile_dir)
}

/// The file name cargo gives the cdylib of a crate or example
/// (`libmy_plugin.so` for `my-plugin` on Linux).
pub fn cdylib_name(crate_name: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds package `package`'s cdylib and returns its path.
///
/// It is built in a target folder of its own (`<target>/plugin-builds`):
/// cargo names a cdylib crate's rlib without a hash, so a build that
/// resolves features differently from the running test (as `-p PACKAGE`
/// does under `cargo test --workspace`) would otherwise replace the rlib
/// the workspace's own tests and doctests link against with one built over
/// another jobs-core.
pub fn build_plugin(package: &str) -> Result<PathBuf, BuildError> {
    let (target, profile_dir) = target_of_current_exe()?;
    let dir = cargo_build_in(
        &target.join("plugin-builds"),
        &profile_dir,
        &["-p", package, "--lib"],
    )?;
    Ok(Path::new(&dir).join(cdylib_name(package)))
}
