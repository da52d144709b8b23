//! The async executor: every attempt is a tokio task on one runtime owned by
//! the engine.
//!
//! # Protocol: who reports an attempt
//!
//! Every submitted attempt has an entry in `running`, under the executor's
//! lock, with the attempt's sequence number. Whoever removes the entry
//! reports the attempt, exactly once: the attempt's own tokio task when the
//! future ends, its timer fires or it is cancelled; or the
//! [watchdog](crate::watchdog) at the attempt's deadline.
//!
//! A timeout or a cancel request makes the attempt's task stop polling the
//! future and drop it: an `async` task is stopped at its next `.await`. A
//! future that blocks its runtime thread (a synchronous sleep, a blocking
//! read) never reaches an `.await`, and its own timer cannot fire while the
//! thread is held; the watchdog, on a thread of its own, reports it
//! `timed_out` at its deadline all the same and cancels its context. The
//! attempt is abandoned, as in the thread pool: when the future at last
//! gives its thread back, its task finds the entry gone, drops the future
//! without polling it again and reports nothing. Its runtime thread stays
//! busy until then; `blocking` tasks and `process` mode are for such code.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use runyard_core::{
    BoxFuture, CancelToken, Context, Outcome, Output, Registry, TaskError, Timestamp,
};
use tokio::runtime::Handle;

use crate::attempt::{Attempt, AttemptReport, Epoch, Executor, Sink};
use crate::panic::catch_panic;
use crate::watchdog::{Watchdog, Watched};

/// Runs async attempts on a tokio runtime.
pub struct AsyncExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    handle: Handle,
    registry: Arc<Registry>,
    sink: Arc<dyn Sink>,
    wants_started: bool,
    epoch: Epoch,
    state: Mutex<State>,
    /// Attempts started and not yet reported.
    started: AtomicUsize,
    watchdog: Watchdog<Deadline>,
}

/// Attempts submitted and not yet reported, by token.
#[derive(Default)]
struct State {
    running: HashMap<u64, Entry>,
    next_seq: u64,
}

struct Entry {
    cancel: CancelToken,
    /// Tells this attempt from a later one given the same token.
    seq: u64,
}

/// What the watchdog holds of a started attempt with a timeout.
struct Deadline {
    token: u64,
    seq: u64,
    started: Instant,
    started_at: Timestamp,
    timeout: Duration,
}

impl AsyncExecutor {
    /// An executor spawning on `handle`'s runtime.
    pub fn new(handle: Handle, registry: Arc<Registry>, sink: Arc<dyn Sink>) -> AsyncExecutor {
        crate::panic::install_panic_hook();
        let inner = Arc::new(Inner {
            handle,
            wants_started: sink.wants_started(),
            registry,
            sink,
            epoch: Epoch::now(),
            state: Mutex::new(State::default()),
            started: AtomicUsize::new(0),
            watchdog: Watchdog::default(),
        });
        if let Err(e) = Watchdog::start(&inner, "runyard-async-watchdog".to_string()) {
            // The attempts' own timers still stop every future that awaits.
            tracing::error!(
                target: "runyard::engine",
                "could not start the async executor's watchdog: {e}"
            );
        }
        AsyncExecutor { inner }
    }
}

impl fmt::Debug for AsyncExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncExecutor")
            .field("submitted", &self.inner.lock().running.len())
            .finish_non_exhaustive()
    }
}

/// A future that turns a panic while polling into `Err(message)`.
struct CatchUnwind(BoxFuture<'static, Result<Output, TaskError>>);

impl Future for CatchUnwind {
    type Output = Result<Result<Output, TaskError>, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match catch_panic(|| self.0.as_mut().poll(cx)) {
            Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(msg) => Poll::Ready(Err(msg)),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes attempt `seq` of `token` out of `running`: the caller reports it.
    fn take(&self, token: u64, seq: u64) -> Option<Entry> {
        let mut st = self.lock();
        match st.running.get(&token) {
            Some(e) if e.seq == seq => st.running.remove(&token),
            _ => None,
        }
    }

    async fn run(self: Arc<Inner>, att: Attempt, token: CancelToken, seq: u64) {
        let started = Instant::now();
        let started_at = self.epoch.at(started);
        self.started.fetch_add(1, Ordering::Relaxed);
        // A timeout too long to reach is none.
        if let Some(t) = att.timeout.filter(|t| started.checked_add(*t).is_some()) {
            let deadline = Deadline {
                token: att.token,
                seq,
                started,
                started_at,
                timeout: t,
            };
            self.watchdog.watch(deadline, started + t);
        }
        if self.wants_started {
            self.sink.started(att.token, started_at);
        }
        let ctx =
            Context::new(att.job, att.number, token.clone()).with_parents(att.parents.clone());
        let task = self.registry.task(att.task);
        let ended = {
            let mut work = pin!(CatchUnwind(task.run_async(att.params, ctx)));
            let mut cancelled = pin!(token.cancelled());
            let mut deadline = att.timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            std::future::poll_fn(|cx| {
                // Reported by the watchdog while the future held its thread:
                // abandoned, never polled again.
                if token.is_cancelled() {
                    return Poll::Ready(Outcome::Cancelled);
                }
                if let Poll::Ready(r) = work.as_mut().poll(cx) {
                    return Poll::Ready(match r {
                        Ok(Ok(out)) => Outcome::Succeeded(out),
                        Ok(Err(e)) => Outcome::Failed(e),
                        Err(msg) => Outcome::Panicked(msg),
                    });
                }
                if let Some(d) = deadline.as_mut() {
                    if d.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Outcome::TimedOut(att.timeout.unwrap_or_default()));
                    }
                }
                if cancelled.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Outcome::Cancelled);
                }
                Poll::Pending
            })
            .await
        };
        if self.take(att.token, seq).is_none() {
            // The watchdog reported it.
            return;
        }
        self.started.fetch_sub(1, Ordering::Relaxed);
        // The task's future is dropped by now; tell anything it spawned.
        if matches!(ended, Outcome::TimedOut(_)) {
            token.cancel();
        }
        self.sink.finished(vec![AttemptReport {
            token: att.token,
            started_at,
            duration: started.elapsed(),
            outcome: ended,
        }]);
    }
}

impl Watched for Inner {
    type Key = Deadline;

    fn watchdog(&self) -> &Watchdog<Deadline> {
        &self.watchdog
    }

    /// Reports the attempt timed out if it is still running, and cancels
    /// its context: a future that holds its thread is abandoned.
    fn expired(self: &Arc<Inner>, d: Deadline, _at: Instant) {
        let Some(entry) = self.take(d.token, d.seq) else {
            return;
        };
        self.started.fetch_sub(1, Ordering::Relaxed);
        entry.cancel.cancel();
        self.sink.finished(vec![AttemptReport {
            token: d.token,
            started_at: d.started_at,
            duration: d.started.elapsed(),
            outcome: Outcome::TimedOut(d.timeout),
        }]);
    }
}

impl Executor for AsyncExecutor {
    fn submit(&self, batch: Vec<Attempt>) {
        let mut spawn = Vec::with_capacity(batch.len());
        {
            let mut st = self.inner.lock();
            for a in batch {
                let cancel = CancelToken::new();
                let seq = st.next_seq;
                st.next_seq += 1;
                st.running.insert(
                    a.token,
                    Entry {
                        cancel: cancel.clone(),
                        seq,
                    },
                );
                spawn.push((a, cancel, seq));
            }
        }
        for (a, cancel, seq) in spawn {
            let inner = Arc::clone(&self.inner);
            self.inner.handle.spawn(inner.run(a, cancel, seq));
        }
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        Vec::new()
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        if let Some(e) = self.inner.lock().running.get(&token) {
            e.cancel.cancel();
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        for e in self.inner.lock().running.values() {
            e.cancel.cancel();
        }
        Vec::new()
    }

    fn running(&self) -> usize {
        self.inner.started.load(Ordering::Relaxed)
    }

    fn shutdown(&self) {
        self.inner.watchdog.stop();
    }
}

impl Drop for AsyncExecutor {
    fn drop(&mut self) {
        self.inner.watchdog.stop();
    }
}
