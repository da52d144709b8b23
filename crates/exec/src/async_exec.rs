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
//! A timeout makes the attempt's task stop polling the future and drop it;
//! a cancel request raises the attempt's token and aborts its tokio task,
//! whose future tokio then drops, reporting the attempt `cancelled` as it
//! goes (the task's own drop): either way an `async` task is stopped at its
//! next `.await`. A future that blocks its runtime thread (a synchronous
//! sleep, a blocking read) never reaches an `.await`, and its own timer
//! cannot fire while the thread is held; the watchdog, on a thread of its
//! own, reports it `timed_out` at its deadline all the same and cancels
//! its context. The attempt is abandoned, as in the thread pool: when the
//! future at last gives its thread back, its task finds the entry gone,
//! drops the future without polling it again and reports nothing. Its
//! runtime thread stays busy until then; `blocking` tasks and `process`
//! mode are for such code.
//!
//! # What an attempt costs
//!
//! A hundred thousand attempts may wait at once, so each is kept to the
//! tokio task that runs it (one allocation: [`AttemptTask`], written by
//! hand so that it holds only what it needs), the task's own future, its
//! context's cancel token and one entry in `running`. Nothing waits on the
//! token but the task's own code: a cancel request reaches the attempt
//! through its abort handle.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::{Duration, Instant};

use runyard_core::{
    BoxFuture, CancelToken, Context, JobId, JobParams, Outcome, Output, Registry, TaskError,
    TaskIndex, Timestamp,
};
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

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

/// Hashes a token by one multiplication: tokens are the dispatcher's,
/// already spread, and never chosen by anyone outside the process.
#[derive(Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(26);
    }
}

/// Attempts submitted and not yet reported, by token.
#[derive(Default)]
struct State {
    running: HashMap<u64, Entry, BuildHasherDefault<TokenHasher>>,
    next_seq: u64,
}

struct Entry {
    cancel: CancelToken,
    /// Tells this attempt from a later one given the same token.
    seq: u64,
    /// The attempt's tokio task (`None` for the moment between its entry
    /// and its spawn).
    task: Option<AbortHandle>,
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
}

/// One attempt's tokio task: it starts the attempt when first polled,
/// polls the task's future and the attempt's timer, and reports the end;
/// dropped before its end (aborted by a cancel request, or by the runtime's
/// shutdown), it reports the attempt `cancelled`, unless the watchdog has.
struct AttemptTask {
    inner: Arc<Inner>,
    token: u64,
    seq: u64,
    /// The context's token.
    cancel: CancelToken,
    timeout: Option<Duration>,
    step: Step,
}

enum Step {
    /// Not polled yet: what the task's future is made of.
    New {
        job: JobId,
        number: u32,
        task: TaskIndex,
        params: JobParams,
        parents: Option<Arc<str>>,
    },
    /// Started at `started`.
    Running {
        started: Instant,
        work: CatchUnwind,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    /// Reported (or left to the watchdog, which reported it).
    Done,
}

impl AttemptTask {
    /// The first poll: the attempt starts.
    fn start(&mut self) {
        let Step::New {
            job,
            number,
            task,
            params,
            parents,
        } = std::mem::replace(&mut self.step, Step::Done)
        else {
            return;
        };
        let inner = &self.inner;
        let started = Instant::now();
        inner.started.fetch_add(1, Ordering::Relaxed);
        // A timeout too long to reach is none.
        let timeout = self.timeout.filter(|t| started.checked_add(*t).is_some());
        self.timeout = timeout;
        let started_at = inner.epoch.at(started);
        if let Some(t) = timeout {
            let deadline = Deadline {
                token: self.token,
                seq: self.seq,
                started,
                started_at,
                timeout: t,
            };
            inner.watchdog.watch(deadline, started + t);
        }
        if inner.wants_started {
            inner.sink.started(self.token, started_at);
        }
        let ctx = Context::new(job, number, self.cancel.clone()).with_parents(parents);
        let work = CatchUnwind(inner.registry.task(task).run_async(params, ctx));
        self.step = Step::Running {
            started,
            work,
            deadline: timeout.map(|t| Box::pin(tokio::time::sleep(t))),
        };
    }

    /// Reports the attempt ended as `outcome`, if no one else has (the
    /// task's future is dropped by now).
    fn report(&mut self, started: Option<Instant>, outcome: Outcome) {
        let inner = &self.inner;
        if inner.take(self.token, self.seq).is_none() {
            // The watchdog reported it.
            return;
        }
        let (started, duration) = match started {
            Some(s) => {
                inner.started.fetch_sub(1, Ordering::Relaxed);
                (s, s.elapsed())
            }
            // Cancelled before it was first polled: it never ran.
            None => (Instant::now(), Duration::ZERO),
        };
        // Tell anything the task's future spawned.
        if matches!(outcome, Outcome::TimedOut(_) | Outcome::Cancelled) {
            self.cancel.cancel();
        }
        inner.sink.finished_one(AttemptReport {
            token: self.token,
            started_at: inner.epoch.at(started),
            duration,
            outcome,
        });
    }
}

impl Future for AttemptTask {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if matches!(this.step, Step::New { .. }) {
            this.start();
        }
        let Step::Running {
            started,
            work,
            deadline,
        } = &mut this.step
        else {
            return Poll::Ready(());
        };
        let started = *started;
        let outcome = if this.cancel.is_cancelled() {
            // Reported by the watchdog while the future held its thread
            // (abandoned, never polled again), or cancelled.
            Outcome::Cancelled
        } else if let Poll::Ready(r) = Pin::new(work).poll(cx) {
            match r {
                Ok(Ok(out)) => Outcome::Succeeded(out),
                Ok(Err(e)) => Outcome::Failed(e),
                Err(msg) => Outcome::Panicked(msg),
            }
        } else if deadline
            .as_mut()
            .is_some_and(|d| d.as_mut().poll(cx).is_ready())
        {
            Outcome::TimedOut(this.timeout.unwrap_or_default())
        } else {
            return Poll::Pending;
        };
        // The task's future is dropped before the report.
        this.step = Step::Done;
        this.report(Some(started), outcome);
        Poll::Ready(())
    }
}

impl Drop for AttemptTask {
    fn drop(&mut self) {
        let started = match &self.step {
            Step::Done => return,
            Step::New { .. } => None,
            Step::Running { started, .. } => Some(*started),
        };
        self.step = Step::Done;
        self.report(started, Outcome::Cancelled);
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
        // Dropped at its next `.await`, if it ever gives its thread back.
        if let Some(t) = &entry.task {
            t.abort();
        }
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
        let inner = &self.inner;
        // A task takes its entry out of `running` at its end, so the entry
        // goes in first; the abort handles after the spawns (not under the
        // lock: a task dropped at its spawn, by a runtime shutting down,
        // reports as it goes).
        let mut tasks = Vec::with_capacity(batch.len());
        {
            let mut st = inner.lock();
            st.running.reserve(batch.len());
            for a in batch {
                let cancel = CancelToken::new();
                let seq = st.next_seq;
                st.next_seq += 1;
                let entry = Entry {
                    cancel: cancel.clone(),
                    seq,
                    task: None,
                };
                st.running.insert(a.token, entry);
                tasks.push(AttemptTask {
                    inner: Arc::clone(inner),
                    token: a.token,
                    seq,
                    cancel,
                    timeout: a.timeout,
                    step: Step::New {
                        job: a.job,
                        number: a.number,
                        task: a.task,
                        params: a.params,
                        parents: a.parents,
                    },
                });
            }
        }
        let handles: Vec<(u64, u64, AbortHandle)> = tasks
            .into_iter()
            .map(|t| {
                let (token, seq) = (t.token, t.seq);
                (token, seq, inner.handle.spawn(t).abort_handle())
            })
            .collect();
        let mut st = inner.lock();
        for (token, seq, h) in handles {
            // An attempt that has already ended is not in `running`.
            if let Some(e) = st.running.get_mut(&token).filter(|e| e.seq == seq) {
                e.task = Some(h);
            }
        }
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        Vec::new()
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        if let Some(e) = self.inner.lock().running.get(&token) {
            e.cancel.cancel();
            if let Some(t) = &e.task {
                t.abort();
            }
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        for e in self.inner.lock().running.values() {
            e.cancel.cancel();
            if let Some(t) = &e.task {
                t.abort();
            }
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

#[cfg(test)]
mod tests {
    use super::AttemptTask;

    /// tokio's task cell is its future plus about a hundred bytes, in
    /// steps of 128 bytes: an attempt's task of at most 144 bytes makes a
    /// cell of 256 (the `async fn` it replaced took 312, a cell of 384).
    #[test]
    fn an_attempts_task_fits_a_cell_of_256_bytes() {
        let size = std::mem::size_of::<AttemptTask>();
        assert!(size <= 144, "an attempt's task takes {size} bytes");
    }
}
