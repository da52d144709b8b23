//! runyard's executors: where attempts run.
//!
//! An [`Executor`] receives [`Attempt`]s from the worker loop, runs them and
//! reports each one's end, exactly once, to a [`Sink`] as a [`AttemptReport`].
//! Executors know nothing of queues or retry policies; they run attempts,
//! time them, contain their panics and enforce their timeouts:
//!
//! - [`ThreadPool`] (fixed, for `cpu` tasks and `thread` mode; elastic, for
//!   `blocking` tasks): a timed-out attempt's context is cancelled and its
//!   thread abandoned and replaced, so the run never waits for it.
//! - [`AsyncExecutor`]: attempts are tokio tasks on one runtime; a timeout
//!   drops the future, and a future that blocks its thread is reported
//!   timed out and abandoned, as on the thread pool.
//!
//! A task that starts commands starts each as a [`CommandGroup`]: a
//! process group of its own that ends whole, and that a reaper process
//! kills should the runner die (see [`start_reaper`]).

// Unsafe code only behind the safe wrappers of `os`.
#![deny(unsafe_code)]
// A closed standard error must not panic an executor: no `eprintln!`.
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod async_exec;
mod attempt;
mod group;
pub mod limits;
#[allow(unsafe_code)]
pub mod os;
mod panic;
pub mod process;
mod reaper;
mod spin;
mod thread;
mod watchdog;

pub use async_exec::AsyncExecutor;
pub use attempt::{Attempt, AttemptReport, Epoch, Executor, Sink};
pub use group::{CommandGroup, GroupStopper, SpawnError};
pub use panic::{catch_panic, install_panic_hook};
pub use reaper::start_reaper;
pub use spin::{spin_until, Spinner};
pub use thread::{PoolConfig, ThreadPool};
