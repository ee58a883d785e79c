//! State-change events: numbered once each, in order, for every change; a
//! subscriber that falls behind is told how many it missed.

use std::sync::Arc;

use jobs_core::{JobState, Lagged, Session};
use serde_json::json;

use crate::support::{spec, TestExecutor};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    s
}

#[test]
fn every_change_of_every_job_is_an_event_numbered_in_order() {
    let s = session();
    let mut rx = s.subscribe();
    let ok = s.start(spec(json!([["out", "x"]]))).expect("start");
    let bad = s.start(spec(json!([["fail", "no"]]))).expect("start");
    let stopped = s.start(spec(json!([["sleep", 60000]]))).expect("start");
    s.block_on(s.wait_finished(ok)).expect("wait");
    s.block_on(s.wait_finished(bad)).expect("wait");
    s.stop_blocking(stopped).expect("stop");
    s.remove_blocking(ok, false).expect("remove");
    let mut all = Vec::new();
    while let Some(next) = rx.try_next() {
        all.push(next.expect("no lag"));
    }
    let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let of = |id| -> Vec<(Option<JobState>, Option<JobState>)> {
        all.iter()
            .filter(|e| e.id == id)
            .map(|e| (e.from, e.to))
            .collect()
    };
    use JobState::*;
    assert_eq!(
        of(ok),
        [
            (None, Some(NotStarted)),
            (Some(NotStarted), Some(Running)),
            (Some(Running), Some(Completed)),
            (Some(Completed), None),
        ]
    );
    assert_eq!(
        of(bad),
        [
            (None, Some(NotStarted)),
            (Some(NotStarted), Some(Running)),
            (Some(Running), Some(Failed)),
        ]
    );
    assert_eq!(
        of(stopped),
        [
            (None, Some(NotStarted)),
            (Some(NotStarted), Some(Running)),
            (Some(Running), Some(Stopping)),
            (Some(Stopping), Some(Stopped)),
        ]
    );
    let failed = all.iter().find(|e| e.to == Some(Failed)).expect("failure");
    assert_eq!(failed.reason.as_deref(), Some("no"));
    assert_eq!(s.last_event(), *seqs.last().expect("events"));
}

#[test]
fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
    let s = session();
    let mut rx = s.subscribe();
    // Each job: created, running, completed, removed.
    for _ in 0..2000 {
        let id = s.start(spec(json!([]))).expect("start");
        s.block_on(s.wait_finished(id)).expect("wait");
        s.remove_blocking(id, false).expect("remove");
    }
    let total = s.last_event();
    assert_eq!(total, 8000);
    let Some(Err(Lagged { missed })) = rx.try_next() else {
        panic!("a lag first");
    };
    // The rest are the newest, in order, none repeated.
    let mut rest = Vec::new();
    while let Some(next) = rx.try_next() {
        rest.push(next.expect("one lag only").seq);
    }
    assert_eq!(missed + rest.len() as u64, total);
    assert_eq!(rest.last(), Some(&total));
    assert!(rest.windows(2).all(|w| w[1] == w[0] + 1));
}
