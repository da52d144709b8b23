//! [`ProcessPool`]: the executor handle of process mode. It starts a
//! supervisor per slot, and hands attempts to them, takes them back and
//! cancels them as an [`Executor`] does.

use std::fmt;
use std::io;
use std::sync::Arc;

use runyard_core::Registry;

use super::config::ProcessConfig;
use super::shared::Pool;
use super::slot::{lock, Slot};
use crate::attempt::{Attempt, Executor, Sink};

/// A pool of child processes that runs sync attempts. See the module docs.
pub struct ProcessPool {
    pool: Arc<Pool>,
}

impl ProcessPool {
    /// A pool running tasks of `registry` in child processes.
    pub fn new(
        cfg: ProcessConfig,
        registry: Arc<Registry>,
        sink: Arc<dyn Sink>,
    ) -> io::Result<ProcessPool> {
        let pool = Arc::new(Pool::new(cfg, registry, sink)?);
        for (i, slot) in pool.slots.iter().enumerate() {
            let (pool, slot) = (Arc::clone(&pool), Arc::clone(slot));
            std::thread::Builder::new()
                .name(format!("runyard-proc-{i}"))
                .spawn(move || pool.supervise(&slot))?;
        }
        Ok(ProcessPool { pool })
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPool")
            .field("program", &self.pool.cfg.program)
            .field("workers", &self.pool.slots.len())
            .finish_non_exhaustive()
    }
}

impl Executor for ProcessPool {
    fn submit(&self, batch: Vec<Attempt>) {
        if !batch.is_empty() {
            self.pool.submit(batch);
        }
    }

    fn take_unstarted(&self) -> Vec<Attempt> {
        let mut out = self.pool.take_pending();
        for slot in &self.pool.slots {
            out.extend(Slot::stop_batch(&mut lock(&slot.state)));
        }
        out
    }

    fn cancel(&self, token: u64) -> Option<Attempt> {
        if let Some(a) = self.pool.take_one(token) {
            return Some(a);
        }
        for slot in &self.pool.slots {
            let mut st = lock(&slot.state);
            let Some(&(idx, _)) = st.batch.iter().find(|(_, a)| a.token == token) else {
                continue;
            };
            // Nothing more of this batch starts; then either it is running
            // (its child is stopped), or it never started (given back).
            let mut back = Slot::stop_batch(&mut st);
            let mine = back
                .iter()
                .position(|a| a.token == token)
                .map(|i| back.remove(i));
            let running = mine.is_none() && Slot::running(&st) == Some(idx);
            if running {
                st.cancel = Some(token);
            }
            drop(st);
            if running {
                slot.wake();
            }
            self.pool.give_back(back);
            return mine;
        }
        None
    }

    fn cancel_running(&self) -> Vec<Attempt> {
        let mut out = self.take_unstarted();
        for slot in &self.pool.slots {
            let mut st = lock(&slot.state);
            out.extend(Slot::stop_batch(&mut st));
            if let Some(token) = Slot::running_token(&st) {
                st.cancel = Some(token);
                drop(st);
                slot.wake();
            }
        }
        out
    }

    fn running(&self) -> usize {
        self.pool
            .slots
            .iter()
            .filter(|slot| Slot::running_token(&lock(&slot.state)).is_some())
            .count()
    }

    fn shutdown(&self) {
        self.pool.shut_down();
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
