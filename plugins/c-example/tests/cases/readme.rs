//! The smallest C plugin of `plugins/README.md` builds, loads and runs: the
//! guide's example stays true.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobSpec, JobState, ReceiveOptions, Session, WaitMode};

/// The README's C block that starts with `/* hello.c`.
fn hello_c() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("read plugins/README.md");
    let start = readme
        .find("```c\n/* hello.c")
        .expect("the README's hello.c block")
        + "```c\n".len();
    let len = readme[start..].find("```").expect("the block's end");
    readme[start..start + len].to_string()
}

#[test]
fn the_readme_hello_plugin_builds_loads_and_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let src = dir.path().join("hello.c");
    std::fs::write(&src, hello_c()).expect("write hello.c");
    let lib = jobs_plugin_c_example::build_source(&src, dir.path(), "libhello.so", &[])
        .expect("build hello.c");
    let plugin = jobs_core::plugin::load(&lib).expect("load hello.c");
    assert_eq!(
        (plugin.name.as_str(), plugin.version.as_str()),
        ("hello", "1.0.0")
    );
    let s = Session::new().expect("session");
    s.register(Arc::clone(&plugin.executor));
    let id = s
        .start(JobSpec::new("HelloJob", "anything"))
        .expect("start");
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    let recs = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    assert_eq!(
        jobs_core::conformance::output_lines(&recs),
        ["hello from C"]
    );
}
