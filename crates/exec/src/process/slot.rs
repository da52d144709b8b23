//! A slot of the pool: one child process's place, shared by its supervisor
//! and the pool's executor handle (which cancels and takes back attempts).
//! The batch in flight, the page shared with the child, a cancel request,
//! and a wake pipe that interrupts the supervisor's wait.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{Arc, Mutex, MutexGuard};

use super::shm::Shm;
use crate::attempt::Attempt;
use crate::os;
use crate::reaper::{self, Loan};

/// Locks `m`, through a poisoning (a panic elsewhere leaves the data whole).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One child process's place in the pool.
pub(super) struct Slot {
    pub(super) state: Mutex<SlotState>,
    /// The wake pipe, both ends non-blocking: a byte written wakes the
    /// supervisor from its wait on the child's pipe.
    wake_r: File,
    wake_w: File,
    /// The page of the reaper's table its child processes register their
    /// commands in (none when the engine has no reaper: each child process
    /// then has its own).
    pub(super) groups: Option<Loan>,
}

#[derive(Default)]
pub(super) struct SlotState {
    /// The batch in flight: attempts not yet answered, with their place in
    /// the batch.
    pub(super) batch: VecDeque<(u64, Attempt)>,
    /// The page shared with the current child process.
    pub(super) shm: Option<Arc<Shm>>,
    /// The attempt to stop by killing the child process (and report
    /// cancelled), as soon as it is seen running.
    pub(super) cancel: Option<u64>,
}

impl Slot {
    pub(super) fn new() -> io::Result<Slot> {
        let (r, w) = os::pipe()?;
        os::set_nonblocking(&r)?;
        os::set_nonblocking(&w)?;
        Ok(Slot {
            state: Mutex::new(SlotState::default()),
            wake_r: File::from(r),
            wake_w: File::from(w),
            // Without a reaper here, each child process starts its own at
            // its first command (and says why, should that fail too).
            groups: reaper::lend().ok(),
        })
    }

    /// The read end of the wake pipe, to wait on.
    pub(super) fn wake_fd(&self) -> BorrowedFd<'_> {
        self.wake_r.as_fd()
    }

    /// Ends the commands a child process of this slot started, once that
    /// child is gone: what is left of their groups gets SIGKILL.
    pub(super) fn end_commands(&self) {
        if let Some(g) = &self.groups {
            g.kill_all();
        }
    }

    /// Wakes the supervisor.
    pub(super) fn wake(&self) {
        // A full pipe already holds a wake-up.
        let _ = (&self.wake_w).write(&[1]);
    }

    /// Empties the wake pipe.
    pub(super) fn drain_wakes(&self) {
        let mut buf = [0u8; 64];
        while (&self.wake_r).read(&mut buf).is_ok_and(|n| n > 0) {}
    }

    /// Stops the batch in flight: nothing more of it starts. Returns the
    /// attempts that had not started.
    pub(super) fn stop_batch(st: &mut SlotState) -> Vec<Attempt> {
        let Some(shm) = st.shm.as_ref() else {
            return Vec::new();
        };
        if st.batch.is_empty() {
            return Vec::new();
        }
        let started = shm.stop();
        let mut back = Vec::new();
        st.batch.retain(|(i, a)| {
            if *i < started {
                true
            } else {
                back.push(a.clone());
                false
            }
        });
        back
    }

    /// The index of the attempt running now, if one is.
    pub(super) fn running(st: &SlotState) -> Option<u64> {
        let (started, finished, _) = st.shm.as_ref()?.progress();
        (started > finished).then(|| started - 1)
    }

    /// The token of the attempt running now, if it is one of the batch.
    pub(super) fn running_token(st: &SlotState) -> Option<u64> {
        let r = Slot::running(st)?;
        st.batch.iter().find(|(i, _)| *i == r).map(|(_, a)| a.token)
    }
}
