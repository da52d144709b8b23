//! Blocking calls made for async code: a run's queue calls (enqueueing,
//! reading the report) and its final wait, on a thread of the run's own so
//! that no thread of the caller's runtime blocks on I/O.
//!
//! The thread starts with the first call and ends when the run is dropped;
//! calls run one at a time, in order. Each call's result comes back through
//! a `tokio::sync::oneshot` channel, which a future awaits without
//! blocking. Queues that enqueue asynchronously themselves would replace
//! this for enqueueing; [`Offload::call`] is the one place to change.

use std::sync::{mpsc, Mutex};

use tokio::sync::oneshot;

type Call = Box<dyn FnOnce() + Send>;

/// A thread for blocking calls from async code.
#[derive(Default)]
pub(crate) struct Offload {
    /// `None` until the first call starts the thread.
    calls: Mutex<Option<mpsc::Sender<Call>>>,
}

impl Offload {
    /// Runs `f` on the offload thread; the receiver gets its result. Were
    /// the thread unable to start (the process has all the threads it may),
    /// `f` runs here instead: slower for the caller, never lost.
    pub(crate) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let call: Call = Box::new(move || {
            let _ = tx.send(f());
        });
        let mut calls = self.calls.lock().unwrap_or_else(|e| e.into_inner());
        let call = match &*calls {
            Some(s) => match s.send(call) {
                Ok(()) => return rx,
                // The thread died (a call panicked): start another.
                Err(mpsc::SendError(call)) => call,
            },
            None => call,
        };
        let (s, r) = mpsc::channel::<Call>();
        let started = std::thread::Builder::new()
            .name("runyard-offload".to_string())
            .spawn(move || {
                for call in r {
                    call();
                }
            });
        match started {
            Ok(_) => {
                let _ = s.send(call);
                *calls = Some(s);
            }
            Err(_) => {
                drop(calls);
                call();
            }
        }
        rx
    }
}
