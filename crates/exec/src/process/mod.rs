//! `process` mode: attempts run in a pool of worker processes, so a panic,
//! an abort, a segfault, an exit, an out-of-memory kill or a hang costs
//! one attempt, never the run.
//!
//! Each worker process has a supervising thread in the engine. It starts
//! the worker (the same executable, in the worker role: see
//! [`enter_if_child_with`]), sends it batches of attempts and reads their
//! results; a page of memory they share says at every moment which attempt
//! is running. When the worker dies, that attempt is `crashed` (with the
//! exit code or signal), the batch's attempts that had not started go back
//! to be run elsewhere (as do those that ended but whose results died with
//! the worker: they run again), and a new worker takes the old one's place. When the running attempt passes its timeout, the worker's
//! process group gets SIGTERM, then SIGKILL after a grace, and the attempt
//! is `timed_out`. Workers are recycled after a number of jobs or above a
//! resident size. A worker dies with the engine (a parent-death signal,
//! and the end of its input pipe).

mod child;
mod pool;
pub(crate) mod protocol;
mod shm;
mod spawn;

pub use child::{enter_if_child_with, is_child, run_child, CHILD_ENV};
pub use pool::{ProcessConfig, ProcessPool};
