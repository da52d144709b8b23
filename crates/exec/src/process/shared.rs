//! What a pool's supervisors share with its executor handle: the
//! configuration, the registry and the sink, the attempts waiting for a
//! child process, and the slots.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use runyard_core::{Outcome, Registry, Timestamp};

use super::config::ProcessConfig;
use super::slot::{lock, Slot};
use crate::attempt::{Attempt, AttemptReport, Sink};

/// Above this average attempt duration, attempts go one at a time.
const LONG_ATTEMPT_US: u64 = 1000;

/// The pool as its supervisors and its executor handle see it.
pub(super) struct Pool {
    pub(super) cfg: ProcessConfig,
    pub(super) registry: Arc<Registry>,
    pub(super) sink: Arc<dyn Sink>,
    pending: Mutex<Pending>,
    work: Condvar,
    pub(super) slots: Vec<Arc<Slot>>,
    /// Child starts that failed in a row (for backing off).
    pub(super) failures: AtomicU32,
    /// Whether the sink wants to hear of each start.
    pub(super) report_starts: bool,
    /// A moving average of attempt durations, in µs: batches help short
    /// attempts and only unbalance long ones.
    avg_us: AtomicU64,
}

/// The attempts no child process has yet.
struct Pending {
    attempts: VecDeque<Attempt>,
    shutdown: bool,
}

impl Pool {
    pub(super) fn new(
        cfg: ProcessConfig,
        registry: Arc<Registry>,
        sink: Arc<dyn Sink>,
    ) -> io::Result<Pool> {
        let slots = (0..cfg.workers.max(1))
            .map(|_| Slot::new().map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Pool {
            report_starts: sink.wants_started(),
            cfg,
            registry,
            sink,
            pending: Mutex::new(Pending {
                attempts: VecDeque::new(),
                shutdown: false,
            }),
            work: Condvar::new(),
            slots,
            failures: AtomicU32::new(0),
            avg_us: AtomicU64::new(0),
        })
    }

    /// Adds attempts behind those waiting.
    pub(super) fn submit(&self, batch: Vec<Attempt>) {
        lock(&self.pending).attempts.extend(batch);
        self.work.notify_all();
    }

    /// The next batch (at most `most` attempts), or `None` when the pool
    /// shuts down.
    pub(super) fn take_batch(&self, most: usize) -> Option<Vec<Attempt>> {
        let mut p = lock(&self.pending);
        loop {
            if p.shutdown {
                return None;
            }
            if !p.attempts.is_empty() {
                let batch = if self.avg_us.load(Ordering::Relaxed) > LONG_ATTEMPT_US {
                    1
                } else {
                    self.cfg.batch.max(1)
                };
                let n = (p.attempts.len() / self.slots.len())
                    .clamp(1, batch)
                    .min(most);
                return Some(p.attempts.drain(..n).collect());
            }
            p = self.work.wait(p).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Puts attempts back at the front, in their order: they run next.
    pub(super) fn give_back(&self, attempts: Vec<Attempt>) {
        if attempts.is_empty() {
            return;
        }
        let mut p = lock(&self.pending);
        for a in attempts.into_iter().rev() {
            p.attempts.push_front(a);
        }
        drop(p);
        self.work.notify_all();
    }

    /// Every waiting attempt, taken out.
    pub(super) fn take_pending(&self) -> Vec<Attempt> {
        lock(&self.pending).attempts.drain(..).collect()
    }

    /// The waiting attempt `token`, taken out, if it waits.
    pub(super) fn take_one(&self, token: u64) -> Option<Attempt> {
        let mut p = lock(&self.pending);
        let i = p.attempts.iter().position(|a| a.token == token)?;
        p.attempts.remove(i)
    }

    /// Stops the supervisors, once they are done with their batches, and
    /// wakes those waiting on a child process.
    pub(super) fn shut_down(&self) {
        lock(&self.pending).shutdown = true;
        self.work.notify_all();
        for slot in &self.slots {
            slot.wake();
        }
    }

    /// Counts an attempt's duration into the average.
    pub(super) fn record_duration(&self, us: u64) {
        let avg = self.avg_us.load(Ordering::Relaxed);
        self.avg_us.store(avg - avg / 8 + us / 8, Ordering::Relaxed);
    }

    /// Every attempt of a batch that could not start, for a reason other
    /// than a want of descriptors, processes or memory: a crash each (they
    /// count, and are retried by their policy; a binary that never starts
    /// makes jobs dead, not a loop).
    pub(super) fn fail_batch(&self, batch: Vec<Attempt>, e: &io::Error) {
        let now = Timestamp::now();
        self.sink.finished(
            batch
                .into_iter()
                .map(|a| AttemptReport {
                    token: a.token,
                    started_at: now,
                    duration: Duration::ZERO,
                    outcome: Outcome::Crashed {
                        message: format!("no worker process: {e}"),
                        detail: None,
                    },
                })
                .collect(),
        );
    }
}
