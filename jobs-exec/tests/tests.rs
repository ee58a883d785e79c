//! The Python executor (plugins/py-example/py-shell) run through
//! `ExecutableExecutor`: the conformance suite, and what the host does
//! with executables that misbehave.

mod support {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};

    use jobs_core::{JobExecutor, JobSpec};
    use jobs_exec::ExecutableExecutor;

    /// The Python executor in the repository.
    pub(crate) const PY_SHELL: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../plugins/py-example/py-shell"
    );

    /// A folder of this test binary's own (mode 0700, so that the trust
    /// check passes), emptied and made again.
    pub(crate) fn private_dir(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        dir
    }

    /// Writes an executable `name` with `text` into a private folder.
    pub(crate) fn install(folder: &str, name: &str, text: &str) -> PathBuf {
        let dir = private_dir(folder);
        let file = dir.join(name);
        std::fs::write(&file, text).expect("write the executable");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        file
    }

    /// The Python executor, installed once as `py-shell`.
    pub(crate) fn py_shell() -> &'static Arc<ExecutableExecutor> {
        static EXEC: OnceLock<Arc<ExecutableExecutor>> = OnceLock::new();
        EXEC.get_or_init(|| {
            let text = std::fs::read_to_string(PY_SHELL).expect("read py-shell");
            let file = install("py-shell", "py-shell", &text);
            Arc::new(ExecutableExecutor::new("py-shell", file))
        })
    }

    /// `s` quoted for the shell.
    pub(crate) fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }

    /// A py-shell job running `line`.
    pub(crate) fn job(line: &str) -> JobSpec {
        JobSpec::new("py-shell", line)
    }

    /// The conformance subject: py-shell and shell lines.
    pub(crate) struct Subject;

    impl jobs_core::conformance::Subject for Subject {
        fn executor(&self) -> Arc<dyn JobExecutor> {
            let e: Arc<dyn JobExecutor> = Arc::clone(py_shell()) as _;
            e
        }

        fn emit(&self, lines: &[&str]) -> JobSpec {
            let args: Vec<String> = lines.iter().map(|l| quote(l)).collect();
            job(&format!("printf '%s\\n' {}", args.join(" ")))
        }

        fn sleep(&self, secs: u64) -> JobSpec {
            job(&format!("sleep {secs}"))
        }

        fn fail(&self, marker: &str) -> JobSpec {
            job(&format!("echo {} >&2; exit 3", quote(marker)))
        }
    }
}

mod conformance {
    jobs_core::conformance_tests!(crate::support::Subject);
}

mod cases;
