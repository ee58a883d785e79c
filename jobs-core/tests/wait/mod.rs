//! `wait` returns on Blocked; `wait_until(.., WaitUntil::Finished, ..)` does not.

use std::sync::Arc;
use std::time::Duration;

use jobs_core::{JobState, Session, WaitMode, WaitUntil};
use serde_json::json;

use crate::support::{spec, TestExecutor};

#[test]
fn wait_until_finished_goes_on_past_blocked() {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    let id = s.start(spec(json!([["block", 800]]))).expect("start");
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(10)))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(out.done[0].state, JobState::Blocked);
    let out = s
        .block_on(s.wait_until(
            &[id],
            WaitMode::Any,
            WaitUntil::Finished,
            Some(Duration::from_millis(100)),
        ))
        .expect("wait");
    assert!(out.timed_out, "{out:?}");
    assert!(out.done.is_empty(), "{out:?}");
    let out = s
        .block_on(s.wait_until(
            &[id],
            WaitMode::All,
            WaitUntil::Finished,
            Some(Duration::from_secs(10)),
        ))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(out.done[0].state, JobState::Completed);
}
