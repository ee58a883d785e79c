//! The namespace executor loaded from its real cdylib: the conformance
//! suite through the plugin boundary, and what the namespaces change.

mod support {
    use std::sync::{Arc, OnceLock};

    use jobs_core::plugin::{self, testing, LoadedPlugin};
    use jobs_core::{JobExecutor, JobSpec, Session};
    use serde_json::json;

    /// The plugin, built as a cdylib and loaded once.
    pub(crate) fn plugin() -> &'static LoadedPlugin {
        static PLUGIN: OnceLock<LoadedPlugin> = OnceLock::new();
        PLUGIN.get_or_init(|| {
            let file = testing::build_plugin("jobs-namespace").expect("build the plugin");
            plugin::load(file).expect("load the plugin")
        })
    }

    /// A session with the loaded plugin registered.
    pub(crate) fn session() -> Session {
        let s = Session::new().expect("session");
        s.register(Arc::clone(&plugin().executor));
        s
    }

    /// A shell word that the shell reads back as `s`.
    pub(crate) use jobs_core::shell_quote as quote;

    /// A job running `line` with the default namespaces.
    pub(crate) fn job(line: &str) -> JobSpec {
        JobSpec::new("NamespaceJob", line)
    }

    /// A job running `line` with the given params.
    pub(crate) fn job_with(line: &str, params: serde_json::Value) -> JobSpec {
        let mut p = params;
        p["line"] = json!(line);
        JobSpec::new("NamespaceJob", line).params(p)
    }

    /// The conformance subject: the loaded plugin.
    pub(crate) struct Subject;

    impl jobs_core::conformance::Subject for Subject {
        fn executor(&self) -> Arc<dyn JobExecutor> {
            Arc::clone(&plugin().executor)
        }
        fn emit(&self, lines: &[&str]) -> JobSpec {
            let words: Vec<String> = lines.iter().map(|l| quote(l)).collect();
            job(&format!("printf '%s\\n' {}", words.join(" ")))
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
    mod isolation;
}
