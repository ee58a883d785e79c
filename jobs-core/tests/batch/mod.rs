//! Batches: one parent job, a child per item, made by the core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobs_core::conformance::output_lines;
use jobs_core::{
    async_trait, BatchSpec, JobContext, JobExecutor, JobFailure, JobSpec, JobState, ReceiveOptions,
    Session, WaitMode, BATCH_TYPE,
};
use serde_json::json;

use crate::support::{spec, TestExecutor};

fn session() -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(TestExecutor));
    s
}

fn child(item: &str, steps: serde_json::Value) -> JobSpec {
    let mut sp = spec(steps);
    sp.item = Some(item.to_string());
    sp
}

fn wait_all(s: &Session, id: u64) {
    let out = s
        .wait_blocking(&[id], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out, "batch {id} did not finish");
}

#[test]
fn a_batch_is_one_parent_with_a_child_per_item_in_input_order() {
    let s = session();
    let items = ["a", "b", "c"];
    let id = s
        .start_batch(BatchSpec {
            name: Some("b".into()),
            command: "echo".into(),
            throttle: Some(2),
            children: items
                .iter()
                .map(|i| child(i, json!([["out", i]])))
                .collect(),
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.type_name, BATCH_TYPE);
    assert_eq!(parent.state, JobState::Completed, "{parent:?}");
    assert_eq!(parent.children.len(), 3);
    for (i, c) in parent.children.iter().enumerate() {
        let ci = s.info(*c).expect("child");
        assert_eq!(ci.parent, Some(id));
        assert_eq!(ci.item.as_deref(), Some(items[i]));
        assert_eq!(ci.name, format!("b.{}", i + 1));
    }
    let got = s
        .receive(&[id], ReceiveOptions::default())
        .expect("receive");
    let mut lines = output_lines(&got);
    lines.sort();
    assert_eq!(lines, ["a", "b", "c"]);
}

#[test]
fn a_failed_item_fails_the_parent_naming_the_first_failed_item() {
    let s = session();
    let mut children = Vec::new();
    for i in 1..=5 {
        let steps = if i == 2 || i == 4 {
            json!([["fail", format!("bad {i}")]])
        } else {
            json!([["out", "ok"]])
        };
        children.push(child(&format!("f{i}.flac"), steps));
    }
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            throttle: Some(1),
            children,
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Failed);
    assert_eq!(
        parent.reason.as_deref(),
        Some("2 of 5 items failed; first: item 2 (f2.flac): bad 2")
    );
    let states: Vec<JobState> = parent
        .children
        .iter()
        .map(|c| s.info(*c).expect("child").state)
        .collect();
    use JobState::{Completed as C, Failed as F};
    assert_eq!(states, [C, F, C, F, C]);
}

#[test]
fn an_empty_batch_completes_at_once() {
    let s = session();
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Completed);
    assert!(parent.children.is_empty());
}

#[test]
fn an_unknown_child_type_starts_nothing() {
    let s = session();
    let err = s
        .start_batch(BatchSpec {
            command: "x".into(),
            children: vec![JobSpec::new("NoSuchType", "y")],
            ..BatchSpec::default()
        })
        .expect_err("unknown type");
    assert!(err.to_string().contains("NoSuchType"), "{err}");
    assert!(s.get(&Default::default()).expect("get").is_empty());
}

/// Counts how many of its jobs run at once.
struct Counting {
    now: AtomicUsize,
    peak: AtomicUsize,
}

#[async_trait]
impl JobExecutor for Counting {
    fn type_name(&self) -> &str {
        "Counting"
    }

    async fn run(&self, _spec: JobSpec, _ctx: JobContext) -> Result<(), JobFailure> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(n, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Starts a batch of `n` children of type `type_name`, items `0` to
/// `n - 1`, `throttle` at a time.
fn numbered_batch(s: &Session, type_name: &str, n: usize, throttle: usize) -> u64 {
    let children = (0..n)
        .map(|i| {
            let mut c = JobSpec::new(type_name, "c");
            c.item = Some(i.to_string());
            c
        })
        .collect();
    s.start_batch(BatchSpec {
        command: "c".into(),
        throttle: Some(throttle),
        children,
        ..BatchSpec::default()
    })
    .expect("start")
}

#[test]
fn the_batch_throttle_bounds_running_children() {
    let s = session();
    let ex = Arc::new(Counting {
        now: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
    });
    s.register(Arc::clone(&ex) as Arc<dyn JobExecutor>);
    let id = numbered_batch(&s, "Counting", 40, 3);
    wait_all(&s, id);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    assert_eq!(ex.peak.load(Ordering::SeqCst), 3);
}

/// Item 0 lowers its batch's throttle (to 0, which counts as 1, then tries
/// 5, which does not raise it); the others start only once it did.
struct Lowering {
    lowered: std::sync::atomic::AtomicBool,
    now: AtomicUsize,
    /// The most running at once as an item past the first three started.
    later_peak: AtomicUsize,
}

#[async_trait]
impl JobExecutor for Lowering {
    fn type_name(&self) -> &str {
        "Lowering"
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        let item: usize = spec.item.as_deref().unwrap_or("0").parse().unwrap_or(0);
        if item == 0 {
            ctx.limit_siblings(0).expect("limit");
            ctx.limit_siblings(5).expect("limit");
            self.lowered.store(true, Ordering::SeqCst);
        }
        while !self.lowered.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if item >= 3 {
            self.later_peak.fetch_max(n, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

#[test]
fn a_child_can_lower_its_batch_throttle_but_not_raise_it() {
    let s = session();
    let ex = Arc::new(Lowering {
        lowered: Default::default(),
        now: AtomicUsize::new(0),
        later_peak: AtomicUsize::new(0),
    });
    s.register(Arc::clone(&ex) as Arc<dyn JobExecutor>);
    let id = numbered_batch(&s, "Lowering", 10, 3);
    wait_all(&s, id);
    assert_eq!(s.info(id).expect("info").state, JobState::Completed);
    // Items 3 to 9 each started alone: the first three had ended.
    assert_eq!(ex.later_peak.load(Ordering::SeqCst), 1);

    // A job without a parent has no siblings: nothing to lower.
    let lone = s.start(JobSpec::new("Lowering", "c")).expect("start");
    let out = s
        .wait_blocking(&[lone], WaitMode::All, Some(Duration::from_secs(30)))
        .expect("wait");
    assert!(!out.timed_out);
    assert_eq!(s.info(lone).expect("info").state, JobState::Completed);
}

#[test]
fn stopping_a_batch_stops_its_children_and_starts_no_more() {
    let s = session();
    let children = (0..10)
        .map(|i| child(&i.to_string(), json!([["sleep", 30000]])))
        .collect();
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            throttle: Some(2),
            children,
            ..BatchSpec::default()
        })
        .expect("start");
    s.request_stop(id).expect("stop");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Stopped);
    for c in parent.children {
        assert_eq!(s.info(c).expect("child").state, JobState::Stopped);
    }
}

/// Fails the first `n` runs of each item given as `fail:N:ITEM`, counting
/// runs per item.
struct Flaky {
    runs: std::sync::Mutex<std::collections::HashMap<String, u32>>,
}

#[async_trait]
impl JobExecutor for Flaky {
    fn type_name(&self) -> &str {
        "Flaky"
    }

    async fn run(&self, spec: JobSpec, ctx: JobContext) -> Result<(), JobFailure> {
        let item = spec.item.unwrap_or_default();
        let fails: u32 = item
            .split(':')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let run = {
            let mut runs = self.runs.lock().expect("runs");
            let r = runs.entry(item.clone()).or_insert(0);
            *r += 1;
            *r
        };
        ctx.output(format!("{item} run {run}"));
        if run <= fails {
            Err(JobFailure::new(format!("{item} failed run {run}")))
        } else {
            Ok(())
        }
    }
}

fn flaky_session() -> (Session, Arc<Flaky>) {
    let s = session();
    let ex = Arc::new(Flaky {
        runs: Default::default(),
    });
    s.register(Arc::clone(&ex) as Arc<dyn JobExecutor>);
    (s, ex)
}

fn flaky(item: &str, retries: u32) -> JobSpec {
    let mut c = JobSpec::new("Flaky", item);
    c.item = Some(item.into());
    c.retries = retries;
    c
}

#[test]
fn retries_run_a_failing_child_again_and_count_attempts() {
    let (s, _) = flaky_session();
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            children: vec![
                flaky("fail:2:a", 2),
                flaky("fail:0:b", 2),
                flaky("fail:5:c", 2),
            ],
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    let kids: Vec<_> = parent
        .children
        .iter()
        .map(|c| s.info(*c).expect("child"))
        .collect();
    assert_eq!(kids[0].state, JobState::Completed);
    assert_eq!(kids[0].attempts, 3);
    assert_eq!(kids[1].attempts, 1);
    assert_eq!(kids[2].state, JobState::Failed);
    assert_eq!(kids[2].attempts, 3);
    assert_eq!(kids[2].reason.as_deref(), Some("fail:5:c failed run 3"));
    assert_eq!(parent.state, JobState::Failed);
    let got = s
        .receive(&[kids[0].id], ReceiveOptions::default())
        .expect("receive");
    let texts: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.record.payload.to_display_bytes()).into_owned())
        .collect();
    assert_eq!(
        texts,
        [
            "fail:2:a run 1",
            "attempt 2 of 3",
            "fail:2:a run 2",
            "attempt 3 of 3",
            "fail:2:a run 3"
        ]
    );
}

#[test]
fn halt_now_stops_the_running_and_starts_no_more() {
    let s = session();
    let mut children = vec![child("bad", json!([["fail", "no"]]))];
    children.extend((0..5).map(|i| child(&format!("slow{i}"), json!([["sleep", 30000]]))));
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            throttle: Some(2),
            children,
            halt: Some("now,fail=1".parse().expect("halt")),
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Failed);
    let kids: Vec<_> = parent
        .children
        .iter()
        .map(|c| s.info(*c).expect("child"))
        .collect();
    assert_eq!(kids[0].state, JobState::Failed);
    for k in &kids[1..] {
        assert_eq!(k.state, JobState::Stopped, "{k:?}");
        assert_eq!(
            k.reason.as_deref(),
            Some("halted after 1 failures"),
            "{k:?}"
        );
    }
    // The queued ones never ran.
    assert!(kids[2..].iter().all(|k| k.attempts == 0), "{kids:?}");
}

#[test]
fn halt_soon_lets_the_running_end_and_starts_no_more() {
    let s = session();
    let children = vec![
        child("slow", json!([["sleep", 300], ["out", "done"]])),
        child("bad", json!([["fail", "no"]])),
        child("next", json!([["out", "never"]])),
    ];
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            throttle: Some(2),
            children,
            halt: Some("soon,fail=1".parse().expect("halt")),
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let kids: Vec<_> = s
        .info(id)
        .expect("info")
        .children
        .iter()
        .map(|c| s.info(*c).expect("child"))
        .collect();
    let states: Vec<JobState> = kids.iter().map(|k| k.state).collect();
    assert_eq!(
        states,
        [JobState::Completed, JobState::Failed, JobState::Stopped]
    );
    assert_eq!(kids[2].attempts, 0);
}

#[test]
fn a_halt_rule_is_read_strictly() {
    for bad in [
        "",
        "now",
        "later,fail=1",
        "now,fail=0",
        "soon,fail=x",
        "now,fails=2",
    ] {
        assert!(bad.parse::<jobs_core::Halt>().is_err(), "{bad:?}");
    }
    assert_eq!(
        "soon,fail=3".parse::<jobs_core::Halt>(),
        Ok(jobs_core::Halt {
            when: jobs_core::HaltWhen::Soon,
            fail: 3
        })
    );
}

#[test]
fn rerun_children_runs_the_failed_ones_again_in_place() {
    let (s, ex) = flaky_session();
    let id = s
        .start_batch(BatchSpec {
            command: "x".into(),
            children: vec![flaky("fail:1:a", 0), flaky("fail:0:b", 0)],
            ..BatchSpec::default()
        })
        .expect("start");
    wait_all(&s, id);
    let kids = s.info(id).expect("info").children;
    assert_eq!(s.info(id).expect("info").state, JobState::Failed);
    let err = s
        .rerun_children(id, vec![(kids[1], flaky("fail:0:b", 0))], None, None)
        .expect_err("a completed child does not run again");
    assert_eq!(err.kind(), jobs_core::ErrorKind::InvalidInput);
    let err = s
        .rerun_children(kids[0], vec![], None, None)
        .expect_err("a child is no batch");
    assert_eq!(err.kind(), jobs_core::ErrorKind::ChildJob);

    s.rerun_children(id, vec![(kids[0], flaky("fail:1:a", 0))], Some(1), None)
        .expect("rerun");
    wait_all(&s, id);
    let parent = s.info(id).expect("info");
    assert_eq!(parent.state, JobState::Completed, "{parent:?}");
    assert_eq!(parent.reason, None);
    assert_eq!(parent.children, kids, "the same children");
    let a = s.info(kids[0]).expect("a");
    assert_eq!((a.state, a.attempts), (JobState::Completed, 2), "{a:?}");
    let runs = ex.runs.lock().expect("runs").clone();
    assert_eq!(runs.get("fail:1:a"), Some(&2));
    assert_eq!(runs.get("fail:0:b"), Some(&1), "b did not run again");
}

#[test]
fn a_stop_during_the_retry_delay_ends_the_retries_at_once() {
    let (s, ex) = flaky_session();
    let mut spec = flaky("fail:9:x", 5);
    spec.retry_delay = Some(Duration::from_secs(600));
    let id = s.start(spec).expect("start");
    let begin = std::time::Instant::now();
    while ex.runs.lock().expect("runs").get("fail:9:x").is_none() {
        assert!(begin.elapsed() < Duration::from_secs(30), "never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    let info = s.stop_blocking(id).expect("stop");
    assert_eq!(info.state, JobState::Stopped, "{info:?}");
    assert_eq!(info.attempts, 1, "{info:?}");
    assert!(
        begin.elapsed() < Duration::from_secs(300),
        "the delay held the stop"
    );

    // A short delay passes, then the next attempt runs.
    let mut spec = flaky("fail:1:y", 1);
    spec.retry_delay = Some(Duration::from_millis(300));
    let id = s.start(spec).expect("start");
    wait_all(&s, id);
    let info = s.info(id).expect("info");
    assert_eq!((info.state, info.attempts), (JobState::Completed, 2));
    let took = info
        .end
        .and_then(|e| e.duration_since(info.begin.expect("begin")).ok())
        .expect("times");
    assert!(took >= Duration::from_millis(300), "{took:?}");
}
