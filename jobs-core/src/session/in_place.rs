//! A job's work begun on the thread that starts it: polled there once, and
//! handed to the runtime as a task only when something wakes it. A short
//! job's process then starts without a runtime thread waking to start it,
//! and the only thread its end wakes is the one that finishes it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use tokio::runtime::Handle;

type Work = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Where the work is while it is not a task of the runtime.
enum State {
    /// Being polled on the starting thread.
    Polling,
    /// Woken while it was being polled: it goes to the runtime next.
    Woken,
    /// Waiting, with nothing polling it.
    Parked(Work),
    /// Given to the runtime (or finished).
    Gone,
}

struct Lazy {
    state: Mutex<State>,
    handle: Handle,
}

impl Wake for Lazy {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match std::mem::replace(&mut *state, State::Gone) {
            State::Parked(work) => {
                drop(state);
                self.handle.spawn(work);
            }
            State::Polling | State::Woken => *state = State::Woken,
            State::Gone => {}
        }
    }
}

/// Polls `work` once here (the caller has entered the runtime's context),
/// then leaves it to be spawned on `handle` by its first wake.
pub(super) fn start(handle: Handle, mut work: Work) {
    let lazy = Arc::new(Lazy {
        state: Mutex::new(State::Polling),
        handle,
    });
    let waker = Waker::from(Arc::clone(&lazy));
    let polled = work.as_mut().poll(&mut Context::from_waker(&waker));
    let mut state = lazy.state.lock().unwrap_or_else(|p| p.into_inner());
    match (polled, std::mem::replace(&mut *state, State::Gone)) {
        (Poll::Ready(()), _) => {}
        (Poll::Pending, State::Woken) => {
            drop(state);
            lazy.handle.spawn(work);
        }
        (Poll::Pending, _) => *state = State::Parked(work),
    }
}
