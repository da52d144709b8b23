//! The writer thread: writes records while the dispatcher goes on claiming
//! and starting attempts, for a queue that takes writes beside claims. One
//! batch is with it at a time; it hands each written batch back through the
//! inbox, with the cascade the queue reported for it.

use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use runyard_queue::{Completion, Queue, QueueError, Recorded};

use crate::inbox::{Inbox, Written};

/// Writes records, retrying while the queue is unavailable.
fn write_records(
    queue: &dyn Queue,
    worker: &str,
    records: &[Completion],
) -> Result<Recorded, QueueError> {
    let mut delay = Duration::from_millis(10);
    let mut tries = 0;
    loop {
        match queue.complete(worker, records) {
            Err(e) if e.is_transient() && tries < 50 => {
                tries += 1;
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

impl Written {
    /// Writes the records (retrying while the queue is unavailable),
    /// keeping their results and the cascade they caused.
    pub(super) fn write(&mut self, queue: &dyn Queue, worker: &str) {
        match write_records(queue, worker, &self.records) {
            Ok(r) => {
                self.results = Ok(r.results);
                self.cascade = (!r.cascade.is_empty()).then(|| Box::new(r.cascade));
            }
            Err(e) => self.results = Err(e),
        }
    }
}

pub(super) struct Writer {
    tx: Sender<Written>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Starts the thread; `None` if no thread can be had.
    pub(super) fn start(
        queue: Arc<dyn Queue>,
        worker: String,
        inbox: Arc<Inbox>,
    ) -> Option<Writer> {
        let (tx, rx) = channel::<Written>();
        let thread = std::thread::Builder::new()
            .name("runyard-writer".into())
            .spawn(move || {
                for mut w in rx {
                    w.write(&*queue, &worker);
                    inbox.written(w);
                }
            })
            .ok()?;
        Some(Writer { tx, thread })
    }

    /// Hands a batch over; gives it back if the thread is gone.
    pub(super) fn send(&self, w: Written) -> Result<(), Written> {
        self.tx.send(w).map_err(|e| e.0)
    }

    /// Lets the thread write what it has, and waits for it.
    pub(super) fn stop(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}
