//! The clock that tells a job of this crate's own child it has run long
//! enough to have its pipes watched (see `attached.rs`).
//!
//! One thread of its own, shared by every job of the process, ticks every
//! [`GRID`] while any job waits on it, and for [`IDLE`] after the last
//! one, then sleeps until the next. A job's wait then costs no system
//! call: not the runtime's timer, which an idle driver must be woken to
//! re-arm, once per job when jobs run one after another.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// How often the clock looks for waits that are due.
pub(crate) const GRID: Duration = Duration::from_millis(4);
/// How long the clock goes on ticking with nothing to wait for.
const IDLE: Duration = Duration::from_millis(100);

/// One wait: fired once its time passed.
#[derive(Default)]
struct Due {
    state: Mutex<(bool, Option<Waker>)>,
}

impl Due {
    fn fire(&self) {
        let waker = {
            let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
            st.0 = true;
            st.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

/// Ready once at least the delay given to [`after`] passed (at most
/// [`GRID`] more). Dropping it forgets the wait.
pub(crate) struct After(Arc<Due>);

impl Future for After {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.0 {
            return Poll::Ready(());
        }
        match &mut st.1 {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

#[derive(Default)]
struct State {
    waits: Vec<(Instant, Weak<Due>)>,
    /// The thread is started.
    started: bool,
    /// The thread sleeps until a wait comes.
    asleep: bool,
}

#[derive(Default)]
struct Clock {
    state: Mutex<State>,
    wake: Condvar,
}

static CLOCK: OnceLock<Clock> = OnceLock::new();

/// A wait of at least `delay`; an error if the clock has no thread (the
/// OS refused one).
fn after(delay: Duration) -> std::io::Result<After> {
    let clock = CLOCK.get_or_init(Clock::default);
    let due = Arc::new(Due::default());
    let mut st = clock.state.lock().unwrap_or_else(|p| p.into_inner());
    if !st.started {
        std::thread::Builder::new()
            .name("jobs-process-tick".into())
            .spawn(move || tick(clock))?;
        st.started = true;
    }
    st.waits
        .push((Instant::now() + delay, Arc::downgrade(&due)));
    if st.asleep {
        st.asleep = false;
        clock.wake.notify_one();
    }
    Ok(After(due))
}

/// A wait of at least `delay` on the clock, or, without the clock's
/// thread, on the runtime's timer (`io`'s).
pub(crate) fn after_or_timer(
    delay: Duration,
    io: &tokio::runtime::Handle,
) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    match after(delay) {
        Ok(wait) => Box::pin(wait),
        Err(_) => {
            let _g = io.enter();
            Box::pin(tokio::time::sleep(delay + GRID))
        }
    }
}

fn tick(clock: &'static Clock) {
    let mut st = clock.state.lock().unwrap_or_else(|p| p.into_inner());
    let mut last_wait = Instant::now();
    loop {
        let now = Instant::now();
        let mut due = Vec::new();
        st.waits.retain(|(at, wait)| match wait.upgrade() {
            None => false,
            Some(d) if *at <= now => {
                due.push(d);
                false
            }
            Some(_) => true,
        });
        if !st.waits.is_empty() {
            last_wait = now;
        }
        if !due.is_empty() {
            drop(st);
            for d in due {
                d.fire();
            }
            st = clock.state.lock().unwrap_or_else(|p| p.into_inner());
            continue;
        }
        st = if st.waits.is_empty() && now.duration_since(last_wait) >= IDLE {
            st.asleep = true;
            let mut st = clock.wake.wait(st).unwrap_or_else(|p| p.into_inner());
            st.asleep = false;
            last_wait = Instant::now();
            st
        } else {
            clock
                .wake
                .wait_timeout(st, GRID)
                .unwrap_or_else(|p| p.into_inner())
                .0
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_due_after_its_delay_and_not_before() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        for delay in [Duration::from_millis(1), Duration::from_millis(30)] {
            let t = Instant::now();
            rt.block_on(after(delay).expect("clock"));
            let took = t.elapsed();
            assert!(took >= delay, "{took:?} < {delay:?}");
        }
        // After the clock went to sleep, a new wait wakes it.
        std::thread::sleep(IDLE + GRID * 3);
        let t = Instant::now();
        rt.block_on(after(Duration::from_millis(5)).expect("clock"));
        assert!(t.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn a_dropped_wait_is_forgotten() {
        let wait = after(Duration::from_secs(3600)).expect("clock");
        let weak = Arc::downgrade(&wait.0);
        drop(wait);
        assert!(weak.upgrade().is_none());
    }
}
