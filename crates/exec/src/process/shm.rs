//! The page a worker and its supervisor share, so the supervisor knows at
//! every moment which attempt of a batch is running without a message per
//! attempt.
//!
//! # Protocol
//!
//! `state` holds how many attempts of the current batch the worker has
//! started, and a skip bit. The supervisor sets both counters to zero
//! *before* it sends a batch. The worker starts attempt `i` only by
//! compare-and-swap of `state` from `i` to `i + 1` (after storing the
//! start time in `started_us`), and stores `finished = i + 1` (Release) when
//! it ends. To stop a batch, the supervisor sets the skip bit with
//! `fetch_or`: the value it gets back is the number of attempts started,
//! and no later attempt can start, since the worker's swap expects a value
//! without the bit. So at any moment: attempts below `finished` are done,
//! one more is running if `started > finished`, the rest have not started.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

const SKIP: u64 = 1 << 63;

#[repr(C, align(64))]
struct Page {
    state: AtomicU64,
    finished: AtomicU64,
    started_us: AtomicI64,
}

const SIZE: usize = 4096;

/// A shared page mapped into this process.
pub(crate) struct Shm {
    page: *const Page,
    fd: OwnedFd,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for Shm {}
// SAFETY: as above.
unsafe impl Sync for Shm {}

impl Shm {
    /// A new page (a memfd, to hand to a worker).
    pub(crate) fn create() -> io::Result<Shm> {
        // SAFETY: a name and flags; the result is checked.
        let raw = unsafe { libc::memfd_create(c"runyard-engine".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // Above the descriptors a worker is handed (3 to 7), so that moving
        // it to 5 in the worker is never a no-op that keeps close-on-exec.
        // SAFETY: a fresh descriptor we own.
        let fd = crate::os::fd_above(unsafe { OwnedFd::from_raw_fd(raw) }, 10)?;
        // SAFETY: sizing our own memfd.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), SIZE as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Shm::map(fd)
    }

    /// The page a worker was handed on descriptor `fd`.
    pub(crate) fn open(fd: RawFd) -> io::Result<Shm> {
        // SAFETY: the engine passed this descriptor to us alone.
        Shm::map(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn map(fd: OwnedFd) -> io::Result<Shm> {
        // A file of SIZE bytes.
        let p = crate::os::map_shared(fd.as_raw_fd(), SIZE, 0)?;
        Ok(Shm {
            page: p as *const Page,
            fd,
        })
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn page(&self) -> &Page {
        // SAFETY: mapped for the life of `self`, zero-initialized by
        // ftruncate, aligned by mmap; only atomics are read or written.
        unsafe { &*self.page }
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
        (started, finished, p.started_us.load(Ordering::Acquire))
    }

    /// Worker: starts attempt `i` unless the batch was stopped.
    pub(crate) fn begin(&self, i: u64, now_us: i64) -> bool {
        let p = self.page();
        p.started_us.store(now_us, Ordering::Release);
        p.state
            .compare_exchange(i, i + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Worker: attempt `i` ended.
    pub(crate) fn end(&self, i: u64) {
        self.page().finished.store(i + 1, Ordering::Release);
    }
}

impl Drop for Shm {
    fn drop(&mut self) {
        // SAFETY: unmapping what `map` mapped.
        unsafe { libc::munmap(self.page as *mut libc::c_void, SIZE) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_batch_starts_nothing_more_and_says_how_far_it_got() {
        let engine = Shm::create().unwrap();
        let worker = Shm::open(unsafe { libc::dup(engine.raw_fd()) }).unwrap();
        engine.reset();
        assert!(worker.begin(0, 10));
        worker.end(0);
        assert!(worker.begin(1, 20));
        assert_eq!(engine.progress(), (2, 1, 20));
        assert_eq!(engine.stop(), 2);
        assert!(!worker.begin(2, 30), "nothing starts after a stop");
        worker.end(1);
        assert_eq!(engine.progress().1, 2);
        engine.reset();
        assert!(worker.begin(0, 40), "a new batch starts afresh");
    }
}
