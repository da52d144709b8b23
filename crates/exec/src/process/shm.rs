//! The page a child process and its supervisor share, so the supervisor knows at
//! every moment which attempt of a batch is running without a message per
//! attempt.
//!
//! # Protocol
//!
//! `state` holds how many attempts of the current batch the child has
//! started, and a skip bit. The supervisor sets both counters to zero
//! *before* it sends a batch. The child starts attempt `i` only by
//! compare-and-swap of `state` from `i` to `i + 1` (after storing the
//! start time in `started_us`), and stores `finished = i + 1` (Release) when
//! it ends. To stop a batch, the supervisor sets the skip bit with
//! `fetch_or`: the value it gets back is the number of attempts started,
//! and no later attempt can start, since the child's swap expects a value
//! without the bit. So at any moment: attempts below `finished` are done,
//! one more is running if `started > finished`, the rest have not started.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::os::{self, Mapping};

const SKIP: u64 = 1 << 63;

/// The page's words (64-bit atomics): `state`, `finished`, and the start
/// time of the latest started attempt (`started_us`, an i64 of µs).
const STATE: usize = 0;
const FINISHED: usize = 1;
const STARTED_US: usize = 2;

/// The page's words, by name.
struct Page<'a> {
    state: &'a AtomicU64,
    finished: &'a AtomicU64,
    started_us: &'a AtomicU64,
}

const SIZE: usize = 4096;

/// A shared page mapped into this process.
pub(crate) struct Shm {
    map: Mapping,
    fd: OwnedFd,
}

impl Shm {
    /// A new page (a memfd, to hand to a child process).
    pub(crate) fn create() -> io::Result<Shm> {
        let fd = os::memfd(c"runyard-engine", SIZE as u64)?;
        // Above the descriptors a child process is handed (3 to 7), so that
        // moving it to 5 in the child is never a no-op that keeps
        // close-on-exec.
        Shm::map(os::fd_above(fd, 10)?)
    }

    /// The page a child process was handed (on descriptor 5).
    pub(crate) fn open(fd: OwnedFd) -> io::Result<Shm> {
        Shm::map(fd)
    }

    fn map(fd: OwnedFd) -> io::Result<Shm> {
        // A file of SIZE bytes.
        let map = Mapping::shared(fd.as_fd(), SIZE, 0)?;
        Ok(Shm { map, fd })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn page(&self) -> Page<'_> {
        let words = self.map.u64s();
        Page {
            state: &words[STATE],
            finished: &words[FINISHED],
            started_us: &words[STARTED_US],
        }
    }

    /// Supervisor: a new batch is about to be sent.
    pub(crate) fn reset(&self) {
        let p = self.page();
        p.finished.store(0, Ordering::SeqCst);
        p.state.store(0, Ordering::SeqCst);
    }

    /// Supervisor: no further attempt of this batch may start. Returns how
    /// many had started.
    pub(crate) fn stop(&self) -> u64 {
        self.page().state.fetch_or(SKIP, Ordering::SeqCst) & !SKIP
    }

    /// Supervisor: (started, finished, start time of the latest started, in µs).
    pub(crate) fn progress(&self) -> (u64, u64, i64) {
        let p = self.page();
        let finished = p.finished.load(Ordering::Acquire);
        let started = p.state.load(Ordering::Acquire) & !SKIP;
        (
            started,
            finished,
            p.started_us.load(Ordering::Acquire) as i64,
        )
    }

    /// Child: starts attempt `i` unless the batch was stopped.
    pub(crate) fn begin(&self, i: u64, now_us: i64) -> bool {
        let p = self.page();
        p.started_us.store(now_us as u64, Ordering::Release);
        p.state
            .compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Child: attempt `i` ended.
    pub(crate) fn end(&self, i: u64) {
        self.page().finished.store(i + 1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_batch_starts_nothing_more_and_says_how_far_it_got() {
        let engine = Shm::create().unwrap();
        let child = Shm::open(engine.fd.try_clone().unwrap()).unwrap();
        engine.reset();
        assert!(child.begin(0, 10));
        child.end(0);
        assert!(child.begin(1, 20));
        assert_eq!(engine.progress(), (2, 1, 20));
        assert_eq!(engine.stop(), 2);
        assert!(!child.begin(2, 30), "nothing starts after a stop");
        child.end(1);
        assert_eq!(engine.progress().1, 2);
        engine.reset();
        assert!(child.begin(0, 40), "a new batch starts afresh");
    }
}
