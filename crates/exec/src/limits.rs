//! How many threads and worker processes this process can start: what
//! bounds `-j` in `thread` and `process` modes.
//!
//! A pool asks for its threads when it starts, and a thread that cannot be
//! started (`EAGAIN`) or a stack that cannot be mapped (a process near
//! `vm.max_map_count`, which aborts the process inside the thread library)
//! is not something to find out half-way through a run. So the sizes are
//! checked before anything runs, against:
//!
//! - [`MAX_POOL_THREADS`], runyard's own cap on the threads of one pool
//!   (and on worker processes), far above what CPU-bound or blocking work
//!   gains from;
//! - `RLIMIT_NPROC` (`ulimit -u`), which counts every thread and process of
//!   the user: runyard counts its own and keeps [`RESERVED_THREADS`] (and a
//!   thread per core) for its other threads;
//! - `RLIMIT_NOFILE` (`ulimit -n`), for worker processes, which hold
//!   [`FILES_PER_WORKER`] descriptors each in the engine.
//!
//! Async attempts need no thread of their own and are not bounded here.

use crate::os::{self, Resource};
use std::fmt;

/// The most threads one pool runs, and the most worker processes.
pub const MAX_POOL_THREADS: usize = 4096;

/// Threads kept for runyard's own use beside a pool's (the dispatcher, a
/// writer, watchdogs, the progress bar), on top of one per core for the
/// async runtime.
pub const RESERVED_THREADS: usize = 32;

/// Threads and processes (`RLIMIT_NPROC` counts both) a worker process
/// takes: its supervisor thread in the engine, and the worker's own two.
pub const TASKS_PER_WORKER: usize = 3;

/// File descriptors the engine holds per worker process at most (its pipes
/// and shared page, and those open while it starts).
pub const FILES_PER_WORKER: usize = 10;

/// File descriptors kept for everything else: standard streams, a state
/// file, event and report files, the runtime's own.
pub const RESERVED_FILES: usize = 64;

/// The most of something this process can start, and what sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// How many.
    pub most: usize,
    /// What bounds it.
    pub bound: Bound,
}

/// What bounds a [`Limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Bound {
    /// [`MAX_POOL_THREADS`].
    Cap,
    /// `RLIMIT_NPROC`, with its value.
    Processes(u64),
    /// `RLIMIT_NOFILE`, with its value.
    OpenFiles(u64),
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Cap => f.write_str("runyard's cap on one pool"),
            Bound::Processes(n) => write!(
                f,
                "RLIMIT_NPROC (`ulimit -u`) is {n} threads and processes for the user; \
                 runyard keeps {} of them for itself",
                RESERVED_THREADS + cores()
            ),
            Bound::OpenFiles(n) => write!(
                f,
                "RLIMIT_NOFILE (`ulimit -n`) is {n} descriptors, {FILES_PER_WORKER} per worker \
                 and {RESERVED_FILES} kept for the rest"
            ),
        }
    }
}

impl Limit {
    fn min(self, other: Limit) -> Limit {
        if other.most < self.most {
            other
        } else {
            self
        }
    }
}

/// The most threads a pool may start now.
pub fn pool_threads() -> Limit {
    let cap = Limit {
        most: MAX_POOL_THREADS,
        bound: Bound::Cap,
    };
    match os::soft_limit(Resource::Processes) {
        Some(n) => cap.min(Limit {
            most: (n as usize)
                .saturating_sub(threads_now() + RESERVED_THREADS + cores())
                .max(1),
            bound: Bound::Processes(n),
        }),
        None => cap,
    }
}

/// The most worker processes a pool may start now.
pub fn worker_processes() -> Limit {
    let threads = pool_threads();
    let mut most = Limit {
        most: match threads.bound {
            Bound::Cap => MAX_POOL_THREADS,
            _ => (threads.most / TASKS_PER_WORKER).max(1),
        },
        bound: threads.bound,
    };
    if let Some(n) = os::soft_limit(Resource::OpenFiles) {
        let room = (n as usize).saturating_sub(open_files_now() + RESERVED_FILES);
        most = most.min(Limit {
            most: (room / FILES_PER_WORKER).max(1),
            bound: Bound::OpenFiles(n),
        });
    }
    most
}

/// This process's threads now (`Threads:` in `/proc/self/status`).
fn threads_now() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(1)
}

/// This process's open file descriptors now.
fn open_files_now() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_at_least_one_and_at_most_the_cap() {
        for l in [pool_threads(), worker_processes()] {
            assert!(l.most >= 1 && l.most <= MAX_POOL_THREADS, "{l:?}");
        }
        assert!(threads_now() >= 1);
        assert!(open_files_now() >= 3);
        assert!(Bound::Processes(200).to_string().contains("RLIMIT_NPROC"));
        assert!(Bound::OpenFiles(256).to_string().contains("`ulimit -n`"));
    }
}
