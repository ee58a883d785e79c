//! Integration tests of the session, with a test executor.

mod support;

mod conformance {
    jobs_core::conformance_tests!(crate::support::Subject);
}

mod batch;
mod deps;
mod events;
mod in_place;
mod lifecycle;
mod timeout;
mod wait;
