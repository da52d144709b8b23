//! Enqueueing from async code for backends with a blocking driver:
//! [`SubmitThread`], a thread of its own on which such a backend
//! writes the jobs async callers submit ([`LazySubmit`] starts it
//! on first use).
//!
//! # Protocol
//!
//! A `SubmitThread` owns its own connection (opened on the thread, so that
//! opening blocks no caller either). A caller sends its batch with a
//! one-shot reply channel and awaits the reply; the thread writes batches
//! one at a time, in the order they arrived, and answers each. Dropping the
//! `SubmitThread` closes the channel: the thread finishes the batches
//! already sent and ends, and the drop waits for it.

use std::future::Future;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::{QueueError, QueueErrorKind};
use crate::queue::{Enqueued, NewJob, Submit, WakerSlot};

type Reply = oneshot::Sender<Result<Vec<Enqueued>, QueueError>>;

/// A thread that writes submitted batches on a connection of its own.
pub struct SubmitThread {
    tx: Option<mpsc::Sender<(Vec<NewJob>, Reply)>>,
    thread: Option<JoinHandle<()>>,
}

impl SubmitThread {
    /// Starts a thread named `name` that calls `open` once, then writes
    /// each batch with what `open` returned. When `open` fails, every batch
    /// is answered with its error.
    pub fn spawn<F>(
        name: &str,
        open: impl FnOnce() -> Result<F, QueueError> + Send + 'static,
    ) -> Result<SubmitThread, QueueError>
    where
        F: FnMut(Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>,
    {
        let (tx, rx) = mpsc::channel::<(Vec<NewJob>, Reply)>();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || match open() {
                Ok(mut insert) => {
                    for (jobs, reply) in rx {
                        let _ = reply.send(insert(jobs));
                    }
                }
                Err(e) => {
                    for (_, reply) in rx {
                        let _ = reply.send(Err(QueueError::new(e.kind(), e.to_string())));
                    }
                }
            })
            .map_err(|e| {
                QueueError::new(
                    QueueErrorKind::Unavailable,
                    format!("starting the thread that enqueues for async callers: {e}"),
                )
            })?;
        Ok(SubmitThread {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Sends a batch to the thread; the future is its answer.
    pub fn submit(
        &self,
        jobs: Vec<NewJob>,
    ) -> impl Future<Output = Result<Vec<Enqueued>, QueueError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send((jobs, reply)).is_ok());
        async move {
            if !sent {
                return Err(stopped());
            }
            answer.await.unwrap_or_else(|_| Err(stopped()))
        }
    }
}

/// A [`SubmitThread`] started on the first async enqueue.
#[derive(Debug, Default)]
pub struct LazySubmit(std::sync::OnceLock<SubmitThread>);

impl LazySubmit {
    /// None started yet.
    pub fn new() -> LazySubmit {
        LazySubmit::default()
    }

    /// Sends `jobs` to the thread (started as [`SubmitThread::spawn`]
    /// with `name` and `open` if it is not yet), and calls `waker` once they
    /// are added, if any is new: what a backend's
    /// [`Queue::insert_async`](crate::Queue::insert_async) returns.
    pub fn submit<'a, F>(
        &'a self,
        name: &str,
        open: impl FnOnce() -> Result<F, QueueError> + Send + 'static,
        jobs: Vec<NewJob>,
        waker: &'a WakerSlot,
    ) -> Submit<'a>
    where
        F: FnMut(Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError>,
    {
        let thread = match self.0.get() {
            Some(t) => Ok(t),
            None => SubmitThread::spawn(name, open).map(|t| self.0.get_or_init(|| t)),
        };
        let answer = thread.map(|t| t.submit(jobs));
        Box::pin(async move {
            let out = answer?.await?;
            if out.iter().any(|e| matches!(e, Enqueued::New(_))) {
                waker.wake();
            }
            Ok(out)
        })
    }
}

fn stopped() -> QueueError {
    QueueError::new(
        QueueErrorKind::Unavailable,
        "the thread that enqueues for async callers has stopped",
    )
}

impl Drop for SubmitThread {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for SubmitThread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SubmitThread")
    }
}
