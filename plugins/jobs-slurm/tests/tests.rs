//! The Slurm executor against a real single-node Slurm cluster
//! (scripts/slurm-up), through the plugin library as jobctl loads it, and
//! in-process.

mod support;

mod conformance {
    jobs_core::conformance_tests!(crate::support::PluginSubject::new());
}

mod cases {
    mod accounting;
    mod cli;
    mod failure;
    mod many;
    mod pending;
    mod resume;
    mod stop;
    mod streams;
}
