//! A supervisor: the thread that keeps one slot's child process running
//! and feeds it batches, until the pool shuts down.

use std::sync::Arc;

use super::shared::Pool;
use super::slot::{lock, Slot};
use super::start::{for_want_of_resources, Child};

/// Crashes in a row that no running attempt can be blamed for, after which
/// the next one is blamed on its batch's first attempt.
const BLAMELESS_CRASHES: u32 = 3;

impl Pool {
    /// Runs a supervisor on `slot` until the pool shuts down.
    pub(super) fn supervise(self: Arc<Pool>, slot: &Slot) {
        // Start at once, so the pool is warm when work arrives.
        let mut kept = self.start(slot).ok();
        let mut blameless = 0;
        while let Some(batch) = self.take_batch(self.jobs_left(kept.as_ref())) {
            if kept
                .as_mut()
                .is_some_and(|c| c.process.try_wait().ok().flatten().is_some())
            {
                // It died while idle: nothing of this batch has run.
                kept = None;
                slot.end_commands();
            }
            let mut child = match kept.take() {
                Some(c) => c,
                None => match self.start(slot) {
                    Ok(c) => c,
                    Err(e) if for_want_of_resources(&e) => {
                        // Not the jobs' doing: they wait for a child, and
                        // `start` tries again after a pause.
                        self.give_back(batch);
                        continue;
                    }
                    Err(e) => {
                        self.fail_batch(batch, &e);
                        continue;
                    }
                },
            };
            match self.run_batch(slot, &mut child, batch) {
                Ok(()) => {
                    blameless = 0;
                    if self.should_recycle(&child) {
                        self.stop(slot, child);
                    } else {
                        kept = Some(child);
                    }
                }
                Err(gone) => {
                    if self.bury(slot, child, gone, blameless >= BLAMELESS_CRASHES) {
                        blameless = 0;
                    } else {
                        blameless += 1;
                    }
                }
            }
        }
        lock(&slot.state).shm = None;
        if let Some(child) = kept {
            self.stop(slot, child);
        }
    }

    /// The most attempts the next batch may have: a child due for recycling
    /// after N jobs gets no more than that.
    fn jobs_left(&self, child: Option<&Child>) -> usize {
        match (self.cfg.max_jobs_per_worker, child) {
            (Some(max), Some(c)) => max.saturating_sub(c.jobs).max(1) as usize,
            (Some(max), None) => max.max(1) as usize,
            (None, _) => usize::MAX,
        }
    }

    /// Whether a child that answered its batch is replaced now.
    fn should_recycle(&self, child: &Child) -> bool {
        self.cfg
            .max_jobs_per_worker
            .is_some_and(|m| child.jobs >= m)
            || child.above_rss(self.cfg.max_worker_rss)
    }
}
