//! What a running attempt knows about itself (its job, its attempt, its
//! parents' outputs), and how it learns that it should stop.
//!
//! # Parents
//!
//! A job that is after other jobs sees their outputs as one JSON object
//! (see [`crate::Parents`]): [`Context::parents_json`] gives its text,
//! [`Context::parents`] reads it into a type. The object is shared, not
//! copied, between the attempt and whoever made the context; a job without
//! parents carries none (no allocation) and reads `null`.
//!
//! # Cancellation protocol
//!
//! [`CancelToken::cancel`] first stores the flag (`SeqCst`), then takes the
//! waiter list's lock and wakes every waiter. A waiter (a thread in
//! [`CancelToken::sleep`], a future in [`CancelToken::cancelled`]) first
//! registers itself under that lock, then checks the flag. Either the waiter
//! sees the flag, or the canceller finds the waiter in the list: a wake-up
//! is never lost. A thread's park token covers an unpark that arrives
//! between its check and its `park`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::error::TaskError;
use crate::job::JobId;

/// Given to every attempt: which job and attempt it is, and whether it has
/// been asked to stop (a timeout or a shutdown).
#[derive(Clone)]
pub struct Context {
    job: JobId,
    attempt: u32,
    cancel: CancelToken,
    /// The parents object's JSON; `None` for a job that is after none.
    parents: Option<Arc<str>>,
}

impl Context {
    /// A context for attempt `attempt` (1-based) of `job`, without parents.
    pub fn new(job: JobId, attempt: u32, cancel: CancelToken) -> Context {
        Context {
            job,
            attempt,
            cancel,
            parents: None,
        }
    }

    /// The same context, whose job sees `parents`: the JSON of its parents
    /// object (see [`crate::Parents`]), `None` for a job that is after none.
    /// The text is trusted to be JSON (it comes from the queue).
    pub fn with_parents(mut self, parents: Option<Arc<str>>) -> Context {
        self.parents = parents;
        self
    }

    /// Whether the job is after other jobs (it has a parents object).
    pub fn has_parents(&self) -> bool {
        self.parents.is_some()
    }

    /// The JSON of the parents object: each parent's name (or, for a parent
    /// given by id, its id) mapped to its output, a list of outputs for a
    /// name that stands for several copies. `null` for a job that is after
    /// none.
    pub fn parents_json(&self) -> &str {
        self.parents.as_deref().unwrap_or("null")
    }

    /// The parents object (see [`Context::parents_json`]) read as a `T`,
    /// e.g. a struct with a field per parent's name, or a
    /// `HashMap<String, serde_json::Value>`. A permanent error naming `T`
    /// when it does not read as one (retrying would not change the
    /// outputs).
    pub fn parents<T: DeserializeOwned>(&self) -> Result<T, TaskError> {
        serde_json::from_str(self.parents_json()).map_err(|e| {
            TaskError::permanent(format!(
                "the parents' outputs do not read as a `{}`: {e}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// The shared JSON of the parents object, for handing it on (e.g. to a
    /// command's environment) without copying it.
    pub fn parents_shared(&self) -> Option<&Arc<str>> {
        self.parents.as_ref()
    }

    /// The job's id.
    pub fn job_id(&self) -> JobId {
        self.job
    }

    /// The attempt number, from 1.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the attempt has been asked to stop. Long-running sync tasks
    /// should check this between steps.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// `Err` once the attempt has been asked to stop, so `ctx.check()?` ends
    /// a task early.
    pub fn check(&self) -> Result<(), TaskError> {
        if self.is_cancelled() {
            Err(TaskError::retryable("cancelled"))
        } else {
            Ok(())
        }
    }

    /// Sleeps for `d`, waking early (with `Err`) if the attempt is cancelled.
    pub fn sleep(&self, d: Duration) -> Result<(), TaskError> {
        if self.cancel.sleep(d) {
            Ok(())
        } else {
            Err(TaskError::retryable("cancelled"))
        }
    }

    /// Completes when the attempt is cancelled (for async tasks that want to
    /// clean up; a timed-out async attempt is dropped in any case).
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + '_ {
        self.cancel.cancelled()
    }

    /// The cancellation token.
    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("job", &self.job)
            .field("attempt", &self.attempt)
            .field("parents", &self.parents.as_ref().map(|p| p.len()))
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// A flag that can be raised once, waking the threads and futures waiting on it.
#[derive(Clone, Default)]
pub struct CancelToken(Arc<Inner>);

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    waiters: Mutex<Vec<Waiter>>,
    next_call: std::sync::atomic::AtomicU64,
}

enum Waiter {
    Thread(Thread),
    Task(Waker),
    Call(u64, Box<dyn FnOnce() + Send>),
}

impl CancelToken {
    /// A new, unraised token.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Raises the flag and wakes every waiter.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        let waiters =
            std::mem::take(&mut *self.0.waiters.lock().unwrap_or_else(|e| e.into_inner()));
        for w in waiters {
            match w {
                Waiter::Thread(t) => t.unpark(),
                Waiter::Task(w) => w.wake(),
                Waiter::Call(_, f) => f(),
            }
        }
    }

    /// Calls `f` (once) when the token is cancelled, or at once if it
    /// already is. Dropping the returned guard first unregisters `f`. For
    /// code blocked in a call that the token cannot wake, e.g. a thread
    /// waiting for a child process: `f` kills the child.
    pub fn on_cancel(&self, f: impl FnOnce() + Send + 'static) -> CancelGuard {
        let id = self.0.next_call.fetch_add(1, Ordering::Relaxed);
        {
            let mut w = self.lock_waiters();
            if !self.is_cancelled() {
                w.push(Waiter::Call(id, Box::new(f)));
                return CancelGuard {
                    token: self.clone(),
                    id,
                };
            }
        }
        f();
        CancelGuard {
            token: self.clone(),
            id,
        }
    }

    /// Whether the flag is raised.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Blocks the calling thread for `d`, or until cancelled. Returns `true`
    /// when the whole duration passed, `false` when cancelled.
    pub fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let me = std::thread::current();
        self.lock_waiters().push(Waiter::Thread(me.clone()));
        let slept = loop {
            if self.is_cancelled() {
                break false;
            }
            let now = Instant::now();
            if now >= deadline {
                break true;
            }
            std::thread::park_timeout(deadline - now);
        };
        let id = me.id();
        self.lock_waiters()
            .retain(|w| !matches!(w, Waiter::Thread(t) if t.id() == id));
        slept
    }

    /// A future that completes when the flag is raised.
    pub fn cancelled(&self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(move |cx| {
            if self.is_cancelled() {
                return Poll::Ready(());
            }
            {
                let mut w = self.lock_waiters();
                if !w
                    .iter()
                    .any(|w| matches!(w, Waiter::Task(k) if k.will_wake(cx.waker())))
                {
                    // Most tokens have one waiter: no room for more up front.
                    w.reserve_exact(1);
                    w.push(Waiter::Task(cx.waker().clone()));
                }
            }
            if self.is_cancelled() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        self.0.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Unregisters an [`CancelToken::on_cancel`] callback when dropped.
#[must_use = "dropping the guard unregisters the callback"]
pub struct CancelGuard {
    token: CancelToken,
    id: u64,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.token
            .lock_waiters()
            .retain(|w| !matches!(w, Waiter::Call(id, _) if *id == self.id));
    }
}

impl fmt::Debug for CancelGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelGuard").field("id", &self.id).finish()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CancelToken")
            .field(&self.is_cancelled())
            .finish()
    }
}

/// A boxed, sendable future, as async task bodies return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    #[test]
    fn cancel_wakes_a_sleeping_thread() {
        let token = CancelToken::new();
        let (started_tx, started_rx) = mpsc::channel();
        let t = token.clone();
        let h = std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            t.sleep(Duration::from_secs(3600))
        });
        started_rx.recv().unwrap();
        token.cancel();
        assert!(!h.join().unwrap(), "sleep must report cancellation");
    }

    #[test]
    fn sleep_without_cancel_runs_to_the_end() {
        let token = CancelToken::new();
        let start = Instant::now();
        assert!(token.sleep(Duration::from_millis(5)));
        assert!(start.elapsed() >= Duration::from_millis(5));
    }

    #[test]
    fn on_cancel_calls_once_and_not_after_the_guard_is_gone() {
        use std::sync::atomic::AtomicUsize;
        let token = CancelToken::new();
        let calls = Arc::new(AtomicUsize::new(0));
        let (a, b) = (Arc::clone(&calls), Arc::clone(&calls));
        let kept = token.on_cancel(move || {
            a.fetch_add(1, Ordering::SeqCst);
        });
        drop(token.on_cancel(move || {
            b.fetch_add(100, Ordering::SeqCst);
        }));
        token.cancel();
        token.cancel();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let c = Arc::clone(&calls);
        let _late = token.on_cancel(move || {
            c.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(
            calls.load(Ordering::SeqCst),
            11,
            "registered after the cancel: called at once"
        );
        drop(kept);
    }

    #[test]
    fn a_cancelled_token_does_not_sleep() {
        let token = CancelToken::new();
        token.cancel();
        assert!(!token.sleep(Duration::from_secs(3600)));
        let ctx = Context::new(JobId(1), 1, token);
        assert!(ctx.check().is_err());
    }

    #[test]
    fn a_context_reads_its_parents_or_names_the_type_it_could_not_read() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Fan {
            shard: Vec<u32>,
        }
        let none = Context::new(JobId(1), 1, CancelToken::new());
        assert!(!none.has_parents());
        assert_eq!(none.parents_json(), "null");
        assert_eq!(none.parents::<Option<Fan>>().unwrap(), None);
        let ctx = Context::new(JobId(2), 1, CancelToken::new())
            .with_parents(Some(Arc::from(r#"{"shard":[1,2,3]}"#)));
        assert!(ctx.has_parents());
        assert_eq!(ctx.parents::<Fan>().unwrap().shard, vec![1, 2, 3]);
        let e = ctx.parents::<Vec<String>>().unwrap_err();
        assert_eq!(e.intent(), crate::ErrorIntent::Permanent);
        assert!(e.message().contains("Vec<alloc::string::String>"), "{e}");
        assert!(none.parents::<Fan>().is_err());
    }
}
