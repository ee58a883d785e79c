//! Integration tests of thread jobs: the conformance suite, live values,
//! throttling, panics, stop and abandonment, and many jobs.

use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use jobs_core::{
    JobExecutor, JobFailure, JobSpec, JobState, ReceiveOptions, Session, Stream, WaitMode,
};
use jobs_thread::{SessionThreadExt, ThreadExecutor, ThreadJob, ThreadWork, TYPE_NAME};

/// The conformance subject: thread jobs built from [`ThreadWork`] closures.
struct Subject;

impl jobs_core::conformance::Subject for Subject {
    fn executor(&self) -> Arc<dyn JobExecutor> {
        Arc::new(ThreadExecutor::new())
    }
    fn emit(&self, lines: &[&str]) -> JobSpec {
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        ThreadWork::new(move |ctx| {
            for l in lines {
                ctx.output(l);
            }
            Ok(())
        })
        .into_spec("emit")
    }
    fn sleep(&self, secs: u64) -> JobSpec {
        ThreadWork::new(move |ctx| {
            // Running time: a suspend pauses it.
            ctx.stop_token().sleep_running(Duration::from_secs(secs));
            Ok(())
        })
        .into_spec("sleep")
    }
    fn fail(&self, marker: &str) -> JobSpec {
        let reason = format!("failed: {marker}");
        ThreadWork::new(move |_| Err(JobFailure::new(reason))).into_spec("fail")
    }
}

mod conformance {
    jobs_core::conformance_tests!(crate::Subject);
}

fn session_with(executor: ThreadExecutor) -> Session {
    let s = Session::new().expect("session");
    s.register(Arc::new(executor));
    s
}

fn wait_state<T: std::any::Any + Send + Sync>(job: &ThreadJob<T>, want: JobState) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = job.state().expect("state");
        if st == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "job {} is {st}, expected {want}",
            job.id()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Neither `Clone` nor `Serialize`: only a reference can come back.
struct Opaque {
    cell: Mutex<Vec<u8>>,
}

mod live {
    use super::*;

    #[test]
    fn receive_returns_the_very_arc_the_job_emitted() {
        let s = Session::new().expect("session");
        let (tx, rx) = mpsc::channel::<Arc<Opaque>>();
        let job = s
            .start_thread(move |ctx| {
                let v = Arc::new(Opaque {
                    cell: Mutex::new(vec![1, 2, 3]),
                });
                tx.send(Arc::clone(&v)).expect("send");
                ctx.output_live(v);
                Ok(())
            })
            .expect("start");
        assert_eq!(
            job.wait_blocking().expect("wait").state,
            JobState::Completed
        );
        let emitted = rx.recv().expect("emitted");
        let got = job.receive().expect("receive");
        assert_eq!(got.len(), 1);
        assert!(Arc::ptr_eq(&emitted, &got[0]));
        // Shared, not copied: a change through one is seen through the other.
        emitted.cell.lock().expect("lock").push(4);
        assert_eq!(*got[0].cell.lock().expect("lock"), vec![1, 2, 3, 4]);
        assert!(job.receive().expect("again").is_empty());
        assert!(!job.info().expect("info").has_more_data);
    }

    #[test]
    fn typed_receive_keeps_order_and_other_streams_stay_in_the_session() {
        let s = Session::new().expect("session");
        let job = s
            .start_thread(|ctx| {
                ctx.output(1u32);
                ctx.warning("careful");
                ctx.output(2u32);
                ctx.information("fyi");
                ctx.output(3u32);
                Ok(())
            })
            .expect("start");
        job.wait_blocking().expect("wait");
        let kept = job.receive_keep().expect("keep");
        assert_eq!(kept.iter().map(|v| **v).collect::<Vec<_>>(), [1, 2, 3]);
        let all = s
            .receive(&[job.id()], ReceiveOptions::default())
            .expect("receive");
        let streams: Vec<Stream> = all.iter().map(|r| r.record.stream).collect();
        use Stream::*;
        assert_eq!(streams, [Output, Warning, Output, Information, Output]);
        assert_eq!(s.info(job.id()).expect("info").type_name, TYPE_NAME);
    }
}

mod throttle {
    use super::*;

    #[test]
    fn limit_two_runs_two_and_queues_the_rest_in_order() {
        let s = session_with(ThreadExecutor::new().with_throttle(2));
        let order = Arc::new(Mutex::new(Vec::new()));
        let jobs: Vec<ThreadJob<()>> = (0..4)
            .map(|i| {
                let order = Arc::clone(&order);
                s.start_thread(move |ctx| {
                    order.lock().expect("lock").push(i);
                    // Long unless stopped.
                    let _ = ctx.sleep(Duration::from_secs(60));
                    Ok(())
                })
                .expect("start")
            })
            .collect();
        // Waits until `n` closures have begun.
        let begun = |n: usize| {
            let deadline = Instant::now() + Duration::from_secs(30);
            while order.lock().expect("lock").len() < n {
                assert!(Instant::now() < deadline, "{n} closures did not begin");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait_state(&jobs[0], JobState::Running);
        wait_state(&jobs[1], JobState::Running);
        begun(2);
        assert_eq!(jobs[2].state().expect("state"), JobState::NotStarted);
        assert_eq!(jobs[3].state().expect("state"), JobState::NotStarted);
        jobs[0].stop_blocking().expect("stop");
        wait_state(&jobs[2], JobState::Running);
        begun(3);
        assert_eq!(jobs[3].state().expect("state"), JobState::NotStarted);
        jobs[1].stop_blocking().expect("stop");
        wait_state(&jobs[3], JobState::Running);
        begun(4);
        for j in &jobs[2..] {
            assert_eq!(j.stop_blocking().expect("stop").state, JobState::Stopped);
        }
        // The first two ran side by side; the queued ones began in order.
        let order = order.lock().expect("lock").clone();
        let mut first_two = order[..2].to_vec();
        first_two.sort();
        assert_eq!(first_two, [0, 1]);
        assert_eq!(order[2..], [2, 3]);
    }

    #[test]
    fn default_limit_is_five() {
        let s = Session::new().expect("session");
        let jobs: Vec<ThreadJob<()>> = (0..6)
            .map(|_| {
                s.start_thread(|ctx| {
                    let _ = ctx.sleep(Duration::from_secs(60));
                    Ok(())
                })
                .expect("start")
            })
            .collect();
        for j in &jobs[..5] {
            wait_state(j, JobState::Running);
        }
        assert_eq!(jobs[5].state().expect("state"), JobState::NotStarted);
        s.close_blocking();
        for j in &jobs {
            assert_eq!(j.state().expect("state"), JobState::Stopped);
        }
    }
}

mod panics {
    use super::*;

    #[test]
    fn a_panic_fails_its_job_only() {
        let s = Session::new().expect("session");
        let bad: ThreadJob<u32> = s
            .start_thread(|ctx| {
                ctx.output(7);
                panic!("the wheels came off");
            })
            .expect("start");
        let good: Vec<ThreadJob<u32>> = (0..9)
            .map(|i| {
                s.start_thread(move |ctx| {
                    ctx.output(i);
                    Ok(())
                })
                .expect("start")
            })
            .collect();
        let info = bad.wait_blocking().expect("wait");
        assert_eq!(info.state, JobState::Failed);
        assert_eq!(
            info.reason.as_deref(),
            Some("panicked: the wheels came off")
        );
        // What it emitted before the panic is kept.
        assert_eq!(bad.receive().expect("receive").len(), 1);
        for (i, j) in good.iter().enumerate() {
            assert_eq!(j.wait_blocking().expect("wait").state, JobState::Completed);
            let got = j.receive().expect("receive");
            assert_eq!(got.iter().map(|v| **v).collect::<Vec<_>>(), [i as u32]);
        }
        // The session goes on.
        let after: ThreadJob<()> = s.start_thread(|_| Ok(())).expect("start");
        assert_eq!(
            after.wait_blocking().expect("wait").state,
            JobState::Completed
        );
    }

    #[test]
    fn an_error_fails_with_its_reason() {
        let s = Session::new().expect("session");
        let job: ThreadJob<()> = s
            .start_thread(|_| Err(JobFailure::new("no such file")))
            .expect("start");
        let info = job.wait_blocking().expect("wait");
        assert_eq!(info.state, JobState::Failed);
        assert_eq!(info.reason.as_deref(), Some("no such file"));
    }

    #[test]
    fn a_spec_without_a_closure_fails() {
        let s = session_with(ThreadExecutor::new());
        let id = s.start(JobSpec::new(TYPE_NAME, "nothing")).expect("start");
        s.wait_blocking(&[id], WaitMode::All, None).expect("wait");
        let info = s.info(id).expect("info");
        assert_eq!(info.state, JobState::Failed);
        assert!(info.reason.unwrap_or_default().contains("closure"));
    }
}

mod stop {
    use super::*;

    #[test]
    fn a_sleeping_job_stops_promptly_without_being_abandoned() {
        let s = Session::new().expect("session");
        let job: ThreadJob<&'static str> = s
            .start_thread(|ctx| {
                ctx.output("before");
                ctx.sleep(Duration::from_secs(600))?;
                ctx.output("after");
                Ok(())
            })
            .expect("start");
        wait_state(&job, JobState::Running);
        let t0 = Instant::now();
        let info = job.stop_blocking().expect("stop");
        // Well inside the 5 s grace: the sleep woke on the stop request.
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "took {:?}",
            t0.elapsed()
        );
        assert_eq!(info.state, JobState::Stopped);
        let reason = info.reason.unwrap_or_default();
        assert!(!reason.contains("abandoned"), "reason: {reason}");
        let got = job.receive().expect("receive");
        assert_eq!(got.iter().map(|v| **v).collect::<Vec<_>>(), ["before"]);
    }

    #[test]
    fn a_job_that_ignores_stop_is_abandoned_its_slot_freed_and_output_dropped() {
        let s = session_with(
            ThreadExecutor::new()
                .with_grace(Duration::from_millis(200))
                .with_throttle(1),
        );
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (emitted_tx, emitted_rx) = mpsc::channel::<bool>();
        let stubborn: ThreadJob<u32> = s
            .start_thread(move |ctx| {
                ctx.output(1);
                // Ignores the stop request until the test lets it go on.
                go_rx.recv().expect("go");
                emitted_tx.send(ctx.output(2)).expect("send");
                Ok(())
            })
            .expect("start");
        let queued: ThreadJob<u32> = s
            .start_thread(|ctx| {
                ctx.output(3);
                Ok(())
            })
            .expect("start");
        wait_state(&stubborn, JobState::Running);
        assert_eq!(queued.state().expect("state"), JobState::NotStarted);
        let info = stubborn.stop_blocking().expect("stop");
        assert_eq!(info.state, JobState::Stopped);
        assert_eq!(
            info.reason.as_deref(),
            Some("abandoned: did not stop within 200ms")
        );
        // The abandoned thread no longer holds the only slot.
        assert_eq!(
            queued.wait_blocking().expect("wait").state,
            JobState::Completed
        );
        // Its later output is dropped.
        go_tx.send(()).expect("go");
        assert!(!emitted_rx.recv().expect("emitted"));
        let got = stubborn.receive().expect("receive");
        assert_eq!(got.iter().map(|v| **v).collect::<Vec<_>>(), [1]);
        assert_eq!(stubborn.state().expect("state"), JobState::Stopped);
    }

    #[test]
    fn check_stop_ends_a_busy_loop() {
        let s = Session::new().expect("session");
        let job: ThreadJob<u64> = s
            .start_thread(|ctx| {
                let mut n = 0u64;
                loop {
                    ctx.check_stop()?;
                    n = n.wrapping_add(1);
                    std::hint::black_box(n);
                }
            })
            .expect("start");
        wait_state(&job, JobState::Running);
        let info = job.stop_blocking().expect("stop");
        assert_eq!(info.state, JobState::Stopped);
        assert!(!info.reason.unwrap_or_default().contains("abandoned"));
    }
}

mod many {
    use super::*;

    #[test]
    fn ten_thousand_tiny_jobs_all_complete_with_no_lost_output() {
        let s = session_with(ThreadExecutor::new().with_throttle(16));
        let n = 10_000u64;
        let jobs: Vec<ThreadJob<u64>> = (0..n)
            .map(|i| {
                s.start_thread(move |ctx| {
                    ctx.output(i);
                    Ok(())
                })
                .expect("start")
            })
            .collect();
        let ids: Vec<_> = jobs.iter().map(|j| j.id()).collect();
        let out = s
            .wait_blocking(&ids, WaitMode::All, Some(Duration::from_secs(120)))
            .expect("wait");
        assert!(!out.timed_out);
        assert!(out.done.iter().all(|i| i.state == JobState::Completed));
        for (i, j) in jobs.iter().enumerate() {
            let got = j.receive().expect("receive");
            assert_eq!(got.len(), 1, "job {}", j.id());
            assert_eq!(*got[0], i as u64);
        }
    }
}
