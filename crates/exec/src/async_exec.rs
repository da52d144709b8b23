//! The async executor: every attempt is a tokio task on one runtime owned by
//! the engine.
//!
//! Each attempt's task reports its own end, so an attempt is reported
//! exactly once. A timeout or a cancel request makes the task stop polling
//! the task's future and drop it: an `async` task is stopped at its next
//! `.await`. (A future that blocks its thread cannot be stopped; that is
//! what `blocking` tasks and `process` mode are for.)

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Instant;

use runyard_core::{BoxFuture, CancelToken, Context, Ended, Output, Registry, TaskError};
use tokio::runtime::Handle;

use crate::attempt::{Attempt, Epoch, Executor, Finished, Sink};
use crate::panic::catch_panic;

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
    running: Mutex<HashMap<u64, CancelToken>>,
}

impl AsyncExecutor {
    /// An executor spawning on `handle`'s runtime.
    pub fn new(handle: Handle, registry: Arc<Registry>, sink: Arc<dyn Sink>) -> AsyncExecutor {
        crate::panic::install_panic_hook();
        AsyncExecutor {
            inner: Arc::new(Inner {
                handle,
                wants_started: sink.wants_started(),
                registry,
                sink,
                epoch: Epoch::now(),
                running: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancelToken>> {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl fmt::Debug for AsyncExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncExecutor")
            .field("running", &self.running().len())
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
    async fn run(self: Arc<Inner>, att: Attempt, token: CancelToken) {
        let started = Instant::now();
        let started_at = self.epoch.at(started);
        if self.wants_started {
            self.sink.started(att.token, started_at);
        }
        let ctx = Context::new(att.job, att.number, token.clone());
        let task = self.registry.task(att.task);
        let ended = {
            let mut work = pin!(CatchUnwind(task.run_async(att.params, ctx)));
            let mut cancelled = pin!(token.cancelled());
            let mut deadline = att.timeout.map(|t| Box::pin(tokio::time::sleep(t)));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = work.as_mut().poll(cx) {
                    return Poll::Ready(match r {
                        Ok(Ok(out)) => Ended::Succeeded(out),
                        Ok(Err(e)) => Ended::Failed(e),
                        Err(msg) => Ended::Panicked(msg),
                    });
                }
                if let Some(d) = deadline.as_mut() {
                    if d.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Ended::TimedOut(att.timeout.unwrap_or_default()));
                    }
                }
                if cancelled.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Ended::Cancelled);
                }
                Poll::Pending
            })
            .await
        };
        // The task's future is dropped by now; tell anything it spawned.
        if matches!(ended, Ended::TimedOut(_)) {
            token.cancel();
        }
        self.running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&att.token);
        self.sink.finished(vec![Finished {
            token: att.token,
            started_at,
            duration: started.elapsed(),
            ended,
        }]);
    }
}

impl Executor for AsyncExecutor {
    fn submit(&self, batch: Vec<Attempt>) {
        let tokens: Vec<CancelToken> = batch.iter().map(|_| CancelToken::new()).collect();
        {
            let mut running = self.running();
            for (a, t) in batch.iter().zip(&tokens) {
                running.insert(a.token, t.clone());
            }
        }
        for (a, token) in batch.into_iter().zip(tokens) {
            let inner = Arc::clone(&self.inner);
            self.inner.handle.spawn(inner.run(a, token));
        }
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        Vec::new()
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        if let Some(t) = self.running().get(&token) {
            t.cancel();
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        for t in self.running().values() {
            t.cancel();
        }
        Vec::new()
    }

    fn shutdown(&self) {}
}
