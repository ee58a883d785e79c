//! CShellJob, the executor written in C, built with `cc` and loaded through
//! jobs-core's loader; and `jobctl_plugin.h` held to jobs-core's
//! definitions.

mod support {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, OnceLock};

    use jobs_core::plugin::{self, LoadedPlugin};
    use jobs_core::{JobExecutor, JobSpec};

    /// A folder of this test binary's own (mode 0700, so that the loader
    /// trusts what is in it), emptied and made again on each run.
    pub(crate) fn private_dir(name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the folder");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        dir
    }

    /// The C plugin, built with `cc` once and loaded.
    pub(crate) fn loaded() -> &'static LoadedPlugin {
        static PLUGIN: OnceLock<LoadedPlugin> = OnceLock::new();
        PLUGIN.get_or_init(|| {
            let dir = private_dir("c-example");
            let lib = jobs_plugin_c_example::build(&dir, "libc_example.so", &[])
                .expect("build the C plugin");
            plugin::load(lib).expect("load the C plugin")
        })
    }

    /// A job of the C plugin running `line` in the shell.
    pub(crate) fn job(line: &str) -> JobSpec {
        JobSpec::new(jobs_plugin_c_example::TYPE, line)
    }

    /// `s` quoted for the shell.
    pub(crate) fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', r"'\''"))
    }

    /// The conformance subject: the loaded C plugin and shell lines.
    pub(crate) struct Subject;

    impl jobs_core::conformance::Subject for Subject {
        fn executor(&self) -> Arc<dyn JobExecutor> {
            Arc::clone(&loaded().executor)
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

mod cases {
    mod header;
    mod readme;
    mod refused;
    mod shell;
}
