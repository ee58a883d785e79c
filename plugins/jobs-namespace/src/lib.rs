//! `NamespaceJob`: a jobctl executor plugin that runs each job's shell line
//! inside fresh Linux namespaces, with `unshare` from util-linux.
//!
//! Every job gets its own PID and mount namespaces (with its own `/proc`),
//! so `ps` inside shows only the job's processes and a stop ends all of
//! them at once: the job's PID 1 is killed and the kernel takes every other
//! process of the namespace with it, daemons and double forks included. By
//! default the job also gets an empty network namespace (loopback only: no
//! way out), its own IPC and UTS namespaces, and, when not running as root,
//! a user namespace mapping the caller to root. `params` may say otherwise:
//!
//! ```json
//! {"line": "make test", "namespaces": ["net", "uts"], "hostname": "sandbox",
//!  "cwd": "/src/project", "env": {"CI": "1"}}
//! ```
//!
//! `line` defaults to the spec's command. stdout becomes Output records and
//! stderr Error records, a line per record, byte-exact. Exit 0 completes the
//! job; any other status fails it with a reason quoting the last line of
//! stderr.
//!
//! Built as a cdylib, the crate is a plugin: drop `libjobs_namespace.so` in
//! `$JOBCTL_HOME/plugins/` and `jobctl start --type NamespaceJob 'curl
//! example.com'` fails for want of a network. Built as an rlib (without the
//! default `export` feature) it is an ordinary executor:
//!
//! ```
//! use std::sync::Arc;
//! use jobs_core::{JobSpec, JobState, Session, WaitMode};
//! use jobs_namespace::NamespaceExecutor;
//!
//! let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
//! let session = Session::builder().runtime(rt.handle().clone()).build()?;
//! session.register(Arc::new(NamespaceExecutor));
//! let id = session.start(JobSpec::new("NamespaceJob", "echo $$"))?;
//! session.wait_blocking(&[id], WaitMode::All, None)?;
//! assert_eq!(session.info(id)?.state, JobState::Completed);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod executor;
mod params;

pub use executor::{NamespaceExecutor, TYPE};
pub use params::{default_namespaces, NamespaceJob, OPTIONAL_NAMESPACES};

#[cfg(feature = "export")]
jobs_core::export_executor!(NamespaceExecutor);
